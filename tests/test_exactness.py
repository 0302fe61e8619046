"""Fast posteriors equal the brute-force joint Gaussian of (Ψ, Θ) (docs/math.md §1)."""

import itertools

import numpy as np
import pytest

from conftest import make_prior
from mixedts import FactoredMeTS, HierTS, JointTS, LinTS, MeTS
from oracles import factored_oracle, independent_oracle, joint_oracle

RTOL = 1e-9

CASES = list(
    itertools.product(
        ["dense", "sparse", "onehot", "negative"], ["shared", "per-action"], ["block", "full"]
    )
)


def rel_err(a, b):
    return np.max(np.abs(a - b)) / max(1e-300, np.max(np.abs(b)))


def run_policy(policy, rng, n, per_action_context, K, d, batch=False):
    X, A, Y, Xfull = [], [], [], []
    for _ in range(n):
        x = rng.uniform(-1, 1, (K, d)) if per_action_context else rng.uniform(-1, 1, d)
        a = policy.select(x)
        y = rng.normal()
        if not batch:
            policy.update(x, a, y)
        Xfull.append(x)
        X.append(x[a] if per_action_context else x)
        A.append(a)
        Y.append(y)
    if batch:
        policy.update_batch(np.array(Xfull), np.array(A), np.array(Y))
    return np.array(X), np.array(A), np.array(Y)


@pytest.mark.parametrize("mixing,action_cov,effect_cov", CASES)
@pytest.mark.parametrize("per_action_context", [False, True])
def test_mets_matches_joint_oracle(mixing, action_cov, effect_cov, per_action_context):
    K, L, d = 10, 3, 2
    prior = make_prior(1, K, L, d, mixing, action_cov, effect_cov)
    # a refactor in the middle of the run exercises both the incremental and exact paths
    policy = MeTS(prior, noise_std=0.7, seed=3, refactor_every=150)
    rng = np.random.default_rng(11)
    X, A, Y = run_policy(policy, rng, 220, per_action_context, K, d)
    ref = joint_oracle(prior, 0.7, X, A, Y)
    mean, cov = policy.effect_posterior()
    assert rel_err(mean, ref["effect_mean"]) < RTOL
    assert rel_err(cov, ref["effect_cov"]) < RTOL
    assert rel_err(policy.posterior_mean(), ref["action_mean"]) < RTOL
    assert rel_err(policy.posterior_cov(), ref["action_cov"]) < RTOL


@pytest.mark.parametrize("mixing", ["dense", "sparse"])
@pytest.mark.parametrize("refactor_every", [0, 120])
def test_mets_with_a_large_effect_space_matches_joint_oracle(mixing, refactor_every):
    """L·d = 72: the in-place rank-one step updates the effect mean in O(n)
    (models/gaussian.py, from n = 64 on); 300 rounds with no exact refactor at all, and with
    refactors in between."""
    K, L, d = 12, 9, 8
    prior = make_prior(7, K, L, d, mixing, "shared", "full")
    policy = MeTS(prior, noise_std=0.6, seed=2, refactor_every=refactor_every)
    X, A, Y = run_policy(policy, np.random.default_rng(9), 300, False, K, d)
    ref = joint_oracle(prior, 0.6, X, A, Y)
    mean, cov = policy.effect_posterior()
    assert rel_err(mean, ref["effect_mean"]) < RTOL
    assert rel_err(cov, ref["effect_cov"]) < RTOL
    assert rel_err(policy.posterior_mean(), ref["action_mean"]) < RTOL


@pytest.mark.parametrize("mixing,action_cov,effect_cov", CASES[::3])
def test_jointts_matches_joint_oracle(mixing, action_cov, effect_cov):
    K, L, d = 8, 3, 2
    prior = make_prior(2, K, L, d, mixing, action_cov, effect_cov)
    policy = JointTS(prior, noise_std=0.5, seed=4, refactor_every=0)
    X, A, Y = run_policy(policy, np.random.default_rng(5), 200, False, K, d)
    ref = joint_oracle(prior, 0.5, X, A, Y)
    assert rel_err(policy.posterior_mean(), ref["action_mean"]) < RTOL
    assert rel_err(policy.posterior_cov(), ref["action_cov"]) < RTOL
    assert rel_err(policy.model.joint_cov(), ref["theta_cov"]) < RTOL


