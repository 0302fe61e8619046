"""The Laplace refits of R runs in one pass: :class:`LaplaceFitter` with a leading runs axis.

In lockstep every run observes one row per round, for its own touched action. Each (run,
action) keeps its rows as the one-run fitter does (the exact method: its distinct rows with
their counts, first occurrences in order; the minibatch method: every row in order), in one
pool where each (run, action) owns a contiguous slice that doubles when full, so that the rows
of the R touched actions are gathered in O(rows), grouped by run, and the R refits are one
:func:`~mixedts.models.newton.newton_fit` over R segments (each segment's iterates depend on its
own rows only: a run's fit is the one-run fit). The minibatch draws come from each run's
generator as the one-run fitter draws them, and the online method is the same one Newton step
(:func:`~mixedts.models.newton.online_step`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..likelihoods import Likelihood
from .laplace import METHODS
from .newton import newton_fit, online_step

__all__ = ["BatchedLaplace"]


def _ranges(starts: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The indices start_j, …, start_j + length_j − 1 of every j, concatenated."""
    total = int(lengths.sum())
    return np.arange(total) + np.repeat(starts - (np.cumsum(lengths) - lengths), lengths)


class BatchedLaplace:
    """Modes and rows of the actions of R runs, refitted one touched action per run.

    Parameters
    ----------
    likelihood : Likelihood
    n_runs, n_actions, dim : int
    method, batch_size, ridge, tol, max_iter
        As for :class:`~mixedts.models.laplace.LaplaceFitter` (shared by the runs).

    Examples
    --------
    >>> from mixedts.likelihoods import Logistic
    >>> fit = BatchedLaplace(Logistic(), 2, 3, 2)
    >>> x, A = np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([0, 2])
    >>> for _ in range(3):  # the same row three times: one distinct row, counted thrice
    ...     mode, G, token = fit.propose(A, x, np.array([1.0, 0.0]), np.zeros((2, 2, 2)), None)
    ...     fit.commit(token)
    >>> bool(fit.modes[0, 0, 0] > 0), bool(fit.modes[1, 2, 1] < 0), fit.rows(1, 2)[2].tolist()
    (True, True, [3.0])
    """

    def __init__(self, likelihood: Likelihood, n_runs: int, n_actions: int, dim: int,
                 method: str = "exact", batch_size: int = 30, ridge: float = 1e-3,
                 tol: float = 1e-8, max_iter: int = 100) -> None:
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        self.likelihood = likelihood
        self.method = method
        self.batch_size = int(batch_size)
        self.ridge = float(ridge)
        self.tol = float(tol)
        self.max_iter = int(max_iter)
        R, K, d = n_runs, n_actions, dim
        self.modes = np.zeros((R, K, d))
        self.fitted = np.zeros((R, K), dtype=bool)
        # the pool: (run, action) owns rows start[r, a] : start[r, a] + cap[r, a], n used
        self._start = np.zeros((R, K), dtype=np.int64)
        self._cap = np.zeros((R, K), dtype=np.int64)
        self._n = np.zeros((R, K), dtype=np.int64)
        self._used = 0
        self._X, self._y, self._w = np.zeros((64, d)), np.zeros(64), np.zeros(64)
        self._runs = np.arange(R)

    @property
    def keeps_history(self) -> bool:
        return self.method != "online"

    @property
    def merges(self) -> bool:
        return self.method == "exact"

    def rows(self, run: int, action: int):
        """The stored rows of one (run, action): contexts, rewards, counts (copies)."""
        sl = slice(self._start[run, action], self._start[run, action] + self._n[run, action])
        return self._X[sl].copy(), self._y[sl].copy(), self._w[sl].copy()

    def load(self, runs: Sequence[dict[str, Any]]) -> None:
        """Continue the one-run fitters read by
        :func:`~mixedts.models.batched_inputs.glm_runs_of` (modes and rows)."""
        self.modes[...] = np.stack([r["modes"] for r in runs])
        self.fitted[...] = np.stack([r["fitted"] for r in runs])
        for run, r in enumerate(runs):  # once, at construction: each action's stored rows
            for a in np.unique(r["hist_a"]).tolist():
                sel = r["hist_a"] == a
                self._append(np.array([run]), np.array([a]), r["hist_X"][sel],
                             r["hist_y"][sel], r["hist_w"][sel], np.array([sel.sum()]))

    # ------------------------------------------------------------------ storage
    def _reserve(self, n: int) -> None:
        if n <= len(self._y):
            return
        cap = max(n, 2 * len(self._y))
        X, y, w = np.zeros((cap, self._X.shape[1])), np.zeros(cap), np.zeros(cap)
        u = self._used
        X[:u], y[:u], w[:u] = self._X[:u], self._y[:u], self._w[:u]
        self._X, self._y, self._w = X, y, w

    def _append(self, runs, acts, X, y, w, lengths) -> None:
        """Append ``lengths[j]`` rows (of the concatenated ``X``, ``y``, ``w``) to each
        (runs[j], acts[j]); a slice that is too small moves to the pool's end, doubled."""
        n_old = self._n[runs, acts]
        need = n_old + lengths
        move = need > self._cap[runs, acts]
        if move.any():
            r, a = runs[move], acts[move]
            cap = np.maximum(8, 2 * need[move])
            start = self._used + np.cumsum(cap) - cap
            self._reserve(self._used + int(cap.sum()))
            src = _ranges(self._start[r, a], n_old[move])
            dst = _ranges(start, n_old[move])
            self._X[dst], self._y[dst], self._w[dst] = self._X[src], self._y[src], self._w[src]
            self._start[r, a], self._cap[r, a] = start, cap
            self._used += int(cap.sum())
        dst = _ranges(self._start[runs, acts] + n_old, lengths)
        self._X[dst], self._y[dst], self._w[dst] = X, y, w
        self._n[runs, acts] = need

    # ------------------------------------------------------------------ refit
    def propose(self, A: np.ndarray, x: np.ndarray, y: np.ndarray, G_old: np.ndarray,
                rngs: Sequence[np.random.Generator] | None,
                prior: tuple[np.ndarray, np.ndarray] | None = None):
        """New modes (R, d) and curvatures (R, d, d) of each run's action ``A[r]`` after its
        new row ``x[r]`` (R, d), ``y[r]``; ``G_old`` (R, d, d) their current curvatures.

        ``prior=(P0 (R, d, d), center (R, d))``: the MAP under N(center, P0⁻¹) (the penalty of
        the online step is then P0), as :meth:`LaplaceFitter.propose` with ``prior``. Nothing is
        mutated; pass the returned token to :meth:`commit`.
        """
        R, d = x.shape
        r = self._runs
        start = prior[1] if prior is not None else np.zeros((R, d))
        init = np.where(self.fitted[r, A][:, None], self.modes[r, A], start)
        penalty = self.ridge if prior is None else prior[0]
        center = None if prior is None else prior[1]
        x = x + 0.0  # −0.0 → 0.0, as the one-run fitter stores rows
        if self.method == "online":
            mode, G = online_step(self.likelihood, init, G_old, r, x, y, penalty)
            return mode, G, (A, x, y, mode, None)
        X_all, y_all, w_all, seg, hit = self._rows(A, x, y, rngs)
        mode, G, _ = newton_fit(self.likelihood, X_all, y_all, seg, R, init, penalty, self.tol,
                                self.max_iter, w_all, center)
        return mode, G, (A, x, y, mode, hit)

    def _rows(self, A, x, y, rngs):
        """Each run's rows of its action, grouped by run, as the one-run fitter fits them:
        its distinct rows with the new one merged in (exact), or the minibatch it draws
        (``batch_size`` rows with replacement from history ∪ new row, weighted
        n / batch_size, when there are more rows than that). Also, per run, the pool index of
        the stored row the new one repeats, or −1."""
        R = len(A)
        r = self._runs
        n_hist = self._n[r, A]
        first = self._start[r, A]
        pool = _ranges(first, n_hist)
        runs_h = np.repeat(r, n_hist)
        hit = np.full(R, -1, dtype=np.int64)
        if self.merges:
            Xh, yh, wh = self._X[pool], self._y[pool], self._w[pool]
            same = np.flatnonzero(np.logical_and.reduce(Xh == x[runs_h], axis=1)
                                  & (yh == y[runs_h]))
            if len(same):  # the first repeated row of each run that has one (same is sorted)
                runs_s = runs_h[same]
                lead = np.empty(len(same), dtype=bool)
                lead[0], lead[1:] = True, runs_s[1:] != runs_s[:-1]
                at = same[lead]
                hit[runs_s[lead]] = pool[at]
                wh[at] += 1.0
            new = hit < 0
            # each run's rows, then its new row where it repeats none (rows grouped by run)
            lengths = n_hist + new
            at_new = np.cumsum(lengths)[new] - 1
            total = int(lengths.sum())
            mask = np.ones(total, dtype=bool)
            mask[at_new] = False
            X_all, y_all, w_all = np.empty((total, x.shape[1])), np.empty(total), \
                np.empty(total)
            X_all[mask], y_all[mask], w_all[mask] = Xh, yh, wh
            X_all[at_new], y_all[at_new], w_all[at_new] = x[new], y[new], 1.0
            return X_all, y_all, w_all, np.repeat(r, lengths), hit
        n_tot = n_hist + 1
        drawn = n_tot > self.batch_size
        length = np.where(drawn, self.batch_size, n_tot)
        runs = np.repeat(r, length)
        k = np.arange(length.sum()) - np.repeat(np.cumsum(length) - length, length)
        if drawn.any():
            draws = np.empty((int(drawn.sum()), self.batch_size), dtype=np.int64)
            # the runs' own generators, in run order (the only loop over runs)
            for row, run in zip(draws, np.flatnonzero(drawn).tolist()):
                row[:] = rngs[run].integers(0, n_tot[run], self.batch_size)
            k[np.repeat(drawn, length)] = draws.reshape(-1)
        weights = np.repeat(np.where(drawn, n_tot / self.batch_size, 1.0), length)
        old = k < n_hist[runs]  # the k-th row of the run's history, or its new row
        src = np.where(old, first[runs] + k, 0)
        X_all = np.where(old[:, None], self._X[src], x[runs])
        y_all = np.where(old, self._y[src], y[runs])
        return X_all, y_all, weights, runs, hit

    def commit(self, token) -> None:
        A, x, y, mode, hit = token
        r = self._runs
        self.modes[r, A] = mode
        self.fitted[r, A] = True
        if not self.keeps_history:
            return
        if self.merges:
            self._w[hit[hit >= 0]] += 1.0
            new = hit < 0
        else:
            new = np.ones(len(A), dtype=bool)
        if new.any():
            self._append(r[new], A[new], x[new], y[new], np.ones(int(new.sum())),
                         np.ones(int(new.sum()), dtype=np.int64))
