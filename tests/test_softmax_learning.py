"""Linear-softmax off-policy learners: gradients, objectives against the estimators, learning."""

import numpy as np
import pytest

from mixedts import ValidationError
from mixedts.offline.estimators import (
    DoublyRobust,
    InverseProbabilityWeighting,
    MarginalizedIPW,
    SelfNormalizedIPW,
)
from mixedts.offline.learning import greedy_policy_from_posterior, relative_reward
from mixedts.offline.softmax_learning import (
    LEARNERS,
    SoftmaxPolicy,
    expected_relative_reward,
    fit_softmax_policy,
    softmax_objective,
)


def _log(seed=0, n=9, K=5, d=3, uniform=False):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, d))
    P0 = np.full((n, K), 1.0 / K) if uniform else rng.dirichlet(np.ones(K), n)
    A = np.array([rng.choice(K, p=row) for row in P0])
    p = P0[np.arange(n), A]
    R = rng.normal(1.0, 2.0, n)
    q = rng.normal(size=(n, K))
    clusters = np.array([0, 1, 0, 2, 1])[:K]
    return X, A, R, p, P0, q, clusters


def _inputs(X, A, R, p, P0, q, clusters, estimator, clip=0.0, intercept=False):
    """Arguments of softmax_objective as fit_softmax_policy builds them."""
    Phi = np.hstack([X, np.ones((len(X), 1))]) if intercept else X
    same = clusters[None, :] == clusters[A][:, None]
    if estimator == "mips":
        p = np.einsum("nk,nk->n", P0, same)
    return Phi, 1.0 / np.maximum(p, clip), same


@pytest.mark.parametrize("estimator", LEARNERS)
@pytest.mark.parametrize("clip, intercept", [(0.0, False), (0.3, True)])
def test_gradient_matches_finite_differences(estimator, clip, intercept):
    X, A, R, p, P0, q, g = _log(1)
    Phi, inv, same = _inputs(X, A, R, p, P0, q, g, estimator, clip, intercept)
    beta = np.random.default_rng(2).normal(size=(5, Phi.shape[1]))
    _, grad = softmax_objective(beta, Phi, A, R, inv, estimator, q, same)
    h = 1e-6
    fd = np.zeros_like(beta)
    for k in range(beta.size):  # central differences, one coordinate at a time (a test oracle)
        e = np.zeros(beta.size)
        e[k] = h
        up = softmax_objective(beta + e.reshape(beta.shape), Phi, A, R, inv, estimator, q, same)
        dn = softmax_objective(beta - e.reshape(beta.shape), Phi, A, R, inv, estimator, q, same)
        fd.flat[k] = (up[0] - dn[0]) / (2 * h)
    np.testing.assert_allclose(grad, fd, rtol=1e-6, atol=1e-8)
    assert np.abs(grad).max() > 1e-3  # not a vacuous comparison


def test_objectives_equal_the_estimators_at_the_same_beta():
    X, A, R, p, P0, q, g = _log(3)
    beta = np.random.default_rng(4).normal(size=(5, 3))
    pi = SoftmaxPolicy(beta).action_probabilities(X)
    np.testing.assert_allclose(pi.sum(1), 1.0)

    def ours(estimator, clip=0.0):
        Phi, inv, same = _inputs(X, A, R, p, P0, q, g, estimator, clip)
        return softmax_objective(beta, Phi, A, R, inv, estimator, q, same)[0]

    ips = InverseProbabilityWeighting().estimate_policy_value(R, A, pi, propensities=p).value
    assert ours("ips") == pytest.approx(ips, rel=1e-12)
    # the paper's clipping max(π₀, τ) is IPS with the floored propensities
    clipped = InverseProbabilityWeighting().estimate_policy_value(
        R, A, pi, propensities=np.maximum(p, 0.3)).value
    assert ours("ips", 0.3) == pytest.approx(clipped, rel=1e-12)
    assert ours("ips", 0.3) != pytest.approx(ips, rel=1e-3)
    sn = SelfNormalizedIPW().estimate_policy_value(R, A, pi, propensities=p).value
    assert ours("snips") == pytest.approx(sn, rel=1e-12)
    dr = DoublyRobust().estimate_policy_value(R, A, pi, propensities=p, estimated_rewards=q).value
    assert ours("dr") == pytest.approx(dr, rel=1e-12)
    mips = MarginalizedIPW().estimate_policy_value(R, A, pi, action_features=g[:, None],
                                                   logging_probabilities=P0).value
    assert ours("mips") == pytest.approx(mips, rel=1e-12)
    assert len({round(v, 6) for v in (ips, sn, dr, mips)}) == 4