@pytest.mark.parametrize("mixing", ["dense", "sparse", "onehot"])
@pytest.mark.parametrize("per_action_context", [False, True])
def test_update_batch_matches_oracle(mixing, per_action_context):
    K, L, d = 10, 3, 2
    prior = make_prior(3, K, L, d, mixing, "per-action", "full")
    for cls in (MeTS, FactoredMeTS, JointTS):
        policy = cls(prior, noise_std=0.8, seed=0)
        X, A, Y = run_policy(
            policy, np.random.default_rng(7), 3, per_action_context, K, d, batch=True
        )  # small batch: the low-rank path
        X2, A2, Y2 = run_policy(
            policy, np.random.default_rng(8), 200, per_action_context, K, d, batch=True
        )  # large batch: the exact recompute path
        X, A, Y = np.concatenate([X, X2]), np.concatenate([A, A2]), np.concatenate([Y, Y2])
        if cls is FactoredMeTS:
            m, c = factored_oracle(prior, 0.8, X, A, Y)
            mean, cov = policy.effect_posterior()
            assert rel_err(mean, m) < RTOL
            L_, d_ = m.shape
            blocks = cov.reshape(L_, d_, L_, d_)[np.arange(L_), :, np.arange(L_), :]
            assert rel_err(blocks, c) < RTOL
            continue
        ref = joint_oracle(prior, 0.8, X, A, Y)
        assert rel_err(policy.posterior_mean(), ref["action_mean"]) < RTOL
        assert rel_err(policy.posterior_cov(), ref["action_cov"]) < RTOL


@pytest.mark.parametrize("mixing", ["dense", "sparse", "onehot", "negative"])
def test_factored_matches_its_formula(mixing):
    K, L, d = 10, 3, 2
    prior = make_prior(4, K, L, d, mixing, "per-action", "block")
    policy = FactoredMeTS(prior, noise_std=0.9, seed=1, refactor_every=120)
    X, A, Y = run_policy(policy, np.random.default_rng(9), 210, False, K, d)
    m, c = factored_oracle(prior, 0.9, X, A, Y)
    mean, cov = policy.effect_posterior()
    assert rel_err(mean, m) < RTOL
    blocks = cov.reshape(L, d, L, d)[np.arange(L), :, np.arange(L), :]
    assert rel_err(blocks, c) < RTOL
    assert np.all(cov.reshape(L, d, L, d)[0, :, 1, :] == 0)


def test_factored_equals_mets_when_onehot_and_block():
    prior = make_prior(5, 12, 3, 2, "onehot", "shared", "block")
    a, b = MeTS(prior, seed=0), FactoredMeTS(prior, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(200):
        x = rng.uniform(-1, 1, 2)
        act = int(rng.integers(12))
        y = rng.normal()
        a.update(x, act, y)
        b.update(x, act, y)
    assert rel_err(b.posterior_mean(), a.posterior_mean()) < RTOL
    assert rel_err(b.posterior_cov(), a.posterior_cov()) < RTOL
    assert rel_err(b.effect_posterior()[1], a.effect_posterior()[1]) < RTOL


def test_factored_differs_from_mets_otherwise():
    prior = make_prior(5, 12, 3, 2, "dense", "shared", "block")
    a, b = MeTS(prior, seed=0), FactoredMeTS(prior, seed=0)
    rng = np.random.default_rng(0)
    for _ in range(100):
        x = rng.uniform(-1, 1, 2)
        act = int(rng.integers(12))
        y = rng.normal()
        a.update(x, act, y)
        b.update(x, act, y)
    assert rel_err(b.posterior_cov(), a.posterior_cov()) > 1e-3


def test_hierts_equals_mets_with_one_effect():
    rng = np.random.default_rng(3)
    K, d = 15, 3
    mu, S, S0 = rng.normal(size=d), 2 * np.eye(d), 0.5 * np.eye(d)
    from mixedts import MixedEffectPrior

    h = HierTS(K, mu, S, S0, seed=2)
    m = MeTS(MixedEffectPrior(mu[None], S[None], np.ones((K, 1)), S0), seed=2)
    X, A, Y = run_policy(h, np.random.default_rng(1), 150, False, K, d)
    for x, act, y in zip(X, A, Y):
        m.update(x, act, y)
    assert rel_err(h.posterior_mean(), m.posterior_mean()) < 1e-12
    assert rel_err(h.posterior_cov(), m.posterior_cov()) < 1e-12
    ref = joint_oracle(m.prior, 1.0, X, A, Y)
    assert rel_err(h.posterior_mean(), ref["action_mean"]) < RTOL


@pytest.mark.parametrize("cov_kind", ["shared", "per-action"])
def test_lints_matches_per_action_regression(cov_kind):
    prior = make_prior(6, 9, 3, 2, "dense", cov_kind, "full")
    policy = LinTS.from_prior(prior, noise_std=0.6, seed=0, refactor_every=100)
    X, A, Y = run_policy(policy, np.random.default_rng(2), 230, True, 9, 2)
    mean0, cov0 = prior.marginal_action_prior()
    m, c = independent_oracle(mean0, cov0, 0.6, X, A, Y)
    assert rel_err(policy.posterior_mean(), m) < RTOL
    assert rel_err(policy.posterior_cov(), c) < RTOL


def test_marginal_prior_matches_joint_oracle(prior):
    mean, cov = prior.marginal_action_prior()
    ref = joint_oracle(prior, 1.0, [], [], [])
    assert rel_err(mean, ref["action_mean"]) < RTOL
    assert rel_err(cov, ref["action_cov"]) < RTOL
