"""Linear policies with independent actions: LinTS and LinUCB."""

from __future__ import annotations

from typing import Literal

import numpy as np

from .. import _validation as V
from ..likelihoods import Likelihood
from ..models.independent import IndependentGaussianModel
from ..priors import MixedEffectPrior
from ..rules import UCB, ThompsonSampling
from ._environment import (
    independent_prior,
    linucb_auto_alpha,
    need_horizon,
    noise_of,
    prior_of,
)
from ._likelihood import (
    DEFAULT_LAPLACE_AT,
    LaplaceAt,
    LaplaceMethod,
    LikelihoodName,
    check_laplace_at,
    glm_options,
)
from .base import ContextualBandit
from .registry import NonNegative, Positive, PositiveInt, register

__all__ = ["LinTS", "LinUCB"]


def check_independent_prior(prior_mean, prior_cov) -> tuple[np.ndarray, np.ndarray]:
    """Validated (K, d) means and symmetrised (d, d) or (K, d, d) covariances."""
    mean = V.as_float_array(prior_mean, "prior_mean", ndim=2)
    K, d = mean.shape
    if K < 1 or d < 1:
        raise V.ValidationError(f"prior_mean must have shape (K, d), got {mean.shape}")
    cov = V.as_float_array(prior_cov, "prior_cov", ndim=(2, 3))
    V.check_shape(cov, (d, d) if cov.ndim == 2 else (K, d, d), "prior_cov")
    V.check_symmetric_psd(cov, "prior_cov")
    return mean, 0.5 * (cov + np.swapaxes(cov, -1, -2))


class IndependentMixin:
    """Catalogue changes and counts of the policies with one model per action."""

    model: IndependentGaussianModel

    def add_action(self, prior_mean=None, prior_cov=None) -> int:
        """Append an action with prior mean (d,) (zeros by default) and, if per action, Σ (d, d)."""
        mean = np.zeros(self.dim) if prior_mean is None else prior_mean
        return self._add(mean, prior_cov)

    def counts(self) -> np.ndarray:
        """Observations per action, (K,)."""
        return self.model.counts()


@register
class LinTS(IndependentMixin, ContextualBandit):
    """Linear Thompson sampling with an independent Gaussian prior per action.

    Parameters
    ----------
    prior_mean : (K, d)
        μ0_i, each action's prior mean.
    prior_cov : (d, d) shared or (K, d, d) per action
        Σ0_i, symmetric positive definite.
    noise_std : float
        σ, the reward noise.
    seed : int, SeedSequence or numpy Generator, optional
        Every draw of the policy comes from it.
    refactor_every : int
        Recompute the covariances exactly every this many updates (0: never).
    likelihood, laplace, laplace_batch, ridge, binarize, laplace_at
        As for :class:`MeTS`; ``likelihood="logistic"`` is GLM-TS (see :class:`GLMTS`), with
        the same default expansion point (``laplace_at="posterior"``).

    Examples
    --------
    >>> import numpy as np
    >>> from mixedts import LinTS
    >>> policy = LinTS(np.zeros((4, 2)), np.eye(2), noise_std=0.5, seed=0)
    >>> policy.update(np.array([1.0, 0.0]), 2, 1.0)
    >>> policy.posterior_mean()[2]
    array([0.8, 0. ])
    """

    def __init__(
        self,
        prior_mean,
        prior_cov,
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
        mean, cov = check_independent_prior(prior_mean, prior_cov)
        noise_std = V.check_positive(noise_std, "noise_std")
        refactor_every = V.check_int(refactor_every, "refactor_every", low=0)
        lik, options = glm_options(likelihood, laplace, laplace_batch, ridge, binarize)
        model = IndependentGaussianModel(mean, cov, noise_std, refactor_every, lik, options,
                                         check_laplace_at(laplace_at))
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
        noise_std: Positive | None = None,
        prior: Literal["marginal", "isotropic"] | None = None,
        prior_var: Positive = 1.0,
    ):
        """LinTS on the environment's marginal prior ("marginal", the default with a
        mixed-effect environment) or on N(0, prior_var · I) ("isotropic")."""
        mean, cov = independent_prior(environment, prior, prior_var)
        return cls(mean, cov, noise_std=noise_of(environment, noise_std), seed=seed,
                   likelihood=likelihood, laplace=laplace, laplace_batch=laplace_batch,
                   ridge=ridge, laplace_at=laplace_at)

    @classmethod
    def from_prior(cls, prior: MixedEffectPrior, **kwargs) -> LinTS:
        """LinTS on the marginal prior N(Γ_i μ_Ψ, Σ0 + Γ_i Σ_Ψ Γ_iᵀ) (structure ignored)."""
        mean, cov = prior.marginal_action_prior()
        return cls(mean, cov, **kwargs)


