"""Slow, obvious reference implementations that the fast paths are checked against.

Nothing here is clever: build the full joint Gaussian of (Ψ, Θ), add each observation to its
precision, invert with numpy.

The oracles never read a :class:`~mixedts.MixedEffectPrior`'s own (validated, normalised)
fields: a bug in the prior's normalisation (``check_mixing``, the symmetrisation, the block
layout of Σ_Ψ) would be copied into the reference. They read the *raw* arguments the user
passed to the constructor instead, given either as a :class:`RawPrior` or as the prior object
itself, whose raw arguments :func:`raw_prior` looks up: importing this module wraps
``MixedEffectPrior.__init__`` so that every prior constructed afterwards records a copy of its
arguments before the library sees them (nothing else changes).
"""

from __future__ import annotations

import copy
import functools
import weakref
from typing import Any, NamedTuple

import numpy as np
import scipy.sparse as sp
from scipy.special import expit, log_expit

from mixedts import MixedEffectPrior


# ---------------------------------------------------------------------------- raw priors
class RawPrior(NamedTuple):
    """The four arguments of ``MixedEffectPrior`` exactly as a user passed them."""

    effect_mean: Any
    effect_cov: Any
    mixing: Any
    action_cov: Any


def _snapshot(value):
    try:
        return copy.deepcopy(value)
    except Exception:  # anything the constructor will reject anyway
        return value


def _recorded() -> weakref.WeakKeyDictionary:
    """The raw arguments of every prior built since the recorder was installed.

    The registry lives on the wrapper itself, so that this file imported twice under two names
    (``oracles`` by the tests, ``tests.oracles`` by ``--doctest-modules``) shares one."""
    init = MixedEffectPrior.__init__
    registry = getattr(init, "raw_inputs", None)
    if registry is not None:
        return registry
    registry = weakref.WeakKeyDictionary()

    @functools.wraps(init)
    def recording_init(self, effect_mean, effect_cov, mixing, action_cov, *args, **kwargs):
        registry[self] = RawPrior(*(_snapshot(v) for v in (effect_mean, effect_cov, mixing,
                                                            action_cov)))
        init(self, effect_mean, effect_cov, mixing, action_cov, *args, **kwargs)

    recording_init.raw_inputs = registry
    MixedEffectPrior.__init__ = recording_init
    return registry


_recorded()


def raw_prior(prior) -> RawPrior:
    """The user's raw arguments of ``prior`` (a RawPrior is returned as it is)."""
    if isinstance(prior, RawPrior):
        return prior
    try:
        return _recorded()[prior]
    except (KeyError, TypeError):
        raise LookupError(
            "this prior was built before tests/oracles.py was imported, so its raw arguments "
            "were not recorded: pass a RawPrior"
        ) from None


class Parts(NamedTuple):
    """Dense float arrays made from the raw arguments by plain numpy (no library code)."""

    mu: np.ndarray  # (L, d)
    cov_psi: np.ndarray  # (L·d, L·d)
    B: np.ndarray  # (K, L)
    S0: np.ndarray  # (K, d, d)

    @property
    def sizes(self) -> tuple[int, int, int]:
        L, d = self.mu.shape
        return self.B.shape[0], L, d

    def blocks(self) -> np.ndarray:
        """The L diagonal (d, d) blocks of Σ_Ψ."""
        _, L, d = self.sizes
        return np.stack([self.cov_psi[l * d:(l + 1) * d, l * d:(l + 1) * d] for l in range(L)])


def parts(prior) -> Parts:
    raw = raw_prior(prior)
    mu = np.array(raw.effect_mean, dtype=np.float64)
    cov = np.array(raw.effect_cov, dtype=np.float64)
    if cov.ndim == 3:  # one (d, d) block per effect
        cov = block_diag_dense(cov)
    B = raw.mixing.toarray() if sp.issparse(raw.mixing) else raw.mixing
    B = np.array(B, dtype=np.float64)
    K = B.shape[0]
    S0 = np.array(raw.action_cov, dtype=np.float64)
    if S0.ndim == 2:
        S0 = np.stack([S0] * K)
    return Parts(mu, cov, B, S0)


def marginal_action_prior(prior) -> tuple[np.ndarray, np.ndarray]:
    """N(Σ_l b_il μ_l, Σ0_i + Σ_lm b_il b_im Σ_lm) for every action, from the raw arguments."""
    P = parts(prior)
    K, _, d = P.sizes
    Gamma = np.kron(P.B, np.eye(d))  # (K·d, L·d)
    mean = (Gamma @ P.mu.reshape(-1)).reshape(K, d)
    full = Gamma @ P.cov_psi @ Gamma.T
    cov = np.stack([full[i * d:(i + 1) * d, i * d:(i + 1) * d] + P.S0[i] for i in range(K)])
    return mean, cov


