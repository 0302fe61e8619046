"""K-armed policies: posterior counts, delayed/batched feedback, the lazy Beta sampler,
UCB indices, catalogue changes, bad input and persistence."""

from __future__ import annotations

import copy
import re

import numpy as np
import pytest
from scipy import integrate, special, stats

import mixedts
from builders import assert_same_state, snapshot
from mixedts import KLUCB, UCB1, BernoulliTS, GaussianTS, ValidationError
from mixedts.models.base import Draw, summarise
from mixedts.models.beta import BetaBernoulliModel, _tail_positions, lazy_beta_argmax
from mixedts.rules import KArmedThompson

K = 6


def build(name, seed=0, **kw):
    if name == "BernoulliTS":
        return BernoulliTS(K, alpha=np.linspace(0.5, 2, K), beta=1.5, seed=seed, **kw)
    if name == "BernoulliTS-reshaped":
        return BernoulliTS(K, seed=seed, variance_scale=0.3, optimistic=True, **kw)
    if name == "BernoulliTS-binarize":
        return BernoulliTS(K, seed=seed, binarize=True, **kw)
    if name == "GaussianTS":
        return GaussianTS(K, prior_mean=np.arange(K) / K, prior_std=2.0, noise_std=0.5,
                          seed=seed, **kw)
    if name == "UCB1":
        return UCB1(K, seed=seed, **kw)
    if name == "KLUCB":
        return KLUCB(K, c=3.0, seed=seed, **kw)
    raise ValueError(name)


NAMES = ["BernoulliTS", "BernoulliTS-reshaped", "BernoulliTS-binarize", "GaussianTS", "UCB1",
         "KLUCB"]


def rewards(name, rng, n):
    if name == "GaussianTS":
        return rng.normal(0.3, 1.0, n)
    return rng.uniform(0, 1, n) if name.endswith("binarize") else (rng.random(n) < 0.4) * 1.0


def warmed(name, seed=0, n=40):
    policy = build(name, seed)
    rng = np.random.default_rng(seed + 1)
    for _ in range(n):
        a = policy.select()
        policy.update(a, float(rewards(name, rng, 1)[0]))
    return policy


# ---------------------------------------------------------------------------- posterior
def test_bernoulli_posterior_counts_equal_the_data():
    rng = np.random.default_rng(0)
    alpha, beta = rng.uniform(0.5, 3, K), rng.uniform(0.5, 3, K)
    single = BernoulliTS(K, alpha, beta, seed=1)
    batch = BernoulliTS(K, alpha, beta, seed=1)
    A = rng.integers(K, size=500)
    Y = (rng.random(500) < 0.3).astype(float)
    for a, y in zip(A, Y):
        single.update(int(a), y)
    batch.update_batch(A, Y)
    succ = np.bincount(A, weights=Y, minlength=K)
    fail = np.bincount(A, weights=1 - Y, minlength=K)
    for policy in (single, batch):
        a_post, b_post = policy.posterior_params()
        np.testing.assert_array_equal(a_post, alpha + succ)
        np.testing.assert_array_equal(b_post, beta + fail)
        np.testing.assert_array_equal(policy.counts(), np.bincount(A, minlength=K))
        np.testing.assert_allclose(policy.posterior_mean(), (alpha + succ) / (alpha + beta
                                   + np.bincount(A, minlength=K)), rtol=1e-14)


def test_gaussian_posterior_matches_conjugate_formula():
    rng = np.random.default_rng(1)
    m0, s0, sigma = rng.normal(size=K), rng.uniform(0.5, 2, K), 0.7
    policy = GaussianTS(K, m0, s0, sigma, seed=0)
    A, Y = rng.integers(K, size=300), rng.normal(size=300)
    policy.update_batch(A, Y)
    n = np.bincount(A, minlength=K)
    s = np.bincount(A, weights=Y, minlength=K)
    prec = 1 / s0**2 + n / sigma**2
    np.testing.assert_allclose(policy.posterior_cov(), 1 / prec, rtol=1e-13)
    np.testing.assert_allclose(policy.posterior_mean(), (m0 / s0**2 + s / sigma**2) / prec,
                               rtol=1e-12)


