"""Off-policy estimators: each against its formula on a log small enough to check by hand,
unbiasedness on simulated logs (with a negative control that must fail), the evaluate entry
point, and the replay of a learning policy."""

from __future__ import annotations

import numpy as np
import pytest

from mixedts._validation import ValidationError
from mixedts.environments import MixedEffectEnvironment
from mixedts.offline import (
    DirectMethod,
    DoublyRobust,
    Estimate,
    InverseProbabilityWeighting,
    LoggedFeedback,
    MarginalizedIPW,
    ReplayMethod,
    SelfNormalizedDoublyRobust,
    SelfNormalizedIPW,
    SwitchDoublyRobust,
    estimate_all,
    evaluate,
    make_estimator,
    predict_rewards,
    replay,
    reward_features,
    simulate_logs,
    true_policy_value,
)
from mixedts.offline.estimate import Z95

# A log of 4 rounds and 3 actions. Importance weights w = π(a_t|x_t) / p_t = [0.4, 2, 4, 2].
R = np.array([1.0, 0.0, 2.0, 1.0])
A = np.array([0, 1, 2, 0])
P = np.array([0.5, 0.25, 0.25, 0.5])
PI = np.array([[0.2, 0.5, 0.3], [0.5, 0.5, 0.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
Q = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 1.0], [2.0, 2.0, 0.0], [0.5, 0.5, 0.5]])
# q̂_π = [0.35, 0.5, 0.0, 0.5]; q̂(x_t, a_t) = [1, 1, 0, 0.5]; residuals e = [0, -1, 2, 0.5]
PI0 = np.tile([0.5, 0.25, 0.25], (4, 1))  # the logging distribution behind P
EMBED = np.array([[1.0], [1.0], [2.0]])  # actions 0 and 1 share an embedding


def run(estimator, **extra):
    return estimator.estimate_policy_value(R, A, PI, propensities=P, **extra)


def se(terms):
    terms = np.asarray(terms, dtype=float)
    n = len(terms)
    return np.sqrt(np.sum((terms - terms.mean()) ** 2) / (n * (n - 1)))


def test_ips_by_hand():
    est = run(InverseProbabilityWeighting())
    assert est.value == pytest.approx((0.4 * 1 + 2 * 0 + 4 * 2 + 2 * 1) / 4)  # 2.6
    assert est.stderr == pytest.approx(np.sqrt(41.12 / 3 / 4))  # squares 4.84+6.76+29.16+0.36
    assert est.ci_low == pytest.approx(2.6 - Z95 * est.stderr)
    assert est.ci_high == pytest.approx(2.6 + Z95 * est.stderr)
    clipped = run(InverseProbabilityWeighting(max_weight=3.0))
    assert clipped.value == pytest.approx((0.4 + 0 + 3 * 2 + 2) / 4)  # 2.1


def test_snips_by_hand():
    est = run(SelfNormalizedIPW())
    value = (0.4 + 8 + 2) / (0.4 + 2 + 4 + 2)
    assert est.value == pytest.approx(value)  # 10.4 / 8.4
    w = np.array([0.4, 2, 4, 2])
    assert est.stderr == pytest.approx(se(w * (R - value) / w.mean()))


def test_dm_dr_sndr_switch_by_hand():
    dm = run(DirectMethod(), estimated_rewards=Q)
    assert dm.value == pytest.approx((0.35 + 0.5 + 0 + 0.5) / 4)  # 0.3375
    assert dm.stderr == pytest.approx(se([0.35, 0.5, 0, 0.5]))
    dr = run(DoublyRobust(), estimated_rewards=Q)
    terms = [0.35 + 0.4 * 0, 0.5 + 2 * -1, 0 + 4 * 2, 0.5 + 2 * 0.5]
    assert dr.value == pytest.approx(np.mean(terms))  # 2.0875
    assert dr.stderr == pytest.approx(se(terms))
    sndr = run(SelfNormalizedDoublyRobust(), estimated_rewards=Q)
    assert sndr.value == pytest.approx(0.3375 + (0 - 2 + 8 + 1) / 8.4)
    switch = run(SwitchDoublyRobust(tau=3.0), estimated_rewards=Q)  # row 2 (w = 4) loses its
    assert switch.value == pytest.approx((0.35 - 1.5 + 0 + 1.5) / 4)  # correction: 0.0875
    assert run(SwitchDoublyRobust(), estimated_rewards=Q).value == pytest.approx(dr.value)
    assert run(SwitchDoublyRobust(tau=1e-9), estimated_rewards=Q).value == pytest.approx(dm.value)


