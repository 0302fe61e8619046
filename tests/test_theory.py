"""The regret bounds of mixedts.theory: values against hand computations, the structure the
papers state (rates, tuning, Jensen), and argument checking."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mixedts import ValidationError
from mixedts.theory import (
    SQUARE_LOSS_CONSTANTS,
    gts_bayes_regret_bound,
    gts_regret_bound,
    gts_tuned_regret_bound,
    log_loss_constants,
    mets_bayes_regret_bound,
    mets_regret_terms,
)


# ---------------------------------------------------------------------------- meTS
def test_mets_bound_matches_a_hand_computation():
    # n=1000, K=10, L=2, d=3, σ=0.5, σ0=1, σΨ=2, κx=1.5, κb=2, δ=0.01
    n, K, L, d, s, s0, sp, kx, kb, delta = 1000, 10, 2, 3, 0.5, 1.0, 2.0, 1.5, 2.0, 0.01
    c = math.sqrt(2 / math.pi * 1.5 * (1 + 2 * 4)) * 10
    c_a = (1.5 / 0.25) / math.log(1 + 6)
    r_a = 3 * 10 * c_a * math.log(1 + 1000 * 1.5 / (3 * 0.25))
    c_e = 1.5 * 2 * 4 * (1 + 6) / math.log(1 + 1.5 * 2 * 4 / 0.25)
    r_e = 3 * 2 * c_e * math.log(1 + 10 * 2 * 4 / (1 + 0.25 / 1500))
    expected = math.sqrt(2 * 1000 * (r_a + r_e) * math.log(100)) + c * 1000 * 0.01
    terms = mets_regret_terms(n, K, L, d, s, s0, sp, kx, kb)
    for key, value in {"c": c, "c_A": c_a, "R_A": r_a, "c_E": c_e, "R_E": r_e}.items():
        assert terms[key] == pytest.approx(value, rel=1e-13)
    assert mets_bayes_regret_bound(n, K, L, d, s, s0, sp, kx, kb, delta) == pytest.approx(
        expected, rel=1e-13)


def test_mets_bound_is_root_n_up_to_logs_with_delta_one_over_n():
    b = [mets_bayes_regret_bound(n, 100, 3, 2, effect_std=3**0.5) for n in (10**4, 10**6)]
    ratio = b[1] / b[0]  # 100x the rounds: sqrt(100) = 10 times polylog factors
    assert 10 < ratio < 10 * math.log(1e6) / math.log(1e4) * 1.2
    default = mets_bayes_regret_bound(5000, 20, 3, 2)
    assert default == pytest.approx(mets_bayes_regret_bound(5000, 20, 3, 2, delta=1 / 5000))


def test_mets_bound_rewards_structure():
    """More effects (L) cost more; a tighter effect prior (σΨ) costs less."""
    base = mets_bayes_regret_bound(5000, 100, 3, 2)
    assert mets_bayes_regret_bound(5000, 100, 30, 2) > base
    assert mets_bayes_regret_bound(5000, 100, 3, 2, effect_std=0.1) < base


@pytest.mark.parametrize(
    "kwargs,name",
    [({"n": 0}, "n"), ({"n_actions": 0}, "n_actions"), ({"dim": 1.5}, "dim"),
     ({"noise_std": 0}, "noise_std"), ({"kappa_x": -1}, "kappa_x"), ({"delta": 1.0}, "delta"),
     ({"effect_std": np.nan}, "effect_std")],
)
def test_mets_bound_rejects_bad_arguments(kwargs, name):
    args = {"n": 100, "n_actions": 5, "n_effects": 2, "dim": 2, **kwargs}
    with pytest.raises(ValidationError, match=rf"^{name}\b"):
        mets_bayes_regret_bound(**args)


# ---------------------------------------------------------------------------- GTS
def test_gts_bound_formula():
    T, K, pi, g, eta = 10_000, 5, 0.01, 0.1, 0.1
    c2, c4 = SQUARE_LOSS_CONSTANTS
    expected = g * T + math.sqrt(c2 * K * T / g * math.log(100) / (eta * (1 - c4 * eta)))
    assert gts_regret_bound(T, K, pi, g, eta) == pytest.approx(expected, rel=1e-14)


def test_gts_tuning_minimises_the_bound_and_gives_t_two_thirds():
    T, K, pi = 10**6, 10, 1e-3
    bound, gamma, eta = gts_tuned_regret_bound(T, K, pi)
    c2, c4 = SQUARE_LOSS_CONSTANTS
    assert eta == pytest.approx(1 / (2 * c4))
    assert bound == pytest.approx(3 * (c2 * c4 * K * math.log(1 / pi)) ** (1 / 3) * T ** (2 / 3),
                                  rel=1e-12)
    assert bound == pytest.approx(gts_regret_bound(T, K, pi, gamma, eta), rel=1e-12)
    for g in np.geomspace(gamma / 10, min(1, gamma * 10), 41):
        for e in np.linspace(0.01, 0.24, 24):
            assert gts_regret_bound(T, K, pi, g, e) >= bound * (1 - 1e-12)
    b8 = gts_tuned_regret_bound(8 * T, K, pi)[0]
    assert b8 / bound == pytest.approx(4.0, rel=1e-12)  # (8)^(2/3)
    assert gts_tuned_regret_bound(T, K, 1.0)[0] == 0.0  # one expert, the right one


def test_gts_bayes_bound_uses_the_cross_entropy():
    rng = np.random.default_rng(0)
    mu, pi = rng.dirichlet(np.ones(20)), rng.dirichlet(np.ones(20))
    H = -(mu * np.log(mu)).sum()
    KL = (mu * np.log(mu / pi)).sum()
    T, K, g, eta = 5000, 4, 0.2, 0.1
    got = gts_bayes_regret_bound(T, K, mu, pi, g, eta)
    # the regret bound with ln(1/π(j*)) replaced by H(μ) + KL(μ‖π)
    assert got == pytest.approx(gts_regret_bound(T, K, math.exp(-(H + KL)), g, eta), rel=1e-12)
    # Jensen (concave in ln 1/π): it dominates the μ-average of the per-expert bounds, which
    # bounds the Bayes regret E_μ R(j*)
    avg = sum(m * gts_regret_bound(T, K, p, g, eta) for m, p in zip(mu, pi))
    assert avg <= got
    # a correct prior is best
    assert gts_bayes_regret_bound(T, K, mu, mu, g, eta) <= got


def test_log_loss_constants():
    for c in (0.05, 0.5, 1.0, 3.0):
        c2, c4 = log_loss_constants(c)
        assert c2 == c and c4 * c >= 2.0 - 1e-9  # the small-difference limit of the ratio is 2
        # no admissible Bernoulli pair beats the computed supremum
        rng = np.random.default_rng(1)
        p = rng.uniform(1e-4, 1 - 1e-4, 200_000)
        q = rng.uniform(1e-4, 1 - 1e-4, 200_000)
        u, v = np.log(p / q), np.log((1 - p) / (1 - q))
        ok = (np.abs(u) <= c) & (np.abs(v) <= c) & (np.abs(p - q) > 1e-6)
        kl = p * u + (1 - p) * v
        second = p * u**2 + (1 - p) * v**2
        ratio = second[ok] / kl[ok]
        assert ok.sum() > 100
        assert ratio.max() <= c4 * c * (1 + 1e-6)
        assert ratio.max() >= 0.95 * c4 * c  # and it is nearly attained
    assert log_loss_constants(0.05)[1] == pytest.approx(2 / 0.05, rel=0.05)


@pytest.mark.parametrize(
    "call,name",
    [
        (lambda: gts_regret_bound(100, 3, 0.0, 0.1, 0.1), "prior_weight"),
        (lambda: gts_regret_bound(100, 3, 1.5, 0.1, 0.1), "prior_weight"),
        (lambda: gts_regret_bound(100, 3, 0.1, 0.0, 0.1), "gamma"),
        (lambda: gts_regret_bound(100, 3, 0.1, 1.1, 0.1), "gamma"),
        (lambda: gts_regret_bound(100, 3, 0.1, 0.1, 0.25), "eta"),  # c4 η = 1
        (lambda: gts_regret_bound(0, 3, 0.1, 0.1, 0.1), "T"),
        (lambda: gts_tuned_regret_bound(10, 3, 0.1, c4=0), "c4"),
        (lambda: gts_bayes_regret_bound(10, 3, [0.5, 0.5], [1.0], 0.1, 0.1), "true_prior"),
        (lambda: gts_bayes_regret_bound(10, 3, [0.5, 0.5], [1.0, 0.0], 0.1, 0.1), "prior"),
        (lambda: log_loss_constants(-1), "c"),
    ],
)
def test_gts_bounds_reject_bad_arguments(call, name):
    with pytest.raises(ValidationError, match=rf"^{name}\b"):
        call()
