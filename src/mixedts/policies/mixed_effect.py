"""Mixed-effect policies: meTS, its factored variant, hierarchical TS and exact joint TS."""

from __future__ import annotations

from typing import Literal

import numpy as np

from .. import _validation as V
from ..likelihoods import Likelihood
from ..models.joint import JointGaussianModel
from ..models.linear_effect import LinearEffectModel
from ..models.mixed_effect import MixedEffectModel
from ..priors import MixedEffectPrior
from ..priors_linear import LinearEffectPrior
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
from .registry import Count, Positive, PositiveInt, register

__all__ = ["FactoredMeTS", "HierTS", "JointTS", "MeTS"]


class _MixedMixin:
    """Inspection and catalogue changes shared by the mixed-effect policies."""

    model: MixedEffectModel | JointGaussianModel

    def effect_posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean (L, d) and covariance (L·d, L·d) of the effect posterior."""
        return self.model.effect_posterior()

    def add_action(self, mixing_row, action_cov=None) -> int:
        """Append an action with its mixing row (L,) (and Σ0 (d, d) when per action).

        Returns the new action's index; its posterior starts from the prior given the effects.
        """
        return self._add(mixing_row, action_cov)


@register
class MeTS(_MixedMixin, ContextualBandit):
    """Mixed-effect Thompson sampling, exact linear-Gaussian posterior (Aouali et al. 2023).

    Parameters
    ----------
    prior : MixedEffectPrior or LinearEffectPrior
        A :class:`~mixedts.LinearEffectPrior` (θ_a | ψ ~ N(W_a ψ, Σ_a), any loadings W_a) is
        the general linear structure of sDM, with Gaussian or logistic rewards (sDM's
        App. E.1: the same closed forms with each action's Laplace pseudo-observation).
    noise_std : float
        Reward noise σ.
    seed : int, SeedSequence or numpy Generator, optional
    refactor_every : int
        Exact recompute after this many incremental updates (bounds rounding drift), or after
        as many updates as there are observed actions if that is more, so that its amortised
        cost does not grow with the catalogue. Call :meth:`refactor` to do it now.
    likelihood : {"gaussian", "logistic"} or Likelihood
        ``"logistic"`` gives meTS-GLM: Bernoulli rewards with a sigmoid link, each action's
        likelihood Laplace-approximated (docs/math.md §4). Rewards must then be 0 or 1.
    laplace : {"exact", "minibatch", "online"}
        How the Laplace mode is refitted after each observation (see
        :mod:`mixedts.models.laplace`): the whole history (default), a random minibatch of
        ``laplace_batch`` rows (the authors' scheme; cost independent of the horizon) or one
        Newton step (cheap streaming).
    ridge : float
        The fit's ridge, which keeps the mode finite on separable data (the paper: 1e-3).
    binarize : bool
        Accept rewards in [0, 1] and replace each by a Bernoulli(y) draw from the policy's
        generator (logistic only).
    laplace_at : {"posterior", "likelihood"}
        Where each action's log-likelihood is expanded: at the MAP under its conditional prior
        given the effects' mean (default, as for every GLM policy; stays informative on
        separable data), or at its ridge-penalised maximum, the paper's exact scheme (see
        :class:`~mixedts.models.mixed_effect.MixedEffectModel`).

    Examples
    --------
    >>> import numpy as np
    >>> from mixedts import MeTS, MixedEffectPrior
    >>> rng = np.random.default_rng(0)
    >>> prior = MixedEffectPrior(np.zeros((3, 2)), 3 * np.stack([np.eye(2)] * 3),
    ...                          rng.uniform(-1, 1, (10, 3)), np.eye(2))
    >>> policy = MeTS(prior, seed=1)
    >>> x = np.array([0.5, -0.2])
    >>> a = policy.select(x)
    >>> policy.update(x, a, 1.0)
    >>> policy.posterior_mean().shape
    (10, 2)
    """

    _factored = False

    def __init__(
        self,
        prior: MixedEffectPrior | LinearEffectPrior,
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
        noise_std = V.check_positive(noise_std, "noise_std")
        refactor_every = V.check_int(refactor_every, "refactor_every", low=0)
        lik, options = glm_options(likelihood, laplace, laplace_batch, ridge, binarize)
        if isinstance(prior, LinearEffectPrior):
            if self._factored:
                raise V.ValidationError(
                    "prior: a LinearEffectPrior takes MeTS (the factored variant needs a "
                    "MixedEffectPrior)")
            model = LinearEffectModel(prior, noise_std, refactor_every, lik, options,
                                      check_laplace_at(laplace_at))
            super().__init__(model, ThompsonSampling(), seed)
            return
        if not isinstance(prior, MixedEffectPrior):
            raise V.ValidationError("prior must be a MixedEffectPrior or a LinearEffectPrior")
        model = MixedEffectModel(
            prior, noise_std, self._factored, refactor_every, lik, options,
            check_laplace_at(laplace_at),
        )
        super().__init__(model, ThompsonSampling(), seed)

    @classmethod
    def from_environment(
        cls,
        environment,
        seed=None,
        horizon=None,
        *,
        likelihood: LikelihoodName = "gaussian",
        laplace: LaplaceMethod = "exact",
        laplace_batch: PositiveInt = 30,
        ridge: Positive = 1e-3,
        laplace_at: LaplaceAt = DEFAULT_LAPLACE_AT,
        refactor_every: Count = 5000,
        noise_std: Positive | None = None,
        structure: str | None = None,
    ):
        """The policy on the environment's prior (``structure`` names one of
        ``environment.priors``, e.g. "genre" on MovieLens); σ is the environment's unless
        ``noise_std`` is given."""
        return cls(prior_of(environment, cls.__name__, structure),
                   noise_std=noise_of(environment, noise_std), seed=seed,
                   refactor_every=refactor_every, likelihood=likelihood, laplace=laplace,
                   laplace_batch=laplace_batch, ridge=ridge, laplace_at=laplace_at)

    @property
    def prior(self) -> MixedEffectPrior:
        return self.model.prior

    def refactor(self) -> None:
        """Recompute every factor exactly now."""
        self.model.refactor()


@register
class FactoredMeTS(MeTS):
    """meTS-Fa: the factored (mean-field) effect posterior of docs/math.md §3.

    Same arguments as :class:`MeTS`. Cheaper per round (O(nnz·d²) effect updates) and exact
    when every mixing row is one-hot and Σ_Ψ is block-diagonal.

    Examples
    --------
    >>> import numpy as np
    >>> from mixedts import FactoredMeTS, MixedEffectPrior
    >>> prior = MixedEffectPrior(np.zeros((2, 2)), np.stack([np.eye(2)] * 2),
    ...                          np.eye(2)[[0, 1, 1]], np.eye(2))
    >>> policy = FactoredMeTS(prior, seed=0)
    >>> policy.update(np.ones(2), policy.select(np.ones(2)), 0.5)
    >>> policy.effect_posterior()[1].shape
    (4, 4)"""

    _factored = True


@register
class HierTS(MeTS):
    """Hierarchical TS (Hong et al. 2022): one effect μ shared by all actions, b_i = 1.

    Parameters
    ----------
    n_actions : int
    effect_mean : (d,) prior mean of the shared effect
    effect_cov : (d, d) prior covariance of the shared effect
    action_cov : (d, d) or (K, d, d) conditional covariance Σ0 of each action
    likelihood_options
        ``likelihood``, ``laplace``, … as for :class:`MeTS`.

    Examples
    --------
    >>> import numpy as np
    >>> from mixedts import HierTS
    >>> policy = HierTS(5, np.zeros(3), np.eye(3), 0.5 * np.eye(3), seed=0)
    >>> policy.select(np.ones(3)) in range(5)
    True
    """

    def __init__(
        self,
        n_actions: int,
        effect_mean,
        effect_cov,
        action_cov,
        noise_std: float = 1.0,
        seed=None,
        refactor_every: int = 5000,
        **likelihood_options,
    ) -> None:
        n_actions = V.check_int(n_actions, "n_actions", low=1)
        mean = V.as_float_array(effect_mean, "effect_mean", ndim=1)
        cov = V.as_float_array(effect_cov, "effect_cov", ndim=2)
        prior = MixedEffectPrior(mean[None], cov[None], np.ones((n_actions, 1)), action_cov)
        super().__init__(prior, noise_std, seed, refactor_every, **likelihood_options)

    @classmethod
    def from_environment(
        cls,
        environment,
        seed=None,
        horizon=None,
        *,
        likelihood: LikelihoodName = "gaussian",
        laplace: LaplaceMethod = "exact",
        laplace_batch: PositiveInt = 30,
        ridge: Positive = 1e-3,
        laplace_at: LaplaceAt = DEFAULT_LAPLACE_AT,
        refactor_every: Count = 5000,
        noise_std: Positive | None = None,
        structure: str | None = None,
        effect_cov_scale: Positive = 1.0,
        action_cov: Literal["conditional", "marginal"] = "conditional",
    ):
        """One effect with the mean of the prior's effect means and ``effect_cov_scale`` times
        the mean of their covariance blocks (the text: 1 → N(0, 3I); the authors' code: 1/L);
        ``action_cov``: "conditional" (each action's Σ0) or "marginal" (Σ0 + Γ_i Σ_Ψ Γ_iᵀ)."""
        prior = prior_of(environment, cls.__name__, structure)
        mean, cov, covs = single_effect(prior, effect_cov_scale, action_cov)
        return cls(prior.n_actions, mean, cov, covs, noise_std=noise_of(environment, noise_std),
                   seed=seed, refactor_every=refactor_every, likelihood=likelihood,
                   laplace=laplace, laplace_batch=laplace_batch, ridge=ridge,
                   laplace_at=laplace_at)

    def add_action(self, action_cov=None) -> int:  # type: ignore[override]
        """Append an action (its mixing weight is 1) with Σ0 (d, d) when per action."""
        return self._add(np.ones(1), action_cov)

    @classmethod
    def from_prior(cls, prior: MixedEffectPrior, **kwargs) -> HierTS:
        """One effect with the average prior of ``prior``'s effects (the paper's baseline)."""
        blocks = prior.effect_cov_blocks()
        return cls(prior.n_actions, np.asarray(prior.effect_mean).mean(0), blocks.mean(0),
                   prior.action_cov, **kwargs)


@register
class JointTS(_MixedMixin, ContextualBandit):
    """Thompson sampling on the exact joint Gaussian over all K·d parameters (small K).

    O((K·d)²) memory and time per round: the reference the fast policies are tested against.

    Examples
    --------
    >>> import numpy as np
    >>> from mixedts import JointTS, MixedEffectPrior
    >>> prior = MixedEffectPrior(np.zeros((1, 2)), np.eye(2)[None], np.ones((4, 1)), np.eye(2))
    >>> policy = JointTS(prior, seed=0)
    >>> policy.update(np.ones(2), 0, 1.0)
    >>> policy.model.joint_cov().shape
    (8, 8)"""

    def __init__(
        self, prior: MixedEffectPrior, noise_std: float = 1.0, seed=None, refactor_every: int = 5000
    ) -> None:
        if not isinstance(prior, MixedEffectPrior):
            raise V.ValidationError("prior must be a MixedEffectPrior")
        noise_std = V.check_positive(noise_std, "noise_std")
        refactor_every = V.check_int(refactor_every, "refactor_every", low=0)
        model = JointGaussianModel(prior, noise_std, refactor_every)
        super().__init__(model, ThompsonSampling(), seed)

    @classmethod
    def from_environment(cls, environment, seed=None, horizon=None, *,
                         noise_std: Positive | None = None, structure: str | None = None):
        """Exact joint TS on the environment's prior."""
        return cls(prior_of(environment, cls.__name__, structure),
                   noise_std=noise_of(environment, noise_std), seed=seed)

    def effect_posterior(self):  # pragma: no cover - JointTS marginalises the effects
        raise AttributeError("JointTS has no effect posterior: the effects are marginalised")
