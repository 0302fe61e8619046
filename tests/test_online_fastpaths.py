"""The online round's fast paths (issue #15, lean round II) against the general paths they
shortcut: the same bits, not just close values, and the same refusals of bad input."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from conftest import make_prior
from mixedts import MeTS, MixedEffectPrior, ValidationError
from mixedts._validation import check_context
from mixedts.models.gaussian import SqrtGaussian
from mixedts.models.linear_gaussian import draw_scores, observe, observe_one


def _spd(rng, d):
    Q = rng.normal(size=(d, d))
    return Q @ Q.T / d + 0.5 * np.eye(d)


@pytest.mark.parametrize("d", [1, 2, 3, 5, 10])
@pytest.mark.parametrize("effects", [True, False])
def test_observe_one_is_observe_bit_for_bit(d, effects):
    rng = np.random.default_rng(d)
    for _ in range(20):
        S, P0 = _spd(rng, d), _spd(rng, d) if effects else None
        b, x, y = rng.normal(size=d), rng.uniform(-1, 1, d), float(rng.normal())
        want, got = observe(S, P0, b, x, y, 0.7), observe_one(S, P0, b, x, y, 0.7)
        for w, g in zip(want, got):
            assert (w is None and g is None) or np.array_equal(w, g)


def _observed_policy(K, L, d, mixing, seed=0):
    """MeTS with one Σ0 and every action observed (slots in action order)."""
    rng = np.random.default_rng(seed)
    if mixing == "dense":
        B = rng.uniform(-1, 1, (K, L))
    else:  # two non-zeros a row: the sparse product of _mix
        B = np.zeros((K, L))
        cols = np.argsort(rng.random((K, L)), axis=1)[:, :2]
        B[np.arange(K)[:, None], cols] = rng.uniform(-1, 1, (K, 2))
    prior = MixedEffectPrior(rng.normal(size=(L, d)), 2.0 * np.stack([np.eye(d)] * L), B,
                             _spd(rng, d))
    policy = MeTS(prior, seed=seed)
    A = np.r_[rng.permutation(K), rng.integers(K, size=K)]
    policy.update_batch(rng.uniform(-1, 1, (2 * K, d)), A, rng.normal(size=2 * K))
    assert policy.model.store.ordered
    return policy


@pytest.mark.parametrize("K, L, d, mixing", [(30, 3, 2, "dense"), (200, 4, 5, "dense"),
                                             (2500, 20, 3, "sparse")])
@pytest.mark.parametrize("per_action", [False, True])
def test_ordered_score_draws_are_the_general_path_bit_for_bit(K, L, d, mixing, per_action):
    """The written-out draw (every action observed, one Σ0) against the general one: Ψ from
    ``effects.draw``, the scores from ``_scores_given`` and ``draw_scores``, with the same
    normals: equal arrays and equal generator states, also after online updates."""
    policy = _observed_policy(K, L, d, mixing)
    model = policy.model
    rng = np.random.default_rng(1)
    for _ in range(6):
        x = rng.uniform(-1, 1, (K, d) if per_action else d)
        g1, g2 = copy.deepcopy(policy.rng), copy.deepcopy(policy.rng)
        got = model.sample_scores(x, g1)
        z = g2.standard_normal(L * d + K)
        psi = model.effects.draw(z[: L * d]).reshape(L, d)
        want = draw_scores(*model._scores_given(x, psi), z[L * d:])
        assert np.array_equal(got, want)
        assert g1.bit_generator.state == g2.bit_generator.state
        a = policy.select(x)
        policy.update(x, a, float(rng.normal()))


def test_a_reversed_context_takes_the_general_path_with_the_same_scores():
    """A context of negative stride (where ``.dot`` and ``@`` may round differently) is
    scored by the general path: the same draw as its contiguous copy to rounding."""
    policy = _observed_policy(40, 3, 4, "dense")
    x = np.random.default_rng(2).uniform(-1, 1, 4)
    rev = x[::-1].copy()[::-1]  # the values of x, stride −8
    assert rev.strides[0] < 0
    a, b = copy.deepcopy(policy.rng), copy.deepcopy(policy.rng)
    np.testing.assert_allclose(policy.model.sample_scores(rev, a),
                               policy.model.sample_scores(x, b), rtol=1e-12, atol=1e-12)


def test_rank_one_in_place_every_row_is_the_row_path():
    rng = np.random.default_rng(3)
    n = 12
    C = np.linalg.cholesky(np.linalg.inv(_spd(rng, n)))
    h = rng.normal(size=n)
    one, two = SqrtGaussian(C.copy(), h), SqrtGaussian(C.copy(), h)
    u, dh = rng.normal(size=n), rng.normal(size=n)
    ref = one.proposed_rank_one(None, u, dh)
    one.rank_one_in_place(None, u, dh)
    two.rank_one_in_place(np.arange(n), u, dh)
    for a, b in ((one.C, two.C), (one.h, two.h), (one.mean, two.mean)):
        assert np.array_equal(a, b)
    for got, want in zip((one.C, one.h, one.mean), ref):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13)


def test_a_float_subclass_reward_takes_the_general_step_with_the_same_bits():
    """``np.float64`` rewards go through :func:`observe`, Python floats through
    :func:`observe_one`: the same posterior, bit for bit."""
    policy = _observed_policy(25, 3, 3, "dense")
    other = copy.deepcopy(policy)
    rng = np.random.default_rng(4)
    for _ in range(10):
        x, a, y = rng.uniform(-1, 1, 3), int(rng.integers(25)), float(rng.normal())
        policy.model.update(x, a, y)
        other.model.update(x, a, np.float64(y))
    for key, value in policy.model.get_state()[1].items():
        assert np.array_equal(value, other.model.get_state()[1][key]), key


@pytest.mark.parametrize("shape", [(3,), (7, 3)])
def test_the_context_fast_check_refuses_what_the_full_check_refuses(shape):
    rng = np.random.default_rng(5)
    for bad in (np.nan, np.inf, -np.inf):
        x = rng.uniform(-1, 1, shape)
        x[(shape[0] - 1,) + (0,) * (len(shape) - 1)] = bad
        where = "entry" if len(shape) == 1 else "row"
        with pytest.raises(ValidationError, match=rf"^x contains NaN .*first at {where} "
                                                  rf"{shape[0] - 1}\)"):
            check_context(x, 7, 3)
    huge = np.full(shape, 1e200)  # finite, but Σ x² overflows: the full check accepts it
    with np.errstate(over="ignore"):
        assert check_context(huge, 7, 3) is huge
    with pytest.raises(ValidationError, match="x must have shape"):
        check_context(np.zeros(4), 7, 3)


@pytest.mark.parametrize("per_action", [False, True])
def test_a_refused_context_leaves_an_observed_policy_untouched(per_action):
    """The fast paths (every action observed, one Σ0) validate first: a NaN context is refused
    by ``select`` and ``update`` with the posterior and the generator unchanged."""
    policy = _observed_policy(20, 3, 2, "dense")
    before = copy.deepcopy(policy.model.get_state())
    state = policy.rng.bit_generator.state
    x = np.ones((20, 2) if per_action else 2)
    x[-1] = np.nan
    with pytest.raises(ValidationError, match=r"^x contains NaN"):
        policy.select(x)
    with pytest.raises(ValidationError, match=r"^x contains NaN"):
        policy.update(x, 0, 1.0)
    np.testing.assert_equal(policy.model.get_state(), before)
    assert policy.rng.bit_generator.state == state


def test_the_fast_round_keeps_factored_and_per_action_priors_on_their_paths():
    """meTS-Fa and a Σ0 per action keep the general scores (the fast draw needs the joint
    posterior and one Σ0): same draws as the general computation."""
    for kind, cov in (("fa", "shared"), ("mets", "per-action")):
        prior = make_prior(1, 12, 3, 2, "dense", cov)
        from mixedts import FactoredMeTS

        policy = (FactoredMeTS if kind == "fa" else MeTS)(prior, seed=0)
        rng = np.random.default_rng(0)
        policy.update_batch(rng.uniform(-1, 1, (24, 2)), np.r_[np.arange(12), np.arange(12)],
                            rng.normal(size=24))
        model, x = policy.model, rng.uniform(-1, 1, 2)
        g1, g2 = copy.deepcopy(policy.rng), copy.deepcopy(policy.rng)
        z = g2.standard_normal(6 + 12)
        psi = model.effects.draw(z[:6].reshape(model.effects.h.shape)).reshape(3, 2)
        want = draw_scores(*model._scores_given(x, psi), z[6:])
        assert np.array_equal(model.sample_scores(x, g1), want)


def test_outer_is_the_broadcast_product_bit_for_bit():
    """linalg.outer (one BLAS product with an inner dimension of one) is a[:, None] * b."""
    from mixedts.linalg import outer

    rng = np.random.default_rng(11)
    for n, m in ((1, 1), (2, 2), (3, 7), (20, 10), (64, 3)):
        for scale in (1e-150, 1e-3, 1.0, 1e150):
            a, b = rng.normal(size=n) * scale, rng.normal(size=m) / scale
            assert np.array_equal(outer(a, b), a[:, None] * b)


@pytest.mark.parametrize("form", ["shared", "per-action", "prior-mean"])
def test_observe_in_place_is_propose_and_commit_bit_for_bit(form):
    """The online round's in-place store step writes what propose + commit write."""
    from mixedts.models.actions import ActionStore

    rng = np.random.default_rng(12)
    K, d = 6, 3
    cov = _spd(rng, d) if form == "shared" else np.stack([_spd(rng, d) for _ in range(K)])
    mean = rng.normal(size=(K, d)) if form == "prior-mean" else None
    store = ActionStore(K, cov, 0.8, prior_mean=mean)
    for a in range(K):  # every action observed once through the general step
        store.commit(store.propose(a, rng.uniform(-1, 1, d), float(rng.normal())))
    other = copy.deepcopy(store)
    for _ in range(30):
        a, x, y = int(rng.integers(K)), rng.uniform(-1, 1, d), float(rng.normal())
        p = other.propose(a, x, y)
        other.commit(p)
        w, gain = store.observe_in_place(a, x, y)
        if form == "prior-mean":
            assert w is None and gain is None and p["w"] is None and p["gain"] is None
        else:
            assert np.array_equal(w, p["w"]) and gain == p["gain"]
            assert np.array_equal(w * gain, p["dpm"])
    for name in ("S", "b", "m", "G", "counts"):
        assert np.array_equal(getattr(store, name), getattr(other, name)), name
    # control: one more observation on one side only is seen
    store.observe_in_place(0, np.ones(d), 1.0)
    assert not np.array_equal(store.S, other.S)


