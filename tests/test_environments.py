"""Environments: shapes, the truth they know, and their reward distributions (fixed seeds)."""

import itertools
import pickle

import numpy as np
import pytest
import scipy.sparse as sp
from scipy import stats
from scipy.special import expit

from mixedts import ValidationError
from mixedts.environments import (
    ClassificationEnvironment,
    DelayedFeedback,
    MixedEffectEnvironment,
    Rounds,
    SlateEnvironment,
    draw_mixing,
)


# ---------------------------------------------------------------------- mixed effect
def test_defaults_are_the_papers_setting():
    env = MixedEffectEnvironment(seed=0)
    assert (env.n_actions, env.n_effects, env.dim) == (100, 3, 2)
    assert env.contexts == "shared" and env.reward == "linear"
    np.testing.assert_allclose(env.prior.effect_cov_blocks(), np.stack([3 * np.eye(2)] * 3))
    np.testing.assert_allclose(env.prior.action_cov, np.eye(2))
    assert env.prior.mixing.shape == (100, 3)
    assert env.theta.shape == (100, 2) and env.effects.shape == (3, 2)
    assert env.pool is None


@pytest.mark.parametrize("contexts", ["shared", "pool"])
def test_sample_shapes_and_truth(contexts):
    env = MixedEffectEnvironment(7, 2, 3, contexts=contexts, pool_size=11, seed=1)
    rounds = env.sample(40, np.random.default_rng(2))
    assert isinstance(rounds, Rounds) and len(rounds) == 40
    shape = (40, 3) if contexts == "shared" else (40, 7, 3)
    assert rounds.contexts.shape == shape
    assert rounds.expected.shape == rounds.rewards.shape == (40, 7)
    for t in range(40):
        np.testing.assert_allclose(env.expected_rewards(rounds.contexts[t]), rounds.expected[t])
    x = env.context(np.random.default_rng(3))
    assert x.shape == shape[1:]
    assert env.best_action(x) == int(np.argmax(env.expected_rewards(x)))
    assert env.shared_context == (contexts == "shared")


def test_pool_contexts_come_from_the_pool_uniformly_and_independently_per_action():
    env = MixedEffectEnvironment(5, 2, 2, contexts="pool", pool_size=10, seed=3)
    X = env.sample(4000, np.random.default_rng(4)).contexts  # (n, K, d)
    # map every context row back to its pool index
    idx = np.argmin(np.abs(X[:, :, None, :] - env.pool[None, None]).sum(-1), axis=-1)
    np.testing.assert_array_equal(env.pool[idx], X)
    counts = np.bincount(idx.ravel(), minlength=10)
    assert stats.chisquare(counts).pvalue > 1e-3
    skewed = counts + np.arange(10) * counts.mean() / 20  # control: a 45 % tilt is detected
    assert stats.chisquare(skewed, skewed.sum() / 10 * np.ones(10)).pvalue < 1e-6
    # two actions' indices are independent (contingency table)
    table = np.zeros((10, 10))
    np.add.at(table, (idx[:, 0], idx[:, 1]), 1)
    assert stats.chi2_contingency(table).pvalue > 1e-3
    tied = np.zeros((10, 10))  # control: action 1 copying action 0 half the time
    copy = np.where(np.arange(len(idx)) % 2 == 0, idx[:, 0], idx[:, 1])
    np.add.at(tied, (idx[:, 0], copy), 1)
    assert stats.chi2_contingency(tied).pvalue < 1e-6
    assert env.context_bound == pytest.approx(np.linalg.norm(env.pool, axis=1).max())


def test_shared_contexts_are_uniform():
    env = MixedEffectEnvironment(3, 2, 2, context_range=(-2.0, 1.0), seed=0)
    X = env.sample(5000, np.random.default_rng(5)).contexts
    for j in range(2):
        assert stats.kstest(X[:, j], stats.uniform(-2, 3).cdf).pvalue > 1e-3
        assert stats.kstest(X[:, j], stats.uniform(-2, 3.3).cdf).pvalue < 1e-6  # control
    assert env.context_bound == pytest.approx(2 * np.sqrt(2))


