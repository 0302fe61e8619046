"""The lean online round (issue #15): slots in action order once every action is observed,
P0 folded into the effects, one normal draw per round, ``select_batch`` vectorised over rounds,
and the validation fast paths. Each against the general path it shortcuts (the oracle)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from conftest import make_prior
from mixedts import GLMTS, FactoredMeTS, HierTS, LinTS, MeTS, ValidationError
from mixedts._validation import check_action, check_reward

K, L, D = 12, 3, 2


def _policy(kind, mixing="dense", action_cov="shared", **options):
    prior = make_prior(3, K, L, D, mixing, action_cov, "block")
    if kind == "MeTS":
        return MeTS(prior, seed=5, **options)
    if kind == "FactoredMeTS":
        return FactoredMeTS(prior, seed=5, **options)
    if kind == "HierTS":
        return HierTS.from_prior(prior, seed=5, **options)
    if kind == "GLMTS":
        return GLMTS.from_prior(prior, seed=5)
    return LinTS.from_prior(prior, seed=5)


def _feed(policy, n, seed, actions=None, binary=False):
    rng = np.random.default_rng(seed)
    for t in range(n):
        a = int(rng.integers(K)) if actions is None else int(actions[t % len(actions)])
        y = float(rng.integers(2)) if binary else float(rng.normal())
        policy.update(rng.uniform(-1, 1, D), a, y)


@pytest.mark.parametrize("kind", ["MeTS", "FactoredMeTS", "LinTS"])
@pytest.mark.parametrize("action_cov", ["shared", "per-action"])
def test_ordered_slots_score_as_the_general_path(kind, action_cov):
    """Every action observed: the slots are put in action order, and the scores (P0 folded
    into Ψ where Σ0 is shared) equal the general path's (gather, scatter, P0 (S x)) to 1e-12;
    the posterior does not move."""
    policy = _policy(kind, action_cov=action_cov)
    _feed(policy, 40, 1, actions=np.random.default_rng(0).permutation(K)[::-1])
    store = policy.model.store
    assert store.n == K and store.ordered
    assert np.array_equal(store.actions[:K], np.arange(K))
    rng = np.random.default_rng(2)
    x, xk = rng.uniform(-1, 1, D), rng.uniform(-1, 1, (K, D))
    general = copy.deepcopy(policy.model)
    general.store.ordered = False  # the general path: slots gathered and scattered
    for ctx in (x, xk):
        if kind == "LinTS":
            got, want = policy.model._scores(ctx), general._scores(ctx)
        else:
            psi = rng.normal(size=(L, D))
            got, want = policy.model._scores_given(ctx, psi), general._scores_given(ctx, psi)
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-14)


def test_sorting_the_slots_keeps_the_posterior_and_the_draws():
    """Two copies, one sorted at the moment the last action is first seen and one never (its
    flag reset): the same posterior and the same Thompson draws afterwards (to rounding)."""
    a = _policy("MeTS")
    order = np.random.default_rng(4).permutation(K)
    _feed(a, K - 1, 3, actions=order[:-1])
    b = copy.deepcopy(a)
    x = np.array([0.3, -0.7])
    a.update(x, int(order[-1]), 0.5)
    b.model.store.sort_slots = lambda: None  # b never sorts
    b.update(x, int(order[-1]), 0.5)
    assert a.model.store.ordered and not b.model.store.ordered
    np.testing.assert_allclose(a.posterior_mean(), b.posterior_mean(), rtol=1e-12)
    np.testing.assert_allclose(a.posterior_cov(), b.posterior_cov(), rtol=1e-12)
    for _ in range(20):
        xs = np.random.default_rng(7).uniform(-1, 1, D)
        assert a.select(xs) == b.select(xs)


@pytest.mark.parametrize("kind, mixing", [("MeTS", "dense"), ("MeTS", "sparse"),
                                          ("FactoredMeTS", "sparse"), ("HierTS", "dense"),
                                          ("LinTS", "dense"), ("GLMTS", "dense")])
@pytest.mark.parametrize("per_action", [False, True])
def test_select_batch_is_the_rounds_one_by_one(kind, mixing, per_action):
    """select_batch draws the normals of all its rounds at once: the same choices and the same
    generator state as round-by-round choices from the same posterior, retired actions
    excluded; partly and fully observed catalogues."""
    policy = _policy(kind, mixing, action_cov="per-action" if kind == "MeTS" else "shared")
    for n_obs in (8, 60):
        _feed(policy, n_obs, n_obs, binary=kind == "GLMTS")
        policy.retire_action(2)
        rng = np.random.default_rng(n_obs)
        X = rng.uniform(-1, 1, (70, K, D) if per_action else (70, D))
        fast, slow = copy.deepcopy(policy), copy.deepcopy(policy)
        got = fast.select_batch(X)
        want = np.array([slow._choose(x, False) for x in X])
        assert np.array_equal(got, want)
        assert 2 not in got and len(np.unique(got)) > 2
        assert fast.rng.bit_generator.state == slow.rng.bit_generator.state
        policy.active[2] = True


def test_select_batch_rounds_chunk_without_changing_the_choices():
    policy = _policy("MeTS")
    _feed(policy, 30, 1)
    X = np.random.default_rng(3).uniform(-1, 1, (40, D))
    whole, chunked = copy.deepcopy(policy), copy.deepcopy(policy)
    rounds = chunked.model.sample_scores_rounds
    out = np.concatenate([chunked._thompson_rounds(X[i:i + 7], rounds, True)
                          for i in range(0, 40, 7)])
    assert np.array_equal(whole.select_batch(X), out)


def test_reward_and_action_fast_paths_still_validate():
    assert check_reward(np.float64(0.25)) == 0.25 and type(check_reward(np.float64(1))) is float
    for bad in (np.nan, float("inf"), np.float64(-np.inf)):
        with pytest.raises(ValidationError, match="y"):
            check_reward(bad)
    assert check_action(3, 4) == 3
    for bad in (4, -1, True, 2.0):
        with pytest.raises(ValidationError, match="a"):
            check_action(bad, 4)
    policy = _policy("MeTS")
    before = copy.deepcopy(policy.model.get_state())
    state = policy.rng.bit_generator.state
    with pytest.raises(ValidationError, match="y"):
        policy.update(np.ones(D), 0, np.float64(np.nan))
    np.testing.assert_equal(policy.model.get_state(), before)
    assert policy.rng.bit_generator.state == state
