"""The linear-Gaussian posterior formulas of docs/math.md §1–3, written once.

Two consumers call these functions and keep no copy of the algebra:

* the one-run models: :class:`~mixedts.models.actions.ActionStore` (the per-action conditional
  posteriors of ``MixedEffectModel`` and ``IndependentGaussianModel``) and
  :class:`~mixedts.models.mixed_effect.MixedEffectModel` (effect posterior, marginals, widths);
* the many-runs engine :class:`~mixedts.models.batched.BatchedLinearGaussianModel`, which holds
  R runs in stacked arrays.

The effect posterior's square root, its draws Ψ = μ̄ + C z and its rank-one (Potter) update are
:class:`~mixedts.models.gaussian.SqrtGaussian` / ``BlockSqrtGaussian``, which take a leading
runs axis too, so both consumers also sample the effects the same way.

Per-action state
----------------
Action i has the prior θ_i | Ψ ~ N(ν_i + Γ_i Ψ, Σ0_i), Γ_i Ψ = Σ_l b_il ψ_l, and Gaussian rewards
of noise σ (ν_i = 0 for mixed-effect models; for independent ones L = 0 and ν_i = μ0_i)::

    P0_i = Σ0_i⁻¹,   G_i = Σ x xᵀ/σ²,   b_i = P0_i ν_i + Σ y x/σ²,
    S_i = (P0_i + G_i)⁻¹,   m_i = S_i b_i,
    θ_i | Ψ ~ N(m_i + S_i P0_i Γ_i Ψ, S_i)                                   (eq. 8)

and its terms of the effect posterior (eq. 7, with the offset ν of §1)::

    M_i = P0_i − P0_i S_i P0_i,   η_i = P0_i (m_i − ν_i).

Both consumers keep G, b and S; the one-run store also caches m (the engine forms it when it
needs it), and the effect posterior keeps Λ̄⁻¹ as a square root updated by rank-one steps.

Batch axes
----------
Every function takes arrays with any leading axes, written ``…``: none or (n,) for one run's
actions, (R,) or (R, K) for runs. A (d, d) matrix or (d,) context may be shared by all of them.

Layouts
-------
The score formulas run every round over every action, so they take the *layout* of the
per-action arrays: :data:`ROWS`, ``(…, d, d)`` / ``(…, d)`` (one run's slot stacks: BLAS passes
over large n and d), or :data:`COLUMNS`, ``(d, d, …)`` / ``(d, …)`` (the many-runs engine: with d
of 2 to 10 and R·K long, the long axis innermost makes numpy's loops about 4x faster). A layout
supplies the primitives (products of the symmetric per-action matrices with vectors, dot and
outer products, per-action scalars shaped to broadcast); each formula is written once on top of
them. The functions that run once per refactor take rows.

Mixing rows
-----------
``mixing`` is the b_i of the actions concerned: dense ``(…, n, L)`` (the engine) or a scipy
sparse (n, L) matrix (one run, O(nnz)); each function evaluates the same formula for either.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp

from ..linalg import matvec, outer, sym_inv

__all__ = [
    "COLUMNS",
    "ROWS",
    "Observation",
    "conditional_mean",
    "conditional_posterior",
    "conditional_scores",
    "draw_scores",
    "effect_information",
    "effect_prior",
    "effect_score_var",
    "effect_terms",
    "marginal_cov",
    "mix_cov",
    "observe",
    "observe_one",
    "sufficient_statistics",
]


# ---------------------------------------------------------------------------- layouts
def _col(a):
    """Numbers (…,) as a column (…, 1); a scalar stays one (the one-run path then does scalar
    arithmetic, not 0-d array arithmetic)."""
    return a[..., None] if isinstance(a, np.ndarray) and a.ndim else a


class _Rows:
    """Per-action matrices (…, d, d) and vectors (…, d); a (d, d) or (d,) operand is shared."""

    #: one number per vector (…,), shaped to scale vectors (…, d)
    vec = staticmethod(_col)

    @staticmethod
    def mat(a):
        """One number per matrix (…,), shaped to scale matrices (…, d, d)."""
        return a[..., None, None] if isinstance(a, np.ndarray) and a.ndim else a

    @staticmethod
    def outer(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """a_i b_iᵀ, (…, d, d)."""
        return a[..., :, None] * b[..., None, :]

    @staticmethod
    def mv(A: np.ndarray, x: np.ndarray) -> np.ndarray:
        """A_i x_i, (…, d), for symmetric A_i (every per-action matrix here: S, P0, Σ0)."""
        if A.ndim == 2:  # one shared matrix
            return x @ A
        if x.ndim == 1:  # one shared vector: a single BLAS pass over the stack
            return (A.reshape(-1, A.shape[-1]) @ x).reshape(A.shape[:-1])
        return np.matmul(A, x[..., None])[..., 0]

    @staticmethod
    def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """a_i · b_i, (…)."""
        if b.ndim == 1:
            return a @ b
        if a.ndim == 1:
            return b @ a
        return np.einsum("ij,ij->i" if a.ndim == b.ndim == 2 else "...i,...i->...", a, b)


class _Columns:
    """Per-action matrices (d, d, …) and vectors (d, …), components first, contiguous."""

    @staticmethod
    def vec(a):
        return a

    @staticmethod
    def mat(a):
        return a

    @staticmethod
    def outer(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a[:, None] * b[None, :]

    @staticmethod
    def mv(A: np.ndarray, x: np.ndarray) -> np.ndarray:
        """A_i x_i, (d, …)."""
        return np.einsum("ij...,j...->i...", A, x)

    @staticmethod
    def dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.einsum("j...,j...->...", a, b)


#: per-action arrays stored (…, d, d) and (…, d)
ROWS = _Rows()
#: per-action arrays stored (d, d, …) and (d, …)
COLUMNS = _Columns()


def _sym(a: np.ndarray) -> np.ndarray:
    return 0.5 * (a + np.swapaxes(a, -1, -2))


def _is_sparse(mixing) -> bool:
    return sp.issparse(mixing)


# ---------------------------------------------------------------------------- per action
def sufficient_statistics(x: np.ndarray, y, noise_var, layout=ROWS):
    """The increments of G and b from observations: x xᵀ/σ² (…, d, d) and y x/σ² (…, d).

    ``x`` (…, d) in ``layout``, ``y`` scalar or (…,), ``noise_var`` σ², scalar or (…,).
    """
    xs = x / layout.vec(noise_var)
    return layout.outer(x, xs), xs * layout.vec(y)


def conditional_posterior(P0: np.ndarray, G: np.ndarray, b: np.ndarray):
    """S = (P0 + G)⁻¹ (symmetrised) and m = S b from the statistics; (…, d, d), (…, d)."""
    S = sym_inv(P0 + G)
    return S, np.matmul(S, b[..., None])[..., 0]


class Observation(NamedTuple):
    """One observation's rank-one step (see :func:`observe`)."""

    #: the new conditional covariance S', (…, d, d)
    S: np.ndarray
    #: M gains w wᵀ, (…, d) (None without effects)
    w: np.ndarray | None
    #: η gains this, P0 (m' − m) = w g, (…, d) (None without effects)
    eta: np.ndarray | None
    #: g = e / √c, the residual's share: η's step is ``g`` times ``w`` (…,) (None without
    #: effects)
    gain: np.ndarray | float | None = None