def test_objectives_by_hand_on_a_tiny_log():
    # two rounds, two actions, uniform logging (p = 1/2), β = 0: π = 1/2 everywhere
    Phi = np.array([[1.0], [-1.0]])
    A, R, inv = np.array([0, 1]), np.array([3.0, 1.0]), np.array([2.0, 2.0])
    beta = np.zeros((2, 1))
    assert softmax_objective(beta, Phi, A, R, inv, "ips")[0] == pytest.approx(2.0)  # (3 + 1)/2
    assert softmax_objective(beta, Phi, A, R, inv, "snips")[0] == pytest.approx(2.0)
    q = np.array([[1.0, 0.0], [0.0, 2.0]])
    # DR: mean of [½·1 + ½·0 + 1·(3 − 1)] and [½·0 + ½·2 + 1·(1 − 2)] = (2.5 + 0) / 2
    assert softmax_objective(beta, Phi, A, R, inv, "dr", q)[0] == pytest.approx(1.25)
    # β_0 = (log 3): row 0 gives π(0) = 3/4, row 1 π(0) = 1/4, so π(a_t) = 3/4 both times
    beta = np.array([[np.log(3.0)], [0.0]])
    assert softmax_objective(beta, Phi, A, R, inv, "ips")[0] == pytest.approx(0.75 * 2 * 4 / 2)
    # one cluster of both actions: π(c) = π₀(c) = 1, MIPS is the mean reward
    same = np.ones((2, 2), dtype=bool)
    v = softmax_objective(beta, Phi, A, R, np.ones(2), "mips", same_cluster=same)
    assert v[0] == pytest.approx(2.0) and np.abs(v[1]).max() < 1e-12


def _problem(seed, n=3000, K=6, d=3):
    """Uniform logs of a linear problem with positive optimal value (relative reward defined)."""
    rng = np.random.default_rng(seed)
    theta = rng.normal(size=(K, d))
    theta[:, 0] += 1.0  # x_0 is a positive intercept-like feature
    X = np.hstack([np.ones((n, 1)), rng.uniform(-1, 1, (n, d - 1))])
    A = rng.integers(0, K, n)
    R = np.einsum("nd,nd->n", X, theta[A]) + rng.normal(size=n)
    X_test = np.hstack([np.ones((2000, 1)), rng.uniform(-1, 1, (2000, d - 1))])
    return theta, X, A, R, X_test


@pytest.mark.parametrize("estimator", LEARNERS)
def test_learners_improve_over_uniform_and_shuffled_rewards_do_not(estimator):
    K = 20
    theta, X, A, R, Xt = _problem(5, n=2000, K=K)
    n = len(A)
    kw = {"dr": {"reward_model": X @ (theta + 0.5).T},  # a biased reward model
          "mips": {"clusters": np.arange(K) % 10, "logging_probabilities": np.full((n, K), 1 / K)},
          }.get(estimator, {})  # fmt: skip
    uniform = expected_relative_reward(theta, Xt, SoftmaxPolicy(np.zeros((K, 3))))
    fit = fit_softmax_policy(X, A, R, np.full(n, 1 / K), K, estimator, l2=1e-3, **kw)
    learned = expected_relative_reward(theta, Xt, fit)
    assert fit.info["converged"] and fit.info["estimator"] == estimator
    # MIPS learns only which cluster (the policy stays uniform within a cluster of 2 actions)
    assert learned > uniform + (0.15 if estimator == "mips" else 0.5), (learned, uniform)
    # negative control: rewards shuffled across rounds carry no information about (x, a); a
    # policy fitted to them is random: over four shuffles it gains little on average
    ctrl = []
    for seed in range(4):
        shuffled = np.random.default_rng(seed).permutation(R)
        if estimator == "dr":
            kw = {"reward_model": np.full((n, K), shuffled.mean())}
        pol = fit_softmax_policy(X, A, shuffled, np.full(n, 1 / K), K, estimator, l2=1e-3, **kw)
        ctrl.append(expected_relative_reward(theta, Xt, pol))
    assert np.mean(ctrl) < uniform + 0.12, (ctrl, uniform)


