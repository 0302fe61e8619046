"""Gaussians kept in information form with a square-root covariance.

Used for the effect posterior of meTS (one joint Gaussian over the L·d stacked effects, or L
independent d-dimensional blocks for the factored variant) and for the exact joint posterior of
JointTS over all K·d action parameters.

Both classes also hold a stack of independent Gaussians along leading axes (``C`` (…, n, n)):
the many-runs engine keeps one per run and calls the same :meth:`draw` and
:meth:`proposed_rank_one` as the one-run models (with ``rows``/``blocks`` None: dense updates).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg.blas import dger

from ..linalg import matvec, sqrt_from_precision, sqrt_lowrank_update, sqrt_rank_one_update

#: from this size on, an in-place rank-one step updates μ in O(n) (``rank_one_in_place``)
_INCREMENTAL_MEAN_MIN = 64


def _rank_one(alpha: float, x: np.ndarray, y: np.ndarray, C: np.ndarray) -> None:
    """C += α x yᵀ in place, for a C-contiguous (n, n) C: BLAS dger on its transpose (a
    Fortran-ordered view of the same memory), else numpy."""
    if C.flags.c_contiguous and C.dtype == np.float64:
        dger(alpha, y, x, a=C.T, overwrite_a=True)
    else:  # pragma: no cover - the factors are kept C-contiguous
        C += alpha * np.outer(x, y)


def _info_mean(C: np.ndarray, h: np.ndarray) -> np.ndarray:
    """μ = C Cᵀ h for a square root C (…, n, n) and h (…, n)."""
    if C.ndim == 2:
        return C @ (C.T @ h)
    return matvec(C, matvec(np.swapaxes(C, -1, -2), h))


class SqrtGaussian:
    """N(μ, Σ) with ``Σ = C Cᵀ``, the linear term ``h = Σ⁻¹ μ`` and ``μ`` itself.

    Parameters
    ----------
    C : ndarray, shape (n, n) or (…, n, n)
        A square root of the covariance (a stack: one Gaussian per leading index).
    h : ndarray, shape (n,) or (…, n)
        Information vector Σ⁻¹ μ.
    """

    def __init__(self, C: np.ndarray, h: np.ndarray) -> None:
        self.C = np.ascontiguousarray(C, dtype=np.float64)
        self.h = np.array(h, dtype=np.float64)
        self.mean = _info_mean(self.C, self.h)

    @classmethod
    def from_precision(cls, precision: np.ndarray, h: np.ndarray) -> SqrtGaussian:
        """Exact factorisation of ``N(precision⁻¹ h, precision⁻¹)``."""
        return cls(sqrt_from_precision(precision), h)

    @property
    def size(self) -> int:
        return int(self.h.shape[-1])

    def cov(self) -> np.ndarray:
        """Covariance Σ = C Cᵀ, shape (…, n, n)."""
        return self.C @ np.swapaxes(self.C, -1, -2)

    def draw(self, z: np.ndarray) -> np.ndarray:
        """The draw μ + C z from standard normals ``z`` (…, n)."""
        C = self.C
        if C.ndim == 2:  # C-contiguous (kept so): ``.dot`` is the BLAS call of ``@``
            return self.mean + (C.dot(z) if z.ndim == 1 and z.strides[0] > 0 else C @ z)
        return self.mean + matvec(C, z)

    def operand(self) -> np.ndarray:
        """Σ as :mod:`~mixedts.models.linear_gaussian` takes it (``mix_cov``,
        ``effect_score_var``): the square root C, (…, n, n)."""
        return self.C

    def sample(self, rng: np.random.Generator, n: int | None = None) -> np.ndarray:
        """Draw ``(n_draws, n)`` (or ``(n,)`` when ``n`` is None) from the Gaussian (one)."""
        if n is None:
            return self.draw(rng.standard_normal(self.size))
        return self.mean + rng.standard_normal((n, self.size)) @ self.C.T

    def std_along(self, G: np.ndarray) -> np.ndarray:
        """``sqrt(g_iᵀ Σ g_i)`` for the rows of ``G`` (m, n) (dense or sparse)."""
        GC = G @ self.C
        GC = np.asarray(GC)
        return np.sqrt(np.einsum("ij,ij->i", GC, GC))

    def proposed_rank_one(
        self, rows: np.ndarray, u: np.ndarray, dh: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """State after the precision gains ``u uᵀ`` and ``h`` gains ``dh``; nothing is mutated.

        ``u`` and ``dh`` are given only on ``rows`` (their non-zero support, distinct and
        increasing), shape (m,); with ``rows=None`` on every coordinate, (…, n) (a stack). Cost
        O(n·m + n²) per Gaussian.
        """
        if rows is None or len(rows) == self.h.shape[-1]:
            # every coordinate: ``rows`` (distinct, increasing) is then 0, 1, …, n − 1
            z = matvec(np.swapaxes(self.C, -1, -2), u)
            h_new = self.h + dh
        else:
            z = self.C[rows].T @ u
            h_new = self.h.copy()
            h_new[rows] += dh
        C_new = sqrt_rank_one_update(self.C, z)
        return C_new, h_new, _info_mean(C_new, h_new)

    def rank_one_in_place(self, rows: np.ndarray, u: np.ndarray, dh: np.ndarray | None = None,
                          *, gain: float | None = None) -> None:
        """:meth:`proposed_rank_one` and :meth:`commit` of one Gaussian, done in place: the
        Potter step C ← C − α (C z) zᵀ is one BLAS rank-one pass over C (no copy of the
        (n, n) factor). For the one-run models, whose Gaussian updates cannot fail once
        validated. ``rows=None``: every coordinate. ``h`` gains ``dh``, or ``gain · u`` when
        the scalar ``gain`` g is given instead (the models' case: η's step is g w).

        The mean: with ``gain``, from Σ' = Σ − q qᵀ / r² (q = C z, r² = 1 + |z|²) and
        Σ u = q, the update in innovation form::

            μ' = Σ' (h + g u) = μ + q (g − uᵀμ) / r²

        O(n) past the Potter step, reading neither C again nor h (μ = C Cᵀ h reads C twice
        more: what is done without ``gain``, and below n = 64 where the two products cost less
        than the O(n) calls); it shrinks earlier rounding by Σ'Σ⁻¹, and the periodic exact
        refactor bounds what remains."""
        C = self.C
        n = self.h.shape[-1]
        full = rows is None or len(rows) == n
        if gain is not None:
            dh = u * gain
        # C is kept C-contiguous (so Cᵀ and C[rows]ᵀ are F-contiguous): ``.dot`` is the BLAS
        # call of ``@``, the same bits, at a third of the call's overhead on small factors
        z = C.T.dot(u) if full else C[rows].T.dot(u)
        q = C.dot(z)
        r2 = 1.0 + float(z.dot(z))
        r = math.sqrt(r2)
        alpha = -1.0 / (r * (1.0 + r))
        if gain is not None and n >= _INCREMENTAL_MEAN_MIN:  # uᵀμ before μ moves
            innovation = (gain - float(u.dot(self.mean if full else self.mean[rows]))) / r2
        if C.flags.c_contiguous and C.dtype == np.float64:  # (what __init__ and the loaders
            dger(alpha, z, q, a=C.T, overwrite_a=True)  # keep): C ← C − α q zᵀ, as _rank_one
        else:  # pragma: no cover
            _rank_one(alpha, q, z, C)
        if full:
            self.h = self.h + dh
        else:
            self.h = self.h.copy()
            self.h[rows] += dh
        if gain is None or n < _INCREMENTAL_MEAN_MIN:  # (two small products: cheaper)
            self.mean = C.dot(C.T.dot(self.h))  # μ = C Cᵀ h (:func:`_info_mean`)
        else:
            self.mean = self.mean + q * innovation

    def proposed_lowrank(
        self, W: np.ndarray, dh: np.ndarray, signs: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """State after the precision gains ``W diag(signs) Wᵀ`` (W: (n, r)) and ``h`` gains ``dh``.

        Raises ``NotPositiveDefiniteError`` if a downdate loses positive definiteness.
        """
        C_new = sqrt_lowrank_update(self.C, self.C.T @ W, signs)
        h_new = self.h + dh
        return C_new, h_new, _info_mean(C_new, h_new)

    def commit(self, C: np.ndarray, h: np.ndarray, mean: np.ndarray) -> None:
        self.C, self.h, self.mean = C, h, mean


class BlockSqrtGaussian:
    """L independent d-dimensional Gaussians (the factored effect posterior of meTS-Fa).

    Attributes are stacks: ``C`` (…, L, d, d), ``h`` (…, L, d), ``mean`` (…, L, d).
    """

    def __init__(self, C: np.ndarray, h: np.ndarray) -> None:
        self.C = np.ascontiguousarray(C, dtype=np.float64)
        self.h = np.array(h, dtype=np.float64)
        self.mean = self._mean(self.C, self.h)

    @staticmethod
    def _mean(C: np.ndarray, h: np.ndarray) -> np.ndarray:
        return np.einsum("...lij,...lj->...li", C, np.einsum("...lji,...lj->...li", C, h))

    @classmethod
    def from_precision(cls, precision: np.ndarray, h: np.ndarray) -> BlockSqrtGaussian:
        return cls(sqrt_from_precision(precision), h)

    def cov(self) -> np.ndarray:
        """Block covariances, shape (…, L, d, d)."""
        return self.C @ np.swapaxes(self.C, -1, -2)

    def draw(self, z: np.ndarray) -> np.ndarray:
        """The draw μ_l + C_l z_l of every block from standard normals ``z`` (…, L, d)."""
        return self.mean + np.einsum("...lij,...lj->...li", self.C, z)

    def operand(self) -> np.ndarray:
        """Σ as :mod:`~mixedts.models.linear_gaussian` takes it (factored): the block
        covariances, (…, L, d, d)."""
        return self.cov()

    def sample(self, rng: np.random.Generator, n: int | None = None) -> np.ndarray:
        """Draws of shape (L, d), or (n, L, d) (one stack of blocks)."""
        L, d = self.h.shape
        if n is None:
            return self.draw(rng.standard_normal((L, d)))
        z = rng.standard_normal((n, L, d))
        return self.mean + np.einsum("lij,nlj->nli", self.C, z)

    def proposed_rank_one(
        self, blocks: np.ndarray, u: np.ndarray, dh: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Each block ``blocks[j]`` gains precision ``u[j] u[j]ᵀ`` and ``h`` gains ``dh[j]``.

        ``blocks`` (m,) distinct block indices, ``u`` and ``dh`` (m, d); with ``blocks=None``
        every block, ``u`` and ``dh`` (…, L, d) (a stack). Cost O(m·d²) per stack.
        """
        if blocks is None:
            z = np.einsum("...mji,...mj->...mi", self.C, u)
            C_new = sqrt_rank_one_update(self.C, z)
            h_new = self.h + dh
            return C_new, h_new, self._mean(C_new, h_new)
        Cb = self.C[blocks]
        z = np.einsum("mji,mj->mi", Cb, u)
        C_new = self.C.copy()
        C_new[blocks] = sqrt_rank_one_update(Cb, z)
        h_new = self.h.copy()
        h_new[blocks] += dh
        mean_new = self.mean.copy()
        mean_new[blocks] = self._mean(C_new[blocks], h_new[blocks])
        return C_new, h_new, mean_new

    def commit(self, C: np.ndarray, h: np.ndarray, mean: np.ndarray) -> None:
        self.C, self.h, self.mean = C, h, mean

    def proposed_lowrank(
        self, blocks: np.ndarray, W: np.ndarray, dh: np.ndarray, signs: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Block ``blocks[j]`` gains precision ``W[j] diag(signs) W[j]ᵀ``.

        ``blocks`` (m,) distinct block indices, ``W`` (m, d, r), ``signs`` (r,), ``dh`` (m, d).
        Raises ``NotPositiveDefiniteError`` if a downdate loses positive definiteness.
        """
        C_new = self.C.copy()
        for j, l in enumerate(blocks.tolist()):  # the few blocks one action touches
            C_new[l] = sqrt_lowrank_update(C_new[l], C_new[l].T @ W[j], signs)
        h_new = self.h.copy()
        h_new[blocks] += dh
        mean_new = self.mean.copy()
        mean_new[blocks] = self._mean(C_new[blocks], h_new[blocks])
        return C_new, h_new, mean_new