# ---------------------------------------------------------------------------- Gaussian oracles
def block_diag_dense(blocks: np.ndarray) -> np.ndarray:
    n, d, _ = blocks.shape
    out = np.zeros((n * d, n * d))
    for i in range(n):
        out[i * d : (i + 1) * d, i * d : (i + 1) * d] = blocks[i]
    return out


def gaussian_stats(K, d, noise_std, X, A, Y):
    """G_i = σ⁻² Σ x xᵀ and b_i = σ⁻² Σ y x of every action, one observation at a time."""
    G = np.zeros((K, d, d))
    b = np.zeros((K, d))
    s2 = noise_std**2
    for x, a, y in zip(X, A, Y):
        G[a] += np.outer(x, x) / s2
        b[a] += y * np.asarray(x) / s2
    return G, b


def joint_oracle(prior, noise_std, X, A, Y):
    """Exact posterior of (Ψ, Θ) given observations (X[t], A[t], Y[t]).

    Returns a dict with the effect mean (L, d) and covariance (Ld, Ld), the action means
    (K, d), marginal covariances (K, d, d), and the full joint Θ covariance (Kd, Kd).
    """
    K, _, d = parts(prior).sizes
    G, b = gaussian_stats(K, d, noise_std, X, A, Y)
    return joint_oracle_from_stats(prior, G, b)


def factored_oracle(prior, noise_std, X, A, Y):
    """meTS-Fa's effect posterior written plainly from docs/math.md §3 (eq. 43)."""
    K, _, d = parts(prior).sizes
    G, b = gaussian_stats(K, d, noise_std, X, A, Y)
    return factored_oracle_from_stats(prior, G, b)


def factored_oracle_from_stats(prior, G, b):
    """meTS-Fa's effect posterior (means (L, d), block covariances (L, d, d)) when action i
    contributes precision G[i] and linear term b[i]."""
    P = parts(prior)
    K, L, _ = P.sizes
    means, covs = [], []
    blocks = P.blocks()
    for l in range(L):
        P_l = np.linalg.inv(blocks[l])
        prec = P_l.copy()
        lin = P_l @ P.mu[l]
        for i in range(K):
            P0 = np.linalg.inv(P.S0[i])
            S = np.linalg.inv(P0 + G[i])
            M = P0 - P0 @ S @ P0
            prec += P.B[i, l] ** 2 * M
            lin += P.B[i, l] * P0 @ S @ b[i]
        cov = np.linalg.inv(prec)
        means.append(cov @ lin)
        covs.append(cov)
    return np.array(means), np.array(covs)


def independent_oracle(prior_mean, prior_cov, noise_std, X, A, Y):
    """Per-action Bayesian linear regression written plainly."""
    K = prior_mean.shape[0]
    means, covs = [], []
    for i in range(K):
        S0 = prior_cov if prior_cov.ndim == 2 else prior_cov[i]
        prec = np.linalg.inv(S0)
        lin = prec @ prior_mean[i]
        for x, a, y in zip(X, A, Y):
            if a == i:
                prec = prec + np.outer(x, x) / noise_std**2
                lin = lin + y * x / noise_std**2
        cov = np.linalg.inv(prec)
        means.append(cov @ lin)
        covs.append(cov)
    return np.array(means), np.array(covs)


def joint_oracle_from_stats(prior, G, b):
    """The exact (Ψ, Θ) posterior when action i contributes precision G[i] and linear term b[i].

    For GLM rewards G[i] = G^LAP_i and b[i] = G^LAP_i μ^LAP_i (docs/math.md §4): the Laplace plug-in
    makes the mixed-effect posterior exactly this Gaussian.
    """
    P = parts(prior)
    K, L, d = P.sizes
    Gamma = np.kron(P.B, np.eye(d))
    D = np.linalg.inv(block_diag_dense(P.S0))
    P_psi = np.linalg.inv(P.cov_psi)
    n = (L + K) * d
    prec = np.zeros((n, n))
    prec[: L * d, : L * d] = P_psi + Gamma.T @ D @ Gamma
    prec[: L * d, L * d :] = -Gamma.T @ D
    prec[L * d :, : L * d] = -D @ Gamma
    prec[L * d :, L * d :] = D + block_diag_dense(G)
    h = np.zeros(n)
    h[: L * d] = P_psi @ P.mu.reshape(-1)
    h[L * d :] = b.reshape(-1)
    cov = np.linalg.inv(prec)
    mean = cov @ h
    theta_cov = cov[L * d :, L * d :]
    return {
        "effect_mean": mean[: L * d].reshape(L, d),
        "effect_cov": cov[: L * d, : L * d],
        "action_mean": mean[L * d :].reshape(K, d),
        "action_cov": np.stack(
            [theta_cov[i * d : (i + 1) * d, i * d : (i + 1) * d] for i in range(K)]
        ),
        "theta_cov": theta_cov,
    }


