"""Reward likelihoods and the Laplace fit used for GLM rewards (docs/math.md §4).

A likelihood knows its mean function ``f``, its derivative ``f'`` and which rewards it accepts.
:func:`laplace_fit` finds the penalised maximum-likelihood estimate of one or many actions at
once (damped Newton / IRLS, batched over actions with segment sums) and returns the curvature
``G = Σ f'(xᵀμ) x xᵀ`` that replaces the Gaussian ``σ⁻² Σ x xᵀ`` in the mixed-effect posterior.
Adding a likelihood (Poisson, say) means subclassing :class:`Likelihood`.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, log_expit

from ._validation import ValidationError


class Likelihood:
    """Exponential-family reward model with canonical link: E[y] = f(xᵀθ)."""

    name = "likelihood"

    def check_rewards(self, y: np.ndarray, name: str = "y") -> np.ndarray:
        """Validated rewards (finite), converted as the likelihood needs."""
        return y

    def mean(self, u: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def mean_derivative(self, u: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def log_likelihood(self, u: np.ndarray, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class Gaussian(Likelihood):
    """y = xᵀθ + N(0, σ²): closed-form posteriors, no Laplace approximation needed."""

    name = "gaussian"

    def mean(self, u):
        return u

    def mean_derivative(self, u):
        return np.ones_like(u)

    def log_likelihood(self, u, y):
        return -0.5 * (y - u) ** 2


class Logistic(Likelihood):
    """y ~ Bernoulli(sigmoid(xᵀθ)).

    Parameters
    ----------
    binarize : bool
        Rewards must be 0 or 1. With ``binarize=True`` any reward in [0, 1] is accepted and
        replaced by a Bernoulli(y) draw made with the policy's generator (Agrawal & Goyal's
        conversion), so that fractional rewards keep the likelihood exact in expectation.
    """

    name = "logistic"

    def __init__(self, binarize: bool = False) -> None:
        self.binarize = bool(binarize)

    def check_rewards(self, y, name="y"):
        y = np.asarray(y, dtype=np.float64)
        if self.binarize:
            if np.any((y < 0) | (y > 1)):
                raise ValidationError(f"{name}: logistic rewards must lie in [0, 1]")
        elif np.any((y != 0) & (y != 1)):
            raise ValidationError(
                f"{name}: logistic rewards must be 0 or 1 (pass binarize=True to accept [0, 1])"
            )
        return y

    def mean(self, u):
        return expit(u)

    def mean_derivative(self, u):
        p = expit(u)
        return p * (1.0 - p)

    def log_likelihood(self, u, y):
        return y * log_expit(u) + (1.0 - y) * log_expit(-u)


LIKELIHOODS = {"gaussian": Gaussian, "logistic": Logistic}


def get_likelihood(likelihood: str | Likelihood, binarize: bool = False) -> Likelihood:
    """Resolve a name (``"gaussian"``, ``"logistic"``) or an instance."""
    if isinstance(likelihood, Likelihood):
        return likelihood
    if likelihood == "logistic":
        return Logistic(binarize)
    if likelihood == "gaussian":
        return Gaussian()
    raise ValidationError(f"likelihood must be one of {sorted(LIKELIHOODS)}, got {likelihood!r}")


def laplace_fit(
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
    """Penalised MLE and curvature of several independent GLMs at once.

    Minimises, for every segment s,
    ``−Σ_{t: seg=s} w_t log p(y_t | x_tᵀθ_s) + ½ (θ_s − c_s)ᵀ P_s (θ_s − c_s)``
    by damped Newton steps (IRLS) warm-started at ``init``, where ``P_s = ridge·I`` for a scalar
    ridge (the paper's 1e-3·I, ``c_s = 0``) or a Gaussian prior's precision (GLM-TS).

    Parameters
    ----------
    likelihood : Likelihood
    X : (n, d) contexts; y : (n,) rewards; segments : (n,) segment of each row in
        [0, n_segments); init : (n_segments, d) starting modes.
    ridge : float or (n_segments, d, d)
        The small ridge that keeps the mode finite on separable or tiny data, or a precision.
    tol : float
        Stop when every Newton step's largest entry is below ``tol``·(1 + |θ|).
    weights : (n,), optional
        Row weights (a minibatch scaled to the whole history).
    center : (n_segments, d), optional
        Centre c_s of the penalty (zeros by default).

    Returns
    -------
    mode : (n_segments, d)
    curvature : (n_segments, d, d)
        G = Σ w_t f'(x_tᵀ mode) x_t x_tᵀ, without the penalty.
    iterations : (n_segments,) Newton steps taken.
    """
    n, d = X.shape
    if n_segments == 0:
        return np.zeros((0, d)), np.zeros((0, d, d)), np.zeros(0, dtype=np.int64)
    w = np.ones(n) if weights is None else weights
    # rows sorted by segment so that every per-segment sum is one np.add.reduceat
    order = np.argsort(segments, kind="stable")
    X, y, w, segments = X[order], y[order], w[order], segments[order]
    starts = np.searchsorted(segments, np.arange(n_segments))
    if np.any(np.diff(np.append(starts, n)) == 0):
        raise ValueError("every segment needs at least one row")
    theta = np.array(init, dtype=np.float64)
    P = np.asarray(ridge, dtype=np.float64)
    P = np.broadcast_to(P * np.eye(d) if P.ndim == 0 else P, (n_segments, d, d))
    c = np.zeros((n_segments, d)) if center is None else center
    outer = (X[:, :, None] * X[:, None, :]).reshape(n, d * d)
    iters = np.zeros(n_segments, dtype=np.int64)
    active = np.ones(n_segments, dtype=bool)

    def seg_sum(values):
        return np.add.reduceat(values, starts, axis=0)

    def objective(th):
        u = np.einsum("nd,nd->n", X, th[segments])
        dev = th - c
        nll = seg_sum(-w * likelihood.log_likelihood(u, y))
        return nll + 0.5 * np.einsum("sd,sde,se->s", dev, P, dev)

    def curvature(u):
        return seg_sum((w * likelihood.mean_derivative(u))[:, None] * outer).reshape(
            n_segments, d, d
        )

    def grad_hess(th):
        u = np.einsum("nd,nd->n", X, th[segments])
        g = seg_sum((w * (likelihood.mean(u) - y))[:, None] * X)
        return g + np.einsum("sde,se->sd", P, th - c), curvature(u)

    f = objective(theta)
    for _ in range(max_iter):
        g, G = grad_hess(theta)
        step = np.linalg.solve(G + P, g[:, :, None])[:, :, 0]
        step[~active] = 0.0
        # backtracking keeps every segment's objective non-increasing (the NLL is convex)
        scale = np.ones(n_segments)
        for _ in range(30):
            cand = theta - scale[:, None] * step
            f_new = objective(cand)
            bad = f_new > f + 1e-12 * (1.0 + np.abs(f))
            if not np.any(bad & active):
                break
            scale[bad] *= 0.5
        theta, f = cand, np.where(active, f_new, f)
        iters += active
        done = np.max(np.abs(scale[:, None] * step), axis=1) <= tol * (
            1.0 + np.max(np.abs(theta), axis=1)
        )
        active &= ~done
        if not active.any():
            break
    return theta, curvature(np.einsum("nd,nd->n", X, theta[segments])), iters