def observe(S, P0, b, x, y, noise_var, layout=ROWS) -> Observation:
    """Condition one action on (x, y): the rank-one step of docs/math.md §2.

    With v = S x, c = σ² + xᵀ v, the residual e = y − xᵀ m = y − vᵀ b and s = v / √c::

        S' = S − s sᵀ (= S − v vᵀ / c),   w = P0 s,   P0 (m' − m) = w e / √c

    (m' − m = v e / c; b gains y x/σ², see :func:`sufficient_statistics`).

    Parameters, in ``layout``: ``S`` (…, d, d), ``P0`` (…, d, d) or shared (d, d) (None: no
    effects, and w and the η step are not computed), ``b`` (…, d) before the observation,
    ``x`` (…, d); ``y`` scalar or (…,), ``noise_var`` scalar or (…,). Nothing is mutated.
    """
    lay = layout
    v = lay.mv(S, x)
    root = np.sqrt(noise_var + lay.dot(x, v))
    s = v / lay.vec(root)
    S_new = S - lay.outer(s, s)
    if P0 is None:
        return Observation(S_new, None, None)
    w = lay.mv(P0, s)
    gain = (y - lay.dot(v, b)) / root
    return Observation(S_new, w, w * lay.vec(gain), gain)


def blasable(a: np.ndarray) -> bool:
    """Whether ``a`` is a vector of positive stride or a C- or F-contiguous matrix: the operands
    for which ``a.dot(b)`` is the BLAS call of ``a @ b`` (the same bits, a third of the call's
    overhead on small arrays); ``@`` takes a slower loop of its own on other layouts."""
    if a.ndim == 1:
        return a.strides[0] > 0
    flags = a.flags
    return flags.c_contiguous or flags.f_contiguous


