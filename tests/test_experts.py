"""Generalized Thompson sampling, EXP4 and ε-greedy over experts.

GTS with the log loss, η = 1 and γ = 0 is Bayes' rule over the experts and Thompson sampling
over that discrete prior; γ > 0 floors every arm at γ/K; 10⁶ updates stay finite; the square
loss concentrates on the best expert; bad rewards and bad expert outputs are rejected with the
state (random generator included) unchanged; batches equal singles; save → load continues.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy import stats
from scipy.special import expit, logsumexp

import mixedts
from builders import assert_same_state, snapshot
from mixedts import EXP4, EpsilonGreedyExperts, GeneralizedTS, ValidationError
from mixedts.models.experts import TableExperts


def table(seed=0, N=30, K=4, low=0.05, high=0.95):
    return np.random.default_rng(seed).uniform(low, high, (N, K))


def bayes_posterior(log_prior, means, A, Y):
    """Bayes' rule by sufficient statistics (successes/failures per action), not per round."""
    K = means.shape[1]
    S = np.bincount(A, weights=Y, minlength=K)
    F = np.bincount(A, weights=1 - Y, minlength=K)
    log_post = log_prior + np.log(means) @ S + np.log1p(-means) @ F
    return np.exp(log_post - logsumexp(log_post))


def ts_probabilities(post, means):
    """P(action) under Thompson sampling over the discrete prior: Σ_j post_j [argmax μ_j = a]."""
    return np.bincount(means.argmax(axis=1), weights=post, minlength=means.shape[1])


# ---------------------------------------------------------------------------- GTS == TS
def test_log_loss_weights_are_bayes_rule():
    rng = np.random.default_rng(1)
    means = table(1, N=40, K=5)
    prior = rng.dirichlet(np.ones(40))
    A = rng.integers(5, size=300)
    Y = (rng.random(300) < 0.5) * 1.0
    single = GeneralizedTS(TableExperts(means), "log", eta=1.0, gamma=0.0, prior=prior, seed=0)
    batch = GeneralizedTS(TableExperts(means), "log", eta=1.0, gamma=0.0, prior=prior, seed=0)
    for a, y in zip(A, Y):
        single.update(a=int(a), y=y)
    batch.update_batch(A=A[:100], Y=Y[:100])
    batch.update_batch(A=A[100:], Y=Y[100:])
    post = bayes_posterior(np.log(prior), means, A, Y)
    assert post.max() > 0.2  # the data have moved the prior
    for policy in (single, batch):
        assert np.max(np.abs(policy.weights() - post)) < 1e-12
        assert abs(policy.weights().sum() - 1) < 1e-12


def test_log_loss_weights_are_bayes_rule_for_logistic_experts():
    rng = np.random.default_rng(2)
    N, K, d = 60, 4, 3
    W = rng.normal(size=(N, d))
    policy = GeneralizedTS(W, "log", seed=0, n_actions=K)
    X = rng.normal(size=(200, K, d))
    A = rng.integers(K, size=200)
    Y = (rng.random(200) < 0.5) * 1.0
    for t in range(150):
        policy.update(X[t], int(A[t]), Y[t])
    policy.update_batch(X[150:], A[150:], Y[150:])
    z = np.einsum("td,nd->tn", X[np.arange(200), A], W)  # (T, N) logits of the played pairs
    log_lik = -(Y[:, None] * np.logaddexp(0, -z) + (1 - Y[:, None]) * np.logaddexp(0, z))
    log_post = log_lik.sum(axis=0)
    post = np.exp(log_post - logsumexp(log_post))
    assert np.max(np.abs(policy.weights() - post)) < 1e-12


