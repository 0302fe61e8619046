"""Catalogue changes: add_action starts a new action at the prior given the effects, and
retire_action stops selection without forgetting what the action taught the effects."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from builders import assert_same_state, build, snapshot
from conftest import make_prior
from mixedts import FactoredMeTS, HierTS, JointTS, LinTS, LinUCB, MeTS, MixedEffectPrior
from oracles import factored_oracle, joint_oracle

RTOL = 1e-9


def rel_err(a, b):
    return np.max(np.abs(a - b)) / max(1e-300, np.max(np.abs(b)))


def observe(policy, rng, n, actions=None):
    """n random observations (of random or given actions) fed through update; returns them."""
    K, d = policy.n_actions, policy.dim
    X = rng.uniform(-1, 1, (n, d))
    A = rng.integers(K, size=n) if actions is None else np.resize(actions, n)
    Y = rng.normal(size=n)
    for x, a, y in zip(X, A, Y):
        policy.update(x, int(a), float(y))
    return X, A, Y


def extended(prior, row, acov=None):
    """The prior with one more action: built from scratch, not with ``with_action``."""
    B = np.vstack([prior.mixing.toarray(), np.atleast_2d(row)])
    S0 = np.asarray(prior.action_cov)
    if S0.ndim == 3:
        S0 = np.concatenate([S0, np.asarray(acov)[None]])
    return MixedEffectPrior(prior.effect_mean, prior.effect_cov, B, S0)


def assert_matches_oracle(policy, prior, X, A, Y):
    ref = joint_oracle(prior, policy.model.noise_std, X, A, Y)
    assert rel_err(policy.posterior_mean(), ref["action_mean"]) < RTOL
    assert rel_err(policy.posterior_cov(), ref["action_cov"]) < RTOL
    if hasattr(policy.model, "effect_posterior"):
        mean, cov = policy.effect_posterior()
        assert rel_err(mean, ref["effect_mean"]) < RTOL
        assert rel_err(cov, ref["effect_cov"]) < RTOL
    return ref


MIXED = [
    ("MeTS", "dense", "shared"),
    ("MeTS", "onehot", "per-action"),  # the new row is denser than every existing one
    ("MeTS", "sparse", "per-action"),
    ("JointTS", "dense", "per-action"),
]


@pytest.mark.parametrize("cls_name,mixing,acov_kind", MIXED)
def test_add_action_starts_at_the_prior_given_the_effects(cls_name, mixing, acov_kind):
    cls = {"MeTS": MeTS, "JointTS": JointTS}[cls_name]
    K, L, d = 9, 3, 2
    prior = make_prior(41, K, L, d, mixing, acov_kind, "full")
    policy = cls(prior, noise_std=0.6, seed=0, refactor_every=0)
    rng = np.random.default_rng(1)
    X, A, Y = observe(policy, rng, 80)
    row = np.array([0.7, -1.3, 0.4])
    acov = None if acov_kind == "shared" else np.array([[0.8, 0.1], [0.1, 0.5]])
    before = policy.posterior_mean().copy()
    new = policy.add_action(row, acov)
    assert new == K and policy.n_actions == K + 1 and policy.active[new]
    big = extended(prior, row, acov)
    ref = assert_matches_oracle(policy, big, X, A, Y)
    # the old actions' posteriors did not move (an unobserved action carries no information)
    np.testing.assert_allclose(policy.posterior_mean()[:K], before, rtol=0, atol=1e-12)
    # the new action: Γ μ̄ and Σ0 + Γ Σ̄ Γᵀ from the effect posterior (docs/math.md eq. 16)
    if cls is MeTS:
        mu, cov = policy.effect_posterior()
        Gam = np.kron(row[None], np.eye(d))
        S0 = np.asarray(big.action_cov)
        S0 = S0 if S0.ndim == 2 else S0[new]
        np.testing.assert_allclose(policy.posterior_mean()[new], Gam @ mu.reshape(-1),
                                   rtol=RTOL, atol=1e-12)
        np.testing.assert_allclose(policy.posterior_cov()[new], S0 + Gam @ cov @ Gam.T,
                                   rtol=RTOL, atol=1e-12)
    # the new action learns and teaches like any other
    X2, A2, Y2 = observe(policy, rng, 40, actions=[new, 0, new, 3])
    assert_matches_oracle(policy, big, np.r_[X, X2], np.r_[A, A2], np.r_[Y, Y2])
    assert ref is not None


def test_add_action_with_sparse_and_zero_mixing_rows():
    K, L, d = 6, 3, 2
    prior = make_prior(42, K, L, d, "sparse", "shared", "block")
    policy = MeTS(prior, seed=0)
    rng = np.random.default_rng(2)
    X, A, Y = observe(policy, rng, 40)
    i = policy.add_action(sp.csr_matrix(np.array([[0.0, 2.0, 0.0]])))
    j = policy.add_action(np.zeros(L))  # independent of every effect: prior N(0, Σ0)
    assert (i, j) == (K, K + 1)
    big = extended(extended(prior, [0.0, 2.0, 0.0]), np.zeros(L))
    assert_matches_oracle(policy, big, X, A, Y)
    np.testing.assert_array_equal(policy.posterior_mean()[j], np.zeros(d))
    np.testing.assert_allclose(policy.posterior_cov()[j], prior.action_cov)
    X2, A2, Y2 = observe(policy, rng, 30, actions=[i, j])
    assert_matches_oracle(policy, big, np.r_[X, X2], np.r_[A, A2], np.r_[Y, Y2])


def test_factored_add_action_matches_its_formula():
    K, L, d = 9, 3, 2
    prior = make_prior(43, K, L, d, "dense", "per-action", "block")
    policy = FactoredMeTS(prior, noise_std=0.7, seed=0)
    rng = np.random.default_rng(3)
    X, A, Y = observe(policy, rng, 60)
    row, acov = np.array([0.5, 0.0, -2.0]), 0.3 * np.eye(d)
    new = policy.add_action(row, acov)
    big = extended(prior, row, acov)
    m, c = factored_oracle(big, 0.7, X, A, Y)
    np.testing.assert_allclose(policy.posterior_mean()[new], row @ m, rtol=RTOL)
    np.testing.assert_allclose(policy.posterior_cov()[new],
                               acov + np.einsum("l,lij->ij", row**2, c), rtol=RTOL)
    X2, A2, Y2 = observe(policy, rng, 30, actions=[new, 1])
    m, c = factored_oracle(big, 0.7, np.r_[X, X2], np.r_[A, A2], np.r_[Y, Y2])
    mean, _ = policy.effect_posterior()
    assert rel_err(mean, m) < RTOL


def test_hierts_add_action():
    K, d = 5, 2
    rng = np.random.default_rng(4)
    mu, S, S0 = rng.normal(size=d), 2 * np.eye(d), 0.5 * np.eye(d)
    policy = HierTS(K, mu, S, S0, seed=0)
    X, A, Y = observe(policy, rng, 50)
    new = policy.add_action()
    assert new == K
    big = MixedEffectPrior(mu[None], S[None], np.ones((K + 1, 1)), S0)
    assert_matches_oracle(policy, big, X, A, Y)


@pytest.mark.parametrize("cls", [LinTS, LinUCB])
def test_independent_add_action_starts_at_its_prior(cls):
    K, d = 5, 2
    policy = LinTS(np.zeros((K, d)), np.stack([np.eye(d)] * K), seed=0) if cls is LinTS \
        else LinUCB(K, d, seed=0)
    rng = np.random.default_rng(5)
    observe(policy, rng, 40)
    before_mean, before_cov = policy.posterior_mean(), policy.posterior_cov()
    if cls is LinTS:
        new = policy.add_action(np.array([1.0, -1.0]), 3 * np.eye(d))
        want_mean, want_cov = np.array([1.0, -1.0]), 3 * np.eye(d)
    else:
        new = policy.add_action()
        want_mean, want_cov = np.zeros(d), np.eye(d)  # ridge prior I σ²/λ with σ = λ = 1
    assert new == K
    np.testing.assert_array_equal(policy.posterior_mean()[:K], before_mean)
    np.testing.assert_array_equal(policy.posterior_cov()[:K], before_cov)
    np.testing.assert_allclose(policy.posterior_mean()[new], want_mean)
    np.testing.assert_allclose(policy.posterior_cov()[new], want_cov)
    assert policy.counts()[new] == 0


@pytest.mark.parametrize(
    "name", ["MeTS-per-action-cov", "FactoredMeTS", "JointTS-per-action", "HierTS-per-action"]
)
def test_per_action_cov_requires_action_cov_on_add(name):
    d = 2
    if name == "JointTS-per-action":
        policy = JointTS(make_prior(44, 6, 2, d, "dense", "per-action", "block"), seed=0)
    elif name == "HierTS-per-action":
        policy = HierTS(6, np.zeros(d), np.eye(d), np.stack([np.eye(d)] * 6), seed=0)
    else:
        policy = build(name, seed=1, d=d)
    observe(policy, np.random.default_rng(0), 10)
    before = snapshot(policy)
    with pytest.raises(ValueError, match="action_cov"):
        if name == "HierTS-per-action":
            policy.add_action()
        else:
            policy.add_action(np.ones(policy.model.prior.n_effects))
    assert_same_state(before, snapshot(policy))
    K = policy.n_actions
    if name == "HierTS-per-action":
        assert policy.add_action(0.5 * np.eye(d)) == K
    else:
        assert policy.add_action(np.ones(policy.model.prior.n_effects), 0.5 * np.eye(d)) == K


def test_shared_action_cov_refuses_a_different_one_on_add():
    policy = build("MeTS", seed=1)
    d, L = policy.dim, policy.model.prior.n_effects
    S0 = np.asarray(policy.model.prior.action_cov)
    for bad in [2 * S0, np.eye(d + 1), np.eye(d)[None]]:
        before = snapshot(policy)
        with pytest.raises(ValueError, match="action_cov"):
            policy.add_action(np.ones(L), bad)
        assert_same_state(before, snapshot(policy))
    assert policy.add_action(np.ones(L), S0.copy()) == policy.n_actions - 1  # the same is fine


# ---------------------------------------------------------------------------- retire
RETIRE = ["MeTS", "MeTS-per-action-cov", "FactoredMeTS", "HierTS", "JointTS", "LinTS", "LinUCB"]


@pytest.mark.parametrize("name", RETIRE)
def test_retired_action_is_never_selected_again(name):
    policy = build(name, seed=7)
    rng = np.random.default_rng(8)
    K, d = policy.n_actions, policy.dim
    # make action 2 clearly the best before retiring it
    for _ in range(30):
        for a in range(K):
            policy.update(np.ones(d), a, 5.0 if a == 2 else -3.0)
    assert policy.select(np.ones(d)) == 2
    before = snapshot(policy)
    policy.retire_action(2)
    after = snapshot(policy)
    assert after["arrays"] == before["arrays"]  # retiring does not touch the posterior
    assert after["rng"] == before["rng"]
    chosen = []
    for t in range(500):
        x = np.ones(d) if t % 2 else rng.uniform(-1, 1, (K, d))
        a = policy.select(x)
        policy.update(x, a, float(rng.normal()))
        chosen.append(a)
    assert 2 not in chosen
    assert len(set(chosen)) > 1
    assert 2 not in policy.select_batch(np.ones((50, d)))


@pytest.mark.parametrize("cls", [MeTS, FactoredMeTS])
def test_retired_action_still_shapes_the_effects(cls):
    K, L, d = 8, 2, 2
    prior = make_prior(45, K, L, d, "dense", "shared", "full")
    policy = cls(prior, noise_std=0.5, seed=0)
    rng = np.random.default_rng(9)
    X, A, Y = observe(policy, rng, 60, actions=[0])  # everything we know comes from action 0
    policy.retire_action(0)
    X2, A2, Y2 = observe(policy, rng, 20, actions=[1, 2])
    Xa, Aa, Ya = np.r_[X, X2], np.r_[A, A2], np.r_[Y, Y2]
    mean, cov = policy.effect_posterior()
    if cls is MeTS:
        ref = joint_oracle(prior, 0.5, Xa, Aa, Ya)
        ref_mean, ref_cov = ref["effect_mean"], ref["effect_cov"]
    else:
        ref_mean, blocks = factored_oracle(prior, 0.5, Xa, Aa, Ya)
        ref_cov = np.zeros((L, d, L, d))
        ref_cov[np.arange(L), :, np.arange(L), :] = blocks
        ref_cov = ref_cov.reshape(L * d, L * d)
    assert rel_err(mean, ref_mean) < RTOL
    assert rel_err(cov, ref_cov) < RTOL
    # and action 0's data matter: without them the effect posterior is far away
    # (far beyond RTOL: with them forgotten the effect posterior would differ)
    if cls is MeTS:
        forgotten = joint_oracle(prior, 0.5, X2, A2, Y2)["effect_mean"]
    else:
        forgotten = factored_oracle(prior, 0.5, X2, A2, Y2)[0]
    assert rel_err(mean, forgotten) > 1e-3
    # the never-observed actions still learn from the retired action through the effects
    assert rel_err(policy.posterior_mean()[3:], prior.marginal_action_prior()[0][3:]) > 0.05


@pytest.mark.parametrize("name", RETIRE)
def test_delayed_feedback_for_a_retired_action_is_accepted(name):
    policy = build(name, seed=3)
    d = policy.dim
    x = np.full(d, 0.5)
    a = policy.select(x)
    policy.retire_action(a)  # the action is retired before its reward arrives
    twin = policy.copy()
    policy.update(x, a, 1.5)
    twin.update_batch(x[None], np.array([a]), np.array([1.5]))
    assert not policy.active[a]
    if hasattr(policy, "counts"):
        assert policy.counts()[a] == 1
    assert rel_err(policy.posterior_mean(), twin.posterior_mean()) < RTOL
    assert rel_err(policy.posterior_mean(), build(name, seed=3).posterior_mean()) > 0


def test_delayed_feedback_after_every_action_is_retired():
    """select refuses once every action is retired; late rewards are still absorbed."""
    K, L, d = 6, 2, 2
    prior = make_prior(46, K, L, d, "dense", "shared", "full")
    policy = MeTS(prior, seed=0)
    rng = np.random.default_rng(10)
    X, A, Y = observe(policy, rng, 20)
    for i in range(K):
        policy.retire_action(i)
    with pytest.raises(ValueError, match="retired"):
        policy.select(np.ones(d))
    X2, A2, Y2 = observe(policy, rng, 5)
    assert_matches_oracle(policy, prior, np.r_[X, X2], np.r_[A, A2], np.r_[Y, Y2])
    new = policy.add_action(np.ones(L))
    assert policy.select(np.ones(d)) == new  # the only active action


def test_retire_twice_and_add_after_retire():
    policy = build("MeTS", seed=0)
    policy.retire_action(1)
    policy.retire_action(1)
    assert int((~policy.active).sum()) == 1
    new = policy.add_action(np.ones(policy.model.prior.n_effects))
    assert policy.active[new] and not policy.active[1]
