"""Per-action conditional Gaussian posteriors, stored only for the actions that were observed.

For every action i the conditional posterior given its prior mean ``c_i`` (the effect mix
``Σ_l b_il ψ_l`` for meTS, a fixed prior mean for LinTS) is

    θ_i | c_i ~ N(S_i (P0_i c_i + b_i), S_i),   S_i = (P0_i + G_i)⁻¹,

with ``P0_i = Σ0_i⁻¹``, ``G_i = σ⁻² Σ x xᵀ`` and ``b_i = σ⁻² Σ y x`` (docs/math.md §1). The
formulas are those of :mod:`~mixedts.models.linear_gaussian` (shared with the many-runs
engine); this class holds them for the observed actions only. Actions
never observed have ``S_i = Σ0_i`` and ``b_i = 0``, so they share the prior's matrices: memory
is O(observed actions · d²), which is what lets a catalogue of 10⁶ actions fit in memory.

Observed actions live in *slots* (dense stacks grown by doubling); ``slot_of[a]`` is the slot
of action ``a`` or −1.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from ..linalg import batched_quadratic, rowdot, stacked_matvec, sym_inv
from .linear_gaussian import (
    ROWS,
    blasable,
    conditional_posterior,
    conditional_scores,
    effect_terms,
    observe,
    observe_one,
    sufficient_statistics,
)

_SLOT_ARRAYS = ("actions", "counts", "G", "b", "S", "m")


class ActionStore:
    """Sufficient statistics and conditional covariances of the observed actions.

    Parameters
    ----------
    n_actions : int
        K, the number of actions.
    action_cov : ndarray, shape (d, d) or (K, d, d)
        Σ0, shared or per action.
    noise_var : float
        σ², the reward noise variance.
    prior_mean : ndarray, shape (K, d), optional
        A fixed prior mean μ0_i per action (independent models). It enters as the prior part
        ``P0 μ0`` of ``b``, so that ``m = S b`` is the posterior mean. Mixed-effect models
        leave it out: their prior mean is the effect mix, supplied at scoring time. With a
        prior mean there are no effects, so :meth:`propose` skips their terms (w, dpm: None).
    """

    def __init__(
        self,
        n_actions: int,
        action_cov: np.ndarray,
        noise_var: float,
        prior_mean: np.ndarray | None = None,
    ) -> None:
        self.noise_var = float(noise_var)
        self.prior_mean = prior_mean
        self.action_cov = action_cov
        self.shared = action_cov.ndim == 2
        d = action_cov.shape[-1]
        self.dim = d
        self.P0 = sym_inv(action_cov) if self.shared else None
        self.slot_of = np.full(n_actions, -1, dtype=np.int64)
        self.n = 0
        #: whether slot i holds action i for every action (see :meth:`sort_slots`)
        self.ordered = False
        cap = 16
        self.actions = np.zeros(cap, dtype=np.int64)
        self.counts = np.zeros(cap, dtype=np.int64)
        self.G = np.zeros((cap, d, d))
        self.b = np.zeros((cap, d))
        self.S = np.zeros((cap, d, d))
        self.m = np.zeros((cap, d))
        self.P0s = None if self.shared else np.zeros((cap, d, d))

    # ------------------------------------------------------------------ catalogue
    def set_n_actions(self, n_actions: int) -> None:
        """Grow ``slot_of`` to ``n_actions`` entries (new actions unobserved)."""
        extra = n_actions - self.slot_of.shape[0]
        if extra > 0:
            self.ordered = False
            self.slot_of = np.concatenate([self.slot_of, np.full(extra, -1, dtype=np.int64)])

    def set_action_cov(self, action_cov: np.ndarray) -> None:
        """Replace Σ0 (only appended rows may differ: used by ``add_action``)."""
        self.action_cov = action_cov

    def set_prior_mean(self, prior_mean: np.ndarray) -> None:
        """Replace μ0 (only appended rows may differ: used by ``add_action``)."""
        self.prior_mean = prior_mean

    def prior_b(self, actions: np.ndarray) -> np.ndarray:
        """The prior part ``P0 μ0`` of ``b`` for ``actions`` (zeros without a prior mean)."""
        if self.prior_mean is None:
            return np.zeros((len(actions), self.dim))
        return np.einsum("nij,nj->ni", self.prior_prec(actions), self.prior_mean[actions])

    # ------------------------------------------------------------------ slots
    def prior_cov(self, actions: np.ndarray) -> np.ndarray:
        if self.shared:
            return np.broadcast_to(self.action_cov, (len(actions), self.dim, self.dim))
        return self.action_cov[actions]

    def prior_prec(self, actions: np.ndarray) -> np.ndarray:
        if self.shared:
            return np.broadcast_to(self.P0, (len(actions), self.dim, self.dim))
        return sym_inv(self.action_cov[actions])

    def P0_slots(self, slots: np.ndarray | slice) -> np.ndarray:
        """P0 of the given slots, (n, d, d) (a broadcast view when shared)."""
        if self.shared:
            n = len(range(*slots.indices(self.n))) if isinstance(slots, slice) else len(slots)
            return np.broadcast_to(self.P0, (n, self.dim, self.dim))
        return self.P0s[slots]

    def _grow(self, need: int) -> None:
        cap = self.actions.shape[0]
        if need <= cap:
            return
        new_cap = max(need, 2 * cap)
        names = _SLOT_ARRAYS + (() if self.shared else ("P0s",))
        for name in names:
            old = getattr(self, name)
            new = np.zeros((new_cap, *old.shape[1:]), dtype=old.dtype)
            new[: self.n] = old[: self.n]
            setattr(self, name, new)

    def new_slots(self, actions: np.ndarray) -> np.ndarray:
        """Allocate slots (at the prior) for unobserved ``actions``; returns their slots."""
        k = len(actions)
        self._grow(self.n + k)
        slots = np.arange(self.n, self.n + k)
        self.ordered = False
        self.actions[slots] = actions
        self.counts[slots] = 0
        self.G[slots] = 0.0
        self.b[slots] = self.prior_b(actions)
        self.S[slots] = self.prior_cov(actions)
        self.m[slots] = np.einsum("nij,nj->ni", self.S[slots], self.b[slots])
        if not self.shared:
            self.P0s[slots] = self.prior_prec(actions)
        self.slot_of[actions] = slots
        self.n += k
        return slots

    def sort_slots(self) -> np.ndarray | None:
        """Once every action is observed, put action i in slot i (so that the per-slot scores
        are the per-action ones, with no gather or scatter); returns the permutation applied
        to the slots (new slot i was old slot ``perm[i]``), or None when nothing moved."""
        n = self.n
        if self.ordered or n != len(self.slot_of):
            return None
        perm = self.slot_of.copy()
        for name in _SLOT_ARRAYS + (() if self.shared else ("P0s",)):
            arr = getattr(self, name)
            arr[:n] = arr[perm]
        self.slot_of = np.arange(n, dtype=np.int64)
        self.ordered = True
        return perm

    def state_of(self, actions: np.ndarray):
        """(S, b, m, G, P0) of ``actions`` whether observed or not; copies, shape (n, …)."""
        slots = self.slot_of[actions]
        seen = slots >= 0
        S = np.array(self.prior_cov(actions))
        b = self.prior_b(actions)
        m = np.einsum("nij,nj->ni", S, b)
        G = np.zeros_like(S)
        P0 = np.array(self.prior_prec(actions)) if not self.shared else self.P0_slots(slots)
        if np.any(seen):
            s = slots[seen]
            S[seen], b[seen], m[seen], G[seen] = self.S[s], self.b[s], self.m[s], self.G[s]
            if not self.shared:
                P0[seen] = self.P0s[s]
        return S, b, m, G, P0

    # ------------------------------------------------------------------ single update
    def propose(self, a: int, x: np.ndarray, y: float) -> dict:
        """Sherman–Morrison step for one observation of action ``a``; nothing is mutated.

        Returns the new slot values and ``w = P0 S_old x / √c`` (M_a gains ``w wᵀ``) and
        ``dpm = P0 (m_new − m_old)`` (the change of P0 S B that enters the effect posterior),
        which is ``w`` times the scalar ``gain`` (:class:`Observation`).
        """
        slot = self.slot_of[a]
        if slot >= 0:
            S, b, G = self.S[slot], self.b[slot], self.G[slot]
            P0 = self.P0 if self.shared else self.P0s[slot]
        else:
            S = self.action_cov if self.shared else self.action_cov[a]
            P0 = self.P0 if self.shared else sym_inv(S)
            b = self.prior_b(np.array([a]))[0]
            G = np.zeros((self.dim, self.dim))
        P0_eff = P0 if self.prior_mean is None else None
        if slot >= 0 and type(y) is float and blasable(x):  # the slots and P0 are contiguous
            obs = observe_one(S, P0_eff, b, x, y, self.noise_var)
        else:
            obs = observe(S, P0_eff, b, x, y, self.noise_var)
        dG, db = sufficient_statistics(x, y, self.noise_var)
        b_new = b + db
        return {
            "a": a,
            "S": obs.S,
            "b": b_new,
            "m": obs.S.dot(b_new),  # (fresh, contiguous: the bits of ``@``)
            "G": G + dG,
            "P0": P0,
            "w": obs.w,
            "dpm": obs.eta,
            "gain": obs.gain,
        }

    def observe_in_place(self, a: int, x: np.ndarray, y: float):
        """:meth:`propose` then :meth:`commit` of one observation of an *observed* action
        ``a``, written into its slot: the online round's step. The same operations in the same
        order as ``propose`` (:func:`observe_one`, :func:`sufficient_statistics`, then
        ``b + db``, ``S' b'`` and ``G + dG``), each result written where ``commit`` would copy
        it, so bitwise the same state in fewer calls and no copies.

        Applies when the slot exists, ``y`` is a Python float and ``x`` is :func:`blasable`
        (the caller's check); a Gaussian step on finite input cannot fail, so nothing needs
        to stay proposed. Returns ``w`` and the gain g (``propose``'s ``dpm`` is w g; None,
        None without effects: a prior mean in ``b``)."""
        slot = int(self.slot_of[a])  # (an int: the rows below are views, written in place)
        S, b, G = self.S[slot], self.b[slot], self.G[slot]
        nv = self.noise_var
        v = x.dot(S)
        root = math.sqrt(nv + float(x.dot(v)))
        s = v / root
        w = gain = None
        if self.prior_mean is None:  # w and the gain from the old b, before b moves
            w = s.dot(self.P0 if self.shared else self.P0s[slot])
            gain = (y - float(v.dot(b))) / root
        # (linalg.outer written out on this hot path: the same BLAS product)
        np.subtract(S, s[:, None].dot(s[None]), out=S)  # S' = S − s sᵀ
        xs = x / nv  # dG = x xsᵀ, db = xs y (sufficient_statistics)
        np.add(G, x[:, None].dot(xs[None]), out=G)
        xs *= y
        np.add(b, xs, out=b)
        S.dot(b, out=self.m[slot])  # m' = S' b'
        self.counts[slot] += 1
        return w, gain

    def commit(self, p: dict) -> int:
        a = p["a"]
        slot = self.slot_of[a]
        if slot < 0:
            slot = int(self.new_slots(np.array([a]))[0])
            if not self.shared:
                self.P0s[slot] = p["P0"]
        self.S[slot], self.b[slot], self.m[slot], self.G[slot] = p["S"], p["b"], p["m"], p["G"]
        self.counts[slot] += 1
        return int(slot)

    # ------------------------------------------------------------------ batch update
    def propose_batch(self, A: np.ndarray, Xa: np.ndarray, Y: np.ndarray) -> dict:
        """Exact Gaussian update of every touched action by a batch; nothing is mutated.

        Parameters
        ----------
        A : (n,) actions, Xa : (n, d) their contexts, Y : (n,) rewards.

        Returns the dict of :meth:`propose_set`.
        """
        U, inv = np.unique(A, return_inverse=True)
        u, d, s2 = len(U), self.dim, self.noise_var
        n = len(A)
        # per-action sums as one sparse (u, n) indicator product (np.add.at is far slower)
        ind = sp.csr_matrix((np.full(n, 1.0 / s2), (inv, np.arange(n))), shape=(u, n))
        G_add = np.asarray(ind @ (Xa[:, :, None] * Xa[:, None, :]).reshape(n, d * d))
        b_add = np.asarray(ind @ (Xa * Y[:, None]))
        old = self.state_of(U)
        return self.propose_set(
            U, np.bincount(inv, minlength=u), old[3] + G_add.reshape(u, d, d), old[1] + b_add, old
        )

    def propose_set(
        self, U: np.ndarray, counts: np.ndarray, G_new: np.ndarray, b_new: np.ndarray, old=None
    ) -> dict:
        """Replace the statistics of actions ``U`` (u,) by ``G_new`` (u, d, d), ``b_new`` (u, d).

        Used by the Gaussian batch update and by Laplace refits (where G changes arbitrarily).
        Returns the touched actions ``U``, their new ``S, b, m, G``, ``dM`` (u, d, d) =
        M_new − M_old (symmetric; positive semidefinite for Gaussian updates) and
        ``dpm`` (u, d) = P0 (m_new − m_old). Nothing is mutated.
        """
        S_old, _, m_old, _, P0 = self.state_of(U) if old is None else old
        S_new, m_new = conditional_posterior(P0, G_new, b_new)
        dM = P0 @ (S_old - S_new) @ P0
        return {
            "U": U,
            "counts": counts,
            "S": S_new,
            "b": b_new,
            "m": m_new,
            "G": G_new,
            "P0": np.array(P0),
            "dM": 0.5 * (dM + np.swapaxes(dM, -1, -2)),
            "dpm": np.einsum("uij,uj->ui", P0, m_new - m_old),
        }

    def commit_batch(self, p: dict) -> np.ndarray:
        U = p["U"]
        slots = self.slot_of[U]
        new = slots < 0
        if np.any(new):
            slots[new] = self.new_slots(U[new])
            if not self.shared:
                self.P0s[slots[new]] = p["P0"][new]
        self.S[slots], self.b[slots], self.m[slots], self.G[slots] = (
            p["S"], p["b"], p["m"], p["G"],
        )
        self.counts[slots] += p["counts"]
        return slots

    # ------------------------------------------------------------------ exact refresh
    def refresh(self) -> None:
        """Recompute every S_i = (P0_i + G_i)⁻¹ and m_i = S_i b_i exactly (bounds drift)."""
        n = self.n
        if n == 0:
            return
        self.S[:n], self.m[:n] = conditional_posterior(
            self.P0_slots(slice(0, n)), self.G[:n], self.b[:n]
        )

    def M_and_pm(self) -> tuple[np.ndarray, np.ndarray]:
        """M_i = P0 − P0 S_i P0 (n, d, d) and P0 m_i (n, d) for the observed slots."""
        n = self.n
        return effect_terms(self.P0_slots(slice(0, n)), self.S[:n], self.m[:n])

    # ------------------------------------------------------------------ scores
    def prior_var(self, x: np.ndarray, n_actions: int) -> np.ndarray | float:
        """``x_iᵀ Σ0_i x_i`` for every action: a scalar when both are shared, else (K,)."""
        if self.shared:
            if x.ndim == 1:
                return float(x @ self.action_cov @ x)
            return rowdot(x @ self.action_cov, x)
        # per-action Σ0: only the unobserved actions (the observed ones are overwritten)
        out = np.zeros(n_actions)
        idx = np.flatnonzero(self.slot_of < 0)
        if len(idx):
            cov = self.action_cov[idx]
            out[idx] = batched_quadratic(cov, x) if x.ndim == 1 else rowdot(
                stacked_matvec(cov, x[idx]), x[idx]
            )
        return out

    def prior_var_rounds(self, xs: np.ndarray, n_actions: int) -> np.ndarray:
        """``x_iᵀ Σ0_i x_i`` for n rounds at once, a new (n, K) array: ``xs`` (n, 1, d) for
        shared contexts or (n, K, d); the observed slots' entries are the caller's to
        overwrite."""
        if self.shared:
            return np.broadcast_to(np.einsum("...i,ij,...j->...", xs, self.action_cov, xs),
                                   (len(xs), n_actions)).copy()
        return np.einsum("...i,...ij,...j->...", xs, self.action_cov, xs)

    def observed_scores(self, x: np.ndarray, prior_means: np.ndarray,
                        premultiplied: bool = False):
        """Mean and variance of ``x_aᵀ θ_a | c_a`` for the observed slots.

        ``x_aᵀ S_a (P0 c_a + b_a) = (P0 S_a x_a)·c_a + x_a·m_a``: one pass over the stacked
        ``S`` (the benchmark floor) plus a few passes over (n, d) arrays.

        Parameters
        ----------
        x : (d,) shared or (K, d) per action
        prior_means : (n, d) array, a pair (sparse (n, L) mixing, (L, d) effects), or None
            The conditional prior mean c_a of each observed slot, given as ``prior_means`` or
            as the product ``mixing @ effects``; None when the prior mean is already part of
            ``b`` (independent models), which skips a pass.
        premultiplied : bool
            ``prior_means`` are P0_a c_a already (a shared P0 folded into the effects by the
            caller: one (L, d) product instead of a pass over the slots).

        Returns
        -------
        mean, var : (n,)
        """
        n = self.n
        xo = x if x.ndim == 1 or self.ordered else x[self.actions[:n]]
        if isinstance(prior_means, tuple):
            mixing, effects = prior_means
            prior_means = mixing @ effects
        P0 = self.P0 if self.shared else self.P0s[:n]
        if premultiplied:
            P0 = None
        return conditional_scores(self.S[:n], self.b[:n], xo, prior_means, P0, ROWS,
                                  m=self.m[:n])

    # ------------------------------------------------------------------ persistence
    def state(self) -> dict[str, np.ndarray]:
        n = self.n
        out = {name: getattr(self, name)[:n].copy() for name in _SLOT_ARRAYS}
        if not self.shared:
            out["P0s"] = self.P0s[:n].copy()
        out["slot_of"] = self.slot_of.copy()
        return out

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        n = int(arrays["actions"].shape[0])
        self.n = 0
        self.ordered = False
        self._grow(max(n, 16))
        for name in _SLOT_ARRAYS + (() if self.shared else ("P0s",)):
            getattr(self, name)[:n] = arrays[name]
        self.n = n
        self.slot_of = arrays["slot_of"].astype(np.int64).copy()