def test_action_frequencies_match_thompson_sampling_over_the_prior():
    """After a history, GTS(log, η=1, γ=0) picks actions with TS's probabilities (chi-square),
    and action_probabilities is exactly TS's."""
    rng = np.random.default_rng(3)
    means = table(3, N=25, K=4)
    policy = GeneralizedTS(TableExperts(means), "log", seed=4)
    A, Y = rng.integers(4, size=40), (rng.random(40) < 0.5) * 1.0
    policy.update_batch(A=A, Y=Y)
    p = ts_probabilities(bayes_posterior(np.full(25, -np.log(25)), means, A, Y), means)
    np.testing.assert_allclose(policy.action_probabilities(), p, atol=1e-12)

    def pvalue(sampler):
        counts = np.bincount(sampler.select_batch(n=20000), minlength=4)
        keep = p * 20000 > 5
        return stats.chisquare(counts[keep], p[keep] / p[keep].sum() * counts[keep].sum()).pvalue

    assert pvalue(policy) > 1e-3
    # negative controls: the same history, samplers with η = 2 or γ = 0.1, are rejected
    for wrong in ({"eta": 2.0}, {"gamma": 0.1}):
        other = GeneralizedTS(TableExperts(means), "log", seed=4, **wrong)
        other.update_batch(A=A, Y=Y)
        assert pvalue(other) < 1e-3, wrong


# A three-expert instance (found by search) where one update already separates GTS(η = 1, γ = 0)
# from GTS(η = 2) and from GTS(γ = 0.1) by a chi-square noncentrality of about 0.09 per run.
TRAJ_PRIOR = np.array([0.66, 0.24, 0.10])
TRAJ_MEANS = np.array([[0.81, 0.29, 0.53], [0.57, 0.95, 0.28], [0.05, 0.33, 0.53]])
TRAJ_TRUTH = TRAJ_MEANS[0]


def thompson_trajectory_law(prior, means, truth):
    """The exact law of (a₁, y₁, a₂) under Thompson sampling over the discrete prior, by
    enumeration: a₁ ~ Σ_j π_j [argmax μ_j = a₁], y₁ ~ Bernoulli(truth[a₁]), then Bayes' rule and
    a₂ ~ Σ_j π'_j [argmax μ_j = a₂]. Cells are indexed (a₁·2 + y₁)·K + a₂."""
    K = means.shape[1]
    greedy = np.eye(K)[means.argmax(axis=1)]
    p1 = prior @ greedy
    law = np.zeros((K, 2, K))
    for a in range(K):
        for y in (0, 1):
            post = prior * (means[:, a] if y else 1 - means[:, a])
            law[a, y] = p1[a] * (truth[a] if y else 1 - truth[a]) * (post / post.sum()) @ greedy
    return law.ravel()


def gts_trajectories(n_runs, seed, **kwargs):
    """(a₁, y₁, a₂) cell of ``n_runs`` independent GTS runs (log loss) on the instance above."""
    rng = np.random.default_rng(seed)
    K = TRAJ_MEANS.shape[1]
    cells = np.empty(n_runs, dtype=np.int64)
    for r in range(n_runs):
        policy = GeneralizedTS(TableExperts(TRAJ_MEANS), "log", prior=TRAJ_PRIOR,
                               seed=seed * 10_000 + r, **kwargs)
        a1 = policy.select()
        y1 = int(rng.random() < TRAJ_TRUTH[a1])
        policy.update(a=a1, y=float(y1))
        cells[r] = (a1 * 2 + y1) * K + policy.select()
    return cells


def chisquare_pvalue(cells, law):
    """One-sample chi-square of the cell counts against ``law`` (cells expected < 5 pooled)."""
    n = len(cells)
    counts = np.bincount(cells, minlength=len(law))
    small = law * n < 5
    obs = np.append(counts[~small], counts[small].sum())
    exp = np.append(law[~small], law[small].sum()) * n
    keep = exp > 0
    return stats.chisquare(obs[keep], exp[keep]).pvalue


def test_gts_trajectories_have_the_exact_thompson_law():
    """Whole runs (select, update, select): GTS(log, η=1, γ=0) has the exact law of Thompson
    sampling over the discrete prior (enumerated). The same check rejects GTS with η = 2 and
    with γ = 0.1 (negative controls: the check can fail)."""
    law = thompson_trajectory_law(TRAJ_PRIOR, TRAJ_MEANS, TRAJ_TRUTH)
    assert abs(law.sum() - 1) < 1e-12
    n = 1000
    assert chisquare_pvalue(gts_trajectories(n, 1), law) > 1e-3
    assert chisquare_pvalue(gts_trajectories(n, 2, eta=2.0), law) < 1e-3
    assert chisquare_pvalue(gts_trajectories(n, 3, gamma=0.1), law) < 1e-3