def observe_one(S, P0, b, x, y: float, noise_var: float) -> Observation:
    """:func:`observe` of one action in rows (S and P0 (d, d), b and x (d,), scalar y and σ²):
    the same operations in the same order, in fewer and cheaper calls (the products as
    ``ndarray.dot``, the same BLAS calls as ``@`` on :func:`blasable` operands, which the caller
    guarantees; the scalars as Python floats, the same IEEE operations), so bitwise the same
    result. The online round's path (``ActionStore.propose``)."""
    v = x.dot(S)
    root = math.sqrt(noise_var + float(x.dot(v)))
    s = v / root
    S_new = S - outer(s, s)
    if P0 is None:
        return Observation(S_new, None, None)
    w = s.dot(P0)
    gain = (y - float(v.dot(b))) / root
    return Observation(S_new, w, w * gain, gain)


def effect_terms(P0: np.ndarray, S: np.ndarray, m: np.ndarray, offset=None):
    """An action's terms of eq. 7: M = P0 − P0 S P0 (symmetrised) and η = P0 (m − ν).

    ``P0``, ``S`` (…, d, d), ``m`` and ``offset`` ν (…, d) (None: ν = 0).
    """
    M = _sym(P0 - P0 @ S @ P0)
    return M, matvec(P0, m if offset is None else m - offset)


# ---------------------------------------------------------------------------- effects
def effect_prior(mean: np.ndarray, cov: np.ndarray, factored: bool):
    """The effects' prior in information form: precision Λ0 and h0 = Λ0 μ_Ψ.

    ``mean`` (…, L, d); ``cov`` (…, L·d, L·d) (joint) or the blocks (…, L, d, d) (factored).
    Returns Λ0 shaped like ``cov`` and h0 (…, L·d) (joint) or (…, L, d) (factored).
    """
    prec = sym_inv(cov)
    if factored:
        return prec, matvec(prec, mean)
    return prec, matvec(prec, mean.reshape(*mean.shape[:-2], -1))


def _mix_t(mixing, V: np.ndarray) -> np.ndarray:
    """Σ_i b_i v_iᵀ: Bᵀ V for rows ``mixing`` (…, n, L) and V (…, n, k), (…, L, k)."""
    if _is_sparse(mixing):
        return np.asarray(mixing.T @ V)
    return np.swapaxes(mixing, -1, -2) @ V


def _square(mixing):
    """b_il², elementwise."""
    return mixing.power(2) if _is_sparse(mixing) else mixing * mixing


def _padded_rows(mixing) -> tuple[np.ndarray, np.ndarray]:
    """A sparse (n, L) matrix as padded rows: column indices and values, each (n, w)."""
    B = sp.csr_matrix(mixing)
    n = B.shape[0]
    lens = np.diff(B.indptr)
    w = max(1, int(lens.max(initial=0)))
    if B.nnz == n * w:  # every row stores w entries (the one-run model's padded rows)
        return B.indices.reshape(n, w), B.data.reshape(n, w)
    pos = np.repeat(np.arange(n), lens)
    within = np.arange(B.nnz) - B.indptr[pos]
    idx, val = np.zeros((n, w), dtype=np.int64), np.zeros((n, w))
    idx[pos, within], val[pos, within] = B.indices, B.data
    return idx, val


