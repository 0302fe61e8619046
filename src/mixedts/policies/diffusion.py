"""dTS: Thompson sampling under a diffusion (chain) prior, exact for linear links."""

from __future__ import annotations

from typing import Literal

import numpy as np

from .. import _validation as V
from ..likelihoods import Likelihood
from ..models.diffusion import LATENTS, DiffusionModel
from ..priors_diffusion import DiffusionPrior
from ..rules import ThompsonSampling
from ._environment import independent_prior, noise_of, prior_of, single_effect
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


#: offline samples drawn from an environment's own marginal prior when it offers none
PRIOR_DRAWS = 256


def offline_samples(environment) -> np.ndarray:
    """The offline samples of action parameters an environment offers for pre-training:
    ``pretraining_samples`` (the diffusion environments), else the item vectors of a learned
    structure (MovieLens: every movie's factor), else ``PRIOR_DRAWS`` draws of its actions'
    marginal Gaussian prior (draw i from action i mod K, a fixed seed)."""
    samples = getattr(environment, "pretraining_samples", None)
    if samples is None:
        samples = getattr(getattr(environment, "learned", None), "item_vectors", None)
    if samples is None:
        if getattr(environment, "prior", None) is None and not hasattr(environment,
                                                                       "independent_prior"):
            raise ConfigError(f"DiffusionTS: prior = 'fitted' needs offline samples of action "
                              f"parameters, which {type(environment).__name__} does not offer")
        mean, cov = independent_prior(environment, "marginal")
        which = np.arange(PRIOR_DRAWS) % len(mean)
        chol = np.linalg.cholesky(cov if cov.ndim == 2 else cov[which])
        z = np.random.default_rng(0).standard_normal((PRIOR_DRAWS, mean.shape[1]))
        samples = mean[which] + (z @ chol.T if chol.ndim == 2
                                 else np.einsum("nij,nj->ni", chol, z))
    return np.asarray(samples)


def fitted_prior(environment, samples: int, layers: int, steps: int, hidden: int,
                 seed: int) -> DiffusionPrior:
    """A DDPM prior fitted on the first ``samples`` offline samples (0: all of them), cached
    per process (:func:`~mixedts.priors_diffusion_fit.fit_cached`)."""
    from ..priors_diffusion_fit import fit_cached

    pool = offline_samples(environment)
    if samples > len(pool):
        raise ConfigError(f"DiffusionTS: fit_samples = {samples} but the environment offers "
                          f"{len(pool)} offline samples")
    return fit_cached(pool[:samples] if samples else pool, layers, steps=steps, hidden=hidden,
                      seed=seed)


def _environment_prior(environment, reduction: str) -> DiffusionPrior:
    """The environment's chain prior (``diffusion_prior``), its HierTS-1 reduction, or, for an
    environment with a mixed-effect prior only, a one-layer chain with HierTS's one effect."""
    prior = getattr(environment, "diffusion_prior", None)
    if prior is None:
        if getattr(environment, "pretraining_samples", None) is not None and getattr(
                environment, "prior", None) is None:
            raise ConfigError("DiffusionTS: the environment has no chain prior (its actions "
                              "are not a chain draw); use prior = 'fitted'")
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
    latents : {"shared", "per-action"}
        One chain above all the actions (the papers' Eq. 1), or one chain per action, each
        θ_i an independent draw of the prior: what a DDPM pre-trained on i.i.d. samples of
        action parameters describes (the Swiss roll, MovieLens; docs/diffusion.md §7).

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
        latents: str = "shared",
    ) -> None:
        if not isinstance(prior, DiffusionPrior):
            raise V.ValidationError("prior must be a DiffusionPrior")
        n_actions = V.check_int(n_actions, "n_actions", low=1)
        noise_std = V.check_positive(noise_std, "noise_std")
        refactor_every = V.check_int(refactor_every, "refactor_every", low=0)
        lik, options = glm_options(likelihood, laplace, laplace_batch, ridge, binarize)
        if latents not in LATENTS:
            raise V.ValidationError(f"latents must be one of {LATENTS}, got {latents!r}")
        model = DiffusionModel(prior, n_actions, noise_std, refactor_every, lik, options,
                               check_laplace_at(laplace_at), latents)
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
        prior: Literal["environment", "fitted"] = "environment",
        latents: Literal["auto", "shared", "per-action"] = "auto",
        fit_samples: Count = 0,
        fit_layers: PositiveInt = 40,
        fit_steps: PositiveInt = 3000,
        fit_hidden: PositiveInt = 64,
        fit_seed: Count = 0,
    ):
        """dTS on the environment's chain prior (``environment.diffusion_prior``), or with
        ``reduction = "hierts1"`` the papers' HierTS(-1) baseline
        (:meth:`DiffusionPrior.to_hierts1`).
        An environment with only a mixed-effect prior gets a one-layer chain with HierTS's one
        effect.

        ``prior = "fitted"`` pre-trains a DDPM (:meth:`DiffusionPrior.fit`, ``fit_layers``
        steps, ``fit_steps`` Adam steps, hidden width ``fit_hidden``, seed ``fit_seed``) on the
        environment's offline samples of action parameters (its first ``fit_samples``; 0: all),
        once per process. ``latents = "auto"`` is per-action for a fitted prior (each action an
        independent draw of it), shared otherwise."""
        if prior == "fitted":
            chain = fitted_prior(environment, fit_samples, fit_layers, fit_steps, fit_hidden,
                                 fit_seed)
        else:
            chain = _environment_prior(environment, reduction)
        if latents == "auto":
            latents = "per-action" if prior == "fitted" else "shared"
        return cls(chain, environment.n_actions,
                   noise_std=noise_of(environment, noise_std), seed=seed,
                   refactor_every=refactor_every, likelihood=likelihood, laplace=laplace,
                   laplace_batch=laplace_batch, ridge=ridge, laplace_at=laplace_at,
                   latents=latents)

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