# ---------------------------------------------------------------------------- logistic fits
def logistic_map(X, y, P, c, w=None, tol=1e-13, max_iter=200):
    """argmin_θ −Σ w_t log p(y_t | x_tᵀθ) + ½ (θ − c)ᵀ P (θ − c) for the logistic likelihood,
    by plain damped Newton to ``tol``; returns (θ̂, G = Σ w_t f'(x_tᵀθ̂) x_t x_tᵀ)."""
    X, y = np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.float64)
    w = np.ones(len(y)) if w is None else np.asarray(w, dtype=np.float64)
    c = np.asarray(c, dtype=np.float64)

    def objective(th):
        z = X @ th
        return -np.sum(w * (y * log_expit(z) + (1 - y) * log_expit(-z))) + 0.5 * (th - c) @ P @ (
            th - c)

    theta = c.copy()
    for _ in range(max_iter):
        p = expit(X @ theta)
        grad = X.T @ (w * (p - y)) + P @ (theta - c)
        H = (X * (w * p * (1 - p))[:, None]).T @ X + P
        step = np.linalg.solve(H, grad)
        scale = 1.0
        while objective(theta - scale * step) > objective(theta) + 1e-15 * (
                1 + abs(objective(theta))) and scale > 1e-10:
            scale /= 2
        theta = theta - scale * step
        if np.max(np.abs(scale * step)) < tol * (1 + np.max(np.abs(theta))):
            break
    p = expit(X @ theta)
    return theta, (X * (w * p * (1 - p))[:, None]).T @ X


def online_logistic_step(mode, G_old, X, y, P):
    """One Newton step of assumed-density filtering from N(mode, (G_old + P)⁻¹) with the new rows
    (X, y), written out: g = Σ (σ(xᵀμ) − y) x, G = G_old + Σ σ'(xᵀμ) x xᵀ, μ' = μ − (G + P)⁻¹ g."""
    X, y = np.atleast_2d(X), np.atleast_1d(y)
    z = X @ mode
    p = expit(z)
    g = X.T @ (p - y)
    G = G_old + (X * (p * (1 - p))[:, None]).T @ X
    return mode - np.linalg.solve(G + P, g), G


def mixed_glm_replay(prior, X, A, Y, *, method="exact", laplace_at="posterior",
                     factored=False, batch_size=30, ridge=1e-3, rngs=None):
    """The Laplace statistics (G, b) of meTS-GLM (logistic rewards), recomputed from the
    observations alone, one update at a time (docs/math.md §4).

    ``"exact"``/``"minibatch"`` refit each touched action on its whole history (or on a minibatch
    of ``batch_size`` rows drawn with replacement by ``rngs[t].integers(0, n, batch_size)``,
    weighted n / batch_size, once the history has more rows than that) at the MAP under
    N(Γ_a μ̄, Σ0_a) (μ̄: the effect mean before the update, by the oracle) with
    b = G θ̂ + P0 (θ̂ − Γ_a μ̄), or (``laplace_at="likelihood"``) at the ridge-penalised MLE with
    b = G θ̂. ``"online"`` takes one Newton step from the previous mode (ridge penalty) and
    b = G μ. Returns G (K, d, d), b (K, d).
    """
    Pp = parts(prior)
    K, _, d = Pp.sizes
    G, b = np.zeros((K, d, d)), np.zeros((K, d))
    modes = np.zeros((K, d))
    hist_X = [np.zeros((0, d)) for _ in range(K)]
    hist_y = [np.zeros(0) for _ in range(K)]
    for t, (x, a, y) in enumerate(zip(X, A, Y)):
        hist_X[a] = np.vstack([hist_X[a], x])
        hist_y[a] = np.append(hist_y[a], y)
        if method == "online":
            modes[a], G[a] = online_logistic_step(modes[a], G[a], x, y, ridge * np.eye(d))
            b[a] = G[a] @ modes[a]
            continue
        Xa, ya, w = hist_X[a], hist_y[a], None
        n = len(ya)
        if method == "minibatch" and n > batch_size:
            rows = rngs[t].integers(0, n, batch_size)
            Xa, ya, w = Xa[rows], ya[rows], np.full(batch_size, n / batch_size)
        if laplace_at == "posterior":
            if factored:
                mu_bar = factored_oracle_from_stats(prior, G, b)[0]
            else:
                mu_bar = joint_oracle_from_stats(prior, G, b)["effect_mean"]
            center = Pp.B[a] @ mu_bar
            P0 = np.linalg.inv(Pp.S0[a])
            theta, G[a] = logistic_map(Xa, ya, P0, center, w)
            b[a] = G[a] @ theta + P0 @ (theta - center)
        else:
            theta, G[a] = logistic_map(Xa, ya, ridge * np.eye(d), np.zeros(d), w)
            b[a] = G[a] @ theta
    return G, b
