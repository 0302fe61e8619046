"""dTS: Thompson sampling under a diffusion (chain) prior, exact for linear links."""

from __future__ import annotations

from typing import Literal

import numpy as np

from .. import _validation as V
from ..likelihoods import Likelihood
from ..models.diffusion import DiffusionModel
from ..priors_diffusion import DiffusionPrior
from ..rules import ThompsonSampling
from ._environment import noise_of, prior_of, single_effect
from ._likelihood import (
    DEFAULT_LAPLACE_AT,
    LaplaceAt,
    LaplaceMethod,
    LikelihoodName,
    check_laplace_at,
    glm_options,
)
from .base import ContextualBandit
from .registry import ConfigError, Count, Positive, PositiveInt, register

__all__ = ["DiffusionTS"]


def _environment_prior(environment, reduction: str) -> DiffusionPrior:
    """The environment's chain prior (``diffusion_prior``), its HierTS-1 reduction, or, for an
    environment with a mixed-effect prior only, a one-layer chain with HierTS's one effect."""
    prior = getattr(environment, "diffusion_prior", None)
    if prior is None:
        mixed = prior_of(environment, "DiffusionTS")
        mean, cov, acov = single_effect(mixed)
        acov = acov if acov.ndim == 2 else acov.mean(axis=0)
        prior = DiffusionPrior([np.eye(mixed.dim)], [acov, cov], mean)
    if reduction == "hierts1":
        if not prior.is_linear:
            raise ConfigError("DiffusionTS: reduction = 'hierts1' needs linear links")
        return prior.to_hierts1()
    return prior


@register
class DiffusionTS(ContextualBandit):
    """dTS (Aouali 2023, 2025): Thompson sampling with a chain of L latents above the actions.

    Each round draws ψ_L, …, ψ_1 from their posteriors top-down, then every action's score
    given ψ_1. Exact for linear links (then the same posterior as :class:`MeTS` on
    :meth:`DiffusionPrior.to_hierts2`), the approximation of Aouali (2025), Eqs. 9–12, for
    non-linear ones. Per round: O(L d³) for the chain plus one pass over the actions.

    Parameters
    ----------
    prior : DiffusionPrior
    n_actions : int
        K (every action has the prior θ_i | ψ_1 ~ N(f_1(ψ_1), Σ_1)).
    noise_std : float
        σ.
    seed : int, SeedSequence or numpy Generator, optional
    refactor_every : int
        Exact recompute after this many incremental updates (or as many as observed actions).
    likelihood, laplace, laplace_batch, ridge, binarize
        As for :class:`MeTS`: ``likelihood="logistic"`` is GLM-dTS, each action's likelihood
        Laplace-approximated.
    laplace_at : {"posterior", "likelihood"}
        ``"likelihood"``: the paper's approximation N(θ̂_MLE, Ĝ⁻¹) of each action's likelihood
        (its ridge-penalised maximum); ``"posterior"`` (default, as for every GLM policy): the
        expansion at the MAP under the action's conditional prior N(E[f_1(ψ_1) | H], Σ_1), the
        same Gaussian pseudo-observation once the data are plentiful, but informative when an
        action's few rewards are separable (dts-fig1-logistic: 330 against 692; see
        docs/diffusion.md).

    Examples
    --------
    >>> import numpy as np
    >>> from mixedts import DiffusionPrior, DiffusionTS
    >>> rng = np.random.default_rng(0)
    >>> prior = DiffusionPrior([rng.uniform(-1, 1, (2, 2)) for _ in range(3)], [np.eye(2)] * 4)
    >>> policy = DiffusionTS(prior, n_actions=20, noise_std=1.0, seed=1)
    >>> x = rng.uniform(-1, 1, (20, 2))
    >>> a = policy.select(x)
    >>> policy.update(x, a, 0.7)
    >>> policy.posterior_mean().shape, policy.latent_posterior().mean.shape
    ((20, 2), (3, 2))
    """

    def __init__(
        self,
        prior: DiffusionPrior,
        n_actions: int,
        noise_std: float = 1.0,
        seed=None,
        refactor_every: int = 5000,
        likelihood: str | Likelihood = "gaussian",
        laplace: str = "exact",
        laplace_batch: int = 30,
        ridge: float = 1e-3,
        binarize: bool = False,
        laplace_at: str = DEFAULT_LAPLACE_AT,
    ) -> None:
        if not isinstance(prior, DiffusionPrior):
            raise V.ValidationError("prior must be a DiffusionPrior")
        n_actions = V.check_int(n_actions, "n_actions", low=1)
        noise_std = V.check_positive(noise_std, "noise_std")
        refactor_every = V.check_int(refactor_every, "refactor_every", low=0)
        lik, options = glm_options(likelihood, laplace, laplace_batch, ridge, binarize)
        model = DiffusionModel(prior, n_actions, noise_std, refactor_every, lik, options,
                               check_laplace_at(laplace_at))
        super().__init__(model, ThompsonSampling(), seed)

    @classmethod
    def from_environment(
        cls,
        environment,
        seed=None,
        horizon=None,
        *,
        reduction: Literal["none", "hierts1"] = "none",
        likelihood: LikelihoodName = "gaussian",
        laplace: LaplaceMethod = "exact",
        laplace_batch: PositiveInt = 30,
        ridge: Positive = 1e-3,
        laplace_at: LaplaceAt = DEFAULT_LAPLACE_AT,
        refactor_every: Count = 5000,
        noise_std: Positive | None = None,
    ):
        """dTS on the environment's chain prior (``environment.diffusion_prior``), or with
        ``reduction = "hierts1"`` the papers' HierTS(-1) baseline
        (:meth:`DiffusionPrior.to_hierts1`).
        An environment with only a mixed-effect prior gets a one-layer chain with HierTS's one
        effect."""
        return cls(_environment_prior(environment, reduction), environment.n_actions,
                   noise_std=noise_of(environment, noise_std), seed=seed,
                   refactor_every=refactor_every, likelihood=likelihood, laplace=laplace,
                   laplace_batch=laplace_batch, ridge=ridge, laplace_at=laplace_at)

    @property
    def prior(self) -> DiffusionPrior:
        return self.model.prior

    def latent_posterior(self):
        """Marginal posteriors of the latents: ``mean`` (L, d), ``cov`` (L, d, d) of
        ψ_1 … ψ_L and ``u_mean``, ``u_cov`` of u = f_1(ψ_1) (Lemma 2)."""
        return self.model.latent_posterior()

    def joint_cov(self, actions) -> np.ndarray:
        """The joint posterior covariance of the parameters of ``actions``, (n·d, n·d)."""
        actions = V.check_actions(actions, self.n_actions, "actions")
        return self.model.joint_cov(actions)

    def add_action(self) -> int:
        """Append an action at the prior; returns its index."""
        return self._add()

    def refactor(self) -> None:
        """Recompute every factor exactly now."""
        self.model.refactor()