# ---------------------------------------------------------------------------- batches
@pytest.mark.parametrize("name", NAMES)
def test_update_batch_equals_single_updates_bitwise(name):
    """Delayed feedback: n rewards delivered in uneven batches == n single updates (bitwise),
    and updates never consume randomness (except the documented Bernoulli conversion)."""
    rng = np.random.default_rng(3)
    batched, single = build(name, seed=4), build(name, seed=4)
    A = rng.integers(K, size=97)
    Y = rewards(name, rng, 97)
    for chunk in np.split(np.arange(97), [1, 3, 40, 41]):
        batched.update_batch(A[chunk], Y[chunk])
    for a, y in zip(A, Y):
        single.update(int(a), float(y))
    assert_same_state(snapshot(batched), snapshot(single))
    assert batched.model.n_updates == 97


@pytest.mark.parametrize("name", NAMES)
def test_select_batch_then_late_feedback(name):
    policy = build(name, seed=5)
    before = copy.deepcopy(policy.model.get_state())
    arms = policy.select_batch(200)
    assert arms.shape == (200,) and arms.dtype == np.int64
    assert arms.min() >= 0 and arms.max() < K
    np.testing.assert_equal(policy.model.get_state(), before)  # selecting never updates
    rng = np.random.default_rng(0)
    Y = rewards(name, rng, 200)
    policy.update_batch(arms[::-1], Y[::-1])  # rewards come back in any order
    assert policy.counts().sum() == 200
    assert len(policy.select_batch(0)) == 0


def test_select_batch_matches_single_selects_in_distribution():
    """select_batch(n) (the lazy sampler) and n select() calls: same arm distribution."""
    policy = BernoulliTS(5, alpha=[3, 30, 1, 12, 60], beta=[2, 25, 1, 10, 55], seed=0)
    batch = np.concatenate([policy.select_batch(5000) for _ in range(8)])
    singles = np.array([policy.select() for _ in range(8000)])
    table = np.stack([np.bincount(batch, minlength=5), np.bincount(singles, minlength=5)])
    assert stats.chi2_contingency(table).pvalue > 1e-3
    # negative control: the same check tells apart a posterior with one arm's data changed
    other = BernoulliTS(5, alpha=[3, 30, 1, 12, 60], beta=[2, 25, 1, 13, 55], seed=1)
    wrong = np.concatenate([other.select_batch(5000) for _ in range(8)])
    table = np.stack([np.bincount(wrong, minlength=5), np.bincount(singles, minlength=5)])
    assert stats.chi2_contingency(table).pvalue < 1e-6


# ---------------------------------------------------------------------------- lazy sampler
def _argmax_probabilities(a, b):
    """P(arm i has the largest of independent Beta(a_i, b_i) draws), by quadrature."""
    out = []
    for i in range(len(a)):
        others = np.array([j for j in range(len(a)) if j != i])
        log_norm = special.betaln(a[i], b[i])

        def f(t, i=i, others=others, log_norm=log_norm):
            dens = np.exp((a[i] - 1) * np.log(t) + (b[i] - 1) * np.log1p(-t) - log_norm)
            return dens * np.prod(special.betainc(a[others], b[others], t))

        lo, hi = special.betaincinv(a[i], b[i], [1e-13, 1 - 1e-13])
        pts = np.unique(np.clip(a / (a + b), lo, hi))
        out.append(integrate.quad(f, lo, hi, points=pts, limit=400, epsabs=1e-13)[0])
    return np.array(out)


CASES = {
    "flat": (np.ones(6), np.ones(6)),
    "mixed": (np.array([50.0, 52, 3, 400, 10, 2]), np.array([50.0, 48, 2, 410, 12, 30])),
    "narrow-leaders": (np.array([0.3, 2, 5000, 4990, 1, 700]),
                       np.array([0.5, 2, 5000, 5010, 9, 900])),
}