# ---------------------------------------------------------------------------- exploration
def test_gamma_floors_every_arm():
    rng = np.random.default_rng(6)
    N, K, d, gamma = 300, 5, 4, 0.2
    W = rng.normal(size=(N, K, d)) * 2
    policy = GeneralizedTS(W, "square", gamma=gamma, seed=1)
    history = []
    for _ in range(30):
        x = rng.normal(size=d)
        a = policy.select(x)
        history.append((x, a, float(rng.random() < 0.5)))
        policy.update(*history[-1])
    for _ in range(50):
        p = policy.action_probabilities(rng.normal(size=d))
        assert p.shape == (K,) and abs(p.sum() - 1) < 1e-12
        assert np.all(p >= gamma / K - 1e-15)
    x = rng.normal(size=d)
    p = policy.action_probabilities(x)
    counts = np.bincount(policy.select_batch(np.tile(x, (20000, 1))), minlength=K)
    assert stats.chisquare(counts, p * 20000).pvalue > 1e-3
    # negative control: the same weights without the floor (γ = 0) fail the same check
    floorless = GeneralizedTS(W, "square", gamma=0.0, seed=1)
    floorless.update_batch(*map(np.array, zip(*history)))
    assert np.max(np.abs(floorless.weights() - policy.weights())) < 1e-12
    counts = np.bincount(floorless.select_batch(np.tile(x, (20000, 1))), minlength=K)
    assert stats.chisquare(counts, p * 20000).pvalue < 1e-3
    policy.retire_action(2)
    p = policy.action_probabilities(x)
    assert p[2] == 0 and np.all(np.delete(p, 2) >= gamma / 4 - 1e-15)
    assert 2 not in policy.select_batch(np.tile(x, (2000, 1)))


# ---------------------------------------------------------------------------- stability
@pytest.mark.parametrize("loss", ["log", "square"])
def test_a_million_updates_neither_overflow_nor_underflow(loss):
    rng = np.random.default_rng(7)
    means = table(7, N=20, K=10, low=0.0, high=1.0)
    means[0, 0], means[1, 1] = 0.0, 1.0  # predictions at the edges: the log loss clips them
    policy = GeneralizedTS(TableExperts(means), loss, eta=2.0, seed=0)
    truth = means[5]
    for _ in range(100):  # 10^6 updates in chunks of 10^4 (delayed feedback)
        A = rng.integers(10, size=10_000)
        policy.update_batch(A=A, Y=(rng.random(10_000) < truth[A]) * 1.0)
    assert policy.model.n_updates == 1_000_000
    lw, w = policy.log_weights(), policy.weights()
    assert np.all(np.isfinite(lw)) and np.all(np.isfinite(w))
    assert abs(w.sum() - 1) < 1e-12 and abs(logsumexp(lw)) < 1e-12
    assert w.argmax() == 5 and w[5] > 1 - 1e-12
    for _ in range(100):
        policy.update(a=policy.select(), y=1.0)
    assert abs(policy.weights().sum() - 1) < 1e-12


def test_square_loss_concentrates_on_the_best_expert():
    """No expert is exactly right; the one closest on every action wins."""
    rng = np.random.default_rng(8)
    truth = np.array([0.2, 0.4, 0.5, 0.6, 0.3])
    sign = np.array([1, -1, 1, -1, 1])
    offsets = np.array([0.15, 0.05, -0.2, 0.25, -0.3, 0.1, -0.15])  # best: 0.05
    noise = rng.choice([-1, 1], (10, 5)) * rng.uniform(0.08, 0.3, (10, 5))
    noisy = np.clip(truth + noise, 0, 1)  # every error >= 0.08: none closer than the best
    means = np.vstack([np.clip(truth + offsets[:, None] * sign, 0, 1), noisy])
    err = np.abs(means - truth)
    best = 1
    assert np.all(err[best] < np.delete(err, best, axis=0))  # best on every action
    policy = GeneralizedTS(TableExperts(means), "square", eta=1.0, gamma=0.1, seed=9)
    for _ in range(3000):
        a = policy.select()
        policy.update(a=a, y=float(rng.random() < truth[a]))
    assert policy.weights()[best] > 0.99


