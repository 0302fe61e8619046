"""Slow, obvious reference implementations that the fast paths are checked against.

Nothing here is clever: build the full joint Gaussian of (Ψ, Θ), add each observation to its
precision, invert with numpy.
"""

from __future__ import annotations

import numpy as np


def block_diag_dense(blocks: np.ndarray) -> np.ndarray:
    n, d, _ = blocks.shape
    out = np.zeros((n * d, n * d))
    for i in range(n):
        out[i * d : (i + 1) * d, i * d : (i + 1) * d] = blocks[i]
    return out


def joint_oracle(prior, noise_std, X, A, Y):
    """Exact posterior of (Ψ, Θ) given observations (X[t], A[t], Y[t]).

    Returns a dict with the effect mean (L, d) and covariance (Ld, Ld), the action means
    (K, d), marginal covariances (K, d, d), and the full joint Θ covariance (Kd, Kd).
    """
    K, d = prior.n_actions, prior.dim
    G = np.zeros((K, d, d))
    b = np.zeros((K, d))
    s2 = noise_std**2
    for x, a, y in zip(X, A, Y):
        G[a] += np.outer(x, x) / s2
        b[a] += y * x / s2
    return joint_oracle_from_stats(prior, G, b)


def factored_oracle(prior, noise_std, X, A, Y):
    """meTS-Fa's effect posterior written plainly from docs/math.md §3 (eq. 43)."""
    L, d, K = prior.n_effects, prior.dim, prior.n_actions
    B = prior.mixing.toarray()
    acov = np.asarray(prior.action_cov)
    s2 = noise_std**2
    G = np.zeros((K, d, d))
    b = np.zeros((K, d))
    for x, a, y in zip(X, A, Y):
        G[a] += np.outer(x, x) / s2
        b[a] += y * x / s2
    means, covs = [], []
    blocks = prior.effect_cov_blocks()
    for l in range(L):
        P_l = np.linalg.inv(blocks[l])
        prec = P_l.copy()
        lin = P_l @ np.asarray(prior.effect_mean)[l]
        for i in range(K):
            S0 = acov if acov.ndim == 2 else acov[i]
            P0 = np.linalg.inv(S0)
            S = np.linalg.inv(P0 + G[i])
            M = P0 - P0 @ S @ P0
            prec += B[i, l] ** 2 * M
            lin += B[i, l] * P0 @ S @ b[i]
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
    L, d, K = prior.n_effects, prior.dim, prior.n_actions
    B = prior.mixing.toarray()
    Gamma = np.kron(B, np.eye(d))
    acov = np.asarray(prior.action_cov)
    blocks = np.broadcast_to(acov, (K, d, d)) if acov.ndim == 2 else acov
    D = np.linalg.inv(block_diag_dense(np.asarray(blocks)))
    P_psi = np.linalg.inv(prior.effect_cov_full())
    n = (L + K) * d
    prec = np.zeros((n, n))
    prec[: L * d, : L * d] = P_psi + Gamma.T @ D @ Gamma
    prec[: L * d, L * d :] = -Gamma.T @ D
    prec[L * d :, : L * d] = -D @ Gamma
    prec[L * d :, L * d :] = D + block_diag_dense(G)
    h = np.zeros(n)
    h[: L * d] = P_psi @ np.asarray(prior.effect_mean).reshape(-1)
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
