"""The binary-reward sDM experiment (paper App. E.1 / F.4) at tiny sizes."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import expit

from mixedts import LinearEffectPrior, LinTS, MeTS, ValidationError
from mixedts.offline.sdm_binary import BINARY_METHODS, run_sdm_binary


def _instance(seed, i, n_instances, K, d, e, n, n_test):
    """The documented draws of instance i, written out."""
    rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(n_instances)[i])
    mu = rng.uniform(-1, 1, e)
    W = rng.uniform(-1, 1, (K, d, e))
    psi = mu + np.sqrt(3) * rng.standard_normal(e)
    theta = W @ psi + rng.standard_normal((K, d))
    X, A = rng.uniform(-1, 1, (n, d)), rng.integers(0, K, n)
    Y = (rng.uniform(size=n) < expit(np.sum(X * theta[A], axis=1))).astype(float)
    return mu, W, theta, X, A, Y, rng.uniform(-1, 1, (n_test, d))


def test_rows_are_the_documented_metrics_of_the_documented_instances():
    """The instance's law, the greedy policy of the probit reward r̂ (its argmax differs from
    the posterior mean's on some of these test contexts) and the two metrics, written out."""
    K, d, e, n, n_test = 6, 2, 2, 40, 300
    df = run_sdm_binary(2, (20, n), K=K, d=d, d_eff=e, seed=3, n_test=n_test)
    assert len(df) == 2 * 2 * len(BINARY_METHODS) * 2
    assert set(df["method"]) == set(BINARY_METHODS)
    mu, W, theta, X_all, A_all, Y_all, X_test = _instance(3, 1, 2, K, d, e, n, n_test)
    prior = LinearEffectPrior(mu, 3 * np.eye(e), W, np.eye(d))
    mean, cov = prior.marginal_action_prior()
    P = expit(X_test @ theta.T)  # the test contexts' true reward probabilities
    truth = 0.5 * P.mean() + 0.5 * P.max(axis=1).mean()
    for m in (20, n):
        X, A, Y = X_all[:m], A_all[:m], Y_all[:m]
        a_star = np.argmax(X @ theta.T, axis=1)
        fitted = {"sdm": MeTS(prior, likelihood="logistic"),
                  "dm-bayes": LinTS(mean, cov, likelihood="logistic"), "sdm-lin": MeTS(prior)}
        for label, policy in fitted.items():
            policy.update_batch(X, A, Y)
            M, S = policy.posterior_mean(), policy.posterior_cov()

            def reward(Z, label=label, M=M, S=S):
                if label == "sdm-lin":
                    return Z @ M.T
                var = np.array([[z @ S[a] @ z for a in range(K)] for z in Z])
                return expit((Z @ M.T) / np.sqrt(1 + np.pi * var / 8))

            rr = P[np.arange(n_test), reward(X_test).argmax(1)].sum() / P.max(1).sum()
            got = df[(df.instance == 1) & (df.n == m) & (df.method == label)]
            assert got[got.metric == "opl_relative_reward"].value.item() == pytest.approx(
                rr, rel=1e-12)
            q = reward(X)
            dm = np.mean(0.5 * q.mean(1) + 0.5 * q[np.arange(m), a_star])
            assert got[got.metric == "ope_squared_error"].value.item() == pytest.approx(
                (dm - truth) ** 2, rel=1e-9)
    # instance 1 is the same whatever the number of instances (its own SeedSequence child)
    again = run_sdm_binary(2, (n,), K=K, d=d, d_eff=e, seed=3, n_test=n_test)
    a = df[(df.instance == 1) & (df.n == n)].reset_index(drop=True)
    b = again[again.instance == 1].reset_index(drop=True)
    np.testing.assert_array_equal(a.value.to_numpy(), b.value.to_numpy())


def test_structure_helps_binary_opl_with_few_logs_per_action():
    """K = 30 actions, 60 logs (2 per action), 6 instances: sDM-binary's greedy policy beats
    DM (Bayes)-binary's (the structure pools the actions; measured gap 0.08); control: with
    n = 600 logs DM (Bayes) closes most of the gap (measured 0.005)."""
    df = run_sdm_binary(6, (60, 600), K=30, d=3, d_eff=3, seed=1, n_test=500)
    opl = df[df.metric == "opl_relative_reward"].groupby(["n", "method"]).value.mean()
    gap_small = opl[(60, "sdm")] - opl[(60, "dm-bayes")]
    gap_large = opl[(600, "sdm")] - opl[(600, "dm-bayes")]
    assert gap_small > 0.05, opl
    assert gap_large < 0.5 * gap_small, opl


def test_bad_arguments_are_named():
    with pytest.raises(ValidationError, match="n_logs"):
        run_sdm_binary(1, (0,))
    with pytest.raises(ValidationError, match=r"^K"):
        run_sdm_binary(1, (10,), K=0)
    with pytest.raises(ValidationError, match="epsilon"):
        run_sdm_binary(1, (10,), K=3, d=2, d_eff=2, epsilon=2.0)
