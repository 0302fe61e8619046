"""Per-action Laplace approximations of a GLM likelihood (docs/math.md §4).

Each observed action a keeps a mode μ_a and a curvature G_a = Σ f'(xᵀμ_a) x xᵀ; the Gaussian
approximation N(μ_a, G_a⁻¹) of its likelihood enters the mixed-effect posterior through the
statistics ``G ← G_a`` and ``b ← G_a μ_a`` (so G_a is never inverted). Three refit methods:

``"exact"``
    Penalised Newton/IRLS on the action's whole history, warm-started at the previous mode,
    to ``tol`` (default). The history is kept as its distinct rows (x, y) with their counts,
    which the fit takes as weights: the same sums, and a cost O(distinct rows · d² ·
    iterations) per refit, which stops growing when contexts repeat (a pool, users).
``"minibatch"``
    The same fit on a random minibatch of ``batch_size`` rows of the history (always all rows
    while the history is no longer than that), rows weighted n_a / batch_size so the curvature
    estimates the whole history's: the authors' scheme, with a cost that does not grow with n.
``"online"``
    One Newton step from the previous Gaussian approximation per new observation batch
    (assumed-density filtering): O(d³) per update, no history kept.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..likelihoods import Likelihood
from .newton import newton_fit, online_step

METHODS = ("exact", "minibatch", "online")


class LaplaceFitter:
    """Modes and histories of the observed actions of one GLM model.

    Parameters
    ----------
    likelihood : Likelihood
    dim : int
    method : {"exact", "minibatch", "online"}
    batch_size : int
        Minibatch size for ``method="minibatch"`` (the paper's code: 30, MovieLens 100).
    ridge : float
        The penalty ridge/2·|θ|² of the fit (the paper: 1e-3).
    tol, max_iter : Newton stopping rule.
    """

    def __init__(
        self,
        likelihood: Likelihood,
        dim: int,
        method: str = "exact",
        batch_size: int = 30,
        ridge: float = 1e-3,
        tol: float = 1e-8,
        max_iter: int = 100,
    ) -> None:
        self.likelihood = likelihood
        self.dim = dim
        self.method = method
        self.batch_size = int(batch_size)
        self.ridge = float(ridge)
        self.tol = float(tol)
        self.max_iter = int(max_iter)
        self.modes: dict[int, np.ndarray] = {}
        # growable per-action history buffers: action -> [X (cap, d), y (cap,), w (cap,), n];
        # "exact" keeps distinct rows with their counts w, "minibatch" every row (w = 1)
        self._hist: dict[int, list] = {}

    @property
    def keeps_history(self) -> bool:
        return self.method != "online"

    @property
    def merges(self) -> bool:
        """Whether the history is kept as distinct rows with counts (the exact refits)."""
        return self.method == "exact"

    def history(self, a: int) -> tuple[np.ndarray, np.ndarray]:
        """Contexts (n_a, d) and rewards (n_a,) observed for action ``a`` (in their order;
        with the exact method, repeated rows next to their first occurrence)."""
        X, y, w = self.rows(a)
        if not self.merges:
            return X, y
        reps = w.astype(np.int64)
        return np.repeat(X, reps, axis=0), np.repeat(y, reps)

    def rows(self, a: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The stored rows of action ``a``: contexts, rewards and counts (views)."""
        if a not in self._hist:
            return np.zeros((0, self.dim)), np.zeros(0), np.zeros(0)
        X, y, w, n = self._hist[a]
        return X[:n], y[:n], w[:n]

    def merged(self, a: int, X: np.ndarray, y: np.ndarray):
        """Action ``a``'s distinct rows and counts after the new rows ``X``, ``y``: a repeated
        row adds one to its count, a new one is appended (first occurrences in order).
        Nothing is mutated."""
        Xh, yh, wh = self.rows(a)
        X = X + 0.0  # −0.0 → 0.0: equal rows have equal bytes
        if len(y) == 1:  # one new row: one comparison pass
            hit = np.flatnonzero((Xh == X[0]).all(axis=1) & (yh == y[0]))
            if len(hit):
                w = wh.copy()
                w[hit[0]] += 1.0
                return Xh, yh, w
            return np.concatenate([Xh, X]), np.concatenate([yh, y]), np.append(wh, 1.0)
        keys = np.concatenate([np.concatenate([Xh, X]), np.concatenate([yh, y])[:, None]],
                              axis=1)
        _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
        target = first[inverse.reshape(-1)][len(yh):]  # each new row's first occurrence
        old = target < len(yh)
        w_old = wh.copy()
        np.add.at(w_old, target[old], 1.0)
        fresh, w_new = np.unique(target[~old], return_counts=True)  # in order of appearance
        return (np.concatenate([Xh, keys[fresh, :-1]]), np.concatenate([yh, keys[fresh, -1]]),
                np.concatenate([w_old, w_new.astype(np.float64)]))

    # ------------------------------------------------------------------ refit
    def propose(
        self,
        U: np.ndarray,
        inv: np.ndarray,
        Xa: np.ndarray,
        Y: np.ndarray,
        G_old: np.ndarray,
        rng: np.random.Generator | None,
        prior: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, Any]:
        """New modes (u, d) and curvatures (u, d, d) of the touched actions ``U``.

        ``inv`` maps each new row of ``Xa`` (n, d), ``Y`` (n,) to its index in ``U``.
        With ``prior=(P0 (u, d, d), μ0 (u, d))`` the mode is the *posterior* mode under
        N(μ0, P0⁻¹) (Chapelle & Li's MAP) instead of the ridge-penalised likelihood mode.
        Nothing is mutated; pass the returned token to :meth:`commit`.
        """
        u, d = len(U), self.dim
        start = prior[1] if prior is not None else np.zeros((u, d))
        init = np.stack([self.modes.get(int(a), start[j]) for j, a in enumerate(U)]) if u else (
            np.zeros((0, d))
        )
        penalty = self.ridge if prior is None else np.asarray(prior[0])
        center = None if prior is None else prior[1]
        if self.method == "online":
            mode, G = self._online_step(init, G_old, inv, Xa, Y, penalty)
            return mode, G, (U, mode, inv, Xa, Y, None)
        if self.method == "minibatch":
            X_all, y_all, seg, weights = self._minibatch(U, inv, Xa, Y, rng)
        else:  # the distinct rows of the history ∪ the new rows, with their counts
            order = np.argsort(inv, kind="stable")
            bounds = np.searchsorted(inv[order], np.arange(u + 1))
            tables = [self.merged(a, Xa[order[bounds[j]:bounds[j + 1]]],
                                  Y[order[bounds[j]:bounds[j + 1]]])
                      for j, a in enumerate(U.tolist())]  # per touched action
            X_all = np.concatenate([t[0] for t in tables])
            y_all = np.concatenate([t[1] for t in tables])
            weights = np.concatenate([t[2] for t in tables])
            seg = np.repeat(np.arange(u), [len(t[1]) for t in tables])
        mode, G, _ = newton_fit(
            self.likelihood, X_all, y_all, seg, u, init, penalty, self.tol, self.max_iter,
            weights, center,
        )
        return mode, G, (U, mode, inv, Xa, Y, tables if self.merges else None)

    def pseudo_observations(
        self,
        U: np.ndarray,
        inv: np.ndarray,
        Xa: np.ndarray,
        Y: np.ndarray,
        G_old: np.ndarray,
        rng: np.random.Generator | None,
        at: str = "likelihood",
        P0: np.ndarray | None = None,
        center: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray, Any]:
        """The Gaussian pseudo-observations (G_a, b_a) of the touched actions' likelihoods.

        They replace the Gaussian statistics Σ x xᵀ/σ² and Σ y x/σ² of the structured
        posteriors (docs/math.md §4; sDM's App. E.1: G_a ← Ğ_a, B_a ← Ğ_a μ̆_a):

        * ``at="likelihood"`` (or ``method="online"``): the expansion at the ridge-penalised
          maximum θ̆ (or the online Newton step), G = Σ f'(xᵀθ̆) x xᵀ and b = G θ̆;
        * ``at="posterior"``: at the MAP θ̂ under the conditional prior N(``center``,
          ``P0``⁻¹) (``P0`` (u, d, d), ``center`` (u, d)), b = G θ̂ + ∇log L(θ̂) with
          ∇log L(θ̂) = P0 (θ̂ − center) at the MAP.

        Nothing is mutated; pass the returned token to :meth:`commit`. Returns G (u, d, d),
        b (u, d) and the token.
        """
        if at == "posterior" and self.method != "online":
            mode, G, token = self.propose(U, inv, Xa, Y, G_old, rng, prior=(P0, center))
            b = np.einsum("uij,uj->ui", G, mode) + np.einsum("uij,uj->ui", P0, mode - center)
        else:
            mode, G, token = self.propose(U, inv, Xa, Y, G_old, rng)
            b = np.einsum("uij,uj->ui", G, mode)
        return G, b, token

    def _minibatch(self, U, inv, Xa, Y, rng):
        """At most ``batch_size`` rows of history ∪ new rows per touched action, drawn uniformly
        with replacement (all rows while there are no more than that), weighted n / batch_size.

        Only the drawn rows are read, so the cost does not grow with the history.
        """
        order = np.argsort(inv, kind="stable")
        bounds = np.searchsorted(inv[order], np.arange(len(U) + 1))
        Xs, ys, segs, ws = [], [], [], []
        for j, a in enumerate(U.tolist()):  # per touched action: O(batch_size) work each
            rows = order[bounds[j] : bounds[j + 1]]
            Xh, yh = self.history(a)
            n_h, n_tot = len(yh), len(yh) + len(rows)
            if n_tot <= self.batch_size:
                Xj, yj, wj = np.concatenate([Xh, Xa[rows]]), np.concatenate([yh, Y[rows]]), 1.0
            else:
                draw = rng.integers(0, n_tot, self.batch_size)
                old = draw < n_h
                Xj = np.where(old[:, None], Xh[np.minimum(draw, n_h - 1)] if n_h else 0.0,
                              Xa[rows[np.maximum(draw - n_h, 0)]])
                yj = np.where(old, yh[np.minimum(draw, n_h - 1)] if n_h else 0.0,
                              Y[rows[np.maximum(draw - n_h, 0)]])
                wj = n_tot / self.batch_size
            Xs.append(Xj)
            ys.append(yj)
            segs.append(np.full(len(yj), j))
            ws.append(np.full(len(yj), wj))
        return np.concatenate(Xs), np.concatenate(ys), np.concatenate(segs), np.concatenate(ws)

    def _online_step(self, init, G_old, inv, Xa, Y, penalty):
        """One Newton step from N(μ_old, (G_old + penalty)⁻¹) with the new rows."""
        return online_step(self.likelihood, init, G_old, inv, Xa, Y, penalty)

    def commit(self, token) -> None:
        U, mode, inv, Xa, Y, tables = token
        for j, a in enumerate(U.tolist()):  # bookkeeping per touched action, O(1) each
            self.modes[a] = mode[j]
        if not self.keeps_history:
            return
        if tables is not None:  # the merged tables of the refit
            for a, (X, y, w) in zip(U.tolist(), tables):
                self._store(a, X, y, w)
            return
        order = np.argsort(inv, kind="stable")
        bounds = np.searchsorted(inv[order], np.arange(len(U) + 1))
        for j, a in enumerate(U.tolist()):
            rows = order[bounds[j] : bounds[j + 1]]
            self._append(a, Xa[rows], Y[rows], np.ones(len(rows)))

    def _store(self, a: int, X: np.ndarray, y: np.ndarray, w: np.ndarray) -> None:
        """Replace action ``a``'s rows by a :meth:`merged` table (its old rows, then new
        ones)."""
        n_old = self._hist[a][3] if a in self._hist else 0
        buf = self._hist.get(a)
        if buf is not None:
            buf[2][:n_old] = w[:n_old]  # the counts of the old rows may have grown
            buf[3] = n_old
        self._append(a, X[n_old:], y[n_old:], w[n_old:])

    def _append(self, a: int, X: np.ndarray, y: np.ndarray, w: np.ndarray) -> None:
        buf = self._hist.get(a)
        if buf is None:
            cap = max(8, len(y))
            buf = [np.zeros((cap, self.dim)), np.zeros(cap), np.zeros(cap), 0]
            self._hist[a] = buf
        n0 = buf[3]
        n = n0 + len(y)
        if n > len(buf[1]):
            cap = max(n, 2 * len(buf[1]))
            grown = [np.zeros((cap, self.dim)), np.zeros(cap), np.zeros(cap)]
            for new, old in zip(grown, buf[:3]):
                new[:n0] = old[:n0]
            buf[:3] = grown
        buf[0][n0:n], buf[1][n0:n], buf[2][n0:n] = X, y, w
        buf[3] = n

    # ------------------------------------------------------------------ persistence
    def config(self) -> dict[str, Any]:
        return {
            "likelihood": self.likelihood.name,
            "binarize": bool(getattr(self.likelihood, "binarize", False)),
            "method": self.method,
            "batch_size": self.batch_size,
            "ridge": self.ridge,
            "tol": self.tol,
            "max_iter": self.max_iter,
        }

    def state(self) -> dict[str, np.ndarray]:
        acts = np.array(sorted(self.modes), dtype=np.int64)
        modes = np.array([self.modes[a] for a in acts.tolist()]).reshape(-1, self.dim)
        h_acts = np.array(sorted(self._hist), dtype=np.int64)
        hs = [self.rows(a) for a in h_acts.tolist()]
        return {
            "laplace.actions": acts,
            "laplace.modes": modes,
            "laplace.hist_actions": h_acts,
            "laplace.hist_counts": np.array([len(h[1]) for h in hs], dtype=np.int64),
            "laplace.hist_X": np.concatenate([h[0] for h in hs]) if hs else np.zeros((0, self.dim)),
            "laplace.hist_y": np.concatenate([h[1] for h in hs]) if hs else np.zeros(0),
            "laplace.hist_w": np.concatenate([h[2] for h in hs]) if hs else np.zeros(0),
        }

    def load_state(self, arrays: dict[str, np.ndarray]) -> None:
        acts = arrays["laplace.actions"].tolist()
        self.modes = {a: arrays["laplace.modes"][j].copy() for j, a in enumerate(acts)}
        self._hist = {}
        counts = arrays["laplace.hist_counts"]
        starts = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        # files saved before the counts were kept hold every row once
        w = arrays.get("laplace.hist_w", np.ones(len(arrays["laplace.hist_y"])))
        for j, a in enumerate(arrays["laplace.hist_actions"].tolist()):
            sl = slice(starts[j], starts[j + 1])
            self._append(a, arrays["laplace.hist_X"][sl], arrays["laplace.hist_y"][sl], w[sl])
