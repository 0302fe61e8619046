"""GLM policies with one model per action: GLM-TS and UCB-GLM (logistic rewards)."""

from __future__ import annotations

from typing import Literal

import numpy as np

from .. import _validation as V
from ..models.glm import DiagonalLaplaceModel, GLMUCBModel
from ..models.independent import IndependentGaussianModel
from ..priors import MixedEffectPrior
from ..rules import UCB, ProbabilityUCB, ThompsonSampling
from ._environment import independent_prior, need_horizon, ucbglm_auto_alpha
from ._likelihood import DEFAULT_LAPLACE_AT, LaplaceAt, LaplaceMethod, check_laplace_at, glm_options
from .base import ContextualBandit
from .linear import IndependentMixin, check_independent_prior
from .registry import NonNegative, Positive, PositiveInt, register

__all__ = ["GLMTS", "UCBGLM"]


@register
class GLMTS(IndependentMixin, ContextualBandit):
    """GLM Thompson sampling (Chapelle & Li 2011) with logistic rewards, one model per action.

    ``diagonal=False`` (default): a full-covariance Laplace approximation of each action's
    posterior at its MAP under N(prior_mean_i, prior_cov_i) (``laplace_at="posterior"``), or,
    with ``laplace_at="likelihood"``, the likelihood's Laplace approximation combined with the
    prior (the plug-in meTS-GLM uses, without the effects). ``diagonal=True``: Chapelle & Li's
    Algorithm 3, a MAP fit under the current diagonal Gaussian and q += Σ x² p(1 − p).

    Parameters
    ----------
    prior_mean : (K, d)
    prior_cov : (d, d) or (K, d, d) (only the diagonal is used when ``diagonal=True``)
    laplace, laplace_batch, ridge, binarize : as for :class:`MeTS` (full covariance only)

    Examples
    --------
    >>> import numpy as np
    >>> from mixedts import GLMTS
    >>> policy = GLMTS(np.zeros((3, 2)), np.eye(2), diagonal=True, seed=0)
    >>> policy.update(np.array([1.0, -1.0]), 0, 1)
    >>> bool(policy.posterior_mean()[0, 0] > 0)
    True
    """

    def __init__(
        self,
        prior_mean,
        prior_cov,
        diagonal: bool = False,
        seed=None,
        laplace: str = "exact",
        laplace_batch: int = 30,
        ridge: float = 1e-3,
        binarize: bool = False,
        refactor_every: int = 5000,
        laplace_at: str = DEFAULT_LAPLACE_AT,
    ) -> None:
        mean, cov = check_independent_prior(prior_mean, prior_cov)
        lik, options = glm_options("logistic", laplace, laplace_batch, ridge, binarize)
        check_laplace_at(laplace_at)
        if diagonal:
            model = DiagonalLaplaceModel(mean, np.diagonal(cov, axis1=-2, axis2=-1), lik)
        else:
            refactor_every = V.check_int(refactor_every, "refactor_every", low=0)
            model = IndependentGaussianModel(
                mean, cov, 1.0, refactor_every, lik, options, laplace_at
            )
        super().__init__(model, ThompsonSampling(), seed)

    @classmethod
    def from_environment(
        cls,
        environment,
        seed=None,
        horizon=None,
        *,
        diagonal: bool = False,
        laplace: LaplaceMethod = "exact",
        laplace_batch: PositiveInt = 30,
        ridge: Positive = 1e-3,
        laplace_at: LaplaceAt = DEFAULT_LAPLACE_AT,
        prior: Literal["marginal", "isotropic"] | None = None,
        prior_var: Positive = 1.0,
    ):
        """GLM-TS on the environment's marginal prior or on N(0, prior_var · I)."""
        mean, cov = independent_prior(environment, prior, prior_var)
        return cls(mean, cov, diagonal=diagonal, seed=seed, laplace=laplace,
                   laplace_batch=laplace_batch, ridge=ridge, laplace_at=laplace_at)

    @classmethod
    def from_prior(cls, prior: MixedEffectPrior, **kwargs) -> GLMTS:
        """GLM-TS on the marginal prior N(Γ_i μ_Ψ, Σ0 + Γ_i Σ_Ψ Γ_iᵀ) (structure ignored)."""
        mean, cov = prior.marginal_action_prior()
        return cls(mean, cov, **kwargs)

    def add_action(self, prior_mean=None, prior_cov=None) -> int:
        """Append an action with prior mean (d,) and covariance (d, d) where per action."""
        if isinstance(self.model, DiagonalLaplaceModel):
            var = None if prior_cov is None else np.diagonal(np.asarray(prior_cov))
            return self._add(prior_mean, var)
        return super().add_action(prior_mean, prior_cov)


@register
class UCBGLM(IndependentMixin, ContextualBandit):
    """UCB-GLM (Li, Lu & Zhou 2017) with logistic rewards, one GLM per action.

    Score x_iᵀθ̂_i + α ‖x_i‖_{V_i⁻¹} with the penalised MLE θ̂_i and V_i = λI + Σ x xᵀ
    (ties, e.g. in the first rounds, are broken uniformly at random). ``score="probability"``
    scores sigmoid(x_iᵀθ̂_i) + α ‖x_i‖_{V_i⁻¹} instead, like the meTS authors' code.

    Parameters
    ----------
    n_actions, dim : int
    alpha : float
    regularization : float
        λ.
    binarize : bool
        Accept rewards in [0, 1] (Bernoulli conversion, as for :class:`MeTS`).
    score : {"linear", "probability"}

    Examples
    --------
    >>> import numpy as np
    >>> from mixedts import UCBGLM
    >>> policy = UCBGLM(3, 2, alpha=0.5, seed=0)
    >>> policy.update(np.ones(2), 1, 1)
    >>> policy.counts()
    array([0, 1, 0])
    """

    def __init__(
        self,
        n_actions: int,
        dim: int,
        alpha: float = 1.0,
        regularization: float = 1.0,
        seed=None,
        binarize: bool = False,
        score: str = "linear",
    ) -> None:
        K = V.check_int(n_actions, "n_actions", low=1)
        d = V.check_int(dim, "dim", low=1)
        lam = V.check_positive(regularization, "regularization")
        lik, _ = glm_options("logistic", "exact", 1, lam, binarize)
        model = GLMUCBModel(K, d, lik, lam)
        if score == "linear":
            rule = UCB(alpha, regularization=lam, dim=d)
        elif score == "probability":
            rule = ProbabilityUCB(alpha)
        else:
            raise V.ValidationError(f"score must be 'linear' or 'probability', got {score!r}")
        super().__init__(model, rule, seed)

    @classmethod
    def from_environment(
        cls,
        environment,
        seed=None,
        horizon=None,
        *,
        alpha: NonNegative | Literal["auto"] = "auto",
        regularization: Positive = 1.0,
        score: Literal["linear", "probability"] = "linear",
    ):
        """``alpha="auto"`` is the meTS authors' UCB-GLM width (needs the horizon)."""
        if alpha == "auto":
            alpha = ucbglm_auto_alpha(environment.dim, need_horizon("UCBGLM", horizon))
        return cls(environment.n_actions, environment.dim, alpha=alpha,
                   regularization=regularization, seed=seed, score=score)

    def add_action(self) -> int:  # type: ignore[override]
        """Append an action (no data yet: θ̂ = 0, V = λI)."""
        return self._add()
