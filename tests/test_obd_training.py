"""mixedts policies trained on a time split of uniform-random logs and evaluated off-policy on
the rest (mixedts.offline.obd_training): the ranking distribution against brute force, obp's
BTS distribution and the policies' own propensities; the time split and what the policies
see; recovery of a planted ranking with estimates at the known true value, and a shuffled-
reward negative control; a run on the obp samples in ../shared/data/obd (skipped without)."""

from __future__ import annotations

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from mixedts import GLMTS, BernoulliTS, MeTS, MixedEffectPrior  # noqa: E402
from mixedts._validation import ValidationError  # noqa: E402
from mixedts.offline import LoggedFeedback, estimate_all  # noqa: E402
from mixedts.offline.obd_protocol import bts_action_distribution  # noqa: E402
from mixedts.offline.obd_training import (  # noqa: E402
    DEFAULT_TRAINING_POLICIES,
    ranking_probabilities,
    run_obd_training,
    train_obd_policies,
    with_intercept,
)
from shared_data import OBD, needs_obd  # noqa: E402

K = 6
PLANTED = np.array([0.2, 0.02, 0.5, 0.02, 0.3, 0.02])  # best three: items 2, 4, 0
TARGETS = [(p, m) for p in DEFAULT_TRAINING_POLICIES for m in ("ts", "greedy")]


def synthetic_logs(n=6000, ctr=PLANTED, seed=0, shuffle=False) -> LoggedFeedback:
    """OBD-shaped uniform-random logs: 3 user types (one-hot, first dropped), K items in two
    item-feature groups, 3 positions, click probability ctr[item] whatever the user."""
    rng = np.random.default_rng(seed)
    users = rng.integers(0, 3, n)
    actions = rng.integers(0, K, n)
    rewards = rng.binomial(1, np.asarray(ctr)[actions]).astype(float)
    if shuffle:  # the negative control: no item is better than another
        rewards = rng.permutation(rewards)
    features = np.column_stack([np.arange(K) % 2, np.zeros(K), np.zeros(K), np.arange(K)])
    return LoggedFeedback(np.eye(3)[users][:, 1:], actions, rewards,
                          propensities=np.full(n, 1.0 / K), action_features=features,
                          positions=rng.integers(1, 4, n), timestamps=np.arange(n) * 10.0,
                          n_actions=K)  # fmt: skip


@pytest.fixture(scope="module")
def planted():
    logs = synthetic_logs()
    return logs, run_obd_training(logs, 0.25, reward_model="mets-glm", n_draws=500,
                                  n_bootstrap=100, seed=1)  # fmt: skip


# ------------------------------------------------------------------------- ranking
def test_bernoulli_ranking_matches_obps_bts_distribution_not_its_mirror():
    a, b = np.array([9.0, 4.0, 6.0, 2.0]), np.array([30.0, 30.0, 30.0, 30.0])
    n = 100_000
    ours = ranking_probabilities(BernoulliTS(4, alpha=a, beta=b), np.zeros((2, 1)), 3,
                                 n_draws=n, rng=0)  # fmt: skip
    ref, se = bts_action_distribution(a, b, 3, 400_000, rng=1, return_stderr=True)
    assert ours.shape == (2, 4, 3)
    np.testing.assert_array_equal(ours[0], ours[1])  # no context: one distribution
    tol = 4 * np.sqrt(ref * (1 - ref) / n + se**2) + 1e-12
    assert np.all(np.abs(ours[0] - ref) <= tol)
    assert np.abs(ours[0] - ref[:, ::-1]).max() > 0.2  # ranking worst-first would show


def _fitted_glm(seed=0):
    logs = synthetic_logs(900, seed=seed)
    prior = MixedEffectPrior(np.zeros((2, 3)), np.stack([np.eye(3)] * 2),
                             np.eye(2)[np.arange(K) % 2], 0.25 * np.eye(3))  # fmt: skip
    X = with_intercept(logs.contexts)
    policy = MeTS(prior, likelihood="logistic", seed=0)
    policy.update_batch(X, logs.actions, logs.rewards)
    return policy, X