# ---------------------------------------------------------------------------- EXP4 and ε-greedy
def test_exp4_probabilities_and_learning():
    means = np.array([[0.9, 0.1, 0.2], [0.1, 0.9, 0.2], [0.1, 0.2, 0.9]])
    truth = np.array([0.2, 0.8, 0.5])
    rng = np.random.default_rng(10)
    policy = EXP4(TableExperts(means), gamma=0.1, eta=0.05, seed=11)
    for _ in range(3000):
        a = policy.select()
        policy.update(a=a, y=float(rng.random() < truth[a]))
    w = policy.weights()
    assert w[1] > 0.9
    p = policy.action_probabilities()
    np.testing.assert_allclose(p, 0.9 * w + 0.1 / 3, atol=1e-14)  # greedy advice = identity


def test_epsilon_greedy_follows_the_cumulative_loss_leader():
    means = table(12, N=6, K=3)
    policy = EpsilonGreedyExperts(TableExperts(means), epsilon=0.2, seed=0)
    rng = np.random.default_rng(12)
    A, Y = rng.integers(3, size=50), rng.random(50)
    policy.update_batch(A=A, Y=Y)
    cum = ((means[:, A].T - Y[:, None]) ** 2).sum(axis=0)
    leader = int(np.argmin(cum))
    expected = np.full(3, 0.2 / 3)
    expected[means[leader].argmax()] += 0.8
    np.testing.assert_allclose(policy.action_probabilities(), expected, atol=1e-14)


# ---------------------------------------------------------------------------- batches
def _logistic_stream(rng, n, K, d, per_action):
    return rng.normal(size=(n, K, d)) if per_action else rng.normal(size=(n, d))


@pytest.mark.parametrize("kind", ["table", "logistic-shared", "logistic-per-action", "callables",
                                  "exp4", "exp4-propensities", "epsilon-greedy"])
def test_update_batch_equals_single_updates(kind):
    rng = np.random.default_rng(13)
    N, K, d, n = 20, 4, 3, 37
    W2, W3 = rng.normal(size=(N, d)), rng.normal(size=(N, K, d))
    means = table(13, N=N, K=K)
    fs = [lambda x, w=w: expit(x @ w) for w in W2]

    def make():
        if kind == "table":
            return GeneralizedTS(TableExperts(means), "log", eta=0.7, seed=0), None
        if kind == "logistic-shared":
            return GeneralizedTS(W2, "square", seed=0, n_actions=K), True
        if kind == "logistic-per-action":
            return GeneralizedTS(W3, "log", seed=0), False
        if kind == "callables":
            return GeneralizedTS(fs, "log", seed=0, n_actions=K), True
        if kind.startswith("exp4"):
            return EXP4(W3, gamma=0.2, eta=0.3, seed=0), False
        return EpsilonGreedyExperts(W3, epsilon=0.1, seed=0), False

    single, per_action = make()
    batch, _ = make()
    X = None if per_action is None else _logistic_stream(rng, n, K, d, per_action)
    A, Y = rng.integers(K, size=n), (rng.random(n) < 0.5) * 1.0
    P = rng.uniform(0.2, 1.0, n) if kind == "exp4-propensities" else None
    for t in range(n):
        x = None if X is None else X[t]
        if kind.startswith("exp4"):
            single.update(x, int(A[t]), Y[t], propensity=None if P is None else P[t])
        else:
            single.update(x, int(A[t]), Y[t])
    for part in np.split(np.arange(n), [5, 6, 30]):
        Xp = None if X is None else X[part]
        if kind.startswith("exp4"):
            batch.update_batch(Xp, A[part], Y[part],
                               propensities=None if P is None else P[part])
        else:
            batch.update_batch(Xp, A[part], Y[part])
    np.testing.assert_allclose(batch.log_weights(), single.log_weights(), rtol=1e-12, atol=1e-12)
    assert batch.model.n_updates == single.model.n_updates == n
    assert batch.rng.bit_generator.state == single.rng.bit_generator.state  # no randomness used