def test_mips_by_hand():
    mips = MarginalizedIPW()
    est = run(mips, action_features=EMBED, logging_probabilities=PI0)
    # w(x, e): rows 0, 1, 3 sum π and π0 over actions {0, 1}; row 2 over {2}
    w = np.array([(0.2 + 0.5) / 0.75, 1.0 / 0.75, 1.0 / 0.25, 1.0 / 0.75])
    assert est.value == pytest.approx(np.mean(w * R))
    assert est.stderr == pytest.approx(se(w * R))
    # distinct embeddings: MIPS is IPS; columns select the embedding
    ips = run(InverseProbabilityWeighting())
    assert run(mips, action_features=np.eye(3), logging_probabilities=PI0).value == pytest.approx(
        ips.value
    )
    two = np.array([[1.0, 5.0], [1.0, 6.0], [2.0, 7.0]])
    by_first = run(MarginalizedIPW(columns=(0,)), action_features=two, logging_probabilities=PI0)
    assert by_first.value == pytest.approx(est.value)
    with pytest.raises(ValidationError, match="logging_probabilities is missing"):
        run(mips, action_features=EMBED)


def test_replay_by_hand():
    est = ReplayMethod(selection="argmax", check_uniform=False).estimate_policy_value(R, A, PI)
    # argmax π = [1, 0 (tie: lowest), 2, 0]: rounds 2 and 3 match, rewards 2 and 1
    assert est.value == pytest.approx(1.5)
    assert est.stderr == pytest.approx(se([0, 0, 1, -1]))  # (m r - V m) / mean(m)
    onehot = np.eye(3)[[1, 0, 2, 0]]
    sampled = ReplayMethod(seed=5).estimate_policy_value(R, A, onehot)
    assert sampled.value == pytest.approx(1.5)
    with pytest.raises(ValidationError, match=r"propensities\[0\] must be 1/K"):
        ReplayMethod().estimate_policy_value(R, A, PI, propensities=P)
    assert ReplayMethod().estimate_policy_value(R, A, PI, propensities=np.full(4, 1 / 3)).value >= 0
    nothing = ReplayMethod().estimate_policy_value(R, A, np.eye(3)[[1, 0, 0, 1]])
    assert np.isnan(nothing.value)


def test_estimator_inputs_are_validated():
    ips = InverseProbabilityWeighting()
    with pytest.raises(ValidationError, match=r"action_dist\[1\] must sum to 1"):
        ips.estimate_policy_value(R, A, PI * [[1.0], [0.5], [1.0], [1.0]], propensities=P)
    with pytest.raises(ValidationError, match=r"propensities\[2\] must be in \(0, 1\]"):
        ips.estimate_policy_value(R, A, PI, propensities=[0.5, 0.5, 0.0, 0.5])
    with pytest.raises(ValidationError, match=r"actions\[3\] must be an action index in \[0, 3\)"):
        ips.estimate_policy_value(R, [0, 1, 2, 3], PI, propensities=P)
    with pytest.raises(ValidationError, match=r"rewards\[1\] must be finite"):
        ips.estimate_policy_value([1.0, np.nan, 0, 0], A, PI, propensities=P)
    with pytest.raises(ValidationError, match="propensities is missing"):
        ips.estimate_policy_value(R, A, PI)
    with pytest.raises(ValidationError, match=r"estimated_rewards must have 4 rows"):
        DirectMethod().estimate_policy_value(R, A, PI, estimated_rewards=Q[:3])
    with pytest.raises(ValidationError, match="max_weight must be a positive number"):
        InverseProbabilityWeighting(max_weight=0.0)
    with pytest.raises(ValidationError, match="unknown estimator 'ipw'"):
        make_estimator("ipw")
    assert make_estimator("switch-dr", tau=2.0).tau == 2.0


# ---------------------------------------------------------------------------- evaluate


def small_logs(**extra):
    return LoggedFeedback(np.arange(8.0).reshape(4, 2), A, R, **{"propensities": P, **extra})


def test_evaluate_table():
    pytest.importorskip("pandas")
    table = evaluate(small_logs(), PI, ["ips", "snips", "dm", "dr", "sndr", "switch-dr"],
                     reward_model=Q)  # fmt: skip
    assert list(table.index) == ["ips", "snips", "dm", "dr", "sndr", "switch-dr"]
    assert table.index.name == "estimator"
    assert list(table.columns) == ["value", "stderr", "ci_low", "ci_high"]
    assert table.loc["ips", "value"] == pytest.approx(2.6)
    assert table.loc["dr", "value"] == pytest.approx(2.0875)
    labelled = evaluate(small_logs(), PI, {"clipped": InverseProbabilityWeighting(max_weight=3),
                                           "plain": "ips"})  # fmt: skip
    assert labelled["value"].tolist() == pytest.approx([2.1, 2.6])
    assert list(evaluate(small_logs(), PI).index) == ["ips", "snips"]  # no reward model
    mips = evaluate(small_logs(propensities=None, logging_probabilities=PI0,
                               action_features=EMBED), PI, ["mips"])  # fmt: skip
    assert mips.loc["mips", "value"] == pytest.approx(run(MarginalizedIPW(), action_features=EMBED,
                                                          logging_probabilities=PI0).value)


