"""GLM-dTS (logistic rewards): each action's likelihood Laplace-approximated, then the exact
chain algebra (docs/diffusion.md §3)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from scipy.special import expit

from builders import assert_same_state, snapshot
from mixedts import DiffusionPrior, DiffusionTS, MeTS
from oracles import logistic_map, mixed_glm_replay
from test_diffusion import chain_oracle, raw_chain, rel_err


def recorded_stream(policy, rng, n, theta):
    """Logistic rounds with per-action contexts; records the played rows, actions, rewards and
    a copy of the policy's generator before each update (the minibatch fit draws from it)."""
    K, d = policy.n_actions, policy.dim
    X, A, Y, rngs = [], [], [], []
    for _ in range(n):
        x = rng.uniform(-1, 1, (K, d))
        a = policy.select(x)
        y = float(rng.uniform() < expit(x[a] @ theta[a]))
        rngs.append(copy.deepcopy(policy.rng))
        policy.update(x, a, y)
        X.append(x[a]), A.append(a), Y.append(y)
    return np.array(X), np.array(A), np.array(Y), rngs


@pytest.mark.parametrize("method", ["exact", "minibatch", "online"])
@pytest.mark.parametrize("laplace_at", ["likelihood", "posterior"])
def test_glm_dts_is_the_exact_chain_posterior_given_the_laplace_statistics(method, laplace_at):
    """The Laplace statistics (G, b) are recomputed from the observations alone by
    tests/oracles.py (a plain Newton fit per action; for ``"posterior"`` the centre is E[u | H]
    before the update, the one-effect oracle's effect mean), then the brute-force chain
    Gaussian given them equals the policy's posterior."""
    K, d, L = 7, 2, 3
    links, covs, m = raw_chain(31, L, d, sparse=True)
    prior = DiffusionPrior(links, covs, m)
    policy = DiffusionTS(prior, n_actions=K, seed=1, likelihood="logistic", laplace=method,
                         laplace_batch=6, laplace_at=laplace_at, refactor_every=0)
    theta = prior.sample(K, np.random.default_rng(0))
    X, A, Y, rngs = recorded_stream(policy, np.random.default_rng(2), 100, theta)
    assert np.bincount(A, minlength=K).max() > 6  # the minibatch path is taken
    G, b = mixed_glm_replay(prior.to_hierts2(K), X, A, Y, method=method, laplace_at=laplace_at,
                            batch_size=6, rngs=rngs)
    ref = chain_oracle(links, covs, m, G, b)
    tol = 1e-7
    assert rel_err(policy.posterior_mean(), ref["action_mean"]) < tol
    assert rel_err(policy.posterior_cov(), ref["action_cov"]) < tol
    assert rel_err(policy.latent_posterior().mean, ref["latent_mean"]) < tol
    assert rel_err(policy.joint_cov(np.arange(K)), ref["theta_cov"]) < tol


def test_the_likelihood_expansion_is_the_ridge_mle_of_each_history():
    K, d = 5, 3
    links, covs, m = raw_chain(4, 2, d)
    policy = DiffusionTS(DiffusionPrior(links, covs, m), n_actions=K, seed=0,
                         likelihood="logistic", laplace_at="likelihood")
    theta = np.random.default_rng(1).normal(size=(K, d))
    X, A, Y, _ = recorded_stream(policy, np.random.default_rng(4), 150, theta)
    for a in np.unique(A):
        mode, _ = logistic_map(X[A == a], Y[A == a], 1e-3 * np.eye(d), np.zeros(d))
        assert np.max(np.abs(policy.model.fitter.modes[a] - mode)) < 1e-6 * max(
            1, np.abs(mode).max())