# ---------------------------------------------------------------------------- bad input
def assert_rejected(policy, call, name, exc=ValidationError):
    before = snapshot(policy)
    with pytest.raises(exc) as info:
        call()
    if exc is ValidationError:
        assert re.match(rf"{re.escape(name)}\b", str(info.value)), str(info.value)
    assert_same_state(before, snapshot(policy))


class Poisoned:
    """Vectorised experts that misbehave in contexts whose first entry is a chosen code."""

    n_experts = 8

    def __init__(self, K=3):
        self.K = K
        self.W = np.random.default_rng(0).normal(size=(8, K))

    def predict(self, x):
        P = expit(self.W * x[0])
        code = x[1]
        if code == 1:
            return P[:, :-1]  # wrong shape
        if code == 2:
            P[3, 1] = np.nan
        if code == 3:
            return P + 1.0  # outside [0, 1]
        if code == 4:
            return np.array([["a"] * self.K] * 8)
        if code == 5:
            raise RuntimeError("expert crashed")
        return P


def _warm(policy, rng, x=None, n=20):
    for _ in range(n):
        a = policy.select(x)
        policy.update(x, a, float(rng.random() < 0.5))
    return policy


@pytest.mark.parametrize("cls", [GeneralizedTS, EXP4, EpsilonGreedyExperts])
def test_bad_expert_outputs_are_rejected_with_state_unchanged(cls):
    rng = np.random.default_rng(14)
    kwargs = {"gamma": 0.3} if cls is not GeneralizedTS else {"gamma": 0.0}
    if cls is EpsilonGreedyExperts:
        kwargs = {"epsilon": 0.0}
    policy = _warm(cls(Poisoned(), seed=3, n_actions=3, **kwargs), rng, np.array([0.7, 0.0]))
    for code in (1, 2, 3, 4):
        x = np.array([0.7, float(code)])
        assert_rejected(policy, lambda x=x: policy.select(x), "experts")
        assert_rejected(policy, lambda x=x: policy.update(x, 0, 1.0), "experts")
        assert_rejected(policy, lambda x=x: policy.action_probabilities(x), "experts")
        assert_rejected(policy, lambda x=x: policy.select_batch(np.stack([[0.1, 0.0], x])),
                        "experts")
    x = np.array([0.7, 5.0])
    assert_rejected(policy, lambda: policy.select(x), "", RuntimeError)  # rng restored
    assert_rejected(policy, lambda: policy.update(x, 1, 0.0), "", RuntimeError)


def test_bad_callable_experts_and_losses():
    rng = np.random.default_rng(15)
    fs = [lambda x: np.array([0.2, 0.5, 0.9]),
          lambda x: np.array([0.3, 0.1, x[0] if x[0] < 10 else np.nan])]
    policy = _warm(GeneralizedTS(fs, "log", seed=0, n_actions=3), rng, np.array([0.5]))
    for bad in (np.array([1.5]), np.array([20.0]), np.array([-0.1])):
        assert_rejected(policy, lambda b=bad: policy.update(b, 0, 1.0), "experts")
        assert_rejected(policy, lambda b=bad: policy.action_probabilities(b), "experts")
    short = [lambda x: np.array([0.2, 0.5])] * 2
    p2 = GeneralizedTS(short, "log", seed=0, n_actions=3)
    assert_rejected(p2, lambda: p2.select(np.zeros(1)), "experts")
    assert_rejected(p2, lambda: p2.update(np.zeros(1), 0, 1.0), "experts")
    # a callable loss of the wrong shape or with NaN
    p3 = GeneralizedTS(fs, lambda F, y: (F - y)[:, :1], seed=0, n_actions=3)
    assert_rejected(p3, lambda: p3.update(np.array([0.5]), 0, 1.0), "loss")
    p4 = GeneralizedTS(fs, lambda F, y: np.where(y > 0.5, np.nan, F), seed=0, n_actions=3)
    assert_rejected(p4, lambda: p4.update(np.array([0.5]), 0, 1.0), "loss")


