"""update_batch of n observations equals n single updates, for every policy class."""

from __future__ import annotations

import numpy as np
import pytest

from builders import POLICY_NAMES, assert_same_state, build, snapshot

RTOL = 1e-9
# batch sizes: 1 and 2 take the low-rank paths of MeTS / JointTS, 60 the exact recompute;
# the two-batch cases interleave them
SIZES = [(1,), (2,), (60,), (3, 60), (60, 2, 1)]


def rel_err(a, b):
    return np.max(np.abs(a - b)) / max(1e-300, np.max(np.abs(b)))


def _posterior(policy):
    out = {"mean": policy.posterior_mean(), "cov": policy.posterior_cov()}
    if hasattr(policy.model, "effect_posterior"):
        out["effect_mean"], out["effect_cov"] = policy.effect_posterior()
    if hasattr(policy.model, "joint_cov"):
        out["joint_cov"] = policy.model.joint_cov()
    return out


@pytest.mark.parametrize("sizes", SIZES, ids=lambda s: "+".join(map(str, s)))
@pytest.mark.parametrize("per_action", [False, True], ids=["shared-x", "per-action-x"])
@pytest.mark.parametrize("name", POLICY_NAMES)
def test_update_batch_equals_single_updates(name, per_action, sizes):
    batched = build(name, seed=17, refactor_every=0)
    single = build(name, seed=17, refactor_every=0)
    rng = np.random.default_rng(sum(sizes) + per_action)
    K, d = batched.n_actions, batched.dim
    for n in sizes:
        X = rng.uniform(-1, 1, (n, K, d) if per_action else (n, d))
        A = rng.integers(0, 3, size=n) if n > 2 else rng.integers(K, size=n)  # repeats
        Y = rng.normal(size=n)
        batched.update_batch(X, A, Y)
        for x, a, y in zip(X, A, Y):
            single.update(x, int(a), float(y))
    pb, ps = _posterior(batched), _posterior(single)
    for key in ps:
        assert rel_err(pb[key], ps[key]) < RTOL, key
    if hasattr(single, "counts"):
        np.testing.assert_array_equal(batched.counts(), single.counts())
    assert batched.model.n_updates == single.model.n_updates == sum(sizes)
    # updates never consume randomness. (The next draws need not coincide pathwise: the two
    # paths may hold different square roots C of the same covariance, Σ = C Cᵀ.)
    assert batched.rng.bit_generator.state == single.rng.bit_generator.state


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_empty_batch_changes_nothing(name):
    policy = build(name, seed=2)
    policy.update(np.ones(policy.dim), 1, 0.5)
    before = snapshot(policy)
    policy.update_batch(np.zeros((0, policy.dim)), np.zeros(0, dtype=int), np.zeros(0))
    policy.update_batch(np.zeros((0, policy.n_actions, policy.dim)), [], [])
    assert_same_state(before, snapshot(policy))


@pytest.mark.parametrize("name", ["MeTS", "MeTS-per-action-cov", "FactoredMeTS", "JointTS"])
def test_update_batch_after_add_and_retire_equals_single_updates(name):
    batched, single = build(name, seed=19), build(name, seed=19)
    L, d = batched.model.prior.n_effects, batched.dim
    acov = None if batched.model.prior.shared_action_cov else 0.4 * np.eye(d)
    for p in (batched, single):
        p.add_action(np.linspace(-1, 2, L), acov)
        p.retire_action(0)
    rng = np.random.default_rng(0)
    K = batched.n_actions
    X = rng.uniform(-1, 1, (40, d))
    A = np.r_[0, K - 1, rng.integers(K, size=38)]  # the retired and the new action included
    Y = rng.normal(size=40)
    batched.update_batch(X, A, Y)
    for x, a, y in zip(X, A, Y):
        single.update(x, int(a), float(y))
    pb, ps = _posterior(batched), _posterior(single)
    for key in ps:
        assert rel_err(pb[key], ps[key]) < RTOL, key