def test_linear_rewards_are_gaussian_around_the_expected_reward():
    env = MixedEffectEnvironment(20, 3, 2, noise_std=0.7, contexts="pool", seed=6)
    rounds = env.sample(1000, np.random.default_rng(7))
    z = ((rounds.rewards - rounds.expected) / 0.7).ravel()
    assert stats.kstest(z, "norm").pvalue > 1e-3
    assert stats.kstest(z / 1.1, "norm").pvalue < 1e-6  # control: a 10 % wrong σ is detected
    np.testing.assert_allclose(
        rounds.expected, np.einsum("nkd,kd->nk", rounds.contexts, env.theta), rtol=1e-12
    )


def test_logistic_rewards_are_bernoulli_sigmoid():
    env = MixedEffectEnvironment(20, 3, 2, reward="logistic", mixing_range=(-1, 2), seed=8)
    rounds = env.sample(2000, np.random.default_rng(9))
    p = rounds.expected.ravel()
    y = rounds.rewards.ravel()
    assert set(np.unique(y)) <= {0.0, 1.0}
    np.testing.assert_allclose(p, expit(rounds.contexts @ env.theta.T).ravel())
    z = (y - p).sum() / np.sqrt((p * (1 - p)).sum())
    assert abs(z) < 4
    # calibration per decile of p
    bins = np.quantile(p, np.linspace(0, 1, 11))
    which = np.clip(np.searchsorted(bins, p, side="right") - 1, 0, 9)
    for b in range(10):
        sel = which == b
        zb = (y[sel] - p[sel]).sum() / np.sqrt((p[sel] * (1 - p[sel])).sum())
        assert abs(zb) < 4.5


def test_single_round_api_matches_the_definition():
    env = MixedEffectEnvironment(4, 2, 2, noise_std=0.5, seed=10)
    rng = np.random.default_rng(11)
    x = env.context(rng)
    draws = np.array([env.draw_reward(x, 2, rng) for _ in range(4000)])
    assert stats.kstest((draws - env.expected_rewards(x)[2]) / 0.5, "norm").pvalue > 1e-3
    assert stats.kstest((draws - env.expected_rewards(x)[2]) / 0.6, "norm").pvalue < 1e-6
    logistic = MixedEffectEnvironment(4, 2, 2, reward="logistic", contexts="pool", seed=10)
    x = logistic.context(rng)
    draws = np.array([logistic.draw_reward(x, 1, rng) for _ in range(4000)])
    p = logistic.expected_rewards(x)[1]
    assert abs(draws.mean() - p) < 4 * np.sqrt(p * (1 - p) / 4000)


def test_instances_are_drawn_from_the_prior():
    """Over many seeds: ψ ~ N(0, σ_Ψ² I) and θ_i − Σ_l b_il ψ_l ~ N(0, σ0² I)."""
    effects, residuals = [], []
    for s in range(300):
        env = MixedEffectEnvironment(6, 2, 2, effect_std=2.0, action_std=0.5, seed=s)
        effects.append(env.effects.ravel() / 2.0)
        residuals.append(((env.theta - env.prior.mixing @ env.effects) / 0.5).ravel())
    assert stats.kstest(np.concatenate(effects), "norm").pvalue > 1e-3
    assert stats.kstest(np.concatenate(residuals), "norm").pvalue > 1e-3
    # controls: a scale off by a factor 0.6 or 1.6 is detected
    assert stats.kstest(np.concatenate(effects) * 0.6, "norm").pvalue < 1e-6
    assert stats.kstest(np.concatenate(residuals) * 1.6, "norm").pvalue < 1e-6


