"""Priors: the mixed-effect prior of meTS and the marginal priors that baselines use."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp

from ._validation import (
    ValidationError,
    as_float_array,
    check_mixing,
    check_shape,
    check_symmetric_psd,
)


@dataclass(frozen=True, eq=False)
class MixedEffectPrior:
    r"""Prior of the mixed-effect model: Ψ ~ N(μ_Ψ, Σ_Ψ), θ_i | Ψ ~ N(Σ_l b_il ψ_l, Σ0_i).

    Parameters
    ----------
    effect_mean : array_like, shape (L, d)
        Prior means μ_ψl of the L effect parameters.
    effect_cov : array_like, shape (L, d, d) or (L·d, L·d)
        Block-diagonal (one (d, d) block per effect) or full prior covariance Σ_Ψ of the
        stacked effects (effect l occupies rows l·d … l·d + d − 1).
    mixing : array_like or scipy.sparse matrix, shape (K, L)
        Real-valued mixing weights b_il (negative weights allowed).
    action_cov : array_like, shape (d, d) or (K, d, d)
        Conditional covariance Σ0 of an action given the effects, shared or per action.

    Examples
    --------
    >>> import numpy as np
    >>> from mixedts import MixedEffectPrior
    >>> prior = MixedEffectPrior(np.zeros((3, 2)), 3 * np.stack([np.eye(2)] * 3),
    ...                          np.eye(3)[[0, 1, 2, 0]], np.eye(2))
    >>> prior.n_actions, prior.n_effects, prior.dim
    (4, 3, 2)
    >>> mean, cov = prior.marginal_action_prior()
    >>> cov[0]
    array([[4., 0.],
           [0., 4.]])
    """

    effect_mean: np.ndarray
    effect_cov: np.ndarray
    mixing: sp.csr_matrix
    action_cov: np.ndarray
    _effect_cov_full: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        mean = as_float_array(self.effect_mean, "effect_mean", ndim=2)
        L, d = mean.shape
        if L < 1 or d < 1:
            raise ValidationError(
                f"effect_mean must have shape (L, d) with L, d >= 1, got {mean.shape}"
            )
        cov = as_float_array(self.effect_cov, "effect_cov", ndim=(2, 3))
        if cov.ndim == 3:
            check_shape(cov, (L, d, d), "effect_cov")
            check_symmetric_psd(cov, "effect_cov")
            full = np.zeros((L, d, L, d))
            full[np.arange(L), :, np.arange(L), :] = cov
            full = full.reshape(L * d, L * d)
        else:
            check_shape(cov, (L * d, L * d), "effect_cov")
            check_symmetric_psd(cov, "effect_cov")
            full = 0.5 * (cov + cov.T)
        mixing = check_mixing(self.mixing, n_effects=L, name="mixing")
        K = mixing.shape[0]
        if K < 1:
            raise ValidationError("mixing must have at least one row (one per action)")
        acov = as_float_array(self.action_cov, "action_cov", ndim=(2, 3))
        if acov.ndim == 2:
            check_shape(acov, (d, d), "action_cov")
        else:
            check_shape(acov, (K, d, d), "action_cov")
        check_symmetric_psd(acov, "action_cov")
        acov = 0.5 * (acov + np.swapaxes(acov, -1, -2))
        for name, value in (
            ("effect_mean", mean),
            ("effect_cov", cov),
            ("mixing", mixing),
            ("action_cov", acov),
            ("_effect_cov_full", full),
        ):
            if isinstance(value, np.ndarray):
                value.setflags(write=False)
            object.__setattr__(self, name, value)

    # ------------------------------------------------------------------ sizes
    @property
    def n_actions(self) -> int:
        """Number of actions K."""
        return int(self.mixing.shape[0])

    @property
    def n_effects(self) -> int:
        """Number of effects L."""
        return int(self.effect_mean.shape[0])

    @property
    def dim(self) -> int:
        """Parameter dimension d."""
        return int(self.effect_mean.shape[1])

    @property
    def shared_action_cov(self) -> bool:
        """True when Σ0 is one (d, d) matrix shared by all actions."""
        return self.action_cov.ndim == 2

    def effect_cov_full(self) -> np.ndarray:
        """Σ_Ψ as a full (L·d, L·d) matrix (read-only)."""
        return self._effect_cov_full

    def effect_cov_blocks(self) -> np.ndarray:
        """The L diagonal (d, d) blocks of Σ_Ψ, shape (L, d, d)."""
        L, d = self.n_effects, self.dim
        full = self._effect_cov_full.reshape(L, d, L, d)
        return np.ascontiguousarray(full[np.arange(L), :, np.arange(L), :])

    def action_cov_of(self, actions: np.ndarray) -> np.ndarray:
        """Σ0 for the given actions, shape (n, d, d)."""
        if self.shared_action_cov:
            return np.broadcast_to(self.action_cov, (len(actions), self.dim, self.dim))
        return self.action_cov[actions]

    # ------------------------------------------------------------------ marginals
    def marginal_action_prior(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-action prior with the effects marginalised out.

        Returns
        -------
        mean : ndarray, shape (K, d)
            Γ_i μ_Ψ = Σ_l b_il μ_ψl.
        cov : ndarray, shape (K, d, d)
            Σ0_i + Γ_i Σ_Ψ Γ_iᵀ.
        """
        L, d, K = self.n_effects, self.dim, self.n_actions
        mean = np.asarray(self.mixing @ self.effect_mean)
        B = self.mixing
        blocks = self._effect_cov_full.reshape(L, d, L, d).transpose(0, 2, 1, 3)  # (L, L, d, d)
        if self.effect_cov_is_block_diagonal():
            # Γ_i Σ_Ψ Γ_iᵀ = Σ_l b_il² Σ_ll: one sparse product, O(nnz · d²)
            diag = blocks[np.arange(L), np.arange(L)].reshape(L, d * d)
            cov = np.asarray(B.power(2) @ diag).reshape(K, d, d)
        else:
            cov = np.empty((K, d, d))
            # Γ_i Σ_Ψ Γ_iᵀ = Σ_{l,m} b_il b_im Σ_lm; chunk over actions to bound memory.
            chunk = max(1, 2**22 // max(1, L * L))
            for start in range(0, K, chunk):
                Bc = B[start : start + chunk].toarray()
                cov[start : start + chunk] = np.einsum(
                    "kl,lmde,km->kde", Bc, blocks, Bc, optimize=True
                )
        cov += self.action_cov
        return mean, 0.5 * (cov + np.swapaxes(cov, -1, -2))

    def effect_cov_is_block_diagonal(self) -> bool:
        """True when Σ_Ψ has no covariance between different effects."""
        L, d = self.n_effects, self.dim
        full = self._effect_cov_full.reshape(L, d, L, d)
        off = full.copy()
        off[np.arange(L), :, np.arange(L), :] = 0.0
        return not np.any(off)

    def marginal_joint_prior(self) -> tuple[np.ndarray, np.ndarray]:
        """Prior of all K·d action parameters jointly (for small K).

        Returns
        -------
        mean : ndarray, shape (K·d,)
        cov : ndarray, shape (K·d, K·d)
            blockdiag(Σ0_i) + Γ Σ_Ψ Γᵀ with Γ = B ⊗ I_d.
        """
        K, d = self.n_actions, self.dim
        Gamma = sp.kron(self.mixing, sp.identity(d), format="csr")
        cov = np.asarray(Gamma @ (Gamma @ self._effect_cov_full).T).T
        cov = cov.reshape(K, d, K, d)
        cov[np.arange(K), :, np.arange(K), :] += self.action_cov
        cov = cov.reshape(K * d, K * d)
        mean = np.asarray(self.mixing @ self.effect_mean).reshape(-1)
        return mean, 0.5 * (cov + cov.T)

    def with_action(self, mixing_row: np.ndarray, action_cov: np.ndarray | None = None):
        """A new prior with one more action appended (used by ``add_action``)."""
        if not sp.issparse(mixing_row):  # a (1, L) sparse row is accepted as it is
            mixing_row = np.atleast_2d(mixing_row)
        row = check_mixing(mixing_row, n_effects=self.n_effects, name="mixing_row")
        if row.shape[0] != 1:
            raise ValidationError(f"mixing_row must be one row of length {self.n_effects}")
        mixing = sp.vstack([self.mixing, row], format="csr")
        if self.shared_action_cov:
            same = action_cov is None or (
                np.shape(action_cov) == self.action_cov.shape
                and np.allclose(as_float_array(action_cov, "action_cov"), self.action_cov)
            )
            if not same:
                raise ValidationError(
                    "action_cov: this prior shares one Σ0 across actions; pass None"
                )
            acov = self.action_cov
        else:
            if action_cov is None:
                raise ValidationError("action_cov is required: this prior has a Σ0 per action")
            new = as_float_array(action_cov, "action_cov", ndim=2)
            check_shape(new, (self.dim, self.dim), "action_cov")
            check_symmetric_psd(new, "action_cov")
            acov = np.concatenate([self.action_cov, new[None]], axis=0)
        return MixedEffectPrior(self.effect_mean, self.effect_cov, mixing, acov)

    def __repr__(self) -> str:
        cov = "per-action" if not self.shared_action_cov else "shared"
        return (
            f"MixedEffectPrior(n_actions={self.n_actions}, n_effects={self.n_effects}, "
            f"dim={self.dim}, mixing_nnz={self.mixing.nnz}, action_cov={cov})"
        )