def test_evaluate_refusals_name_the_argument():
    logs = small_logs()
    with pytest.raises(ValidationError, match="reward_model is missing: estimator 'dm'"):
        estimate_all(logs, PI, ["ips", "dm"])
    with pytest.raises(ValidationError, match=r"logs\.action_features is missing"):
        estimate_all(logs, PI, ["mips"])
    with pytest.raises(ValidationError, match=r"logs\.logging_probabilities is missing"):
        estimate_all(small_logs(action_features=EMBED), PI, ["mips"])
    no_p = LoggedFeedback(logs.contexts, A, R)
    with pytest.raises(ValidationError, match=r"logs\.propensities is missing"):
        estimate_all(no_p, PI, ["ips"])
    with pytest.raises(ValidationError, match=r"policy_or_probabilities\[0\] must sum to 1"):
        estimate_all(logs, PI * 0.5, ["ips"])
    with pytest.raises(ValidationError, match=r"reward_model must have 4 rows"):
        estimate_all(logs, PI, ["dm"], reward_model=Q[:2])
    with pytest.raises(ValidationError, match="'ips' appears twice"):
        estimate_all(logs, PI, ["ips", InverseProbabilityWeighting(max_weight=2)])


class Fixed:
    """A policy with batch action probabilities (what the policies will offer)."""

    def __init__(self, probs):
        self.probs = probs

    def action_probabilities(self, X):
        assert X.shape == (4, 2)
        return self.probs


class Broken:
    def action_probabilities(self, X):
        raise ValueError("x must have shape (2,)")


def test_evaluate_takes_a_policy():
    logs = small_logs()
    by_policy = estimate_all(logs, Fixed(PI), ["ips"])["ips"]
    assert by_policy == estimate_all(logs, PI, ["ips"])["ips"]
    with pytest.raises(ValidationError, match=r"Broken.action_probabilities\(contexts\) failed"):
        estimate_all(logs, Broken(), ["ips"])
    with pytest.raises(ValidationError, match="has no action_probabilities method"):
        estimate_all(logs, object(), ["ips"])
    with pytest.raises(ValidationError, match=r"must have shape \(n, K\)"):
        estimate_all(logs, Fixed(PI[0]), ["ips"])


def test_evaluate_with_scikit_learn_models():
    sklearn = pytest.importorskip("sklearn")
    from sklearn.linear_model import LinearRegression, LogisticRegression

    assert sklearn
    env = MixedEffectEnvironment(n_actions=3, n_effects=2, dim=2, seed=0)
    logs = simulate_logs(env, "uniform", 300, seed=0)
    model = LinearRegression().fit(reward_features(logs), logs.rewards)
    q = predict_rewards(model, logs)
    X = np.hstack([np.repeat(logs.contexts, 3, axis=0), np.tile(np.eye(3), (300, 1))])
    assert np.allclose(q, model.predict(X).reshape(300, 3))
    pi = np.full((300, 3), 1 / 3)
    by_model = estimate_all(logs, pi, ["dm", "dr"], reward_model=model)
    by_array = estimate_all(logs, pi, ["dm", "dr"], reward_model=q)
    assert by_model == by_array
    clicks = logs.replace(rewards=(logs.rewards > 0).astype(float))
    classifier = LogisticRegression().fit(reward_features(clicks), clicks.rewards)
    p1 = predict_rewards(classifier, clicks)
    assert np.allclose(p1, classifier.predict_proba(X)[:, 1].reshape(300, 3))
    # per-action contexts: action a's row is [x_{t, a}, onehot(a)]
    pool = simulate_logs(MixedEffectEnvironment(3, 2, 2, contexts="pool", seed=0), "uniform", 50,
                         seed=0)  # fmt: skip
    fitted = LinearRegression().fit(reward_features(pool), pool.rewards)
    q = predict_rewards(fitted, pool)
    for a in range(3):
        rows = np.hstack([pool.contexts[:, a], np.tile(np.eye(3)[a], (50, 1))])
        assert np.allclose(q[:, a], fitted.predict(rows))