def test_position_one_is_the_policys_own_action_probabilities():
    policy, X = _fitted_glm()
    contexts = X[[0, 1, 2, 5]]
    n = 40_000
    ours = ranking_probabilities(policy, contexts, 3, n_draws=n, rng=3)
    theirs = policy.action_probabilities(contexts, batch=True, n_draws=n, seed=4)
    se = np.sqrt(theirs * (1 - theirs) / n)
    assert np.all(np.abs(ours[:, :, 0] - theirs) <= 4 * np.sqrt(2) * se + 1e-3)
    # each position shows one item, each item at most once
    np.testing.assert_allclose(ours.sum(axis=1), 1.0)
    assert np.all(ours.sum(axis=2) <= 1 + 1e-12)
    # negative control: the last position is not the first
    assert np.abs(ours[:, :, 2] - theirs).max() > 0.05


def test_greedy_is_the_brute_force_sort_and_identical_contexts_share_a_row():
    policy, X = _fitted_glm(1)
    contexts = np.unique(X, axis=0)[[0, 1, 0, 2, 1]]  # three user types, two repeated
    got = ranking_probabilities(policy, contexts, 3, greedy=True)
    M = policy.posterior_mean()
    for t, x in enumerate(contexts):  # the slow obvious ranking, one context at a time
        order = sorted(range(K), key=lambda k: (-(x @ M[k]), k))[:3]
        want = np.zeros((K, 3))
        want[order, [0, 1, 2]] = 1.0
        np.testing.assert_array_equal(got[t], want)
    ts = ranking_probabilities(policy, contexts, 3, n_draws=300, rng=0)
    np.testing.assert_array_equal(ts[0], ts[2])  # duplicates computed once
    assert not np.array_equal(ts[0], ts[1])
    np.testing.assert_array_equal(ts, ranking_probabilities(policy, contexts, 3, n_draws=300,
                                                            rng=0))  # fmt: skip
    tied = BernoulliTS(4)  # equal posteriors: ties go to the lowest index
    np.testing.assert_array_equal(
        ranking_probabilities(tied, np.zeros((1, 1)), 2, greedy=True)[0],
        [[1, 0], [0, 1], [0, 0], [0, 0]])


def test_ranking_refuses_bad_input():
    policy, X = _fitted_glm()
    with pytest.raises(ValidationError, match="n_positions must be at most the 6 items"):
        ranking_probabilities(policy, X, 7)
    with pytest.raises(ValidationError, match=r"contexts must have shape \(n, 3\)"):
        ranking_probabilities(policy, X[:, :2], 3)
    with pytest.raises(ValidationError, match="n_draws"):
        ranking_probabilities(policy, X, 3, n_draws=0)


# ------------------------------------------------------------------------- the split
def test_time_split_and_the_policies_see_only_the_train_rows(planted):
    logs, result = planted
    train, test = result.train, result.test
    k = int(np.floor(len(logs) * 0.7))
    assert (len(train), len(test)) == (k, len(logs) - k)
    assert train.timestamps.max() <= test.timestamps.min()  # nothing after the first test row
    assert train.equals(logs[:k]) and test.equals(logs[k:])
    np.testing.assert_array_equal(result.policies["bernoulli-ts"].counts(),
                                  np.bincount(train.actions, minlength=K))  # fmt: skip
    # rewriting every test reward leaves every fitted policy unchanged
    flipped = logs.replace(rewards=np.r_[logs.rewards[:k], 1.0 - logs.rewards[k:]])
    other = train_obd_policies(flipped.time_split(0.7)[0], seed=5)
    for label, policy in result.policies.items():
        np.testing.assert_allclose(other[label].posterior_mean(), policy.posterior_mean(),
                                   rtol=1e-10, atol=1e-12)  # fmt: skip