def test_mixing_kinds():
    rng = np.random.default_rng(0)
    dense = draw_mixing("dense", 500, 4, rng, (-1.0, 2.0))
    assert dense.shape == (500, 4) and dense.min() >= -1 and dense.max() < 2
    assert stats.kstest(dense.ravel(), stats.uniform(-1, 3).cdf).pvalue > 1e-3
    assert stats.kstest(dense.ravel(), stats.uniform(-1.2, 3.2).cdf).pvalue < 1e-6  # control
    sparse = draw_mixing("sparse", 500, 6, rng, nnz=2)
    assert sp.issparse(sparse) and np.all(np.diff(sparse.indptr) == 2)
    assert np.bincount(sparse.indices, minlength=6).min() > 100  # spread over effects
    onehot = draw_mixing("onehot", 500, 3, rng).toarray()
    assert np.all(onehot.sum(1) == 1) and set(np.unique(onehot)) == {0.0, 1.0}
    assert stats.chisquare(onehot.sum(0)).pvalue > 1e-3
    assert stats.chisquare(onehot.sum(0), [250, 125, 125]).pvalue < 1e-6  # control: 2:1:1
    dirichlet = draw_mixing("dirichlet", 2000, 3, rng, alpha=2.0)
    np.testing.assert_allclose(dirichlet.sum(1), 1.0)
    assert dirichlet.min() >= 0
    # Dirichlet(2, 2, 2) marginal is Beta(2, 4)
    assert stats.kstest(dirichlet[:, 0], stats.beta(2, 4).cdf).pvalue > 1e-3
    assert stats.kstest(dirichlet[:, 0], stats.beta(2, 3).cdf).pvalue < 1e-6  # control
    for kind in ("dense", "sparse", "onehot", "dirichlet"):
        env = MixedEffectEnvironment(30, 4, 2, mixing=kind, seed=1)
        assert env.prior.mixing.shape == (30, 4)


def test_explicit_mixing_and_reseed():
    B = np.eye(3)[[0, 1, 2, 0]]
    env = MixedEffectEnvironment(4, 3, 2, mixing=B, seed=0)
    np.testing.assert_array_equal(env.prior.mixing.toarray(), B)
    again = env.reseed(0)
    np.testing.assert_array_equal(again.theta, env.theta)
    other = env.reseed(np.random.SeedSequence(5))
    assert not np.allclose(other.theta, env.theta)
    np.testing.assert_array_equal(other.prior.mixing.toarray(), B)  # the configuration stays
    assert "n_actions=4" in repr(env) and "mixing='array'" in repr(env)


@pytest.mark.parametrize(
    "kwargs, word",
    [
        ({"reward": "poisson"}, "reward"),
        ({"contexts": "stream"}, "contexts"),
        ({"mixing": "banded"}, "mixing"),
        ({"mixing": np.ones((3, 2))}, "mixing"),
        ({"mixing_range": (1, -1)}, "mixing_range"),
        ({"context_range": "wide"}, "context_range"),
        ({"n_actions": 0}, "n_actions"),
        ({"noise_std": -1.0}, "noise_std"),
        ({"pool_size": 0}, "pool_size"),
    ],
)
def test_bad_configuration_names_the_argument(kwargs, word):
    with pytest.raises(ValidationError, match=word):
        MixedEffectEnvironment(**{"n_actions": 4, "n_effects": 2, "dim": 2, **kwargs})


# ---------------------------------------------------------------------- slates
def test_slates_enumerate_tuples_and_mark_items_by_position():
    env = SlateEnvironment(n_items=4, n_positions=3, dim=2, position_weights=[3.0, 2.0, 1.0],
                           seed=0)
    assert env.n_actions == 4**3 == len(env.slates)
    assert [tuple(s) for s in env.slates] == list(itertools.product(range(4), repeat=3))
    B = env.prior.mixing.toarray()
    for slate, row in zip(env.slates, B):
        want = np.zeros(4)
        for m, item in enumerate(slate):
            want[item] += [3.0, 2.0, 1.0][m]
        np.testing.assert_array_equal(row, want)
    distinct = SlateEnvironment(n_items=4, n_positions=2, distinct=True, seed=0)
    assert distinct.n_actions == 12
    assert all(len(set(s)) == 2 for s in distinct.slates)
    assert env.n_effects == 4 and env.theta.shape == (64, 2)


def test_slate_clicks_follow_the_sigmoid():
    env = SlateEnvironment(n_items=3, n_positions=2, dim=2, seed=1)
    rounds = env.sample(3000, np.random.default_rng(2))
    p, y = rounds.expected.ravel(), rounds.rewards.ravel()
    np.testing.assert_allclose(p, expit(rounds.contexts @ env.theta.T).ravel())
    assert abs((y - p).sum() / np.sqrt((p * (1 - p)).sum())) < 4
    # θ_i − Σ_l b_il ψ_l is the slate's own deviation (action_std)
    assert env.action_std == 0.5
    x = env.context(np.random.default_rng(0))
    np.testing.assert_allclose(env.expected_rewards(x), expit(env.theta @ x))
    assert 0.0 <= env.draw_reward(x, 0, np.random.default_rng(0)) <= 1.0