@register
class LinUCB(IndependentMixin, ContextualBandit):
    """Disjoint LinUCB (Li et al. 2010): ridge regression per action and an upper bound.

    Parameters
    ----------
    n_actions, dim : int
        K and d.
    alpha : float
        Width multiplier (``width="constant"``).
    regularization : float
        Ridge λ (prior covariance σ²I/λ).
    noise_std : float
        σ, the reward noise.
    width : {"constant", "abbasi-yadkori"}
        A constant multiplier ``alpha``, or the self-normalised bound of Abbasi-Yadkori et
        al. (2011) (see :class:`~mixedts.rules.UCB`).
    delta : float
        The bound's confidence level δ (``width="abbasi-yadkori"``).
    theta_norm : float
        The bound's S ≥ ‖θ‖ (``width="abbasi-yadkori"``).
    seed : int, SeedSequence or numpy Generator, optional
        Breaks ties.
    prior_mean : (K, d), optional
        The ridge's centre (zeros).
    prior_cov : (d, d) or (K, d, d), optional
        A Gaussian prior's covariance in place of σ²I/λ (UCB on a Bayesian posterior).

    Examples
    --------
    >>> import numpy as np
    >>> from mixedts import LinUCB
    >>> policy = LinUCB(3, 2, alpha=1.0, seed=0)
    >>> for a in range(3):
    ...     policy.update(np.ones(2), a, float(a))
    >>> policy.select(np.ones(2))
    2
    """

    def __init__(
        self,
        n_actions: int,
        dim: int,
        alpha: float = 1.0,
        regularization: float = 1.0,
        noise_std: float = 1.0,
        width: str = "constant",
        delta: float = 0.05,
        theta_norm: float = 1.0,
        seed=None,
        prior_mean=None,
        prior_cov=None,
    ) -> None:
        K = V.check_int(n_actions, "n_actions", low=1)
        d = V.check_int(dim, "dim", low=1)
        lam = V.check_positive(regularization, "regularization")
        noise_std = V.check_positive(noise_std, "noise_std")
        mean = np.zeros((K, d)) if prior_mean is None else prior_mean
        cov = np.eye(d) * (noise_std**2 / lam) if prior_cov is None else prior_cov
        mean, cov = check_independent_prior(mean, cov)
        model = IndependentGaussianModel(mean, cov, noise_std)
        rule = UCB(alpha, width, delta, lam, noise_std, theta_norm, d)
        super().__init__(model, rule, seed)

    @classmethod
    def from_environment(
        cls,
        environment,
        seed=None,
        horizon=None,
        *,
        alpha: NonNegative | Literal["auto"] = "auto",
        prior: Literal["marginal", "ridge"] | None = None,
        regularization: Positive = 1.0,
        width: Literal["constant", "abbasi-yadkori"] = "constant",
        noise_std: Positive | None = None,
    ):
        """LinUCB on the environment's marginal Gaussian prior ("marginal", like the meTS
        authors' code; the default with a mixed-effect environment) or on the ridge λI
        ("ridge"); ``alpha="auto"`` is the authors' constant width (needs the horizon)."""
        from .registry import ConfigError

        noise = noise_of(environment, noise_std)
        has_prior = getattr(environment, "prior", None) is not None
        prior = prior or ("marginal" if has_prior else "ridge")
        K, d = environment.n_actions, environment.dim
        if prior == "marginal":
            if width != "constant":
                raise ConfigError("LinUCB: width = 'abbasi-yadkori' needs prior = 'ridge'")
            mean, cov = prior_of(environment, "LinUCB prior = 'marginal'").marginal_action_prior()
            if alpha == "auto":
                trace = float(np.trace(np.linalg.inv(cov), axis1=-2, axis2=-1).max())
                alpha = linucb_auto_alpha(environment, need_horizon("LinUCB", horizon), trace,
                                          noise)
            return cls(K, d, alpha=alpha, noise_std=noise, seed=seed, prior_mean=mean,
                       prior_cov=cov)
        if alpha == "auto":
            # prior covariance σ²/λ I: precision trace / d = λ/σ²
            alpha = linucb_auto_alpha(environment, need_horizon("LinUCB", horizon),
                                      d * regularization / noise**2, noise)
        return cls(K, d, alpha=alpha, regularization=regularization, noise_std=noise,
                   width=width, seed=seed)