def _pair_sums(M: np.ndarray, mixing) -> np.ndarray:
    """Σ_i b_il b_il' M_i for every pair (l, l'), (…, L·L, d·d).

    Dense rows: one (L², n) @ (n, d²) product. Sparse rows: only the pairs of non-zeros of each
    row, as one sparse (L², pairs) @ (pairs, d²) product per chunk of rows (bounded memory).
    """
    n, d, L = M.shape[-3], M.shape[-1], mixing.shape[-1]
    Mf = M.reshape(*M.shape[:-2], d * d)
    if not _is_sparse(mixing):
        BB = (mixing[..., :, :, None] * mixing[..., :, None, :]).reshape(*mixing.shape[:-1], L * L)
        return np.swapaxes(BB, -1, -2) @ Mf
    idx, val = _padded_rows(mixing)
    w = idx.shape[1]
    out = np.zeros((L * L, d * d))
    chunk = max(1, 2**20 // (w * w))
    for s0 in range(0, n, chunk):  # chunks of rows bound the memory of the pair lists
        i, v = idx[s0 : s0 + chunk], val[s0 : s0 + chunk]
        k = len(i)
        lm = (i[:, :, None] * L + i[:, None, :]).reshape(-1)
        coef = (v[:, :, None] * v[:, None, :]).reshape(-1)
        pairs = sp.csr_matrix((coef, (lm, np.repeat(np.arange(k), w * w))), shape=(L * L, k))
        out += np.asarray(pairs @ Mf[s0 : s0 + k])
    return out


def effect_information(prec0, h0, M: np.ndarray, eta: np.ndarray, mixing, factored: bool):
    """The effect posterior in information form from its prior and the actions' terms.

    Joint (eq. 7), (…, L·d, L·d) and (…, L·d)::

        Λ̄ = Λ0 + Σ_i (b_i b_iᵀ) ⊗ M_i,      h̄ = h0 + Σ_i b_i ⊗ η_i

    Factored (eq. 43), (…, L, d, d) and (…, L, d)::

        Λ̄_l = Λ0_l + Σ_i b_il² M_i,         h̄_l = h0_l + Σ_i b_il η_i

    ``prec0``, ``h0``: :func:`effect_prior`; ``M`` (…, n, d, d) and ``eta`` (…, n, d): the
    :func:`effect_terms` of the n actions whose rows are ``mixing``.
    """
    n, d, L = M.shape[-3], M.shape[-1], mixing.shape[-1]
    if n == 0:
        return prec0.copy(), h0.copy()
    lin = _mix_t(mixing, eta)  # (…, L, d)
    if factored:
        data = _mix_t(_square(mixing), M.reshape(*M.shape[:-2], d * d))
        return prec0 + data.reshape(*data.shape[:-1], d, d), h0 + lin
    blocks = _pair_sums(M, mixing).reshape(*M.shape[:-3], L, L, d, d)
    data = np.swapaxes(blocks, -3, -2).reshape(*M.shape[:-3], L * d, L * d)
    return _sym(prec0 + data), h0 + lin.reshape(*lin.shape[:-2], L * d)


def mix_cov(mixing, effects: np.ndarray, factored: bool) -> np.ndarray:
    """Γ_i Σ̄ Γ_iᵀ for the rows b_i of ``mixing``, (…, n, d, d).

    Joint: ``effects`` is a square root C of Σ̄ (…, L·d, L·d); with the rows C_l of effect l,
    Γ_i C = Σ_l b_il C_l and Γ_i Σ̄ Γ_iᵀ = (Γ_i C)(Γ_i C)ᵀ (in chunks of rows when sparse).
    Factored: ``effects`` holds the blocks Σ̄_l (…, L, d, d) and the result is Σ_l b_il² Σ̄_l.
    """
    L = mixing.shape[-1]
    d = effects.shape[-1] if factored else effects.shape[-1] // L
    if factored:
        out = np.asarray(_square(mixing) @ effects.reshape(*effects.shape[:-2], d * d))
        return out.reshape(*out.shape[:-1], d, d)
    C = effects.reshape(*effects.shape[:-2], L, d * L * d)
    if not _is_sparse(mixing):
        GC = (mixing @ C).reshape(*mixing.shape[:-1], d, L * d)
        return GC @ np.swapaxes(GC, -1, -2)
    n = mixing.shape[0]
    out = np.empty((n, d, d))
    chunk = max(1, 2**21 // (d * L * d))
    for s in range(0, n, chunk):  # chunks of rows bound the memory
        GC = np.asarray(mixing[s : s + chunk] @ C).reshape(-1, d, L * d)
        out[s : s + chunk] = GC @ np.swapaxes(GC, 1, 2)
    return out


# ---------------------------------------------------------------------------- marginals
def conditional_mean(S, P0, m, mix):
    """E[θ_i | Ψ] = m_i + S_i P0_i Γ_i Ψ (eq. 8) from the effect mix ``mix`` = Γ_i Ψ (…, d).

    At Ψ = μ̄ this is the marginal mean E[θ_i] (eq. 16).
    """
    return m + matvec(S @ P0, mix)


def marginal_cov(S, P0, mix_cov_):
    """Cov[θ_i] = S_i + (S_i P0_i) Γ_iΣ̄Γ_iᵀ (S_i P0_i)ᵀ (eq. 16), symmetrised, (…, d, d)."""
    A = S @ P0
    return _sym(S + A @ mix_cov_ @ np.swapaxes(A, -1, -2))


# ---------------------------------------------------------------------------- scores
def conditional_scores(S, b, x, mix=None, P0=None, layout=ROWS, mean=True, var=True, m=None):
    """Mean and variance of every score x_iᵀθ_i given the effect mix c_i = Γ_i Ψ (§2)::

        x_iᵀθ_i | Ψ ~ N(x_iᵀ m_i + (P0_i v_i)ᵀ c_i,  v_iᵀ x_i),   v_i = S_i x_i,

    with x_iᵀ m_i = v_iᵀ b_i, read from ``m`` = S b where the caller keeps it (one pass with a
    shared x). ``S``, ``P0`` matrices and ``b``, ``x``, ``mix``, ``m`` vectors in ``layout``
    (``x`` may be one shared context); ``mix=None``: no effects; ``P0=None`` with ``mix``: the
    mix is P0_i c_i already (a shared P0 folded into the effects: (P0 v)ᵀc = vᵀ(P0 c)).
    Returns (mean, variance), each (…); a part not asked for (``mean=False`` or
    ``var=False``) is None.
    """
    v = layout.mv(S, x) if var or mix is not None or m is None else None
    mu = None
    if mean:
        mu = layout.dot(v, b) if m is None else layout.dot(m, x)
        if mix is not None:
            mu = mu + layout.dot(v if P0 is None else layout.mv(P0, v), mix)
    return mu, layout.dot(v, x) if var else None


def draw_scores(mean, var, eps):
    """Scores drawn from N(mean, var) with the standard normals ``eps``: mean + sd·ε."""
    return mean + np.sqrt(var) * eps


def effect_score_var(q: np.ndarray, mixing, effects: np.ndarray, factored: bool):
    """The effects' share of Var[x_iᵀθ_i] (eq. 16): g_iᵀ Σ̄ g_i, g_i = b_i ⊗ q_i, (…, n).

    ``q`` (…, n, d) is P0_i S_i x_i; ``effects`` as for :func:`mix_cov`. Joint: |(b_i ⊗ q_i)ᵀ C|².
    Factored: Σ_l b_il² q_iᵀ Σ̄_l q_i.
    """
    L = mixing.shape[-1]
    d = q.shape[-1]
    if not _is_sparse(mixing):
        if factored:
            return np.einsum("...kl,...kd,...lde,...ke->...k", mixing * mixing, q, effects, q)
        C = effects.reshape(*effects.shape[:-2], L, d, L * d)
        GC = np.einsum("...kl,...kd,...ldn->...kn", mixing, q, C)
        return np.einsum("...kn,...kn->...k", GC, GC)
    B = sp.coo_matrix(mixing)
    K = B.shape[0]
    if factored:
        quad = np.einsum("ei,eij,ej->e", q[B.row], effects[B.col], q[B.row])
        return np.bincount(B.row, weights=B.data**2 * quad, minlength=K)
    rows = np.repeat(B.row, d)
    cols = (B.col[:, None] * d + np.arange(d)).ravel()
    vals = (B.data[:, None] * q[B.row]).ravel()
    GC = np.asarray(sp.csr_matrix((vals, (rows, cols)), shape=(K, L * d)) @ effects)
    return np.einsum("ij,ij->i", GC, GC)
