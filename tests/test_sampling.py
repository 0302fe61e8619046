"""Posterior draws: moments, the joint cross-action covariance, the scalar-score shortcut of
docs/math.md §2 (same argmax law as full θ draws), and seeding.

Tolerances are derived from the number of draws n: a sample mean is within 5 standard errors
sqrt(Σ_ii / n) of the truth and a sample covariance entry within 5·sqrt((Σ_ii Σ_jj + Σ_ij²) / n).
All seeds are fixed, so the outcome is deterministic.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2_contingency

from builders import POLICY_NAMES, build, play
from conftest import make_prior
from mixedts import FactoredMeTS, HierTS, JointTS, LinTS, MeTS
from oracles import joint_oracle

N = 20_000
SIGMAS = 5.0


def _history(policy, n, seed, per_action=False):
    """Play n rounds; return the observed (x_a, a, y) for the oracle."""
    rng = np.random.default_rng(seed)
    K, d = policy.n_actions, policy.dim
    X, A, Y = [], [], []
    for _ in range(n):
        x = rng.uniform(-1, 1, (K, d)) if per_action else rng.uniform(-1, 1, d)
        a = policy.select(x)
        y = float(rng.normal())
        policy.update(x, a, y)
        X.append(x[a] if per_action else x)
        A.append(a)
        Y.append(y)
    return np.array(X), np.array(A), np.array(Y)


def assert_mean_close(draws, mean, cov):
    """draws (n, p); mean (p,); cov (p, p): elementwise within SIGMAS standard errors."""
    n = draws.shape[0]
    tol = SIGMAS * np.sqrt(np.diag(cov) / n)
    err = np.abs(draws.mean(0) - mean)
    assert np.all(err <= tol), f"worst mean error {np.max(err / tol):.2f} tolerances"


def assert_cov_close(draws, cov):
    n = draws.shape[0]
    emp = np.cov(draws, rowvar=False)
    var = np.diag(cov)
    tol = SIGMAS * np.sqrt((np.outer(var, var) + cov**2) / n)
    err = np.abs(emp - cov)
    assert np.all(err <= tol), f"worst covariance error {np.max(err / tol):.2f} tolerances"


def implied_joint_cov(policy):
    """Cov(θ_i, θ_j) implied by an effect posterior N(μ̄, Σ̄) and
    θ_i | Ψ ~ N(S_i (P0 Γ_i Ψ + B_i), S_i): T_i Σ̄ T_jᵀ + δ_ij S_i with T_i = S_i P0_i Γ_i
    (docs/math.md §1; eq. 16 for i = j)."""
    model = policy.model
    K, d, L = model.n_actions, model.dim, model.n_effects
    S, _, _, _, P0 = model.store.state_of(np.arange(K))
    _, eff_cov = policy.effect_posterior()
    Gamma = np.kron(model.prior.mixing.toarray(), np.eye(d)).reshape(K, d, L * d)
    T = S @ P0 @ Gamma  # (K, d, Ld)
    cov = np.einsum("iap,pq,jbq->iajb", T, eff_cov, T)
    cov[np.arange(K), :, np.arange(K), :] += S
    return cov.reshape(K * d, K * d)


# ---------------------------------------------------------------------------- (a) moments
MOMENT_CASES = ["MeTS", "MeTS-per-action-cov", "FactoredMeTS", "HierTS", "JointTS", "LinTS"]


@pytest.mark.parametrize("name", MOMENT_CASES)
def test_sample_parameters_matches_marginal_moments(name):
    policy = build(name, seed=11, K=8, L=3, d=2)
    play(policy, np.random.default_rng(0), 100)
    draws = policy.sample_parameters(N, seed=123)
    K, d = policy.n_actions, policy.dim
    assert draws.shape == (N, K, d)
    mean, cov = policy.posterior_mean(), policy.posterior_cov()
    for i in range(K):
        assert_mean_close(draws[:, i], mean[i], cov[i])
        assert_cov_close(draws[:, i], cov[i])


@pytest.mark.parametrize("name", ["MeTS", "MeTS-per-action-cov", "HierTS"])
def test_mets_joint_draws_match_the_oracle_cross_covariance(name):
    """Exact meTS draws are joint draws of Θ: cross-action covariances match the oracle.

    (30 updates: the effects, hence the cross-action correlations, are still uncertain.)"""
    policy = build(name, seed=12, K=8, L=3, d=2)
    X, A, Y = _history(policy, 30, seed=1, per_action=True)
    ref = joint_oracle(policy.model.prior, policy.model.noise_std, X, A, Y)
    K, d = policy.n_actions, policy.dim
    draws = policy.sample_parameters(N, seed=7).reshape(N, K * d)
    assert_mean_close(draws, ref["action_mean"].reshape(-1), ref["theta_cov"])
    assert_cov_close(draws, ref["theta_cov"])
    # the model's own implied joint covariance is the oracle's, to rounding
    np.testing.assert_allclose(implied_joint_cov(policy), ref["theta_cov"], rtol=0,
                               atol=1e-10 * np.abs(ref["theta_cov"]).max())
    # the cross blocks are far from zero (beyond the tolerance), so the check has teeth:
    # draws with independent actions would fail it
    cov = ref["theta_cov"]
    var = np.diag(cov)
    tol = SIGMAS * np.sqrt((np.outer(var, var) + cov**2) / N)
    off_block = np.kron(1 - np.eye(K), np.ones((d, d))).astype(bool)
    assert np.max(np.abs(cov[off_block]) / tol[off_block]) > 3
    shuffled = draws.reshape(N, K, d)[np.random.default_rng(0).permuted(
        np.tile(np.arange(N)[:, None], K), axis=0), np.arange(K)].reshape(N, K * d)
    with pytest.raises(AssertionError, match="covariance"):
        assert_cov_close(shuffled, cov)  # same marginals, independent actions


def test_jointts_draws_match_its_joint_cov():
    policy = build("JointTS", seed=13, K=8, L=3, d=2)
    X, A, Y = _history(policy, 100, seed=2)
    K, d = policy.n_actions, policy.dim
    ref = joint_oracle(policy.model.prior, policy.model.noise_std, X, A, Y)
    joint = policy.model.joint_cov()
    np.testing.assert_allclose(joint, ref["theta_cov"], rtol=0, atol=1e-10 * np.abs(joint).max())
    draws = policy.sample_parameters(N, seed=8).reshape(N, K * d)
    assert_mean_close(draws, policy.posterior_mean().reshape(-1), joint)
    assert_cov_close(draws, joint)


def test_factored_draws_match_their_own_joint_law():
    """meTS-Fa draws Ψ from the factored posterior: the implied joint law, not the exact one."""
    policy = build("FactoredMeTS", seed=14, K=8, L=3, d=2)
    play(policy, np.random.default_rng(3), 100)
    K, d = policy.n_actions, policy.dim
    joint = implied_joint_cov(policy)
    np.testing.assert_allclose(joint.reshape(K, d, K, d)[np.arange(K), :, np.arange(K), :],
                               policy.posterior_cov(), rtol=1e-10, atol=1e-14)
    draws = policy.sample_parameters(N, seed=9).reshape(N, K * d)
    assert_mean_close(draws, policy.posterior_mean().reshape(-1), joint)
    assert_cov_close(draws, joint)


def test_moment_check_has_teeth():
    """Negative control: the same check rejects draws whose covariance is 10% too large."""
    policy = build("MeTS", seed=11, K=8, L=3, d=2)
    play(policy, np.random.default_rng(0), 100)
    draws = policy.sample_parameters(N, seed=123)
    mean, cov = policy.posterior_mean(), policy.posterior_cov()
    inflated = mean + np.sqrt(1.1) * (draws - mean)
    with pytest.raises(AssertionError, match="covariance"):
        for i in range(policy.n_actions):
            assert_cov_close(inflated[:, i], cov[i])


# ---------------------------------------------------------------------------- (b) shortcut
def _frozen(name, per_action):
    policy = build(name, seed=21, K=8, L=3, d=2)
    _history(policy, 30, seed=4, per_action=per_action)
    rng = np.random.default_rng(99)
    K, d = policy.n_actions, policy.dim
    x = rng.uniform(-1, 1, (K, d)) if per_action else rng.uniform(-1, 1, d)
    return policy, x


def _counts_from_scores(score_fn, K, n, seed):
    rng = np.random.default_rng(seed)
    best = np.fromiter((np.argmax(score_fn(rng)) for _ in range(n)), dtype=np.int64, count=n)
    return np.bincount(best, minlength=K)


def _counts_from_thetas(policy, x, n, seed):
    theta = policy.model.sample_parameters(n, np.random.default_rng(seed))  # (n, K, d)
    scores = theta @ x if x.ndim == 1 else np.einsum("nkd,kd->nk", theta, x)
    return np.bincount(np.argmax(scores, axis=1), minlength=policy.n_actions)


def _p_value(c1, c2):
    keep = (c1 + c2) > 0
    return chi2_contingency(np.stack([c1[keep], c2[keep]]))[1]


@pytest.mark.parametrize(
    "name,per_action",
    [("MeTS", False), ("MeTS-per-action-cov", True), ("FactoredMeTS", False)],
)
def test_scalar_score_shortcut_has_the_full_draw_argmax_law(name, per_action):
    policy, x = _frozen(name, per_action)
    K = policy.n_actions
    before = policy.model.get_state()
    shortcut = _counts_from_scores(lambda rng: policy.model.sample_scores(x, rng), K, N, 1)
    full = _counts_from_thetas(policy, x, N, 2)
    assert (shortcut > N // 100).sum() >= 3, shortcut  # several actions compete
    p = _p_value(shortcut, full)
    assert p > 1e-3, (p, shortcut, full)
    # sampling never touches the posterior
    after = policy.model.get_state()
    for k in before[1]:
        np.testing.assert_array_equal(before[1][k], after[1][k])


# The negative controls use N_CONTROL < N draws: a chi-square test only gains power with more
# draws, so failing at N_CONTROL shows the positive tests (at N) would catch these errors.
N_CONTROL = 5_000


def test_shortcut_check_detects_a_wrong_variance():
    """Negative control: the right Ψ draw but conditional variances scaled by 2."""
    policy, x = _frozen("MeTS", False)
    K = policy.n_actions
    model = policy.model

    def wrong(rng):
        psi = model._sample_effects(rng)
        mean, var = model._scores_given(x, psi)
        return mean + np.sqrt(2.0 * var) * rng.standard_normal(K)

    wrong_counts = _counts_from_scores(wrong, K, N_CONTROL, 1)
    assert _p_value(wrong_counts, _counts_from_thetas(policy, x, N_CONTROL, 2)) < 1e-6


def test_shortcut_check_detects_dropped_effect_uncertainty():
    """Negative control: Ψ fixed at its posterior mean instead of drawn from Q_t."""
    policy, x = _frozen("MeTS", False)
    K = policy.n_actions
    model = policy.model
    psi_mean = model.effects.mean.reshape(model.n_effects, model.dim)

    def wrong(rng):
        mean, var = model._scores_given(x, psi_mean)
        return mean + np.sqrt(var) * rng.standard_normal(K)

    wrong_counts = _counts_from_scores(wrong, K, N_CONTROL, 1)
    assert _p_value(wrong_counts, _counts_from_thetas(policy, x, N_CONTROL, 2)) < 1e-6


# ---------------------------------------------------------------------------- (c) seeds
@pytest.mark.parametrize("name", POLICY_NAMES)
def test_same_seed_same_actions(name):
    runs = []
    for _ in range(2):
        policy = build(name, seed=31)
        runs.append(play(policy, np.random.default_rng(5), 300, per_action_context=True))
    assert runs[0] == runs[1]


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_different_seeds_different_actions(name):
    """(LinUCB's scores are deterministic, but its ties — all actions at the prior — are
    broken with the generator.)"""
    a = build(name, seed=31)
    b = build(name, seed=31)
    b.rng = np.random.default_rng(12345)
    ra = play(a, np.random.default_rng(5), 100)
    rb = play(b, np.random.default_rng(5), 100)
    assert ra != rb


# ---------------------------------------------------------------------------- (d) seed types
def _mets(seed):
    return MeTS(make_prior(3, 10, 3, 2), seed=seed)


@pytest.mark.parametrize(
    "make",
    [
        lambda prior, s: MeTS(prior, seed=s),
        lambda prior, s: FactoredMeTS(prior, seed=s),
        lambda prior, s: JointTS(prior, seed=s),
        lambda prior, s: HierTS.from_prior(prior, seed=s),
        lambda prior, s: LinTS.from_prior(prior, seed=s),
    ],
)
def test_seed_accepts_int_seedsequence_and_generator(make):
    prior = make_prior(3, 10, 3, 2)
    seeds = [2024, np.int64(2024), np.random.SeedSequence(2024), np.random.default_rng(2024)]
    runs = [play(make(prior, s), np.random.default_rng(0), 100) for s in seeds]
    assert all(r == runs[0] for r in runs)


def test_a_generator_seed_is_used_not_copied():
    gen = np.random.default_rng(7)
    policy = _mets(gen)
    assert policy.rng is gen
    policy.select(np.ones(2))
    assert gen.bit_generator.state == policy.rng.bit_generator.state


def test_seed_none_gives_fresh_entropy():
    runs = {tuple(play(_mets(None), np.random.default_rng(0), 50)) for _ in range(3)}
    assert len(runs) > 1


def test_sample_parameters_seed_forms_and_policy_rng_untouched():
    policy = _mets(1)
    play(policy, np.random.default_rng(0), 20)
    state = policy.rng.bit_generator.state
    draws = [policy.sample_parameters(50, seed=s) for s in
             (9, np.random.SeedSequence(9), np.random.default_rng(9))]
    for d in draws[1:]:
        np.testing.assert_array_equal(d, draws[0])
    assert policy.rng.bit_generator.state == state
    policy.sample_parameters(5)  # no seed: the policy's generator is used and advanced
    assert policy.rng.bit_generator.state != state