@pytest.mark.parametrize("n", [20, 64, 150])
def test_rank_one_in_place_with_a_gain_is_the_exact_step(n):
    """With ``gain`` (h gains g u, the models' case) the mean is updated in O(n) from n = 64 on:
    the exact step's values at every step, the full path's, and no drift over 2000 steps (the
    exact μ = C Cᵀ h recomputed at the end); the comparison sees a 1% change of the gain
    (control)."""
    rng = np.random.default_rng(n)
    C0 = np.linalg.cholesky(_spd(rng, n))
    h0 = rng.normal(size=n)
    one, two = (SqrtGaussian(C0.copy(), h0) for _ in range(2))
    for t in range(2000):
        rows = np.sort(rng.choice(n, size=min(n, 6), replace=False))
        u, g = np.zeros(n), float(rng.normal())
        u[rows] = rng.normal(size=len(rows)) * 0.3
        ref = one.proposed_rank_one(rows, u[rows], g * u[rows])
        if t == 0:  # control: the tolerance below tells a 1% different gain apart
            other = one.proposed_rank_one(rows, u[rows], 1.01 * g * u[rows])
            assert np.max(np.abs(other[2] - ref[2])) > 1e-6 * np.max(np.abs(ref[2]))
        one.rank_one_in_place(rows, u[rows], gain=g)
        two.rank_one_in_place(None, u, gain=g)
        np.testing.assert_allclose(one.mean, ref[2], rtol=1e-9, atol=1e-12)
        np.testing.assert_array_equal(one.h, ref[1])
    np.testing.assert_allclose(one.C, two.C, rtol=1e-10, atol=1e-13)  # (rows ⊂ all: ≈)
    np.testing.assert_allclose(one.mean, two.mean, rtol=1e-10, atol=1e-13)
    exact = one.C @ (one.C.T @ one.h)
    assert np.max(np.abs(one.mean - exact)) < 1e-9 * np.max(np.abs(exact))


@pytest.mark.parametrize("scale", [1.0, 1e3])
def test_the_o_n_mean_keeps_its_digits_when_observations_dominate(scale):
    """Very informative observations (|z|² ≫ 1): the innovation form loses no digits. The
    reference is the precision's own solve, Λ_t⁻¹ h_t, accumulated exactly."""
    rng = np.random.default_rng(5)
    n = 80
    P = _spd(rng, n)
    h = rng.normal(size=n)
    gauss = SqrtGaussian(np.linalg.cholesky(np.linalg.inv(P)), h)
    for _ in range(300):
        rows = np.sort(rng.choice(n, size=8, replace=False))
        u_rows, g = rng.normal(size=8) * scale, float(rng.normal()) * scale
        gauss.rank_one_in_place(rows, u_rows, gain=g)
        P[np.ix_(rows, rows)] += np.outer(u_rows, u_rows)
        h[rows] += g * u_rows
    want = np.linalg.solve(P, h)
    assert np.max(np.abs(gauss.mean - want)) < 1e-9 * np.max(np.abs(want))