def test_bad_rewards_contexts_and_actions_are_rejected():
    rng = np.random.default_rng(16)
    K, d = 4, 3
    W = rng.normal(size=(50, d))
    policy = GeneralizedTS(W, "log", gamma=0.1, seed=0, n_actions=K)
    x = rng.normal(size=(K, d))
    _warm(policy, rng, x)
    for y in (1.5, -0.1, np.nan, np.inf, None, "one", [1.0]):
        assert_rejected(policy, lambda y=y: policy.update(x, 0, y), "y")
    assert_rejected(policy, lambda: policy.update_batch(x[None], [0], [2.0]), "Y")
    assert_rejected(policy, lambda: policy.update_batch(x[None], [0, 1], [1.0, 0.0]), "X")
    for bad in (np.zeros(d), np.zeros((K + 1, d)), np.full((K, d), np.nan), "x", None):
        assert_rejected(policy, lambda b=bad: policy.select(b), "x")
        assert_rejected(policy, lambda b=bad: policy.update(b, 0, 1.0), "x")
        assert_rejected(policy, lambda b=bad: policy.action_probabilities(b), "x")
    for a in (-1, K, 1.0, None):
        assert_rejected(policy, lambda a=a: policy.update(x, a, 1.0), "a")
    assert_rejected(policy, lambda: policy.select_batch(np.zeros((2, K, d + 1))), "X")
    assert_rejected(policy, lambda: policy.retire_action(K), "i")
    exp4 = _warm(EXP4(TableExperts(table(0, N=5, K=K)), gamma=0.2, seed=0), rng)
    for p in (0.0, 1.5, np.nan):
        assert_rejected(exp4, lambda p=p: exp4.update(None, 0, 1.0, propensity=p), "propensity")
    assert_rejected(exp4, lambda: exp4.update(None, 0, 2.0), "y")
    assert_rejected(exp4, lambda: exp4.update_batch(None, [0, 1], [1, 0], [0.5]), "propensities")
    sq = _warm(GeneralizedTS(TableExperts(table(0, N=5, K=K)), "square", seed=0), rng)
    sq.update(a=0, y=3.5)  # the square loss takes any finite reward


@pytest.mark.parametrize(
    "call,name",
    [
        (lambda: GeneralizedTS(TableExperts(table()), gamma=1.5), "gamma"),
        (lambda: GeneralizedTS(TableExperts(table()), eta=0), "eta"),
        (lambda: GeneralizedTS(TableExperts(table()), loss="hinge"), "loss"),
        (lambda: GeneralizedTS(TableExperts(table()), prior=-np.ones(30)), "prior"),
        (lambda: GeneralizedTS(TableExperts(table()), prior=np.ones(3)), "prior"),
        (lambda: EXP4([lambda x: x, lambda x: x]), "n_actions"),
        (lambda: GeneralizedTS(np.ones((5, 3, 2)), n_actions=4), "n_actions"),
        (lambda: GeneralizedTS([]), "experts"),
        (lambda: GeneralizedTS(["a", print], n_actions=2), "experts[0]"),
        (lambda: GeneralizedTS(object()), "experts"),
        (lambda: GeneralizedTS(TableExperts([[0.5, 1.2]])), "experts"),
        (lambda: EXP4(TableExperts(table()), gamma=0.0), "gamma"),
        (lambda: EpsilonGreedyExperts(TableExperts(table()), epsilon=-0.1), "epsilon"),
    ],
)
def test_bad_constructor_arguments(call, name):
    with pytest.raises(ValidationError) as info:
        call()
    assert re.match(rf"{re.escape(name)}(\b|\[)", str(info.value)) or str(info.value).startswith(
        name), str(info.value)


# ---------------------------------------------------------------------------- catalogue
def test_add_and_retire_actions():
    rng = np.random.default_rng(17)
    means = table(17, N=10, K=3)
    policy = GeneralizedTS(TableExperts(means), "log", gamma=0.1, seed=0)
    with pytest.raises(ValidationError, match="column"):
        policy.add_action()
    new = policy.add_action(np.full(10, 0.99))  # every expert predicts the new action is best
    assert new == 3 and policy.n_actions == 4
    p = policy.action_probabilities()
    assert p[3] == pytest.approx(0.9 + 0.1 / 4)
    policy.retire_action(3)
    assert policy.action_probabilities()[3] == 0
    assert 3 not in policy.select_batch(n=2000)
    W = rng.normal(size=(10, 3, 2))
    lp = GeneralizedTS(W, "square", seed=0)
    assert lp.add_action(rng.normal(size=(10, 2)), np.zeros(10)) == 3
    assert lp.action_probabilities(np.ones(2)).shape == (4,)
    shared = GeneralizedTS(rng.normal(size=(10, 2)), "square", seed=0, n_actions=3)
    assert shared.add_action() == 3
    assert shared.select(rng.normal(size=(4, 2))) in range(4)


