"""The penalised Newton fits of GLM likelihoods (docs/math.md §4), shared by the one-run
:class:`~mixedts.models.laplace.LaplaceFitter` and the many-runs
:class:`~mixedts.models.batched_laplace.BatchedLaplace`.

:func:`newton_fit` fits many independent segments (actions, or one action per run) at once, as
:func:`~mixedts.likelihoods.laplace_fit` does, with one pass over the rows per candidate;
:func:`online_step` is the one Newton step of the online method.

The fits are small (a few segments of a few dozen rows once most have converged), so their cost
is the number of numpy calls more than flops: a pass is one product over the stacked rows and
one segment sum, the working set sheds its finished segments only once they hold half of its
rows (until then they sit still, at a zero step), and the solves call LAPACK's stacked ``gesv``
without :func:`numpy.linalg.solve`'s wrapper. Every value is the same floating-point operation
on the same operands, in the same order, as in the plain version (one array per quantity, a
mask of the live segments): these shortcuts change no result, not even in the last bit.
"""

from __future__ import annotations

import numpy as np

try:  # np.linalg.solve's own LAPACK gufunc, without its Python wrapper (numpy 1.x and 2.x)
    from numpy.linalg._umath_linalg import solve as _gesv
except ImportError:  # pragma: no cover - a numpy without it: the public function
    _gesv = None

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
    if not counts.all():
        raise ValueError("every segment needs at least one row")
    theta = np.array(init, dtype=np.float64)
    G_out = np.empty((S, d, d))
    iters = np.zeros(S, dtype=np.int64)
    # the working set: its segments (ids) and rows; `dead` marks the segments in it that have
    # finished (they take zero steps, so their evaluations repeat, and never finish again)
    ids = np.arange(S)
    work = _Rows(likelihood, X, y, w, counts, ridge, center)
    th = theta.copy()
    f, g, G = work.evaluate(th)
    thr = f + 1e-12 * (1.0 + np.abs(f))
    bound = tol * (1.0 + np.maximum.reduce(np.abs(th), axis=1))  # the stopping rule's
    dead = np.zeros(S, dtype=bool)
    n_dead = dead_rows = 0
    k = -1
    for k in range(max_iter):
        step = _solve(work.hessian(G), g)
        if n_dead:
            step[dead] = 0.0
        size = np.maximum.reduce(np.abs(step), axis=1)
        # a Newton step this small is the last: taken without another pass (the curvature
        # stays the current one, which it changes by O(|step|) ≤ 1e-2·tol)
        last = size <= 1e-2 * bound
        if np.count_nonzero(last):
            j = np.flatnonzero(last)
            fin = ids[j]
            theta[fin], G_out[fin], iters[fin] = th[j] - step[j], G[j], k + 1
            n_dead += len(j)
            if n_dead == len(ids):
                break
            dead[j], step[j] = True, 0.0
            dead_rows += int(work.counts[j].sum())
        # backtracking keeps every segment's objective non-increasing (the NLL is convex)
        cand = th - step
        f, g, G = work.evaluate(cand)
        bad = f > thr
        if np.count_nonzero(bad):
            cand, size, f, g, G = _backtrack(work, th, step, thr, bad, cand, size, (f, g, G))
        th = cand
        thr = f + 1e-12 * (1.0 + np.abs(f))
        bound = tol * (1.0 + np.maximum.reduce(np.abs(th), axis=1))
        if n_dead:
            bound[dead] = -1.0  # (a dead segment's step is 0: it must not finish again)
        done = size <= bound
        if np.count_nonzero(done):
            j = np.flatnonzero(done)
            fin = ids[j]
            theta[fin], G_out[fin], iters[fin] = th[j], G[j], k + 1
            n_dead += len(j)
            if n_dead == len(ids):
                break
            dead[j], bound[j] = True, -1.0
            dead_rows += int(work.counts[j].sum())
        if dead_rows > 0.5 * work.n:  # drop the finished segments' rows
            keep = ~dead
            ids, th, f, g, G = ids[keep], th[keep], f[keep], g[keep], G[keep]
            thr, bound = thr[keep], bound[keep]
            work = work.subset(keep)
            dead, n_dead, dead_rows = np.zeros(len(ids), dtype=bool), 0, 0
    else:  # max_iter steps: the segments still moving end where they are
        live = ~dead
        theta[ids[live]], G_out[ids[live]], iters[ids[live]] = th[live], G[live], k + 1
    return theta, G_out, iters


