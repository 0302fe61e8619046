"""``action_probabilities``: exact where the rule is deterministic or has a closed form, a
vectorised Monte Carlo estimate (with its standard error) for Thompson sampling."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, special, stats

from builders import assert_same_state, snapshot
from mixedts import (
    UCB1,
    BernoulliTS,
    GeneralizedTS,
    JointTS,
    LinTS,
    LinUCB,
    MeTS,
    MixedEffectPrior,
    TableExperts,
    ValidationError,
)
from mixedts.offline import LoggedFeedback, evaluate


def correlated_prior():
    """Two actions sharing one strong effect, little action noise: correlated scores."""
    return MixedEffectPrior(np.zeros((1, 2)), 3 * np.eye(2)[None], np.array([[1.0], [0.8]]),
                            0.05 * np.eye(2))


def exact_two_action_probability(mean, cov):
    """P(s_0 > s_1) for (s_0, s_1) ~ N(mean, cov)."""
    gap_var = cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]
    return stats.norm.cdf((mean[0] - mean[1]) / np.sqrt(gap_var))


REWARDS = np.array([0.9, 1.1, -0.2, 0.7, 0.1, -0.4])
ACTIONS = [0, 0, 1, 0, 1, 1]


@pytest.mark.parametrize("policy_cls", [MeTS, JointTS])
def test_thompson_monte_carlo_matches_the_exact_two_action_law(policy_cls):
    prior = correlated_prior()
    X = np.random.default_rng(0).uniform(-1, 1, (6, 2))
    policy = policy_cls(prior, seed=1)
    policy.update_batch(X, ACTIONS, REWARDS)
    # the exact law of (s_0, s_1) = (x·θ_0, x·θ_1) from the joint posterior over (θ_0, θ_1)
    # (JointTS's posterior is itself checked against the brute-force oracle)
    ref = JointTS(prior)
    ref.update_batch(X, ACTIONS, REWARDS)
    x = np.array([1.0, 1.0])  # P = 0.353 with the correlation, 0.438 without
    Xs = np.kron(np.eye(2), x)  # (2, 4)
    mean, cov = Xs @ ref.posterior_mean().ravel(), Xs @ ref.model.joint_cov() @ Xs.T
    p0 = exact_two_action_probability(mean, cov)
    probs, se = policy.action_probabilities(x, n_draws=40_000, seed=2, return_stderr=True)
    assert abs(probs[0] - p0) < 4 * se[0], (probs, p0)
    # negative control: ignoring the correlation through the shared effect is detected
    p_indep = exact_two_action_probability(mean, np.diag(np.diag(cov)))
    assert abs(probs[0] - p_indep) > 10 * se[0], (probs, p_indep)


def test_monte_carlo_matches_the_frequencies_of_select():
    rng = np.random.default_rng(3)
    policy = LinTS(np.zeros((5, 2)), np.eye(2), seed=4)
    policy.update_batch(rng.uniform(-1, 1, (20, 2)), rng.integers(5, size=20),
                        rng.normal(size=20))
    x = np.array([0.5, 0.5])
    probs = policy.action_probabilities(x, n_draws=50_000, seed=5)
    picks = np.array([policy.select(x) for _ in range(4000)])  # rounds of select, no update
    counts = np.bincount(picks, minlength=5)
    keep = probs * 4000 > 5
    assert stats.chisquare(counts[keep], probs[keep] / probs[keep].sum() * counts[keep].sum()
                           ).pvalue > 1e-3
    uniform = np.full(keep.sum(), counts[keep].sum() / keep.sum())  # control: not uniform
    assert stats.chisquare(counts[keep], uniform).pvalue < 1e-6


def test_deterministic_rules_are_exact():
    ucb = LinUCB(3, 2, alpha=0.5, seed=0)
    x = np.array([1.0, 0.0])
    np.testing.assert_array_equal(ucb.action_probabilities(x), [1 / 3] * 3)  # all tied
    ucb.update(x, 1, 2.0)
    np.testing.assert_array_equal(ucb.action_probabilities(x), [0, 1, 0])
    ucb.retire_action(1)
    np.testing.assert_array_equal(ucb.action_probabilities(x), [0.5, 0, 0.5])
    _, se = ucb.action_probabilities(x, return_stderr=True)
    assert np.all(se == 0)
    arms = UCB1(4)
    np.testing.assert_array_equal(arms.action_probabilities(), [0.25] * 4)
    arms.update_batch([0, 1, 2, 3, 0], [1, 0, 0, 0, 1])
    np.testing.assert_array_equal(arms.action_probabilities(), [1, 0, 0, 0])


def test_bernoulli_ts_monte_carlo_against_quadrature():
    a, b = np.array([3.0, 5.0, 2.0]), np.array([4.0, 3.0, 2.0])

    def p_best(i):
        others = [j for j in range(3) if j != i]

        def f(t):
            return stats.beta.pdf(t, a[i], b[i]) * np.prod(special.betainc(a[others],
                                                                           b[others], t))
        return integrate.quad(f, 0, 1)[0]

    exact = np.array([p_best(i) for i in range(3)])
    policy = BernoulliTS(3, alpha=a, beta=b)
    probs, se = policy.action_probabilities(n_draws=50_000, seed=0, return_stderr=True)
    assert np.all(np.abs(probs - exact) < 4 * se)
    assert np.any(np.abs(probs - np.roll(exact, 1)) > 10 * se)  # control


def test_expert_probabilities_are_exact_and_batch():
    policy = GeneralizedTS(TableExperts([[0.2, 0.8], [0.7, 0.3]]), gamma=0.1, seed=0)
    np.testing.assert_allclose(policy.action_probabilities(), [0.5, 0.5])
    policy.update(a=1, y=1.0)
    w = policy.weights()
    np.testing.assert_allclose(policy.action_probabilities(), 0.9 * w[::-1] + 0.05)


def test_batches_give_one_row_per_context_and_reach_evaluate():
    rng = np.random.default_rng(0)
    policy = LinUCB(4, 2, alpha=0.1, seed=0)
    policy.update_batch(rng.uniform(-1, 1, (30, 2)), rng.integers(4, size=30),
                        rng.normal(size=30))
    X = rng.uniform(-1, 1, (4, 2))  # n = K: explicitly a batch
    probs = policy.action_probabilities(X, batch=True)
    assert probs.shape == (4, 4)
    np.testing.assert_allclose(probs, [policy.action_probabilities(x) for x in X])
    logs = LoggedFeedback(X, [0, 1, 2, 3], [1.0, 0.0, 1.0, 0.0], np.full(4, 0.25))
    table = evaluate(logs, policy, estimators=["ips"])
    want = np.mean(probs[np.arange(4), [0, 1, 2, 3]] / 0.25 * [1, 0, 1, 0])
    assert table.loc["ips", "value"] == pytest.approx(want)


def test_select_with_propensity_and_bad_draws():
    policy = LinUCB(3, 2, seed=0)
    x = np.array([1.0, 0.0])
    policy.update(x, 2, 1.0)
    assert policy.select_with_propensity(x) == (2, 1.0)
    before = snapshot(policy)
    with pytest.raises(ValidationError, match=r"^n_draws"):
        policy.action_probabilities(x, n_draws=0)
    assert_same_state(before, snapshot(policy))
    arms = BernoulliTS(2, seed=0)
    a, p = arms.select_with_propensity(n_draws=2000)
    assert a in (0, 1) and 0.4 < p < 0.6
