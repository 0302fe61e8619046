"""The mixed-effect posterior of meTS (docs/math.md §1–3), exact or factored, updated incrementally.

State
-----
* effect posterior Q_t(Ψ) = N(μ̄, Σ̄) kept as a square root of Σ̄ plus the information vector
  h̄ = Σ̄⁻¹ μ̄ (joint over the L·d stacked effects, or L independent blocks for meTS-Fa);
* per observed action, ``S_i``, ``b_i``, ``m_i = S_i b_i`` in an :class:`ActionStore`.

One observation of action ``a`` changes ``M_a = P0 − P0 S_a P0`` by ``w wᵀ`` (rank one), so the
effect precision gains ``u uᵀ`` with ``u = b_a ⊗ w`` supported on nnz(b_a)·d coordinates, and
h̄ gains ``b_a ⊗ P0 (m_a' − m_a)``. Both are O((L·d)²) for the joint posterior and O(nnz·d²)
for the factored one. Every ``refactor_every`` updates everything is recomputed exactly from the
sufficient statistics, which bounds rounding drift.

Every formula is a function of :mod:`~mixedts.models.linear_gaussian` (shared with the
many-runs engine); this class adds the one-run storage: observed actions only, sparse mixing.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from ..likelihoods import Gaussian, Likelihood, get_likelihood
from ..linalg import NotPositiveDefiniteError, rowdot
from ..priors import MixedEffectPrior
from .actions import ActionStore
from .base import SCORE_DRAWS, Draw, register_model
from .gaussian import BlockSqrtGaussian, SqrtGaussian
from .laplace import LaplaceFitter
from .linear_gaussian import (
    ROWS,
    conditional_mean,
    conditional_scores,
    draw_scores,
    effect_information,
    effect_prior,
    effect_score_var,
    marginal_cov,
    mix_cov,
)

#: largest (K, L·d) score map ``sample_scores_many`` forms densely (else sparse)
_DENSE_SCORE_MAP = 1 << 21

@register_model
class MixedEffectModel:
    """Posterior of the mixed-effect linear-Gaussian model.

    Parameters
    ----------
    prior : MixedEffectPrior
    noise_std : float
        σ, the reward noise standard deviation.
    factored : bool
        Use the factored (mean-field) effect posterior of meTS-Fa (docs/math.md §3).
    refactor_every : int
        Recompute every factor exactly after this many incremental updates, or after as many
        updates as there are observed actions if that is more (0: never).
    likelihood : Likelihood, optional
        Gaussian (default; closed form) or a GLM such as :class:`~mixedts.likelihoods.Logistic`,
        whose per-action likelihoods are Laplace-approximated (docs/math.md §4).
    laplace : dict, optional
        Options of the :class:`~mixedts.models.laplace.LaplaceFitter` (method, batch_size,
        ridge, tol, max_iter).
    laplace_at : {"posterior", "likelihood"}
        Where each action's log-likelihood is expanded to second order. ``"likelihood"``: at
        its ridge-penalised maximum, the paper's scheme (G ← G^LAP, b ← G^LAP μ^LAP).
        ``"posterior"`` (default): at the MAP θ̂ under the action's conditional prior
        N(Γ_a μ̄, Σ0) given the current effect mean, so b ← G θ̂ + ∇log L(θ̂). Both are the same
        Gaussian pseudo-observation when the data are plentiful; the second stays informative
        when an action's data are separable (the MLE diverges and f' → 0 there). The online
        method (one Newton step, no refit) always uses the first.

    Examples
    --------
    Actions 0 and 1 share effect 0: a reward of action 0 moves action 1 too.

    >>> from mixedts import MixedEffectPrior
    >>> prior = MixedEffectPrior(np.zeros((2, 2)), np.stack([np.eye(2)] * 2),
    ...                          np.eye(2)[[0, 0, 1]], 0.5 * np.eye(2))
    >>> model = MixedEffectModel(prior, noise_std=1.0)
    >>> x = np.array([1.0, 0.0])
    >>> model.update(x, 0, 1.0)
    >>> model.mean_scores(x).round(3)
    array([0.6, 0.4, 0. ])
    >>> model.sample_parameters(5, np.random.default_rng(0)).shape
    (5, 3, 2)
    """

    draws = SCORE_DRAWS | {Draw.SAMPLES}

    def __init__(
        self,
        prior: MixedEffectPrior,
        noise_std: float = 1.0,
        factored: bool = False,
        refactor_every: int = 5000,
        likelihood: Likelihood | None = None,
        laplace: dict[str, Any] | None = None,
        laplace_at: str = "posterior",
    ) -> None:
        self.prior = prior
        self.likelihood = likelihood if likelihood is not None else Gaussian()
        self.laplace_at = laplace_at
        self.fitter = (
            None
            if isinstance(self.likelihood, Gaussian)
            else LaplaceFitter(self.likelihood, prior.dim, **(laplace or {}))
        )
        self.noise_std = float(noise_std)
        self.factored = bool(factored)
        self.refactor_every = int(refactor_every)
        self.n_actions = prior.n_actions
        self.dim = prior.dim
        self.n_effects = prior.n_effects
        self.store = ActionStore(prior.n_actions, np.asarray(prior.action_cov), self.noise_std**2)
        # mixing rows of the observed slots, padded to a common width (zeros pad)
        self._width = max(1, int(np.diff(prior.mixing.indptr).max(initial=0)))
        self._mix_idx = np.zeros((16, self._width), dtype=np.int64)
        self._mix_val = np.zeros((16, self._width))
        self._csr_key: tuple | None = None
        self._dense_key: int | None = None  # the dense mixing matrix's K (see _mix)
        self._within = np.arange(prior.dim)  # the coordinates of one effect
        self._init_prior_terms()
        self.effects = self._exact_effects()
        self._since_refactor = 0
        self.n_updates = 0

    # ------------------------------------------------------------------ prior terms
    def _init_prior_terms(self) -> None:
        """Λ0 and h0: (L, d, d) and (L, d) factored (the diagonal blocks of Σ_Ψ), else
        (L·d, L·d) and (L·d,)."""
        cov = self.prior.effect_cov_blocks() if self.factored else self.prior.effect_cov_full()
        self._prec0, self._h0 = effect_prior(np.asarray(self.prior.effect_mean), cov,
                                             self.factored)

    # ------------------------------------------------------------------ observed mixing rows
    def _slot_rows(self, slots: np.ndarray, actions: np.ndarray) -> None:
        """Record the mixing rows of newly allocated ``slots``."""
        cap = self.store.actions.shape[0]
        B = self.prior.mixing
        nnz = np.diff(B.indptr)[actions]
        width = max(self._width, int(nnz.max(initial=0)))
        if cap > self._mix_idx.shape[0] or width > self._width:
            idx = np.zeros((cap, width), dtype=np.int64)
            val = np.zeros((cap, width))
            n_old = self._mix_idx.shape[0]
            idx[:n_old, : self._width] = self._mix_idx
            val[:n_old, : self._width] = self._mix_val
            self._mix_idx, self._mix_val, self._width = idx, val, width
        rows = B[actions]
        pos = np.repeat(np.arange(len(actions)), np.diff(rows.indptr))
        within = np.arange(rows.nnz) - rows.indptr[pos]
        self._mix_idx[slots] = 0
        self._mix_val[slots] = 0.0
        self._mix_idx[slots[pos], within] = rows.indices
        self._mix_val[slots[pos], within] = rows.data
        self._csr_key = None

    def _mixing_dense(self, actions: np.ndarray) -> np.ndarray:
        """Dense mixing rows (n, L) of ``actions``, gathered straight from the CSR arrays."""
        B = self.prior.mixing
        starts, ends = B.indptr[actions], B.indptr[actions + 1]
        lens = ends - starts
        within = np.arange(lens.sum()) - np.repeat(np.cumsum(lens) - lens, lens)
        pos = np.repeat(starts, lens) + within
        out = np.zeros((len(actions), self.n_effects))
        out[np.repeat(np.arange(len(actions)), lens), B.indices[pos]] = B.data[pos]
        return out

    def _observed_mixing(self) -> sp.csr_matrix:
        """Mixing rows of the observed slots as CSR (n, L), sharing the padded buffers."""
        n, w = self.store.n, self._width
        key = (n, w, self._mix_val.ctypes.data)
        if self._csr_key != key:
            self._csr = sp.csr_matrix(
                (self._mix_val[:n].reshape(-1), self._mix_idx[:n].reshape(-1),
                 np.arange(0, n * w + 1, w)),
                shape=(n, self.n_effects),
                copy=False,
            )
            self._csr_key = key
        return self._csr

    # ------------------------------------------------------------------ exact recompute
    def _exact_effects(self):
        """The effect posterior computed from scratch from the sufficient statistics (eq. 7,
        or eq. 43 when factored), over the observed slots."""
        M, pm = self.store.M_and_pm()
        prec, h = effect_information(self._prec0, self._h0, M, pm, self._observed_mixing(),
                                     self.factored)
        gaussian = BlockSqrtGaussian if self.factored else SqrtGaussian
        return gaussian.from_precision(prec, h)

    def _maybe_refactor(self) -> None:
        """Refactor after ``max(refactor_every, observed actions)`` incremental updates.

        A refactor costs O(n_obs·d³ + nnz·d² + (L·d)³); waiting at least n_obs updates keeps
        its amortised cost per update independent of the catalogue size.
        """
        every = self.refactor_every
        if every and self._since_refactor >= max(every, self.store.n):
            self.refactor()

    def refactor(self) -> None:
        """Recompute every action covariance and the effect posterior exactly."""
        self.store.refresh()
        self.effects = self._exact_effects()
        self._since_refactor = 0

    # ------------------------------------------------------------------ effects
    def effect_posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean (L, d) and covariance (L·d, L·d) of the effect posterior Q_t."""
        L, d = self.n_effects, self.dim
        mean = self.effects.mean.reshape(L, d).copy()
        if self.factored:
            cov = np.zeros((L, d, L, d))
            cov[np.arange(L), :, np.arange(L), :] = self.effects.cov()
            return mean, cov.reshape(L * d, L * d)
        return mean, self.effects.cov()

    def _sample_effects(self, rng: np.random.Generator) -> np.ndarray:
        return self.effects.sample(rng).reshape(self.n_effects, self.dim)

    # ------------------------------------------------------------------ scores
    def _mix(self, psi: np.ndarray) -> np.ndarray:
        """Γ_i Ψ = Σ_l b_il ψ_l of every action, (K, d): one dense product while the mixing
        matrix is small or dense enough (a sparse product has a large fixed cost), else the
        sparse one."""
        if self._dense_key != self.n_actions:
            B = self.prior.mixing
            cells = B.shape[0] * B.shape[1]
            # dense when it is small, or dense enough that the BLAS product does little
            # more arithmetic than the sparse one
            dense = cells <= 4096 or (cells <= _DENSE_SCORE_MAP and 4 * B.nnz >= cells)
            self._dense_mixing = B.toarray() if dense else None
            self._dense_key = self.n_actions
        B = self._dense_mixing if self._dense_mixing is not None else self.prior.mixing
        return np.asarray(B @ psi)

    def _scores_given(self, x: np.ndarray, psi: np.ndarray):
        """Mean and variance of x_iᵀ θ_i | Ψ = psi for every action, each (K,)."""
        K, n = self.n_actions, self.store.n
        if n == K and self.store.ordered:  # slot i is action i: the slots' scores are all
            if self.store.shared:  # (P0 v)ᵀ Γ_i Ψ = vᵀ Γ_i (Ψ P0): P0 folded into Ψ
                return self.store.observed_scores(x, self._mix(psi @ self.store.P0), True)
            return self.store.observed_scores(x, self._mix(psi))
        mix = self._mix(psi)
        if n == K:  # every action observed: their scores are all of them
            mean, var = np.empty(K), np.empty(K)
        else:
            mean = mix @ x if x.ndim == 1 else rowdot(x, mix)
            var = np.broadcast_to(self.store.prior_var(x, K), (K,)).copy()
        if n:
            acts = self.store.actions[:n]
            mean[acts], var[acts] = self.store.observed_scores(x, mix[acts])
        return mean, var

    def _order_slots(self) -> None:
        """Once every action is observed, slot i holds action i (see ActionStore.sort_slots);
        the mixing rows kept per slot follow."""
        perm = self.store.sort_slots()
        if perm is not None:
            self._mix_idx[: len(perm)] = self._mix_idx[perm]
            self._mix_val[: len(perm)] = self._mix_val[perm]
            self._csr_key = None

    def sample_scores(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw Ψ ~ Q_t, then every x_iᵀθ_i | Ψ by the scalar-score shortcut (docs/math.md §2).

        The L·d normals of Ψ and the K of the scores are one draw of L·d + K normals (the same
        stream as the two draws in turn)."""
        L, d = self.n_effects, self.dim
        Ld = L * d
        z = rng.standard_normal(Ld + self.n_actions)
        st = self.store
        if (st.ordered and st.shared and not self.factored and st.n == self.n_actions
                and (x.ndim == 2 or x.strides[0] > 0)):
            return self._sample_ordered_shared(x, z, Ld)
        psi = self.effects.draw(z[:Ld].reshape(self.effects.h.shape)).reshape(L, d)
        mean, var = self._scores_given(x, psi)
        return draw_scores(mean, var, z[Ld:])

    def _sample_ordered_shared(self, x: np.ndarray, z: np.ndarray, Ld: int) -> np.ndarray:
        """:meth:`sample_scores` in the online round's common case (every action observed,
        slot i holding action i, one Σ0, the joint effect posterior; a context (d,) of
        positive stride or (K, d)): the arithmetic of the general path (the draw
        Ψ = μ̄ + C z, the mix Γ_i (Ψ P0), :func:`conditional_scores` with ``m`` and
        :func:`draw_scores`) written out, with the products as ``ndarray.dot`` (the BLAS calls
        of ``@`` on these contiguous operands: the same bits) and the score draw in place."""
        st, n, d = self.store, self.store.n, self.dim
        eff = self.effects
        psi = (eff.mean + eff.C.dot(z[:Ld])).reshape(self.n_effects, d)
        folded = psi.dot(st.P0)  # (P0 v)ᵀ Γ_i Ψ = vᵀ Γ_i (Ψ P0)
        if self._dense_key != self.n_actions:
            self._mix(folded)  # (decides whether the dense mixing matrix is held)
        B = self._dense_mixing
        mix = B.dot(folded) if B is not None else np.asarray(self.prior.mixing @ folded)
        if x.ndim == 1:  # ROWS.mv and ROWS.dot with one shared context
            v = st.S[:n].reshape(n * d, d).dot(x).reshape(n, d)
            mean = st.m[:n].dot(x)
            mean = mean + rowdot(v, mix)
            scores = v.dot(x)  # the variances, then the scores in place
        else:  # a context per action (slot i is action i: no gather)
            v = np.matmul(st.S[:n], x[..., None])[..., 0]
            mean = rowdot(st.m[:n], x)
            mean = mean + rowdot(v, mix)
            scores = rowdot(v, x)
        np.sqrt(scores, out=scores)
        scores *= z[Ld:]
        scores += mean
        return scores

    def sample_scores_rounds(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """:meth:`sample_scores` for n rounds at once (no update in between), (n, K): the
        contexts ``X`` (n, d) or (n, K, d), and the normals of the n calls in one draw (the
        same stream)."""
        n_r, L, d, K = len(X), self.n_effects, self.dim, self.n_actions
        Z = rng.standard_normal((n_r, L * d + K))
        zp = Z[:, : L * d]
        if self.factored:
            psi = self.effects.mean + np.einsum("lij,nlj->nli", self.effects.C,
                                                zp.reshape(n_r, L, d))
        else:
            psi = self.effects.mean + zp @ self.effects.C.T
        psi = psi.reshape(n_r, L, d)
        self._mix(psi[0])  # (the dense mixing matrix, when it is held)
        if self._dense_mixing is not None:
            mix = np.matmul(self._dense_mixing, psi)  # (n, K, d)
        else:
            flat = np.asarray(self.prior.mixing @ psi.transpose(1, 0, 2).reshape(L, n_r * d))
            mix = flat.reshape(K, n_r, d).transpose(1, 0, 2)
        xs = X[:, None, :] if X.ndim == 2 else X  # (n, 1 or K, d)
        mean = np.einsum("...i,...i->...", xs, mix)
        st = self.store
        var = st.prior_var_rounds(xs, K)
        n = st.n
        if n:
            acts = st.actions[:n]
            xo = xs if X.ndim == 2 else X[:, acts]
            P0 = st.P0 if st.shared else st.P0s[:n]
            mean[:, acts], var[:, acts] = conditional_scores(
                st.S[:n], st.b[:n], xo, mix[:, acts], P0, ROWS, m=st.m[:n])
        return draw_scores(mean, var, Z[:, L * d :])

    def sample_scores_many(self, x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` independent draws of the :meth:`sample_scores` law, (n, K), in one pass.

        Given Ψ the mean of x_iᵀθ_i is affine in Ψ, x_iᵀm_i + (b_i ⊗ q_i)ᵀΨ with
        q_i = P0_i S_i x_i (= x_i unobserved), and its variance does not depend on Ψ: n effect
        draws become one sparse (K, L·d) product.
        """
        K, d, L = self.n_actions, self.dim, self.n_effects
        psi = self.effects.sample(rng, n).reshape(n, L * d)
        mean0, var = self._scores_given(x, np.zeros((L, d)))
        q = self._score_directions(x)
        if K * L * d <= _DENSE_SCORE_MAP:  # one GEMM (n, L·d) @ (L·d, K)
            # Jᵀ built with the actions last (contiguous), ~3× faster than (K, L, d)
            Bt = np.ascontiguousarray(self.prior.mixing.T.toarray())
            JT = (Bt[:, None, :] * np.ascontiguousarray(q.T)[None, :, :]).reshape(L * d, K)
            means = psi @ JT + mean0
        else:  # O(nnz · d) entries
            B = sp.coo_matrix(self.prior.mixing)
            J = sp.csr_matrix(((B.data[:, None] * q[B.row]).ravel(),
                               (np.repeat(B.row, d), (B.col[:, None] * d + np.arange(d)).ravel())),
                              shape=(K, L * d))
            means = np.asarray(J @ psi.T).T + mean0
        return draw_scores(means, np.broadcast_to(var, (K,)), rng.standard_normal((n, K)))

    def _score_directions(self, x: np.ndarray) -> np.ndarray:
        """q_i = P0_i S_i x_i, the direction of Γ_iΨ in action i's score, (K, d)."""
        K, d = self.n_actions, self.dim
        X = np.asarray(x)
        q = np.broadcast_to(X, (K, d)).copy()  # P0 S x = x for unobserved actions
        n = self.store.n
        if n:
            acts = self.store.actions[:n]
            st = self.store
            if X.ndim == 1:  # one GEMV over the stacked S_i
                v = (st.S[:n].reshape(n * d, d) @ X).reshape(n, d)
            else:
                v = np.matmul(st.S[:n], X[acts][:, :, None])[:, :, 0]
            q[acts] = v @ st.P0.T if st.shared else np.einsum("nij,nj->ni", st.P0s[:n], v)
        return q

    def mean_scores(self, x: np.ndarray) -> np.ndarray:
        """Posterior mean of x_iᵀθ_i, (K,)."""
        psi = self.effects.mean.reshape(self.n_effects, self.dim)
        return self._scores_given(x, psi)[0]

    def score_std(self, x: np.ndarray) -> np.ndarray:
        """Marginal posterior standard deviation of x_iᵀθ_i, (K,).

        Var = x_iᵀ S_i x_i + g_iᵀ Σ̄ g_i with g_i = Γ_iᵀ P0_i S_i x_i (docs/math.md eq. 16).
        """
        psi = self.effects.mean.reshape(self.n_effects, self.dim)
        _, var = self._scores_given(x, psi)
        q = self._score_directions(x)
        extra = effect_score_var(q, self.prior.mixing, self.effects.operand(), self.factored)
        return np.sqrt(np.asarray(var) + extra)

    # ------------------------------------------------------------------ marginals
    def posterior_mean(self) -> np.ndarray:
        """Marginal posterior mean E[θ_i], (K, d) (docs/math.md eq. 16)."""
        L, d = self.n_effects, self.dim
        mean = np.asarray(self.prior.mixing @ self.effects.mean.reshape(L, d))
        n = self.store.n
        if n:
            acts = self.store.actions[:n]
            mean[acts] = conditional_mean(self.store.S[:n], self.store.P0_slots(slice(0, n)),
                                          self.store.m[:n], mean[acts])
        return mean

    def posterior_cov(self) -> np.ndarray:
        """Marginal posterior covariance of θ_i, (K, d, d) (docs/math.md eq. 16)."""
        K = self.n_actions
        T = mix_cov(self.prior.mixing, self.effects.operand(), self.factored)
        cov = T + self.store.prior_cov(np.arange(K))
        n = self.store.n
        if n:
            acts = self.store.actions[:n]
            cov[acts] = marginal_cov(self.store.S[:n], self.store.P0_slots(slice(0, n)),
                                     T[acts])
        return 0.5 * (cov + np.swapaxes(cov, 1, 2))

    def sample_parameters(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` joint draws of all θ, (n, K, d): Ψ ~ Q_t, then θ_i | Ψ for every action."""
        K, L, d = self.n_actions, self.n_effects, self.dim
        psi = self.effects.sample(rng, n).reshape(n, L, d)
        mix = np.asarray(self.prior.mixing @ psi.transpose(1, 0, 2).reshape(L, n * d))
        mix = mix.reshape(K, n, d).transpose(1, 0, 2)  # (n, K, d)
        chol = np.linalg.cholesky(self.store.prior_cov(np.arange(K)))  # (K, d, d)
        mean = mix.copy()
        no = self.store.n
        if no:
            acts = self.store.actions[:no]
            mean[:, acts] = conditional_mean(self.store.S[:no], self.store.P0_slots(slice(0, no)),
                                             self.store.m[:no], mix[:, acts])
            chol[acts] = np.linalg.cholesky(self.store.S[:no])
        z = rng.standard_normal((n, K, d))
        return mean + np.einsum("kij,skj->ski", chol, z)

    # ------------------------------------------------------------------ updates
    def update(
        self, x: np.ndarray, a: int, y: float, rng: np.random.Generator | None = None
    ) -> None:
        """Condition on one observation (x (d,) is the context of action ``a``)."""
        if self.fitter is not None:
            self.update_batch(x[None], np.array([a]), np.array([y]), rng)
            return
        store = self.store
        was_new = store.slot_of[a] < 0
        if not was_new and type(y) is float and x.strides[0] > 0:  # the online round (x is
            # 1-d: blasable); in place
            w, gain = store.observe_in_place(a, x, y)
            slot = p = None
        else:
            p = store.propose(a, x, y)
            w, gain = p["w"], p["gain"]
        B = self.prior.mixing
        indptr = B.indptr
        lo, hi = indptr[a], indptr[a + 1]
        new_effects = None
        if hi > lo:
            bval = B.data[lo:hi]
            u = bval[:, None].dot(w[None])  # b_a ⊗ w (linalg.outer written out: hot path)
            # h gains b_a ⊗ P0 (m' − m) = g (b_a ⊗ w)
            if self.factored:
                new_effects = self.effects.proposed_rank_one(B.indices[lo:hi], u, u * gain)
            elif hi - lo == self.n_effects:  # every effect (sorted indices): every coordinate
                new_effects = (None, u.ravel())
            else:  # applied in place below: a rank-one step cannot fail
                rows = (B.indices[lo:hi, None] * self.dim + self._within).ravel()
                new_effects = (rows, u.ravel())
        # commit: nothing below can fail on valid input
        if p is not None:
            slot = store.commit(p)
        if was_new:
            self._slot_rows(np.array([slot]), np.array([a]))
        if new_effects is not None:
            if self.factored:
                self.effects.commit(*new_effects)
            else:
                self.effects.rank_one_in_place(*new_effects, gain=gain)
        self.n_updates += 1
        self._since_refactor += 1
        every = self.refactor_every
        if every and self._since_refactor >= every:
            self._maybe_refactor()
        if was_new:
            self._order_slots()

    def update_batch(
        self, X: np.ndarray, A: np.ndarray, Y: np.ndarray, rng: np.random.Generator | None = None
    ) -> None:
        """Condition on a batch: X (n, d) contexts of the actions A (n,), rewards Y (n,).

        Touched actions are recomputed in one batched pass (exactly for Gaussian rewards, by one
        batched Laplace refit for GLM rewards); the effect posterior gets one low-rank update
        (or downdate) or is recomputed exactly when that is cheaper or loses definiteness.
        """
        if len(A) == 0:
            return
        if self.fitter is None:
            p, token = self.store.propose_batch(A, X, Y), None
        else:
            U, inv = np.unique(A, return_inverse=True)
            old = self.store.state_of(U)
            if self.laplace_at == "posterior" and self.fitter.method != "online":
                # expand the log-likelihood at the MAP under the action's conditional prior
                # N(Γ_a μ̄, Σ0): b = G θ̂ + ∇log L(θ̂) with ∇log L(θ̂) = P0 (θ̂ − Γ_a μ̄)
                P0 = np.array(old[4])
                center = self._mixing_dense(U) @ self.effects.mean.reshape(
                    self.n_effects, self.dim
                )
                mode, G, token = self.fitter.propose(
                    U, inv, X, Y, old[3], rng, prior=(P0, center)
                )
                b = np.einsum("uij,uj->ui", G, mode) + np.einsum("uij,uj->ui", P0, mode - center)
            else:
                mode, G, token = self.fitter.propose(U, inv, X, Y, old[3], rng)
                b = np.einsum("uij,uj->ui", G, mode)
            p = self.store.propose_set(U, np.bincount(inv, minlength=len(U)), G, b, old)
        self._apply(p, len(A), token)

    def _effects_change(self, p: dict):
        """Proposed effect posterior after the touched actions' M and P0·m change, or None.

        None means: recompute exactly (cheaper for large batches, or a downdate that would
        lose positive definiteness).
        """
        U = p["U"]
        L, d = self.n_effects, self.dim
        if len(U) > 1 and (self.factored or len(U) * d >= (L * d) // 2):
            return None  # an exact recompute is cheaper than this many low-rank terms
        lam, V = np.linalg.eigh(p["dM"])
        W = V * np.sqrt(np.abs(lam))[:, None, :]  # dM_j = W_j diag(sign λ_j) W_jᵀ
        signs = np.sign(lam)
        try:
            if self.factored:
                if len(U) != 1:
                    return None
                B = self.prior.mixing
                lo, hi = B.indptr[U[0]], B.indptr[U[0] + 1]
                idx, bval = B.indices[lo:hi], B.data[lo:hi]
                if len(idx) == 0:
                    return None
                return self.effects.proposed_lowrank(
                    idx, bval[:, None, None] * W[0], bval[:, None] * p["dpm"][0], signs[0]
                )
            if len(U) * d >= (L * d) // 2:
                return None
            Bu = self._mixing_dense(U)  # (u, L)
            Weff = np.einsum("jl,jdk->ldjk", Bu, W).reshape(L * d, -1)
            dh = (Bu.T @ p["dpm"]).reshape(-1)
            return self.effects.proposed_lowrank(Weff, dh, signs.reshape(-1))
        except NotPositiveDefiniteError:
            return None

    def _apply(self, p: dict, n_obs: int, token=None) -> None:
        """Commit new statistics of the touched actions and update the effect posterior."""
        proposal = self._effects_change(p)
        U = p["U"]
        new = self.store.slot_of[U] < 0
        slots = self.store.commit_batch(p)
        if np.any(new):
            self._slot_rows(slots[new], U[new])
            self._order_slots()
        if token is not None:
            self.fitter.commit(token)
        self.n_updates += n_obs
        if proposal is None:
            self.effects = self._exact_effects()
            return
        self.effects.commit(*proposal)
        self._since_refactor += n_obs
        self._maybe_refactor()

    # ------------------------------------------------------------------ catalogue
    def add_action(self, mixing_row: np.ndarray, action_cov: np.ndarray | None = None) -> int:
        """Append an action with its mixing row (L,); returns its index."""
        prior = self.prior.with_action(mixing_row, action_cov)
        self.prior = prior
        self.n_actions = prior.n_actions
        self.store.set_action_cov(np.asarray(prior.action_cov))
        self.store.set_n_actions(prior.n_actions)
        return self.n_actions - 1

    # ------------------------------------------------------------------ persistence
    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        cfg = {
            "noise_std": self.noise_std,
            "factored": self.factored,
            "refactor_every": self.refactor_every,
            "since_refactor": self._since_refactor,
            "n_updates": self.n_updates,
            "width": self._width,
            "glm": None if self.fitter is None else self.fitter.config(),
            "laplace_at": self.laplace_at,
        }
        arrays = prior_arrays(self.prior)
        if self.fitter is not None:
            arrays.update(self.fitter.state())
        arrays.update({f"store.{k}": v for k, v in self.store.state().items()})
        n = self.store.n
        arrays["mix_idx"] = self._mix_idx[:n].copy()
        arrays["mix_val"] = self._mix_val[:n].copy()
        arrays["effects.C"] = self.effects.C
        arrays["effects.h"] = self.effects.h
        arrays["effects.mean"] = self.effects.mean
        return cfg, arrays

    @classmethod
    def from_state(cls, cfg: dict[str, Any], arrays: dict[str, np.ndarray]) -> MixedEffectModel:
        prior = prior_from_arrays(arrays)
        likelihood, laplace = glm_from_config(cfg.get("glm"))
        model = cls(
            prior, cfg["noise_std"], cfg["factored"], cfg["refactor_every"], likelihood, laplace,
            cfg.get("laplace_at", "posterior"),
        )
        if model.fitter is not None:
            model.fitter.load_state(arrays)
        model.store.load_state(
            {k[len("store.") :]: v for k, v in arrays.items() if k.startswith("store.")}
        )
        n = model.store.n
        cap = model.store.actions.shape[0]
        model._width = int(cfg["width"])
        model._mix_idx = np.zeros((cap, model._width), dtype=np.int64)
        model._mix_val = np.zeros((cap, model._width))
        model._mix_idx[:n] = arrays["mix_idx"]
        model._mix_val[:n] = arrays["mix_val"]
        model._csr_key = None
        model.effects.C = np.array(arrays["effects.C"], dtype=np.float64, order="C")
        model.effects.h = arrays["effects.h"].copy()
        model.effects.mean = arrays["effects.mean"].copy()
        model._since_refactor = int(cfg["since_refactor"])
        model.n_updates = int(cfg["n_updates"])
        model._order_slots()
        return model


def glm_from_config(glm: dict[str, Any] | None) -> tuple[Likelihood | None, dict | None]:
    """The likelihood and Laplace options saved by ``LaplaceFitter.config()``."""
    if glm is None:
        return None, None
    likelihood = get_likelihood(glm["likelihood"], binarize=glm["binarize"])
    laplace = {k: glm[k] for k in ("method", "batch_size", "ridge", "tol", "max_iter")}
    return likelihood, laplace


def prior_arrays(prior: MixedEffectPrior) -> dict[str, np.ndarray]:
    """The arrays that define a :class:`MixedEffectPrior` (mixing as CSR parts)."""
    B = prior.mixing
    return {
        "prior.effect_mean": np.asarray(prior.effect_mean),
        "prior.effect_cov": np.asarray(prior.effect_cov),
        "prior.mixing.data": B.data,
        "prior.mixing.indices": B.indices.astype(np.int64),
        "prior.mixing.indptr": B.indptr.astype(np.int64),
        "prior.mixing.shape": np.asarray(B.shape, dtype=np.int64),
        "prior.action_cov": np.asarray(prior.action_cov),
    }


def prior_from_arrays(arrays: dict[str, np.ndarray]) -> MixedEffectPrior:
    shape = tuple(int(s) for s in arrays["prior.mixing.shape"])
    B = sp.csr_matrix(
        (
            arrays["prior.mixing.data"],
            arrays["prior.mixing.indices"],
            arrays["prior.mixing.indptr"],
        ),
        shape=shape,
    )
    return MixedEffectPrior(
        arrays["prior.effect_mean"], arrays["prior.effect_cov"], B, arrays["prior.action_cov"]
    )
