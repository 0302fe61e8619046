"""Greedy OPL policies, the relative reward, and the sDM synthetic experiment (Fig. 2)."""

import numpy as np
import pytest

from mixedts import LinTS, ValidationError
from mixedts.offline import LoggedFeedback, evaluate, fit_on_logs
from mixedts.offline.estimators import MarginalizedIPW
from mixedts.offline.learning import GreedyPolicy, greedy_policy_from_posterior, relative_reward
from mixedts.offline.sdm_ope import epsilon_greedy_estimates, mips_epsilon_greedy
from mixedts.offline.sdm_synthetic import (
    OPE_METHODS,
    OPL_METHODS,
    action_clusters,
    run_sdm_synthetic,
    summarize,
)


def test_relative_reward_by_hand():
    theta = np.array([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]])
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    # true rewards: row 0: 1, 0, 1 (best 1); row 1: 0, 2, 1 (best 2); row 2: 1, 2, 2 (best 2)
    assert relative_reward(theta, X, [0, 1, 2]) == pytest.approx(1.0)
    assert relative_reward(theta, X, [1, 2, 0]) == pytest.approx((0 + 1 + 1) / 5)
    assert relative_reward(theta, X, np.array([2, 0, 1])) == pytest.approx((1 + 0 + 2) / 5)
    # per-action contexts (n, K, d) and a callable
    X3 = np.repeat(X[:, None, :], 3, axis=1)
    assert relative_reward(theta, X3, lambda _: np.array([1, 2, 0])) == pytest.approx(0.4)
    with pytest.raises(ValidationError, match="undefined"):
        relative_reward(-np.abs(theta), np.abs(X), [0, 0, 0])
    with pytest.raises(ValidationError, match="chosen_actions"):
        relative_reward(theta, X, [0, 1, 3])
    with pytest.raises(ValidationError, match="chosen_actions"):
        relative_reward(theta, X, [0.0, 1.0, 2.0])