# ---------------------------------------------------------------------------- unbiasedness


def _softmax(z):
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


W = np.random.default_rng(1).normal(size=(2, 3, 4))


def logging_policy(X):  # far from uniform, but every action possible
    return 0.025 + 0.9 * _softmax(2 * X @ W[0])


def target_policy(X):
    return _softmax(3 * X @ W[1])


@pytest.fixture(scope="module")
def errors():
    """Estimate minus the truth on the logged contexts, over 300 seeds of 400 rounds."""
    env = MixedEffectEnvironment(n_actions=4, n_effects=2, dim=3, seed=0)
    out: dict[str, list[float]] = {}
    covered: dict[str, int] = {"ips": 0, "dr": 0}
    for seed in range(300):
        logs = simulate_logs(env, logging_policy, 400, seed=seed)
        pi = target_policy(logs.contexts)
        truth = true_policy_value(logs, pi)
        model = 0.5 * logs.expected_rewards  # a wrong reward model: DM is biased, DR is not
        good = estimate_all(logs, pi, ["ips", "dr"], reward_model=model)
        # negative control: the propensities of a uniform logger, which is not what logged
        wrong = logs.replace(propensities=np.full(400, 0.25), logging_probabilities=None)
        bad = estimate_all(wrong, pi, ["ips", "dr"], reward_model=np.zeros((400, 4)))
        dm = estimate_all(logs, pi, ["dm"], reward_model=model)["dm"]
        for name, est in [*good.items(), *((f"{k}_wrong", e) for k, e in bad.items()),
                          ("dm_wrong_model", dm)]:  # fmt: skip
            out.setdefault(name, []).append(est.value - truth)
        for name in covered:
            covered[name] += good[name].ci_low <= truth <= good[name].ci_high
    return {k: np.array(v) for k, v in out.items()}, covered


def unbiased(err: np.ndarray) -> bool:
    """The mean error is within 3 standard errors of 0."""
    return abs(err.mean()) <= 3 * err.std(ddof=1) / np.sqrt(len(err))


def test_ips_and_dr_are_unbiased(errors):
    err, _ = errors
    assert unbiased(err["ips"]) and unbiased(err["dr"])


def test_negative_controls_fail_the_same_check(errors):
    err, _ = errors
    assert not unbiased(err["ips_wrong"])
    assert not unbiased(err["dr_wrong"])
    assert not unbiased(err["dm_wrong_model"])


def test_intervals_cover_about_95_percent(errors):
    _, covered = errors
    for name, hits in covered.items():
        assert 0.90 <= hits / 300 <= 0.99, (name, hits)


# ---------------------------------------------------------------------------- online replay


class AlwaysZero:
    n_actions = 3

    def __init__(self):
        self.seen = []

    def select(self, x):
        return 0

    def update(self, x, a, y):
        self.seen.append((tuple(x), a, y))


def test_replay_of_a_policy_by_hand():
    X = np.arange(12.0).reshape(6, 2)
    logs = LoggedFeedback(X, [0, 1, 0, 2, 0, 1], [1.0, 5.0, 0.0, 5.0, 2.0, 5.0],
                          propensities=np.full(6, 1 / 3))  # fmt: skip
    policy = AlwaysZero()
    est = replay(logs, policy)
    assert est.value == pytest.approx(1.0)  # rounds 0, 2, 4
    assert policy.seen == [((0.0, 1.0), 0, 1.0), ((4.0, 5.0), 0, 0.0), ((8.0, 9.0), 0, 2.0)]
    with pytest.raises(ValidationError, match=r"propensities\[0\] must be 1/K"):
        replay(logs.replace(propensities=np.full(6, 0.5)), AlwaysZero())
    with pytest.raises(ValidationError, match="policy has 3 actions, but the log has 4"):
        replay(LoggedFeedback(X, [0] * 6, [0.0] * 6, n_actions=4), AlwaysZero())


def test_replay_of_a_learning_policy_beats_uniform():
    from mixedts import LinTS

    env = MixedEffectEnvironment(n_actions=4, n_effects=2, dim=3, seed=0)
    logs = simulate_logs(env, "uniform", 3000, seed=0)
    policy = LinTS(np.zeros((4, 3)), 3.0 * np.eye(3), seed=0)
    est = replay(logs, policy)
    uniform = logs.expected_rewards.mean()
    best = logs.expected_rewards.max(axis=1).mean()
    assert uniform + 0.5 * (best - uniform) < est.value <= best + 4 * est.stderr
    assert isinstance(est, Estimate)