@pytest.mark.parametrize("eps", [1e-3, 0.2])  # 0.2: the upper-tail branch carries real weight
@pytest.mark.parametrize("case", list(CASES))
def test_lazy_sampler_is_exact(case, eps):
    """Chi-square of 120 000 lazy draws against the argmax probabilities by quadrature."""
    a, b = CASES[case]
    p = _argmax_probabilities(a, b)
    assert abs(p.sum() - 1) < 1e-6
    rng = np.random.default_rng(11)
    draws = np.concatenate([lazy_beta_argmax(a, b, 3000, rng, eps) for _ in range(40)])
    counts = np.bincount(draws, minlength=len(a))
    keep = p * len(draws) > 5
    assert counts[~keep].sum() <= 3
    expected = p[keep] / p[keep].sum() * counts[keep].sum()
    assert stats.chisquare(counts[keep], expected).pvalue > 1e-3
    # negative control: the law of a reshaped posterior (Beta(a/2, b/2)) is rejected
    if case != "flat":  # flat arms: every reshaping keeps the uniform argmax law
        q = _argmax_probabilities(a / 2, b / 2)[keep]
        assert stats.chisquare(counts[keep], q / q.sum() * counts[keep].sum()).pvalue < 1e-6


def test_lazy_sampler_with_retired_arms_and_reshaping():
    model = BetaBernoulliModel(np.array([40.0, 41, 5, 400, 9, 30, 2]),
                               np.array([40.0, 39, 4, 405, 10, 28, 2]), variance_scale=2.5)
    active = np.array([True, True, False, True, True, False, True])
    rng = np.random.default_rng(2)
    draws = model.sample_argmax(60000, active, rng)  # several internal chunks
    assert set(np.unique(draws)) <= set(np.flatnonzero(active))
    a, b = model.posterior_params()
    idx = np.flatnonzero(active)
    p = _argmax_probabilities(a[idx] / 2.5, b[idx] / 2.5)
    counts = np.bincount(draws, minlength=7)[idx]
    assert stats.chisquare(counts, p / p.sum() * counts.sum()).pvalue > 1e-3
    q = _argmax_probabilities(a[idx], b[idx])  # control: the reshaping forgotten
    assert stats.chisquare(counts, q / q.sum() * counts.sum()).pvalue < 1e-6