def test_greedy_picks_argmax_of_posterior_means():
    rng = np.random.default_rng(3)
    M = rng.normal(size=(7, 4))
    X = rng.normal(size=(50, 4))
    greedy = greedy_policy_from_posterior(M)
    assert isinstance(greedy, GreedyPolicy)
    np.testing.assert_array_equal(greedy(X), np.argmax(X @ M.T, axis=1))
    probs = greedy.action_probabilities(X)
    np.testing.assert_array_equal(probs.argmax(1), greedy(X))
    assert probs.sum(1) == pytest.approx(np.ones(50))
    before = greedy(X)
    M[:] = 0.0  # the means were copied
    np.testing.assert_array_equal(greedy(X), before)
    # a fitted policy: its posterior at call time
    policy = LinTS(np.zeros((3, 2)), np.eye(2))
    g = greedy_policy_from_posterior(policy)
    logs = LoggedFeedback(np.array([[1.0, 0.0], [0.0, 1.0]]), [2, 1], [5.0, 5.0])
    fit_on_logs(policy, logs)
    Xq = np.array([[1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_array_equal(g(Xq), [2, 1])
    np.testing.assert_array_equal(g(Xq), np.argmax(Xq @ policy.posterior_mean().T, axis=1))
    with pytest.raises(ValidationError):
        greedy_policy_from_posterior(np.zeros(3))
    with pytest.raises(ValidationError):
        greedy(np.zeros((2, 3)))


def test_ope_estimators_match_the_library():
    rng = np.random.default_rng(0)
    n, K, d = 200, 6, 3
    X = rng.uniform(-1, 1, (n, d))
    A = rng.integers(0, K, n)
    R = rng.normal(size=n)
    a_star = rng.integers(0, K, n)
    q = rng.normal(size=(n, K))
    pi = np.full((n, K), 0.5 / K)
    pi[np.arange(n), a_star] += 0.5
    ours = epsilon_greedy_estimates(A, R, a_star, K, 0.5, {"sdm": q})
    logs = LoggedFeedback(X, A, R, propensities=np.full(n, 1.0 / K))
    table = evaluate(logs, pi, {"ips": "ips", "snips": "snips", "dm": "dm", "dr": "dr"},
                     reward_model=q)
    for mine, theirs in (("ips", "ips"), ("snips", "snips"), ("sdm", "dm"), ("dr", "dr")):
        assert ours[mine] == pytest.approx(table.loc[theirs, "value"], rel=1e-10)


def test_mips_ope_matches_the_estimator():
    rng = np.random.default_rng(1)
    n, K = 300, 12
    A = rng.integers(0, K, n)
    R = rng.normal(size=n)
    a_star = rng.integers(0, K, n)
    groups = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 4, 4])  # unequal sizes
    pi = np.full((n, K), 0.5 / K)
    pi[np.arange(n), a_star] += 0.5
    ref = MarginalizedIPW().estimate_policy_value(
        R, A, pi, action_features=groups[:, None], logging_probabilities=np.full((n, K), 1 / K))
    assert mips_epsilon_greedy(A, R, a_star, groups, K, 0.5) == pytest.approx(ref.value, rel=1e-12)
    # singleton clusters: MIPS is IPS
    ips = epsilon_greedy_estimates(A, R, a_star, K, 0.5, {})["ips"]
    assert mips_epsilon_greedy(A, R, a_star, np.arange(K), K, 0.5) == pytest.approx(ips, rel=1e-12)


def test_action_clusters():
    rng = np.random.default_rng(2)
    centres = np.vstack([np.zeros(3), 20 * np.eye(3)])
    truth = np.repeat(np.arange(4), 25)
    F = centres[truth] + rng.normal(size=(100, 3))
    g = action_clusters(F, 4, np.random.default_rng(0))
    assert g.dtype == np.int64 and set(g) == {0, 1, 2, 3}
    # the same partition as the truth, up to the labels
    assert len(set(zip(g.tolist(), truth.tolist()))) == 4
    np.testing.assert_array_equal(g, action_clusters(F, 4, np.random.default_rng(0)))
    with pytest.raises(ValidationError, match="n_clusters"):
        action_clusters(F, 101, np.random.default_rng(0))


@pytest.fixture(scope="module")
def small():
    return run_sdm_synthetic(5, (300,), K=50, seed=11, n_test=2000)


def test_small_instance_sdm_wins(small):
    s = summarize(small).set_index(["metric", "method"])["mean"]
    assert s["opl_relative_reward", "sdm"] > s["opl_relative_reward", "dm-bayes"] + 0.05
    assert s["opl_relative_reward", "sdm"] > 0.85
    assert s["ope_squared_error", "sdm"] < 0.1 * s["ope_squared_error", "ips"]
    assert small["instance"].nunique() == 5 and set(small["n"]) == {300}
    assert set(small.loc[small.metric == "opl_relative_reward", "method"]) == set(OPL_METHODS)
    assert set(small.loc[small.metric == "ope_squared_error", "method"]) == set(OPE_METHODS)
    # the IPS-family learners learn something (uniform is ≈ 0 here), and sDM beats them all
    for m in ("dr", "snips", "mips", "ips"):
        assert 0.15 < s["opl_relative_reward", m] < s["opl_relative_reward", "sdm"] - 0.05, m


def test_learner_rows_are_the_learners_on_the_instance(small):
    """Instance 0's learner rows, rebuilt by hand from its draws (the wiring of the run)."""
    from mixedts.offline.sdm_synthetic import _cluster_features, _fit, _instance
    from mixedts.offline.softmax_learning import expected_relative_reward, fit_softmax_policy

    child = np.random.SeedSequence(11).spawn(5)[0]
    K, n = 50, 300
    inst = _instance(np.random.default_rng(child), K, 10, 10, n, 2000, 1.0)
    groups = action_clusters(_cluster_features(inst, "theta"), K // 10,
                             np.random.default_rng(child.spawn(1)[0]))  # fmt: skip
    q = inst["X"] @ np.asarray(_fit(inst, n, K, 10, 1.0, 1.0)["dm-freq"].posterior_mean()).T
    extra = {"dr": {"reward_model": q}, "snips": {}, "ips": {},
             "mips": {"clusters": groups, "logging_probabilities": np.full((n, K), 1 / K)}}
    got = small[(small.instance == 0) & (small.metric == "opl_relative_reward")]
    got = got.set_index("method")["value"]
    for label, kw in extra.items():
        policy = fit_softmax_policy(inst["X"], inst["A"], inst["R"], np.full(n, 1 / K), K, label,
                                    l2=1e-3, maxiter=10, dtype="float32", **kw)
        assert got[label] == expected_relative_reward(inst["theta"], inst["X_test"], policy)
    assert len(set(got[list(extra)].round(6))) == 4


def test_existing_rows_do_not_move():
    """The rows of the greedy methods and the OPE estimators are those before the learners and
    MIPS were added (values of the previous version, pinned), whatever runs beside them."""
    pinned = {("sdm", "opl_relative_reward"): 0.9239497348699194,
              ("dm-freq", "opl_relative_reward"): 0.9367039525913713,
              ("sdm", "ope_squared_error"): 0.003684050553913785,
              ("ips", "ope_squared_error"): 0.005076994432508667,
              ("dr-freq", "ope_squared_error"): 0.005089517247744554}  # fmt: skip
    runs = [run_sdm_synthetic(2, (30, 60), K=8, d=3, d_eff=2, seed=4, n_test=200, **kw)
            for kw in ({}, {"learners": ()}, {"clusters": "prior", "n_clusters": 3})]
    for df in runs:
        got = df[(df.instance == 1) & (df.n == 60)].set_index(["method", "metric"])["value"]
        for key, value in pinned.items():
            assert got[key] == pytest.approx(value, rel=1e-9), key
    assert "ips" not in set(runs[1].loc[runs[1].metric == "opl_relative_reward", "method"])
    with pytest.raises(ValidationError, match="learners"):
        run_sdm_synthetic(1, (30,), K=8, d=3, d_eff=2, learners=("poem",))
    with pytest.raises(ValidationError, match="clusters"):
        run_sdm_synthetic(1, (30,), K=8, d=3, d_eff=2, clusters="kmeans")
    with pytest.raises(ValidationError, match="n_clusters"):
        run_sdm_synthetic(1, (30,), K=8, d=3, d_eff=2, n_clusters=9)
    with pytest.raises(ValidationError, match="l2"):
        run_sdm_synthetic(1, (30,), K=8, d=3, d_eff=2, l2=-1.0)


def test_negative_control_wrong_loadings(small):
    wrong = run_sdm_synthetic(5, (300,), K=50, seed=11, n_test=2000, loadings_noise=1.0,
                              learners=("ips",))
    good = summarize(small).set_index(["metric", "method"])["mean"]
    bad = summarize(wrong).set_index(["metric", "method"])["mean"]
    assert bad["opl_relative_reward", "sdm"] < good["opl_relative_reward", "sdm"] - 0.1
    assert bad["ope_squared_error", "sdm"] > 5 * good["ope_squared_error", "sdm"]
    # DM (Freq) and the learners never see the loadings: identical in both runs
    for m in ("dm-freq", "ips"):
        assert bad["opl_relative_reward", m] == good["opl_relative_reward", m]


def test_seeding_per_instance():
    a = run_sdm_synthetic(2, (30,), K=8, d=3, d_eff=2, seed=4, n_test=200)
    b = run_sdm_synthetic(3, (30,), K=8, d=3, d_eff=2, seed=4, n_test=200)
    np.testing.assert_array_equal(a["value"].to_numpy(), b[b.instance < 2]["value"].to_numpy())
    # worker processes: the same rows in the same order
    c = run_sdm_synthetic(2, (30,), K=8, d=3, d_eff=2, seed=4, n_test=200, jobs=2)
    np.testing.assert_array_equal(a["value"].to_numpy(), c["value"].to_numpy())
    assert (a["method"] == c["method"]).all()
    with pytest.raises(ValidationError):
        run_sdm_synthetic(1, (0,), K=8)
    with pytest.raises(ValidationError, match="jobs"):
        run_sdm_synthetic(1, (30,), K=8, jobs=0)


def test_chunked_relative_rewards_equal_unchunked():
    from mixedts.offline.learning import greedy_relative_rewards

    rng = np.random.default_rng(5)
    K, d = 37, 4
    theta = rng.normal(size=(K, d))
    X = rng.uniform(-1, 1, (203, d))
    means = {"a": theta + rng.normal(size=(K, d)), "b": rng.normal(size=(K, d)), "t": theta}
    full = {k: relative_reward(theta, X, greedy_policy_from_posterior(M)) for k, M in means.items()}
    for max_entries in (1, K, 5 * K + 3, 10**9):  # chunks of 1, 1, 5 rows, and one chunk
        ours = greedy_relative_rewards(theta, X, means, max_entries=max_entries)
        assert ours.keys() == full.keys()
        for k in full:
            assert ours[k] == pytest.approx(full[k], rel=1e-12)
    assert ours["t"] == pytest.approx(1.0)
    assert greedy_relative_rewards(theta, X, means["a"], max_entries=50) == pytest.approx(full["a"])
    with pytest.raises(ValidationError):
        greedy_relative_rewards(theta, X, np.zeros((K, d + 1)))
    with pytest.raises(ValidationError):
        greedy_relative_rewards(theta, X[:, :2], theta)
    with pytest.raises(ValidationError, match="undefined"):
        greedy_relative_rewards(-np.abs(theta), np.abs(X), theta)


def test_sdm_actions_many_actions_sdm_wins():
    from mixedts.offline.sdm_synthetic import run_sdm_actions

    df = run_sdm_actions((2000,), n=1000, n_instances=2, seed=3, n_test=300, max_entries=2**14)
    assert set(df["method"]) == {"sdm", "dm-bayes", "dm-freq"} and len(df) == 6
    m = df.groupby("method")["value"].mean()
    assert m["sdm"] > m["dm-bayes"] + 0.05
    assert m["sdm"] > m["dm-freq"]
    # seeded per (K, instance): a larger run contains the smaller one, other Ks do not matter
    more = run_sdm_actions((10, 2000), n=1000, n_instances={10: 1, 2000: 3}, seed=3,
                           n_test=300, max_entries=2**14)  # fmt: skip
    sub = more[(more.K == 2000) & (more.instance < 2)]
    np.testing.assert_array_equal(sub["value"].to_numpy(), df["value"].to_numpy())
    with pytest.raises(ValidationError):
        run_sdm_actions((0,))


@pytest.mark.parametrize("kwargs, match", [
    ({"epsilon": 1.7}, "epsilon"),
    ({"q_hat": {"sdm": np.zeros((3, 2))}}, r"q_hat\['sdm'\]"),
    ({"q_hat": {"sdm": np.zeros((4, 3))}}, r"q_hat\['sdm'\] must have K = 2"),
    ({"A": [0, 1, 2, 0]}, r"A\[2\]"),
    ({"R": [1.0, np.nan, 0.0, 0.0]}, r"R\[1\]"),
    ({"a_star": [1, 1, 1]}, "a_star"),
])
def test_sdm_estimates_refuse_bad_input_by_name(kwargs, match):
    args = {"A": np.array([0, 1, 1, 0]), "R": np.array([1.0, 0.0, 1.0, 0.0]),
            "a_star": np.ones(4, int), "K": 2, "epsilon": 0.1, "q_hat": {}} | kwargs
    with pytest.raises(ValueError, match=match):
        epsilon_greedy_estimates(**args)
    q = {"sdm": np.full((4, 2), 0.5)}
    epsilon_greedy_estimates(np.array([0, 1, 1, 0]), np.ones(4), np.ones(4, int), 2, 0.1, q)
    assert q["sdm"].shape == (4, 2)  # the caller's dict is not rewritten
    with pytest.raises(ValueError, match=r"clusters\[1\]"):
        mips_epsilon_greedy(np.array([0, 1]), np.ones(2), np.ones(2, int), np.array([0, -1]),
                            2, 0.1)