def test_slate_validation():
    with pytest.raises(ValidationError, match="position_weights"):
        SlateEnvironment(n_items=3, n_positions=2, position_weights=[1.0])
    with pytest.raises(ValidationError, match="n_positions"):
        SlateEnvironment(n_items=2, n_positions=3, distinct=True)


# ---------------------------------------------------------------------- classification
def test_classification_rewards_one_for_the_right_class():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    y = np.array(["cat", "dog", "emu"])[rng.integers(3, size=50)]
    env = ClassificationEnvironment(X, y, intercept=True)
    assert env.n_actions == 3 and env.dim == 4 and env.classes.tolist() == ["cat", "dog", "emu"]
    rounds = env.sample(3000, np.random.default_rng(1))
    assert rounds.contexts.shape == (3000, 4)
    np.testing.assert_array_equal(rounds.contexts[:, -1], 1.0)
    # each drawn context is a row; its reward is 1 exactly for that row's class
    rows = np.array([np.flatnonzero((X == c[:3]).all(1))[0] for c in rounds.contexts])
    want = (env.classes[None, :] == y[rows][:, None]).astype(float)
    np.testing.assert_array_equal(rounds.rewards, want)
    np.testing.assert_array_equal(rounds.expected, want)
    assert stats.chisquare(np.bincount(rows, minlength=50)).pvalue > 1e-3
    for i in range(5):  # rows are distinct: the truth of row i is its one-hot class
        np.testing.assert_array_equal(env.expected_rewards(env.features[i]),
                                      (env.classes == y[i]).astype(float))


def test_classification_duplicate_rows_give_class_frequencies():
    X = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    env = ClassificationEnvironment(X, [0, 1, 1, 0])
    np.testing.assert_allclose(env.expected_rewards(np.array([1.0, 0.0])), [1 / 3, 2 / 3])
    rounds = env.sample(6000, np.random.default_rng(2))
    dup = rounds.contexts[:, 0] == 1.0
    assert abs(rounds.rewards[dup, 1].mean() - 2 / 3) < 0.03
    np.testing.assert_allclose(rounds.expected[dup], np.tile([1 / 3, 2 / 3], (dup.sum(), 1)))
    with pytest.raises(ValidationError, match="not a row"):
        env.expected_rewards(np.array([5.0, 5.0]))


def test_classification_validation():
    with pytest.raises(ValidationError, match="y must have shape"):
        ClassificationEnvironment(np.ones((3, 2)), [0, 1])
    with pytest.raises(ValidationError, match="two classes"):
        ClassificationEnvironment(np.ones((3, 2)), [0, 0, 0])


# ---------------------------------------------------------------------- delayed
def test_delayed_feedback_delegates_and_survives_pickling():
    inner = MixedEffectEnvironment(6, 2, 2, contexts="pool", seed=0)
    env = DelayedFeedback(inner, delay=7)
    assert env.feedback_delay == 7 and inner.feedback_delay == 1
    assert env.n_actions == 6 and env.dim == 2 and env.prior is inner.prior
    assert env.noise_std == inner.noise_std and not env.shared_context
    a = env.sample(5, np.random.default_rng(1))
    b = inner.sample(5, np.random.default_rng(1))
    np.testing.assert_array_equal(a.rewards, b.rewards)
    copy = pickle.loads(pickle.dumps(env))
    np.testing.assert_array_equal(copy.theta, inner.theta)
    other = env.reseed(3)
    assert isinstance(other, DelayedFeedback) and other.delay == 7
    assert not np.allclose(other.theta, inner.theta)
    with pytest.raises(ValidationError, match="delay"):
        DelayedFeedback(inner, delay=0)
    with pytest.raises(ValidationError, match="environment"):
        DelayedFeedback("not an environment", delay=2)
    assert "delay=7" in repr(env)
