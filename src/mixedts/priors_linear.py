"""The general linear structure of sDM: θ_a | ψ ~ N(W_a ψ, Σ_a), ψ ~ N(μ, Σ).

The mixed-effect prior is the special case ψ = vec(Ψ) (d′ = L·d) and W_a = b_aᵀ ⊗ I_d; here the
loading W_a ∈ R^{d×d′} of each action is any matrix (Aouali, Brunel, Rohde & Korba, AISTATS
2025, and docs/math.md §1 with Γ_a = W_a).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._validation import ValidationError, as_float_array, check_shape, check_symmetric_psd


@dataclass(frozen=True, eq=False)
class LinearEffectPrior:
    """Prior θ_a | ψ ~ N(W_a ψ, Σ_a) for every action a, ψ ~ N(μ, Σ).

    Parameters
    ----------
    effect_mean : array_like, shape (d′,)
        μ.
    effect_cov : array_like, shape (d′, d′)
        Σ (symmetric positive definite).
    loadings : array_like, shape (K, d, d′)
        W_a, one per action.
    action_cov : array_like, shape (d, d) or (K, d, d)
        Σ_a, shared or per action (symmetric positive definite).

    Examples
    --------
    >>> import numpy as np
    >>> from mixedts import LinearEffectPrior
    >>> rng = np.random.default_rng(0)
    >>> prior = LinearEffectPrior(np.zeros(3), np.eye(3), rng.uniform(-1, 1, (5, 2, 3)),
    ...                           np.eye(2))
    >>> prior.n_actions, prior.dim, prior.effect_dim
    (5, 2, 3)
    """

    effect_mean: np.ndarray
    effect_cov: np.ndarray
    loadings: np.ndarray
    action_cov: np.ndarray

    def __post_init__(self) -> None:
        mean = as_float_array(self.effect_mean, "effect_mean", ndim=1)
        e = len(mean)
        if e < 1:
            raise ValidationError("effect_mean must hold at least one coordinate")
        cov = as_float_array(self.effect_cov, "effect_cov", ndim=2)
        check_shape(cov, (e, e), "effect_cov")
        check_symmetric_psd(cov, "effect_cov")
        W = as_float_array(self.loadings, "loadings", ndim=3)
        check_shape(W, (None, None, e), "loadings")
        K, d = W.shape[:2]
        if K < 1 or d < 1:
            raise ValidationError(f"loadings must have shape (K, d, {e}), got {W.shape}")
        S0 = as_float_array(self.action_cov, "action_cov", ndim=(2, 3))
        check_shape(S0, (d, d) if S0.ndim == 2 else (K, d, d), "action_cov")
        check_symmetric_psd(S0, "action_cov")
        object.__setattr__(self, "effect_mean", mean)
        object.__setattr__(self, "effect_cov", 0.5 * (cov + cov.T))
        object.__setattr__(self, "loadings", W)
        object.__setattr__(self, "action_cov", 0.5 * (S0 + np.swapaxes(S0, -1, -2)))

    @property
    def n_actions(self) -> int:
        return int(self.loadings.shape[0])

    @property
    def dim(self) -> int:
        return int(self.loadings.shape[1])

    @property
    def effect_dim(self) -> int:
        """d′, the dimension of ψ."""
        return int(self.loadings.shape[2])

    def action_covs(self) -> np.ndarray:
        """Σ_a of every action, (K, d, d)."""
        return np.broadcast_to(self.action_cov, (self.n_actions, self.dim, self.dim))

    def marginal_action_prior(self) -> tuple[np.ndarray, np.ndarray]:
        """θ_a ~ N(W_a μ, Σ_a + W_a Σ W_aᵀ) with ψ marginalised out: (K, d), (K, d, d)."""
        W = self.loadings
        return W @ self.effect_mean, self.action_covs() + W @ self.effect_cov @ \
            np.swapaxes(W, 1, 2)