# ---------------------------------------------------------------------------- persistence
def _continue(policy, rng_seed, n, context):
    rng = np.random.default_rng(rng_seed)
    out = []
    for _ in range(n):
        x = context(rng)
        a = policy.select(x)
        policy.update(x, a, float(rng.random() < 0.5))
        out.append(a)
    return np.array(out)


@pytest.mark.parametrize("kind", ["gts-logistic", "gts-table", "gts-per-action", "exp4",
                                  "epsilon-greedy"])
def test_save_load_continues_exactly(kind, tmp_path, monkeypatch):
    rng = np.random.default_rng(18)
    K, d = 4, 3
    if kind == "gts-logistic":
        policy = GeneralizedTS(rng.normal(size=(200, d)), "log", gamma=0.1, eta=0.5,
                               prior=rng.dirichlet(np.ones(200)), seed=1, n_actions=K)
        context = lambda r: r.normal(size=(K, d))  # noqa: E731
    elif kind == "gts-table":
        policy = GeneralizedTS(TableExperts(table(18, N=30, K=K)), "square", gamma=0.2, seed=1)
        context = lambda r: None  # noqa: E731
    elif kind == "gts-per-action":
        policy = GeneralizedTS(rng.normal(size=(50, K, d)), "log", seed=1)
        policy.add_action(rng.normal(size=(50, d)))
        context = lambda r: r.normal(size=d)  # noqa: E731
    elif kind == "exp4":
        policy = EXP4(rng.normal(size=(50, K, d)), gamma=0.2, seed=1)
        context = lambda r: r.normal(size=d)  # noqa: E731
    else:
        policy = EpsilonGreedyExperts(rng.normal(size=(50, K, d)), epsilon=0.3, seed=1)
        context = lambda r: r.normal(size=d)  # noqa: E731
    _continue(policy, 0, 30, context)
    policy.retire_action(0)
    policy.save(tmp_path / "p.npz")
    loaded = mixedts.load(tmp_path / "p.npz")
    assert type(loaded) is type(policy)
    assert_same_state(snapshot(policy), snapshot(loaded))
    a1, a2 = _continue(policy, 1, 300, context), _continue(loaded, 1, 300, context)
    np.testing.assert_array_equal(a1, a2)
    assert 0 not in a1 and len(np.unique(a1)) > 1
    np.testing.assert_array_equal(policy.log_weights(), loaded.log_weights())


def test_callable_experts_and_loss_are_reattached_after_loading(tmp_path, monkeypatch):
    W = np.random.default_rng(19).normal(size=(12, 2))
    fs = [lambda x, w=w: expit(x @ w) for w in W]

    def loss(F, y):
        return np.abs(F - y)

    policy = GeneralizedTS(fs, loss, gamma=0.1, seed=2, n_actions=3)
    context = lambda r: r.normal(size=(3, 2))  # noqa: E731
    _continue(policy, 0, 20, context)
    policy.save(tmp_path / "p.npz")
    loaded = mixedts.load(tmp_path / "p.npz")
    assert_same_state(snapshot(policy), snapshot(loaded))
    x = np.zeros((3, 2))
    with pytest.raises(ValidationError, match="attach"):
        loaded.select(x)
    loaded.attach(experts=fs)
    with pytest.raises(ValidationError, match="attach"):
        loaded.update(x, 0, 1.0)
    loaded.attach(loss=loss)
    with pytest.raises(ValidationError, match="experts"):
        loaded.attach(experts=fs[:3])
    np.testing.assert_array_equal(_continue(policy, 1, 100, context),
                                  _continue(loaded, 1, 100, context))