def test_shapes_columns_and_reference(planted):
    _, result = planted
    s, raw, ref = result.summary, result.raw, result.reference
    assert len(s) == 8 * 5 and list(s[["policy", "mode"]].drop_duplicates().itertuples(
        index=False, name=None)) == TARGETS  # fmt: skip
    for column in ("value", "stderr", "boot_se", "ci_low", "ci_high", "lift", "lift_se",
                   "p_beats_random", "vs_bts", "vs_bts_se", "n_draws"):
        assert column in s.columns
    assert len(raw) == 101 * 8 * 5 and raw["resample"].min() == -1
    assert set(s.loc[s["mode"] == "greedy", "n_draws"]) == {0}
    for pi in result.action_dist.values():
        assert pi.shape == (len(result.test), K)
        np.testing.assert_allclose(pi.sum(axis=1), 1.0)
    test = result.test
    np.testing.assert_allclose(ref["value"].tolist(), [test.rewards.mean(), 0.25])
    np.testing.assert_allclose(s["vs_bts"], s["value"] - 0.25)
    # bootstrap columns: paired with the random policy's click rate on the same resample
    boot = raw[raw["resample"] >= 0].assign(d=lambda f: f["estimate"] - f["random_ctr"])
    g = boot.groupby(["policy", "mode", "estimator"], sort=False)
    np.testing.assert_allclose(s["lift_se"], g["d"].std(ddof=1).to_numpy())
    np.testing.assert_allclose(s["boot_se"], g["estimate"].std(ddof=1).to_numpy())
    ipw = s["estimator"] != "dm"  # weighted clicks share the random rate's noise; DM does not
    assert np.all(s.loc[ipw, "lift_se"] < s.loc[ipw, "boot_se"])
    assert np.all(raw.loc[raw["resample"] == -1, "random_ctr"] == test.rewards.mean())
    # the summary's IPS is the library's IPS of the same target on the test part
    for (label, mode), pi in result.action_dist.items():
        row = s[(s["policy"] == label) & (s["mode"] == mode) & (s["estimator"] == "ips")]
        assert row["value"].item() == pytest.approx(estimate_all(test, pi, ["ips"])["ips"].value)


def test_bts_reference_is_its_click_rate_over_the_test_period():
    logs = synthetic_logs(1000)
    rng = np.random.default_rng(9)
    times = np.sort(rng.uniform(0, 10_000, 800))
    bts = LoggedFeedback(np.zeros((800, 1)), rng.integers(0, K, 800),
                         (times > 6000) * rng.binomial(1, 0.5, 800), timestamps=times)  # fmt: skip
    result = run_obd_training(logs, bts, reward_model=None, estimators=["ips"], n_draws=50,
                              n_bootstrap=5)  # fmt: skip
    later = times >= result.test.timestamps[0]  # 7000.0: the first test row's time
    ref = result.reference.set_index("policy").loc["production-bts"]
    assert ref["n_rows"] == later.sum() and ref["value"] == bts.rewards[later].mean()
    assert ref["value"] > 0.4  # negative control: the whole log's rate is about 0.2
    assert ref["stderr"] == pytest.approx(bts.rewards[later].std(ddof=1) / np.sqrt(later.sum()))


def test_reproducible_and_seeded():
    logs = synthetic_logs(1500)
    kw = dict(reward_model=None, estimators=["ips", "snips"], n_draws=200, n_bootstrap=20)
    a = run_obd_training(logs, **kw, seed=3)
    b = run_obd_training(logs, **kw, seed=3)
    c = run_obd_training(logs, **kw, seed=4)
    pd.testing.assert_frame_equal(a.summary, b.summary)
    pd.testing.assert_frame_equal(a.raw, b.raw)
    assert not np.allclose(a.summary["boot_se"], c.summary["boot_se"])