def test_mips_policy_is_uniform_within_clusters():
    _, X, A, R, _ = _problem(7, n=500)
    K, n = 6, 500
    g = np.array([0, 1, 0, 2, 1, 2])
    fit = fit_softmax_policy(X, A, R, np.full(n, 1 / K), K, "mips", clusters=g,
                             logging_probabilities=np.full((n, K), 1 / K), l2=1e-2)
    P = fit.action_probabilities(X[:50])
    for c in range(3):
        cols = P[:, g == c]
        np.testing.assert_allclose(cols, cols[:, :1].repeat(cols.shape[1], 1), rtol=1e-9)
    assert P.std(axis=1).max() > 0.01


def test_warm_start_and_policy_interface():
    _, X, A, R, Xt = _problem(8, n=800)
    K, n = 6, 800
    p = np.full(n, 1 / K)
    fit = fit_softmax_policy(X, A, R, p, K, "ips", l2=1e-2, fit_intercept=True)
    assert fit.coef.shape == (K, 4) and fit.dim == 3 and fit.n_actions == K
    again = fit_softmax_policy(X, A, R, p, K, "ips", l2=1e-2, fit_intercept=True, init=fit)
    assert again.info["n_iter"] <= 2 < fit.info["n_iter"]
    assert again.info["objective"] >= fit.info["objective"] - 1e-9
    np.testing.assert_allclose(again.coef, fit.coef, atol=1e-2)
    short = fit_softmax_policy(X, A, R, p, K, "ips", l2=1e-2, fit_intercept=True, maxiter=1)
    assert short.info["n_iter"] == 1 and short.info["objective"] < fit.info["objective"]
    # __call__: the mode, or draws from π_β whose frequencies match it
    P = fit.action_probabilities(Xt[:3])
    np.testing.assert_array_equal(fit(Xt[:3]), P.argmax(1))
    draws = fit(np.repeat(Xt[:1], 20000, axis=0), rng=np.random.default_rng(9))
    freq = np.bincount(draws, minlength=K) / 20000
    assert np.abs(freq - P[0]).max() < 4 * np.sqrt(0.25 / 20000)
    wrong = SoftmaxPolicy(np.roll(fit.coef, 1, axis=0), True)
    assert np.abs(np.bincount(wrong(np.repeat(Xt[:1], 20000, axis=0),
                                    rng=np.random.default_rng(9)), minlength=K) / 20000
                  - P[0]).max() > 0.02  # fmt: skip
    with pytest.raises(ValidationError, match="contexts"):
        fit.action_probabilities(Xt[:, :2])


def test_expected_relative_reward_of_a_greedy_policy_and_chunks():
    rng = np.random.default_rng(10)
    theta = rng.normal(size=(7, 3))
    X = rng.uniform(-1, 1, (301, 3))
    greedy = greedy_policy_from_posterior(theta + rng.normal(size=(7, 3)))
    exact = relative_reward(theta, X, greedy)
    for m in (1, 7, 50, 10**6):
        assert expected_relative_reward(theta, X, greedy, max_entries=m) == pytest.approx(exact)
    soft = SoftmaxPolicy(rng.normal(size=(7, 3)))
    P, Rx = soft.action_probabilities(X), X @ theta.T
    ref = (P * Rx).sum() / Rx.max(1).sum()
    assert expected_relative_reward(theta, X, soft, max_entries=20) == pytest.approx(ref)
    with pytest.raises(ValidationError, match="undefined"):
        expected_relative_reward(-np.abs(theta), np.abs(X), soft)
    with pytest.raises(ValidationError, match="contexts"):
        expected_relative_reward(theta, X[:, :2], soft)


