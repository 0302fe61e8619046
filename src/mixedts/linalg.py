"""Small dense linear-algebra kernels shared by the models.

The central trick is the *square-root covariance* update. A Gaussian N(μ, Σ) is stored as a
square root ``C`` with ``Σ = C Cᵀ`` (any square root, not necessarily triangular). When the
precision gains a low-rank term ``Σ⁻¹ ← Σ⁻¹ + W D Wᵀ`` (D = diag(±1): updates and downdates)
the covariance becomes ``C (I + Z D Zᵀ)⁻¹ Cᵀ`` with ``Z = Cᵀ W``, and the middle matrix has an
exact square root computed from a thin QR of Z and an r×r eigendecomposition. For rank one this
is Potter's update ``C' = C − α (C z) zᵀ`` with ``α = 1 / (√(1+|z|²) (1 + √(1+|z|²)))``.
Unlike a sequential Cholesky column sweep it is two BLAS-2/3 passes over ``C`` with no Python
loop, and for updates the middle factor is a contraction, so rounding errors do not grow.
A downdate that would lose positive definiteness raises :class:`NotPositiveDefiniteError`;
callers then refactor exactly.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.linalg as sla

try:  # np.einsum's C function without its Python wrapper (what np.einsum calls: the same bits)
    from numpy._core.multiarray import c_einsum as _c_einsum
except ImportError:  # pragma: no cover - numpy < 2
    _c_einsum = np.einsum


class NotPositiveDefiniteError(np.linalg.LinAlgError):
    """A downdate or factorisation would leave a matrix that is not positive definite."""


def potter_coefficient(s2: np.ndarray | float) -> np.ndarray | float:
    """``α(s²) = 1 − 1/√(1+s²)`` divided by ``s²``, written without cancellation."""
    r = np.sqrt(1.0 + s2)
    return 1.0 / (r * (1.0 + r))


def sqrt_rank_one_update(C: np.ndarray, z: np.ndarray) -> np.ndarray:
    """New square root after the precision gains ``u uᵀ``, given ``z = Cᵀ u``.

    Parameters
    ----------
    C : ndarray, shape (n, n) or (m, n, n)
        Square root(s) of the covariance.
    z : ndarray, shape (n,) or (m, n)
        ``Cᵀ u`` for each factor.

    Returns
    -------
    ndarray, same shape as ``C`` (a new array).
    """
    if z.ndim == 1:  # one factor: scalar arithmetic and one outer product
        r = math.sqrt(1.0 + float(z @ z))
        return C - np.outer((C @ z) / (r * (1.0 + r)), z)
    s2 = np.einsum("...i,...i->...", z, z)
    alpha = potter_coefficient(s2)
    Cz = np.einsum("...ij,...j->...i", C, z)
    return C - (alpha[..., None, None] if np.ndim(alpha) else alpha) * (
        Cz[..., :, None] * z[..., None, :]
    )


def sqrt_lowrank_update(
    C: np.ndarray, Z: np.ndarray, signs: np.ndarray | None = None
) -> np.ndarray:
    """New square root after the precision gains ``W diag(signs) Wᵀ``, given ``Z = Cᵀ W``.

    With ``Z = Q R`` (thin QR) and ``R diag(signs) Rᵀ = E diag(λ) Eᵀ``, the covariance becomes
    ``C (I + Q E diag(λ) Eᵀ Qᵀ)⁻¹ Cᵀ`` whose square root is
    ``C + (C Q E) diag((1+λ)^-½ − 1) (Q E)ᵀ``: one pass over ``C`` whatever the signs.

    Parameters
    ----------
    C : ndarray, shape (n, n)
    Z : ndarray, shape (n, r)
    signs : ndarray, shape (r,), optional
        +1 (update) or −1 (downdate) per column; all +1 by default.

    Raises
    ------
    NotPositiveDefiniteError
        If the downdates would leave a matrix that is not positive definite.
    """
    if Z.shape[1] == 0:
        return C.copy()
    Q, R = np.linalg.qr(Z)
    M = R @ R.T if signs is None else (R * signs) @ R.T
    lam, E = np.linalg.eigh(0.5 * (M + M.T))
    if np.any(lam <= -1.0 + 1e-12):
        raise NotPositiveDefiniteError("downdate would leave a non-positive-definite matrix")
    r = np.sqrt(1.0 + lam)
    coef = -lam / (r * (1.0 + r))  # (1+λ)^-½ − 1 written without cancellation
    QE = Q @ E
    return C + ((C @ QE) * coef) @ QE.T


def sqrt_from_precision(precision: np.ndarray) -> np.ndarray:
    """Upper-triangular square root ``C = L⁻ᵀ`` of ``precision⁻¹`` where ``precision = L Lᵀ``.

    Works on a (n, n) matrix or a (…, n, n) stack. Small matrices stay in numpy's LAPACK (a
    call into scipy's, a second OpenBLAS with its own threads, costs milliseconds when both
    thread pools spin on few cores); a large one (n > 256) takes the triangular solve.
    """
    try:
        L = np.linalg.cholesky(precision)
    except np.linalg.LinAlgError:
        raise NotPositiveDefiniteError("precision matrix is not positive definite") from None
    n = L.shape[-1]
    if L.ndim == 2 and n > 256:
        inv_L = sla.solve_triangular(L, np.eye(n), lower=True, check_finite=False)
    else:
        inv_L = np.linalg.solve(L, np.broadcast_to(np.eye(n), L.shape))
    return np.swapaxes(inv_L, -1, -2)


def sym_inv(mats: np.ndarray) -> np.ndarray:
    """Inverse of symmetric positive-definite matrices, (n, n) or (m, n, n), symmetrised.

    Raises ``NotPositiveDefiniteError`` when a matrix is not positive definite.
    """
    try:
        np.linalg.cholesky(mats)  # the check; a batched LU inverse is then the fastest route
    except np.linalg.LinAlgError:
        raise NotPositiveDefiniteError("matrix is not positive definite") from None
    out = np.linalg.inv(mats)
    return 0.5 * (out + np.swapaxes(out, -1, -2))


def batched_quadratic(S: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``xᵀ S_i x`` for a stack ``S`` (K, d, d) and a shared ``x`` (d,), as one BLAS pass.

    This is the benchmark *floor*: every round of any per-action Gaussian policy must at least
    read each action's (d, d) matrix once.
    """
    K, d, _ = S.shape
    return (S.reshape(K * d, d) @ x).reshape(K, d) @ x


def stacked_matvec(S: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``S_i x`` (shared x, (d,)) or ``S_i x_i`` (x of shape (K, d)) for a stack (K, d, d)."""
    K, d, _ = S.shape
    if x.ndim == 1:
        return (S.reshape(K * d, d) @ x).reshape(K, d)
    return np.matmul(S, x[:, :, None])[:, :, 0]


def matvec(A: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``A x`` for a matrix (n, m) and a vector (m,), or for stacks (…, n, m) and (…, m)."""
    if A.ndim == 2 and x.ndim == 1:
        return A @ x
    return np.matmul(A, x[..., None])[..., 0]


def rowdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise dot products of two (n, d) arrays, (n,)."""
    return _c_einsum("ij,ij->i", a, b)


def outer(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The outer product ``a bᵀ`` of two vectors, (n, m), as one BLAS product with an inner
    dimension of one: each entry is the one rounded product a_i b_j, so bitwise
    ``a[:, None] * b`` (tests/test_online_fastpaths.py checks it), at about half the call's
    cost on small vectors (a broadcast sets up an iterator)."""
    return a[:, None].dot(b[None])
