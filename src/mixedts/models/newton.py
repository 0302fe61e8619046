"""The penalised Newton fits of GLM likelihoods (docs/math.md §4), shared by the one-run
:class:`~mixedts.models.laplace.LaplaceFitter` and the many-runs
:class:`~mixedts.models.batched_laplace.BatchedLaplace`.

:func:`newton_fit` fits many independent segments (actions, or one action per run) at once, as
:func:`~mixedts.likelihoods.laplace_fit` does, with one pass over the rows per candidate;
:func:`online_step` is the one Newton step of the online method.
"""

from __future__ import annotations

import numpy as np

from ..likelihoods import Likelihood, Logistic

__all__ = ["newton_fit", "online_step"]


def newton_fit(
    likelihood: Likelihood,
    X: np.ndarray,
    y: np.ndarray,
    segments: np.ndarray,
    n_segments: int,
    init: np.ndarray,
    ridge: float | np.ndarray = 1e-3,
    tol: float = 1e-8,
    max_iter: int = 100,
    weights: np.ndarray | None = None,
    center: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fit of :func:`~mixedts.likelihoods.laplace_fit` (the same damped Newton iterates,
    backtracking and stopping rule, so the same modes and curvatures to within 1e-2·tol)
    with one pass over the live rows per candidate instead of three.

    Every candidate θ gets the objective, the gradient and the curvature
    G = Σ w f'(xᵀθ) x xᵀ in one pass: the accepted candidate's gradient and curvature are the
    next Newton step's, and the last one's curvature is the result's. A segment whose next
    Newton step is below 1e-2·tol takes it without another pass (laplace_fit evaluates it,
    then stops because it was below tol). Segments are the rows' groups (one per action, or
    per (run, action) in the many-runs engine); each segment's iterates depend on its own
    rows only, so a segment's result does not depend on the others, and the rows of the
    segments that have finished leave the passes.

    Parameters and returns as for :func:`~mixedts.likelihoods.laplace_fit`.

    Examples
    --------
    >>> from mixedts.likelihoods import Logistic, laplace_fit
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.normal(size=(40, 2)), (rng.uniform(size=40) < 0.5).astype(float)
    >>> seg = np.repeat([0, 1], 20)
    >>> mode, G, iters = newton_fit(Logistic(), X, y, seg, 2, np.zeros((2, 2)))
    >>> ref = laplace_fit(Logistic(), X, y, seg, 2, np.zeros((2, 2)))
    >>> bool(np.allclose(mode, ref[0], rtol=1e-12)), bool(np.allclose(G, ref[1], rtol=1e-12))
    (True, True)
    """
    n, d = X.shape
    S = int(n_segments)
    if S == 0:
        return np.zeros((0, d)), np.zeros((0, d, d)), np.zeros(0, dtype=np.int64)
    w = None if weights is None else np.asarray(weights, dtype=np.float64)
    if n > 1 and np.any(segments[1:] < segments[:-1]):  # rows grouped by segment
        order = np.argsort(segments, kind="stable")
        X, y, segments = X[order], y[order], segments[order]
        w = None if w is None else w[order]
    counts = np.bincount(segments, minlength=S)
    if np.any(counts == 0):
        raise ValueError("every segment needs at least one row")
    theta = np.array(init, dtype=np.float64)
    G_out = np.empty((S, d, d))
    iters = np.zeros(S, dtype=np.int64)
    # the working set: the segments still iterating (ids), their rows, penalty and centre
    ids = np.arange(S)
    c = np.zeros((S, d)) if center is None else np.asarray(center, dtype=np.float64)
    work = _Rows(likelihood, X, y, w, segments, counts, ridge, c)
    th = theta.copy()
    f, g, G = work.evaluate(th)
    thr = f + 1e-12 * (1.0 + np.abs(f))
    bound = tol * (1.0 + np.abs(th).max(axis=1))  # the stopping rule's, per segment
    live = np.ones(S, dtype=bool)
    for _ in range(max_iter):
        step = np.linalg.solve(work.hessian(G), g[:, :, None])[:, :, 0]
        step[~live] = 0.0
        size = np.abs(step).max(axis=1)
        # a Newton step this small is the last: taken without another pass (the curvature
        # stays the current one, which it changes by O(|step|) ≤ 1e-2·tol)
        last = size <= 1e-2 * bound
        last &= live
        if last.any():
            fin = ids[last]
            theta[fin], G_out[fin] = th[last] - step[last], G[last]
            iters[fin] += 1
            live &= ~last
            if not live.any():
                break
            step[last] = 0.0
        # backtracking keeps every segment's objective non-increasing (the NLL is convex)
        cand = th - step
        f_new, g_new, G_new = work.evaluate(cand)
        bad = f_new > thr
        if bad.any():
            step, checked, (f_new, g_new, G_new) = _backtrack(
                work, th, step, thr, bad, live, (f_new, g_new, G_new))
            cand = th - step
            size = np.abs(checked).max(axis=1)
        # (a segment that has stopped sits still: its new evaluation is its old one)
        th, f, g, G = cand, f_new, g_new, G_new
        thr = f + 1e-12 * (1.0 + np.abs(f))
        iters[ids] += live
        bound = tol * (1.0 + np.abs(th).max(axis=1))
        done = size <= bound
        done &= live
        if done.any():
            theta[ids[done]], G_out[ids[done]] = th[done], G[done]
            live &= ~done
            if not live.any():
                break
        if (last.any() or done.any()) and work.rows_of(live) < 0.8 * work.n:
            # drop the finished segments' rows
            ids, th, f, g, G = ids[live], th[live], f[live], g[live], G[live]
            thr, bound = thr[live], bound[live]
            work = work.subset(live)
            live = np.ones(len(ids), dtype=bool)
    else:  # max_iter steps: the segments still moving end where they are
        theta[ids[live]], G_out[ids[live]] = th[live], G[live]
    return theta, G_out, iters


def _backtrack(work, th, step, thr, bad, live, first):
    """The halvings of :func:`~mixedts.likelihoods.laplace_fit`: the segments whose objective
    rose halve their step, up to 30 evaluations in all, re-evaluated alone (the others keep
    their first candidate). Returns the steps taken, the steps the stopping rule reads
    (laplace_fit halves once more after a 30th rise) and the evaluation at the steps taken."""
    f, g, G = (a.copy() for a in first)
    scale = np.ones(len(th))
    idx = np.flatnonzero(bad)
    sub = work.subset(bad)
    sub_bad = np.ones(len(idx), dtype=bool)
    sub_live = live[idx]
    taken = step
    for k in range(30):
        if not np.any(sub_bad & sub_live):
            return scale[:, None] * step, scale[:, None] * step, (f, g, G)
        taken = scale[:, None] * step
        scale[idx[sub_bad]] *= 0.5
        if k == 29:
            break
        f_s, g_s, G_s = sub.evaluate(th[idx] - scale[idx, None] * step[idx])
        f[idx], g[idx], G[idx] = f_s, g_s, G_s
        sub_bad = f_s > thr[idx]
    return taken, scale[:, None] * step, (f, g, G)


class _Rows:
    """The segments being fitted: their rows grouped by segment, stored component-major
    ((d, n): the passes run along the long row axis), with their outer products, their penalty
    (a ridge or one precision per segment) and centre."""

    def __init__(self, likelihood, X, y, w, segments, counts, ridge, center) -> None:
        d = X.shape[1]
        self.likelihood, self.y, self.w = likelihood, y, w
        self.counts, self.d, self.n = counts, d, len(y)
        self.XT = np.ascontiguousarray(X.T)
        self.starts = np.concatenate([[0], np.cumsum(counts[:-1])])
        iu = np.triu_indices(d)  # the curvature is symmetric: its upper triangle only
        self.outer = self.XT[iu[0]] * self.XT[iu[1]]
        self._stack = np.empty((1 + d + len(iu[0]), self.n))
        P = np.asarray(ridge, dtype=np.float64)
        self.ridge = float(P) if P.ndim == 0 else None  # the penalty ridge·I, or P (s, d, d)
        self.P = np.broadcast_to(P * np.eye(d) if P.ndim == 0 else P, (len(counts), d, d))
        self.c = center

    def rows_of(self, live: np.ndarray) -> int:
        return int(self.counts[live].sum())

    def subset(self, keep: np.ndarray) -> _Rows:
        """The segments ``keep`` (bool, per segment), renumbered."""
        rows = np.repeat(keep, self.counts)
        out = _Rows.__new__(_Rows)
        out.likelihood, out.d, out.ridge = self.likelihood, self.d, self.ridge
        out.XT, out.y, out.outer = self.XT[:, rows], self.y[rows], self.outer[:, rows]
        out.w = None if self.w is None else self.w[rows]
        out.counts, out.n = self.counts[keep], int(rows.sum())
        out.starts = np.concatenate([[0], np.cumsum(out.counts[:-1])])
        out._stack = np.empty((self._stack.shape[0], out.n))
        out.P, out.c = self.P[keep], self.c[keep]
        return out

    def hessian(self, G: np.ndarray) -> np.ndarray:
        """G + P: the Newton system of every segment."""
        return G + self.P

    def evaluate(self, th: np.ndarray):
        """Objective (s,), gradient (s, d) and curvature (s, d, d) of every segment at θ."""
        d, XT, stack, y, w = self.d, self.XT, self._stack, self.y, self.w
        u = (XT * np.repeat(th.T, self.counts, axis=1)).sum(axis=0)
        if isinstance(self.likelihood, Logistic):  # one exp and one log1p per row
            e = np.exp(-np.abs(u))  # with r = 1/(1 + e): σ(u) = r or e·r, σ'(u) = e·r²
            r = 1.0 / (1.0 + e)
            er = e * r
            # −log p(y | u) = log(1 + eᵘ) − y u = log1p(e) + max(u, 0) − y u
            nll = np.log1p(e) + np.maximum(u, 0.0) - y * u
            resid, slope = np.where(u >= 0.0, r, er) - y, er * r
        else:
            lik = self.likelihood
            nll, resid, slope = -lik.log_likelihood(u, y), lik.mean(u) - y, \
                lik.mean_derivative(u)
        if w is not None:
            nll, resid, slope = nll * w, resid * w, slope * w
        stack[0] = nll
        np.multiply(resid, XT, out=stack[1 : d + 1])
        np.multiply(slope, self.outer, out=stack[d + 1 :])
        sums = np.add.reduceat(stack, self.starts, axis=1)
        dev = th - self.c
        if self.ridge is not None:
            Pdev = self.ridge * dev
        else:
            Pdev = np.einsum("sde,se->sd", self.P, dev)
        f = sums[0] + 0.5 * np.einsum("sd,sd->s", dev, Pdev)
        return f, sums[1 : d + 1].T + Pdev, _symmetric(sums[d + 1 :], d)


def _symmetric(upper: np.ndarray, d: int) -> np.ndarray:
    """Matrices (s, d, d) from their upper triangles, (d(d+1)/2, s) row by row."""
    iu = _TRIU.get(d)
    if iu is None:
        i, j = np.triu_indices(d)
        iu = _TRIU[d] = (i * d + j, j * d + i)
    out = np.empty((upper.shape[1], d * d))
    out[:, iu[0]] = upper.T
    out[:, iu[1]] = upper.T
    return out.reshape(-1, d, d)


_TRIU: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def online_step(likelihood: Likelihood, init, G_old, inv, Xa, Y, penalty):
    """One Newton step from N(μ_old, (G_old + penalty)⁻¹) with the new rows (assumed-density
    filtering): G = G_old + Σ f'(xᵀμ_old) x xᵀ, μ = μ_old − (G + penalty)⁻¹ Σ (f(xᵀμ_old) − y) x.

    ``init`` (u, d) the old modes, ``G_old`` (u, d, d), ``inv`` (n,) the segment of each new row
    of ``Xa`` (n, d) and ``Y`` (n,), ``penalty`` a ridge or (u, d, d). Returns (modes, G).

    Examples
    --------
    >>> from mixedts.likelihoods import Logistic
    >>> mode, G = online_step(Logistic(), np.zeros((1, 2)), np.zeros((1, 2, 2)),
    ...                       np.array([0]), np.array([[1.0, 0.0]]), np.array([1.0]), 1.0)
    >>> mode.round(3).tolist(), G[0, 0, 0]
    ([[0.4, 0.0]], np.float64(0.25))
    """
    u, d = init.shape
    z = np.einsum("nd,nd->n", Xa, init[inv])
    g = np.zeros((u, d))
    np.add.at(g, inv, (likelihood.mean(z) - Y)[:, None] * Xa)
    G_add = np.zeros((u, d, d))
    curv = likelihood.mean_derivative(z)[:, None, None] * Xa[:, :, None] * Xa[:, None, :]
    np.add.at(G_add, inv, curv)
    G_new = G_old + G_add
    H = G_new + (penalty * np.eye(d) if np.ndim(penalty) == 0 else penalty)
    mode = init - np.linalg.solve(H, g[:, :, None])[:, :, 0]
    return mode, G_new