def _solve(H: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``np.linalg.solve(H, g[:, :, None])[:, :, 0]``: the same LAPACK ``gesv`` per segment,
    called without the wrapper's checks (H is a fresh float64 stack, g float64 (s, d))."""
    if _gesv is None:  # pragma: no cover
        return np.linalg.solve(H, g[:, :, None])[:, :, 0]
    with np.errstate(invalid="raise", over="ignore", divide="ignore", under="ignore"):
        try:
            return _gesv(H, g[:, :, None], signature="dd->d")[:, :, 0]
        except FloatingPointError:  # a singular system: numpy's own error
            return np.linalg.solve(H, g[:, :, None])[:, :, 0]


def _backtrack(work, th, step, thr, bad, cand, size, first):
    """The halvings of :func:`~mixedts.likelihoods.laplace_fit`: the segments whose objective
    rose halve their step, up to 30 evaluations in all, re-evaluated alone (the others keep
    their first candidate). Returns the candidates taken, the step sizes the stopping rule
    reads (laplace_fit halves once more after a 30th rise) and the evaluation at the
    candidates taken (``cand``, ``size`` and ``first`` are updated in place)."""
    f, g, G = first
    idx = np.flatnonzero(bad)
    sub = work.subset(bad)
    th_b, step_b, thr_b = th[idx], step[idx], thr[idx]
    scale = np.full(len(idx), 0.5)
    for k in range(29):
        cand_b = th_b - scale[:, None] * step_b
        f_b, g_b, G_b = sub.evaluate(cand_b)
        rose = f_b > thr_b
        if not np.count_nonzero(rose):
            checked = scale
            break
        halve = np.where(rose, 0.5, 1.0)
        if k == 28:
            checked = scale * halve
            break
        scale = scale * halve
    cand[idx], f[idx], g[idx], G[idx] = cand_b, f_b, g_b, G_b
    size[idx] = np.maximum.reduce(np.abs(checked[:, None] * step_b), axis=1)
    return cand, size, f, g, G


class _Rows:
    """The segments being fitted: their rows grouped by segment, stored component-major in one
    array ``data`` (the passes run along the long row axis): a row of ones, x, the upper
    triangle of x xᵀ, y and the weights; with the segments' penalty (a ridge, or one precision
    per segment) and centre."""

    def __init__(self, likelihood, X, y, w, counts, ridge, center) -> None:
        n, d = X.shape
        self.likelihood, self.logistic, self.d = likelihood, isinstance(likelihood, Logistic), d
        iu, self.factor, self.entries = _layout(d)
        m = len(self.factor)
        data = np.empty((m + 1 + (w is not None), n))
        data[0] = 1.0
        data[1 : d + 1] = X.T
        data[d + 1 : m] = X.T[iu[0]] * X.T[iu[1]]  # (in X's precision)
        data[m] = y
        if w is not None:
            data[m + 1] = w
        self._set(data, counts)
        P = np.asarray(ridge, dtype=np.float64)
        self.ridge = float(P) if P.ndim == 0 else None  # the penalty ridge·I, or P (s, d, d)
        self.P = P * np.eye(d) if P.ndim == 0 else np.broadcast_to(P, (len(counts), d, d))
        self.c = None if center is None else np.asarray(center, dtype=np.float64)

    def _set(self, data, counts) -> None:
        m = len(self.factor)
        self.data, self.counts, self.n = data, counts, data.shape[1]
        self.Z, self.XT, self.y = data[:m], data[1 : self.d + 1], data[m]
        self.w = data[m + 1] if len(data) > m + 1 else None
        self.starts = np.add.accumulate(counts) - counts
        self.seg = np.repeat(np.arange(len(counts)), counts)  # each row's segment

    def subset(self, keep: np.ndarray) -> _Rows:
        """The segments ``keep`` (bool, per segment), renumbered."""
        out = _Rows.__new__(_Rows)
        out.likelihood, out.logistic, out.d, out.ridge = \
            self.likelihood, self.logistic, self.d, self.ridge
        out.factor, out.entries = self.factor, self.entries
        out._set(self.data.take(np.flatnonzero(keep[self.seg]), axis=1), self.counts[keep])
        out.P = self.P if self.ridge is not None else self.P[keep]
        out.c = None if self.c is None else self.c[keep]
        return out

    def hessian(self, G: np.ndarray) -> np.ndarray:
        """G + P: the Newton system of every segment."""
        return G + self.P

    def evaluate(self, th: np.ndarray):
        """Objective (s,), gradient (s, d) and curvature (s, d, d) of every segment at θ."""
        d, y = self.d, self.y
        u = np.add.reduce(self.XT * th.T.take(self.seg, axis=1), axis=0)
        V = np.empty((3, self.n))  # −log p(y | u), f(u) − y and f'(u) of every row
        if self.logistic:  # one exp and one log1p per row
            e = np.exp(-np.abs(u))  # with r = 1/(1 + e): σ(u) = r or e·r, σ'(u) = e·r²
            r = 1.0 / (1.0 + e)
            er = e * r
            # −log p(y | u) = log(1 + eᵘ) − y u = log1p(e) + max(u, 0) − y u
            np.subtract(np.log1p(e) + np.maximum(u, 0.0), y * u, out=V[0])
            np.subtract(np.where(u >= 0.0, r, er), y, out=V[1])
            np.multiply(er, r, out=V[2])
        else:
            lik = self.likelihood
            V[0], V[1], V[2] = -lik.log_likelihood(u, y), lik.mean(u) - y, \
                lik.mean_derivative(u)
        if self.w is not None:
            V *= self.w  # the row weights (counts, or n/B of a minibatch)
        # objective, gradient and curvature terms of every row, summed per segment
        sums = np.add.reduceat(V[self.factor] * self.Z, self.starts, axis=1)
        dev = th if self.c is None else th - self.c
        if self.ridge is not None:
            Pdev = self.ridge * dev
        else:
            Pdev = np.einsum("sde,se->sd", self.P, dev)
        f = sums[0] + 0.5 * np.einsum("sd,sd->s", dev, Pdev)
        return f, sums[1 : d + 1].T + Pdev, sums[self.entries].T.reshape(-1, d, d)


def _layout(d: int):
    """The rows of a pass in dimension d: the upper triangle (i, j) of x xᵀ (the curvature is
    symmetric), which of (objective, residual, slope) multiplies each row, and the row of
    each entry of the curvature (d·d,)."""
    out = _LAYOUT.get(d)
    if out is None:
        iu = np.triu_indices(d)
        m = 1 + d + len(iu[0])
        tri = np.empty((d, d), dtype=np.int64)
        tri[iu], tri[iu[1], iu[0]] = np.arange(d + 1, m), np.arange(d + 1, m)
        out = _LAYOUT[d] = (iu, np.repeat([0, 1, 2], [1, d, len(iu[0])]), tri.reshape(-1))
    return out


_LAYOUT: dict[int, tuple] = {}


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
