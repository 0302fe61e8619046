"""The general linear effect structure θ_a | ψ ~ N(W_a ψ, Σ_a) (sDM's prior) against the
brute-force joint Gaussian over (ψ, θ_1, …, θ_K), built from the raw inputs."""

from __future__ import annotations

import numpy as np
import pytest

import mixedts
from builders import assert_same_state, snapshot
from mixedts import LinearEffectPrior, MeTS, MixedEffectPrior, ValidationError


def raw(K=5, d=2, e=3, seed=0, per_action=True):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(e, e))
    cov = A @ A.T + e * np.eye(e)
    W = rng.uniform(-1, 1, (K, d, e))
    if per_action:
        B = rng.normal(size=(K, d, d))
        S0 = B @ np.swapaxes(B, 1, 2) + 0.5 * np.eye(d)
    else:
        S0 = 0.7 * np.eye(d)
    return rng.uniform(-1, 1, e), cov, W, S0


def joint_oracle(mu, cov, W, S0, noise, X, A, Y):
    """Posterior of (ψ, θ) by plain conditioning: returns E[θ] (K, d), Cov[θ_i] (K, d, d),
    E[ψ] and Cov[ψ]."""
    K, d, e = W.shape
    S0 = np.broadcast_to(S0, (K, d, d))
    n = e + K * d
    T = np.zeros((n, e))  # (ψ, θ) = T ψ + (0, ε)
    T[:e] = np.eye(e)
    T[e:] = W.reshape(K * d, e)
    m = T @ mu
    C = T @ cov @ T.T
    for i in range(K):
        C[e + i * d:e + (i + 1) * d, e + i * d:e + (i + 1) * d] += S0[i]
    H = np.zeros((len(A), n))
    for t, (x, a) in enumerate(zip(X, A)):
        H[t, e + a * d:e + (a + 1) * d] = x
    Sy = H @ C @ H.T + noise**2 * np.eye(len(A))
    gain = C @ H.T @ np.linalg.inv(Sy)
    m_post = m + gain @ (Y - H @ m)
    C_post = C - gain @ H @ C
    theta_cov = np.stack([C_post[e + i * d:e + (i + 1) * d, e + i * d:e + (i + 1) * d]
                          for i in range(K)])
    return m_post[e:].reshape(K, d), theta_cov, m_post[:e], C_post[:e, :e]


def data(K, d, n, seed):
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (n, d)), rng.integers(K, size=n), rng.normal(size=n)


@pytest.mark.parametrize("per_action", [False, True])
@pytest.mark.parametrize("how", ["incremental", "batch"])
def test_posterior_matches_the_joint_oracle(per_action, how):
    mu, cov, W, S0 = raw(per_action=per_action)
    X, A, Y = data(5, 2, 30, 1)
    policy = MeTS(LinearEffectPrior(mu, cov, W, S0), noise_std=0.8, seed=0)
    if how == "batch":
        policy.update_batch(X, A, Y)
    else:
        for x, a, y in zip(X, A, Y):
            policy.update(x, a, y)
    mean, tcov, psi_mean, psi_cov = joint_oracle(mu, cov, W, S0, 0.8, X, A, Y)
    np.testing.assert_allclose(policy.posterior_mean(), mean, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(policy.posterior_cov(), tcov, rtol=1e-9, atol=1e-11)
    np.testing.assert_allclose(policy.model.effect_posterior()[0], psi_mean, rtol=1e-9,
                               atol=1e-11)
    np.testing.assert_allclose(policy.model.effect_posterior()[1], psi_cov, rtol=1e-9,
                               atol=1e-11)
    # score moments: x_iᵀθ_i has the oracle's mean and variance
    x = np.array([0.3, -0.8])
    np.testing.assert_allclose(policy.model.mean_scores(x), mean @ x, rtol=1e-9)
    np.testing.assert_allclose(policy.model.score_std(x) ** 2,
                               np.einsum("d,kde,e->k", x, tcov, x), rtol=1e-9)
    # the effect precision the model keeps (the GLM updates add to it) is Cov[ψ]⁻¹
    np.testing.assert_allclose(policy.model.precision, np.linalg.inv(psi_cov), rtol=1e-9,
                               atol=1e-9 * np.abs(policy.model.precision).max())
    # negative control: dropping one observation is detected
    wrong = joint_oracle(mu, cov, W, S0, 0.8, X[:-1], A[:-1], Y[:-1])[0]
    assert np.abs(policy.posterior_mean() - wrong).max() > 1e-4


def test_the_mixed_effect_prior_is_the_special_case_w_equals_b_kron_identity():
    rng = np.random.default_rng(2)
    K, L, d = 6, 2, 2
    B = rng.uniform(-1, 1, (K, L))
    mixed = MixedEffectPrior(np.zeros((L, d)), 2 * np.stack([np.eye(d)] * L), B, np.eye(d))
    W = np.einsum("kl,de->kdle", B, np.eye(d)).reshape(K, d, L * d)
    linear = LinearEffectPrior(np.zeros(L * d), 2 * np.eye(L * d), W, np.eye(d))
    X, A, Y = data(K, d, 25, 3)
    a, b = MeTS(mixed, seed=0), MeTS(linear, seed=0)
    a.update_batch(X, A, Y)
    b.update_batch(X, A, Y)
    np.testing.assert_allclose(b.posterior_mean(), a.posterior_mean(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(b.posterior_cov(), a.posterior_cov(), rtol=1e-9, atol=1e-12)


def test_draws_have_the_posterior_law_and_save_load_continues(tmp_path):
    mu, cov, W, S0 = raw()
    policy = MeTS(LinearEffectPrior(mu, cov, W, S0), seed=3)
    X, A, Y = data(5, 2, 20, 4)
    for x, a, y in zip(X, A, Y):
        policy.update(x, a, y)
    draws = policy.sample_parameters(20_000, seed=5)
    np.testing.assert_allclose(draws.mean(0), policy.posterior_mean(), atol=0.05)
    x = np.array([1.0, 0.5])
    scores = policy.model.sample_scores_many(x, 20_000, np.random.default_rng(6))
    np.testing.assert_allclose(scores.std(0), policy.model.score_std(x), rtol=0.03)
    assert np.abs(scores.std(0) / np.sqrt(np.einsum("d,kde,e->k", x, policy.model.S, x))
                  - 1).max() > 0.03  # control: the effects' share of the variance is visible
    policy.save(tmp_path / "p.npz")
    loaded = mixedts.load(tmp_path / "p.npz")
    assert_same_state(snapshot(policy), snapshot(loaded))
    assert [policy.select(x) for _ in range(20)] == [loaded.select(x) for _ in range(20)]


def test_bad_priors_and_unsupported_variants_are_refused():
    mu, cov, W, S0 = raw()
    with pytest.raises(ValidationError, match=r"^loadings"):
        LinearEffectPrior(mu, cov, W[:, :, :2], S0)
    with pytest.raises(ValidationError, match=r"^effect_cov"):
        LinearEffectPrior(mu, -cov, W, S0)
    prior = LinearEffectPrior(mu, cov, W, S0)
    with pytest.raises(ValidationError, match=r"^prior"):
        mixedts.FactoredMeTS(prior)
    with pytest.raises(ValidationError, match=r"^likelihood"):
        MeTS(prior, likelihood="poisson")
    # logistic rewards are tests/test_linear_effect_glm.py's