@pytest.mark.parametrize("kwargs, name", [
    ({"estimator": "ipw"}, "estimator"),
    ({"n_actions": 0}, "n_actions"),
    ({"actions": [0, 1, 5]}, r"actions\[2\]"),
    ({"propensities": [0.5, 0.0, 0.5]}, r"propensities\[1\]"),
    ({"rewards": [1.0, np.nan, 0.0]}, r"rewards\[1\]"),
    ({"estimator": "dr"}, "reward_model"),
    ({"reward_model": np.zeros((3, 3))}, "reward_model"),
    ({"estimator": "dr", "reward_model": np.zeros((3, 2))}, "reward_model"),
    ({"estimator": "mips", "logging_probabilities": np.full((3, 3), 1 / 3)}, "clusters"),
    ({"estimator": "mips", "clusters": [0, 0, 1]}, "logging_probabilities"),
    ({"estimator": "mips", "clusters": [0, -1, 1],
      "logging_probabilities": np.full((3, 3), 1 / 3)}, r"clusters\[1\]"),
    ({"clusters": [0, 0, 1]}, "clusters"),
    ({"l2": -1.0}, "l2"),
    ({"clip": 1.5}, "clip"),
    ({"maxiter": 0}, "maxiter"),
    ({"dtype": "int8"}, "dtype"),
    ({"init": np.zeros((3, 3))}, "init"),
    ({"contexts": np.zeros((3, 2, 1))}, "contexts"),
])  # fmt: skip
def test_bad_input_names_the_argument(kwargs, name):
    args = {"contexts": np.eye(3)[:, :2], "actions": [0, 1, 2], "rewards": [1.0, 0.0, 1.0],
            "propensities": [0.5, 0.5, 0.5], "n_actions": 3, "estimator": "ips"}
    args.update(kwargs)
    with pytest.raises(ValidationError, match=name):
        fit_softmax_policy(**args)
    with pytest.raises(ValidationError, match="coef"):
        SoftmaxPolicy(np.zeros((3, 1)), fit_intercept=True)


def test_float32_matches_float64():
    X, A, R, p, P0, q, g = _log(11, n=40)
    beta = np.random.default_rng(12).normal(size=(5, 3))
    for estimator in LEARNERS:
        Phi, inv, same = _inputs(X, A, R, p, P0, q, g, estimator)
        v64, g64 = softmax_objective(beta, Phi, A, R, inv, estimator, q, same)
        v32, g32 = softmax_objective(beta, Phi.astype(np.float32), A, R, inv, estimator,
                                     q.astype(np.float32), same)  # fmt: skip
        assert g32.dtype == np.float64
        assert v32 == pytest.approx(v64, rel=1e-5)
        np.testing.assert_allclose(g32, g64, rtol=1e-4, atol=1e-6)
    theta, X, A, R, Xt = _problem(13, n=1000)
    fits = [fit_softmax_policy(X, A, R, np.full(1000, 1 / 6), 6, "ips", l2=1e-2, dtype=dt)
            for dt in ("float64", "float32")]
    assert fits[1].dtype == np.float32 and fits[1].action_probabilities(Xt[:2]).dtype == np.float32
    v = [expected_relative_reward(theta, Xt, f) for f in fits]
    assert v[1] == pytest.approx(v[0], abs=1e-3)
    # the same β evaluated in either precision
    as32 = SoftmaxPolicy(fits[0].coef, dtype="float32")
    assert expected_relative_reward(theta, Xt, as32) == pytest.approx(v[0], rel=1e-5)
    with pytest.raises(ValidationError, match="dtype"):
        SoftmaxPolicy(fits[0].coef, dtype="float16")


def test_clipping_floors_the_propensities_in_the_fit():
    _, X, A, R, _ = _problem(14, n=600)
    p = np.random.default_rng(15).uniform(0.05, 0.5, 600)  # the weights differ by row
    clipped = fit_softmax_policy(X, A, R, p, 6, "ips", l2=1e-2, clip=0.2)
    floored = fit_softmax_policy(X, A, R, np.maximum(p, 0.2), 6, "ips", l2=1e-2)
    plain = fit_softmax_policy(X, A, R, p, 6, "ips", l2=1e-2)
    np.testing.assert_allclose(clipped.coef, floored.coef, rtol=1e-10, atol=1e-12)
    assert np.abs(clipped.coef - plain.coef).max() > 1e-2


def test_intercept_lets_the_policy_prefer_an_action_everywhere():
    rng = np.random.default_rng(16)
    n, K = 3000, 3
    X = rng.uniform(-1, 1, (n, 2))  # zero-mean contexts: without a constant, no preference
    A = rng.integers(0, K, n)
    R = np.array([0.0, 1.0, 2.0])[A] + rng.normal(size=n)
    with_b = fit_softmax_policy(X, A, R, np.full(n, 1 / K), K, "ips", l2=1e-2,
                                fit_intercept=True)  # fmt: skip
    without = fit_softmax_policy(X, A, R, np.full(n, 1 / K), K, "ips", l2=1e-2)
    Xt = rng.uniform(-1, 1, (500, 2))
    assert with_b.action_probabilities(Xt)[:, 2].mean() > 0.9
    assert without.action_probabilities(Xt)[:, 2].mean() < 0.6
    np.testing.assert_allclose(with_b.scores(Xt),
                               Xt @ with_b.coef[:, :2].T + with_b.coef[:, 2])  # fmt: skip