def test_glm_dts_is_mets_glm_on_the_one_effect_prior():
    K, d = 6, 2
    links, covs, m = raw_chain(9, 3, d)
    prior = DiffusionPrior(links, covs, m)
    rng = np.random.default_rng(5)
    X = rng.uniform(-1, 1, (150, d))
    A = rng.integers(K, size=150)
    Y = (rng.uniform(size=150) < 0.4).astype(float)
    for at in ("likelihood", "posterior"):
        dts = DiffusionTS(prior, n_actions=K, seed=0, likelihood="logistic", laplace_at=at)
        mets = MeTS(prior.to_hierts2(K), seed=0, likelihood="logistic", laplace_at=at)
        for p in (dts, mets):
            for i in range(0, 150, 10):  # batches of 10
                p.update_batch(X[i:i + 10], A[i:i + 10], Y[i:i + 10])
        assert rel_err(dts.posterior_mean(), mets.posterior_mean()) < 1e-8
        assert rel_err(dts.posterior_cov(), mets.posterior_cov()) < 1e-8


def test_consistency_mean_converges_and_covariance_shrinks_like_one_over_n():
    rng = np.random.default_rng(5)
    K, d = 3, 2
    links, covs, m = raw_chain(2, 2, d)
    theta = np.array([[1.0, -0.5], [-0.8, 0.3], [0.4, 1.2]])
    traces = {}
    for n in (2000, 8000):
        policy = DiffusionTS(DiffusionPrior(links, covs, m), n_actions=K, seed=0,
                             likelihood="logistic")
        X = rng.uniform(-1, 1, (n * K, d))
        A = np.repeat(np.arange(K), n)
        Y = (rng.uniform(size=n * K) < expit(np.einsum("nd,nd->n", X, theta[A]))).astype(float)
        policy.update_batch(X, A, Y)
        mean, cov = policy.posterior_mean(), policy.posterior_cov()
        sd = np.sqrt(np.diagonal(cov, axis1=1, axis2=2))
        assert np.all(np.abs(mean - theta) < 5 * sd)
        # negative control: a truth off by 0.6 in one coordinate (7 sd at n = 2000) fails
        wrong = theta.copy()
        wrong[1, 0] += 0.6
        assert not np.all(np.abs(mean - wrong) < 5 * sd)
        traces[n] = np.trace(cov, axis1=1, axis2=2)
    ratio = traces[2000] / traces[8000]
    assert np.all((ratio > 3.0) & (ratio < 5.0)), ratio
    assert not np.all((np.sqrt(ratio) > 3.0) & (np.sqrt(ratio) < 5.0))


@pytest.mark.parametrize("laplace_at", ["likelihood", "posterior"])
def test_all_ones_rewards_stay_finite(laplace_at):
    links, covs, m = raw_chain(6, 2, 3)
    policy = DiffusionTS(DiffusionPrior(links, covs, m), n_actions=4, seed=0,
                         likelihood="logistic", laplace_at=laplace_at)
    rng = np.random.default_rng(0)
    for _ in range(50):
        x = rng.uniform(-1, 1, 3)
        policy.update(x, policy.select(x), 1.0)
    for arr in (policy.posterior_mean(), policy.posterior_cov(),
                policy.sample_parameters(10, seed=0)):
        assert np.all(np.isfinite(arr))


@pytest.mark.parametrize("bad", [2.0, -1.0, np.nan, 0.5, np.inf])
def test_bad_rewards_are_rejected_and_change_nothing(bad):
    links, covs, m = raw_chain(6, 2, 3)
    policy = DiffusionTS(DiffusionPrior(links, covs, m), n_actions=4, seed=0,
                         likelihood="logistic")
    recorded_stream(policy, np.random.default_rng(1), 10, np.zeros((4, 3)))
    before = snapshot(policy)
    x = np.full(3, 0.3)
    with pytest.raises(ValueError, match="y"):
        policy.update(x, 0, bad)
    with pytest.raises(ValueError, match="Y"):
        policy.update_batch(np.stack([x, x]), np.array([0, 1]), np.array([1.0, bad]))
    assert_same_state(before, snapshot(policy))
    with pytest.raises(ValueError, match="laplace_at"):
        DiffusionTS(policy.prior, n_actions=4, likelihood="logistic", laplace_at="mode")