# ------------------------------------------------------------------------- statistics
def test_a_planted_ranking_is_recovered_and_beats_uniform(planted):
    _, result = planted
    X = with_intercept(result.test.contexts)
    for label, policy in result.policies.items():
        greedy = ranking_probabilities(policy, X, 3, greedy=True)
        assert np.all(greedy[:, [2, 4, 0], [0, 1, 2]] == 1.0), label
    s = result.summary.set_index(["policy", "mode", "estimator"])
    pos = result.test.positions - 1
    for (label, mode), pi in result.action_dist.items():
        truth = float((pi @ PLANTED).mean())  # E[click] under the target on these rows
        for est in ("ips", "snips", "dr", "sndr"):
            row = s.loc[(label, mode, est)]
            assert abs(row["value"] - truth) <= 4 * row["stderr"], (label, mode, est)
            assert row["lift"] > 3 * row["lift_se"] and row["p_beats_random"] > 0.97
        if mode == "greedy":
            assert truth == pytest.approx(PLANTED[[2, 4, 0]][pos].mean())


def test_negative_control_shuffled_rewards_give_no_advantage():
    logs = synthetic_logs(shuffle=True)
    result = run_obd_training(logs, 0.25, reward_model="glm-ts", n_draws=500,
                              n_bootstrap=100, seed=1)  # fmt: skip
    s = result.summary[result.summary["estimator"].isin(["ips", "snips", "dr", "sndr"])]
    assert np.all(s["lift"] < 3 * s["lift_se"])
    assert np.all(s["p_beats_random"] < 0.975)


# ------------------------------------------------------------------------- input
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(test_size=1.0), "test_size must be a number in"),
        (dict(test_size=0.9999), "test_size 0.9999 leaves 0 train"),
        (dict(policies=["lints"]), "policies must name distinct policies"),
        (dict(modes=["thompson"]), "modes must name distinct modes"),
        (dict(reward_model=None, estimators=["dm"]), "reward_model is None"),
        (dict(reward_model="forest"), "reward_model must be 'logistic', 'gbm', a trained"),
        (dict(item_groups=[0, 1]), r"item_groups must hold one label per item, \(6,\)"),
        (dict(n_bootstrap=1), "n_bootstrap"),
        (dict(bts_logs=[0.5]), "bts_logs must be a LoggedFeedback, a path, a number or None"),
    ],
)
def test_bad_input_names_the_argument(kwargs, match):
    logs = synthetic_logs(300)
    kwargs = {"bts_logs": None, **kwargs}
    with pytest.raises(ValidationError, match=match):
        run_obd_training(logs, kwargs.pop("bts_logs"), n_draws=10, n_bootstrap=kwargs.pop(
            "n_bootstrap", 2), **kwargs)  # fmt: skip


def test_logs_without_propensities_are_refused():
    logs = synthetic_logs(300)
    bare = LoggedFeedback(logs.contexts, logs.actions, logs.rewards, timestamps=logs.timestamps)
    with pytest.raises(ValidationError, match=r"random_logs\.propensities is missing"):
        run_obd_training(bare)


# ------------------------------------------------------------------------- real data
@needs_obd
def test_obd_men_sample():
    pytest.importorskip("sklearn")
    from mixedts.datasets.obd import load_obd

    result = run_obd_training(OBD, n_draws=200, n_bootstrap=20, seed=0)
    random_logs, bts_logs = load_obd(OBD, "men", "random"), load_obd(OBD, "men", "bts")
    assert (len(result.train), len(result.test)) == (7000, 3000)
    assert result.train.timestamps[-1] <= result.test.timestamps[0]
    ref = result.reference.set_index("policy")
    assert ref.loc["random", "value"] == random_logs.rewards[7000:].mean()
    later = bts_logs.timestamps >= result.test.timestamps[0]  # BTS over the test period
    assert ref.loc["production-bts", "value"] == bts_logs.rewards[later].mean()
    assert ref.loc["production-bts", "n_rows"] == later.sum()
    s = result.summary
    assert len(s) == 40 and np.all(np.isfinite(s["value"])) and np.all(s["boot_se"] >= 0)
    mets = result.policies["mets-glm"]
    assert mets.posterior_mean().shape == (34, 1 + random_logs.dim)
    assert isinstance(result.policies["glm-ts"], GLMTS)