def test_tail_positions_are_bernoulli():
    rng = np.random.default_rng(0)
    total, eps = 200_000, 0.01
    pos = _tail_positions(rng, total, eps)
    assert np.all(np.diff(pos) > 0) and pos[0] >= 0 and pos[-1] < total
    # count ~ Binomial(total, eps): within 5 standard deviations
    assert abs(len(pos) - total * eps) < 5 * np.sqrt(total * eps)
    # uniformly spread: per-decile counts
    assert stats.chisquare(np.bincount(pos * 10 // total, minlength=10)).pvalue > 1e-3
    # controls: a count off by 20 % and positions crowded into the first half are rejected
    assert abs(1.2 * len(pos) - total * eps) > 5 * np.sqrt(total * eps)
    crowded = np.sort(np.concatenate([pos, pos[pos < total // 2][: len(pos) // 10]]))
    assert stats.chisquare(np.bincount(crowded * 10 // total, minlength=10)).pvalue < 1e-6


# ---------------------------------------------------------------------------- rules
def test_variance_scale_and_optimism():
    policy = BernoulliTS(3, alpha=[200, 50, 20], beta=[200, 50, 20], seed=0, variance_scale=4.0)
    draws = policy.model.sample_scores_batch(40000, policy.rng)
    a, b = policy.posterior_params()
    np.testing.assert_allclose(draws.var(axis=0), stats.beta.var(a / 4, b / 4), rtol=0.05)
    ratio = stats.beta.var(a / 4, b / 4) / stats.beta.var(a, b)
    assert np.all((ratio > 3.7) & (ratio < 4))  # Beta(a/4, b/4): about 4x the variance
    np.testing.assert_allclose(draws.mean(axis=0), 0.5, atol=0.01)
    # optimism scores max(draw, mean): the draw of arm 1 wins plainly, arm 0's mean wins with it
    draws, mean = np.array([[0.1, 0.9, 0.2]]), np.array([0.95, 0.5, 0.3])
    active = np.ones(3, dtype=bool)
    optimistic = KArmedThompson(optimistic=True)
    assert optimistic.draw is Draw.SAMPLES_MEAN
    assert optimistic.choose((draws, mean), 1, active, policy.rng).tolist() == [0]
    assert KArmedThompson().choose(draws, 1, active, policy.rng).tolist() == [1]
    summary = summarise(policy.model, Draw.SAMPLES_MEAN, None, policy.rng, 1000)
    assert summary[0].shape == (1000, 3) and summary[1].shape == (3,)


def test_ucb1_index_and_initial_sweep():
    policy = UCB1(4, seed=0)
    seen = []
    for _ in range(4):  # unplayed arms first (infinite index)
        a = policy.select()
        seen.append(a)
        policy.update(a, 0.5)
    assert sorted(seen) == [0, 1, 2, 3]
    policy.update_batch([0, 0, 1], [1.0, 1.0, 0.0])
    n = np.array([3.0, 2, 1, 1])
    mean = np.array([2.5 / 3, 0.25, 0.5, 0.5])
    index = mean + np.sqrt(2 * np.log(7) / n)
    summary = summarise(policy.model, Draw.INDEX, None, policy.rng)
    np.testing.assert_allclose(policy.rule.index(summary), index, rtol=1e-14)
    assert policy.select() == int(np.argmax(index))


def test_klucb_index_solves_its_equation():
    policy = KLUCB(3, c=0.0, seed=0)
    policy.update_batch([0, 0, 0, 1, 2, 2], [1, 0, 1, 0, 1, 1])
    q = policy.rule.index(summarise(policy.model, Draw.INDEX, None, policy.rng))
    mean = np.array([2 / 3, 0.0, 1.0])
    n = np.array([3.0, 1, 2])
    budget = np.log(6)

    def kl(p, x):
        p, x = np.clip(p, 1e-15, 1 - 1e-15), np.clip(x, 1e-15, 1 - 1e-15)
        return p * np.log(p / x) + (1 - p) * np.log((1 - p) / (1 - x))

    assert np.all(q >= mean - 1e-12) and np.all(q <= 1)
    np.testing.assert_allclose((n * kl(mean, q))[:2], budget, rtol=1e-9)
    assert q[2] == pytest.approx(1.0)


@pytest.mark.parametrize("name", ["BernoulliTS", "UCB1", "KLUCB"])
def test_policies_find_the_best_arm_with_delayed_batches(name):
    rng = np.random.default_rng(7)
    mu = np.array([0.3, 0.45, 0.5, 0.7, 0.4, 0.35])
    policy = build(name, seed=8)
    plays = []
    for _ in range(60):  # 60 batches of 100 decisions, feedback one batch late
        A = policy.select_batch(100)
        policy.update_batch(A, (rng.random(100) < mu[A]) * 1.0)
        plays.append(A)
    last = np.concatenate(plays[-20:])
    assert np.mean(last == 3) > 0.75


# ---------------------------------------------------------------------------- catalogue
def test_add_and_retire_actions():
    policy = BernoulliTS(3, alpha=2.0, beta=5.0, seed=0)
    policy.update_batch([0, 1, 1], [1, 0, 1])
    new = policy.add_action()
    assert new == 3 and policy.n_actions == 4
    a, b = policy.posterior_params()
    assert (a[3], b[3]) == (2.0, 5.0)  # a new arm starts at the prior
    assert policy.add_action(alpha=7.0, beta=1.0) == 4
    assert policy.posterior_params()[0][4] == 7.0
    policy.retire_action(0)
    policy.retire_action(4)
    assert not np.isin([0, 4], policy.select_batch(3000)).any()  # lazy path
    assert not np.isin([0, 4], [policy.select() for _ in range(300)]).any()
    policy.update(0, 1.0)  # a late reward of a retired arm still counts
    assert policy.counts()[0] == 2
    for i in (1, 2, 3):
        policy.retire_action(i)
    with pytest.raises(ValidationError, match="retired"):
        policy.select()
    g = GaussianTS(2, seed=0)
    assert g.add_action(prior_mean=1.5, prior_std=0.1) == 2
    assert g.posterior_mean()[2] == 1.5 and g.posterior_cov()[2] == pytest.approx(0.01)


# ---------------------------------------------------------------------------- bad input
def assert_rejected(policy, call, name):
    before = snapshot(policy)
    with pytest.raises(ValidationError) as info:
        call()
    assert re.match(rf"{re.escape(name)}\b", str(info.value)), str(info.value)
    assert_same_state(before, snapshot(policy))


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_is_rejected_and_leaves_state_unchanged(name):
    policy = warmed(name)
    for a in [-1, K, 1.0, None, "a", [0], np.array([1]), True]:
        assert_rejected(policy, lambda a=a: policy.update(a, 0.5), "a")
    for y in [np.nan, np.inf, None, "x", [0.5], 1 + 2j]:
        assert_rejected(policy, lambda y=y: policy.update(0, y), "y")
    assert_rejected(policy, lambda: policy.update_batch([0, 1], [0.5]), "A")
    assert_rejected(policy, lambda: policy.update_batch([0, K], [0.5, 0.5]), "A")
    assert_rejected(policy, lambda: policy.update_batch([[0, 1]], [[0.5, 0.5]]), "A")
    assert_rejected(policy, lambda: policy.update_batch([0, 1], [0.5, np.nan]), "Y")
    for n in [-1, 2.0, None, "3"]:
        assert_rejected(policy, lambda n=n: policy.select_batch(n), "n")
    assert_rejected(policy, lambda: policy.retire_action(K), "i")
    if name != "GaussianTS":
        for y in [-0.1, 1.5]:
            assert_rejected(policy, lambda y=y: policy.update(0, y), "y")
        assert_rejected(policy, lambda: policy.update_batch([0, 1], [0.5, 2.0]), "Y")
    if name.startswith("BernoulliTS"):
        assert_rejected(policy, lambda: policy.add_action(alpha=-1.0), "alpha")
        assert_rejected(policy, lambda: policy.add_action(beta=np.nan), "beta")


@pytest.mark.parametrize(
    "call,name",
    [
        (lambda: BernoulliTS(0), "n_actions"),
        (lambda: BernoulliTS(3, alpha=-1), "alpha"),
        (lambda: BernoulliTS(3, beta=[1, 2]), "beta"),
        (lambda: BernoulliTS(3, variance_scale=0), "variance_scale"),
        (lambda: GaussianTS(3, prior_std=[1, 0, 1]), "prior_std"),
        (lambda: GaussianTS(3, noise_std=-1), "noise_std"),
        (lambda: UCB1(3, exploration=-1), "exploration"),
        (lambda: KLUCB(3, c=-1), "c"),
        (lambda: BernoulliTS(3, seed=-2), "seed"),
    ],
)
def test_bad_constructor_arguments(call, name):
    with pytest.raises(ValidationError) as info:
        call()
    assert re.match(rf"{re.escape(name)}\b", str(info.value)), str(info.value)


# ---------------------------------------------------------------------------- persistence
@pytest.mark.parametrize("name", NAMES)
def test_save_load_continues_exactly(name, tmp_path, monkeypatch):
    policy = warmed(name, seed=2)
    policy.add_action()
    policy.retire_action(1)
    path = tmp_path / "p.npz"
    policy.save(path)
    loaded = mixedts.load(path)
    assert type(loaded) is type(policy)
    assert_same_state(snapshot(policy), snapshot(loaded))
    rng = np.random.default_rng(0)
    Y = rewards(name, rng, 600)
    out = []
    for p in (policy, loaded):
        arms = [p.select() for _ in range(50)]
        for a, y in zip(arms, Y[:50]):
            p.update(a, float(y))
        batch = p.select_batch(500)
        p.update_batch(batch, Y[50:550])
        out.append(np.concatenate([arms, batch]))
    np.testing.assert_array_equal(out[0], out[1])
    assert 1 not in out[0] and len(np.unique(out[0])) > 1
    assert_same_state(snapshot(policy), snapshot(loaded))
