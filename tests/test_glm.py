"""meTS-GLM and the GLM baselines (docs/math.md §4)."""

import copy

import numpy as np
import pytest
from scipy.special import expit

import mixedts
from builders import GLM_NAMES, assert_same_state, build, play, snapshot
from conftest import make_prior
from mixedts import GLMTS, FactoredMeTS, LinTS, MeTS
from oracles import (
    factored_oracle,
    factored_oracle_from_stats,
    independent_oracle,
    joint_oracle,
    joint_oracle_from_stats,
    logistic_map,
    marginal_action_prior,
    mixed_glm_replay,
    parts,
)

RTOL = 1e-9


def rel_err(a, b):
    return np.max(np.abs(a - b)) / max(1e-300, np.max(np.abs(b)))


def logistic_stream(policy, rng, n, theta=None, per_action_context=False):
    K, d = policy.n_actions, policy.dim
    theta = rng.normal(size=(K, d)) if theta is None else theta
    for _ in range(n):
        x = rng.uniform(-1, 1, (K, d)) if per_action_context else rng.uniform(-1, 1, d)
        a = policy.select(x)
        xa = x[a] if per_action_context else x
        policy.update(x, a, float(rng.uniform() < expit(xa @ theta[a])))
    return theta


def recorded_stream(policy, rng, n, per_action_context=False):
    """``logistic_stream`` that also records what each update saw: the played context row, the
    action, the reward and a copy of the policy's generator just before the update (the
    minibatch fit draws its rows from it)."""
    K, d = policy.n_actions, policy.dim
    theta = rng.normal(size=(K, d))
    X, A, Y, rngs = [], [], [], []
    for _ in range(n):
        x = rng.uniform(-1, 1, (K, d)) if per_action_context else rng.uniform(-1, 1, d)
        a = policy.select(x)
        xa = x[a] if per_action_context else x
        y = float(rng.uniform() < expit(xa @ theta[a]))
        rngs.append(copy.deepcopy(policy.rng))
        policy.update(x, a, y)
        X.append(xa), A.append(a), Y.append(y)
    return np.array(X), np.array(A), np.array(Y), rngs


@pytest.mark.parametrize("mixing", ["dense", "sparse", "negative"])
@pytest.mark.parametrize("method", ["exact", "minibatch", "online"])
@pytest.mark.parametrize("cls", [MeTS, FactoredMeTS])
def test_glm_plugin_posterior_is_exact_given_the_laplace_statistics(cls, method, mixing):
    """The incremental (signed low-rank) effect updates equal the exact Gaussian built from the
    Laplace statistics, and those statistics are what docs/math.md §4 says: both are recomputed
    here from the observations alone (tests/oracles.py: a plain Newton fit per action, the
    minibatch rows redrawn from a copy of the policy's generator, the effect mean before each
    update from the brute-force oracle), never read from the model."""
    K, L, d = 8, 3, 2
    prior = make_prior(7, K, L, d, mixing, "per-action", "block" if cls is FactoredMeTS else "full")
    policy = cls(prior, seed=1, likelihood="logistic", laplace=method, laplace_batch=6,
                 refactor_every=0)
    X, A, Y, rngs = recorded_stream(policy, np.random.default_rng(2), 120, per_action_context=True)
    assert np.bincount(A, minlength=K).max() > 6  # the minibatch path is taken
    G, b = mixed_glm_replay(prior, X, A, Y, method=method, factored=cls is FactoredMeTS,
                            batch_size=6, rngs=rngs)
    mean, cov = policy.effect_posterior()
    if cls is FactoredMeTS:
        ref_mean, ref_blocks = factored_oracle_from_stats(prior, G, b)
        assert rel_err(mean, ref_mean) < 1e-8
        assert rel_err(cov.reshape(L, d, L, d)[np.arange(L), :, np.arange(L), :],
                       ref_blocks) < 1e-8
        return
    ref = joint_oracle_from_stats(prior, G, b)
    assert rel_err(mean, ref["effect_mean"]) < 1e-8
    assert rel_err(cov, ref["effect_cov"]) < 1e-8
    assert rel_err(policy.posterior_mean(), ref["action_mean"]) < 1e-8
    assert rel_err(policy.posterior_cov(), ref["action_cov"]) < 1e-8


def test_laplace_statistics_are_the_refit_of_the_history():
    """laplace_at="likelihood", exact refits: each observed action's mode is the ridge-penalised
    MLE of its history (a plain Newton fit of the recorded observations) and the posterior is
    the oracle's given G = Σ f'(xᵀθ̂) x xᵀ, b = G θ̂."""
    K, d = 5, 3
    prior = make_prior(3, K, 2, d, "dense", "shared", "full")
    policy = MeTS(prior, seed=0, likelihood="logistic", laplace_at="likelihood")
    X, A, Y, _ = recorded_stream(policy, np.random.default_rng(4), 200)
    G, b = np.zeros((K, d, d)), np.zeros((K, d))
    for a in np.unique(A):
        theta, G[a] = logistic_map(X[A == a], Y[A == a], 1e-3 * np.eye(d), np.zeros(d))
        b[a] = G[a] @ theta
        assert np.max(np.abs(policy.model.fitter.modes[a] - theta)) < 1e-6 * max(
            1, np.abs(theta).max())
    ref = joint_oracle_from_stats(prior, G, b)
    assert rel_err(policy.posterior_mean(), ref["action_mean"]) < 1e-6
    assert rel_err(policy.posterior_cov(), ref["action_cov"]) < 1e-6


@pytest.mark.parametrize("factory", [
    lambda p: MeTS(p, seed=0, likelihood="gaussian"),
    lambda p: FactoredMeTS(p, seed=0, likelihood="gaussian"),
    lambda p: LinTS.from_prior(p, seed=0, likelihood="gaussian"),
])
def test_gaussian_likelihood_reproduces_the_core_posterior(factory):
    prior = make_prior(1, 6, 2, 2, "dense", "shared", "block")
    policy = factory(prior)
    rng = np.random.default_rng(0)
    X, A, Y = [], [], []
    for _ in range(150):
        x = rng.uniform(-1, 1, 2)
        a = policy.select(x)
        y = rng.normal()
        policy.update(x, a, y)
        X.append(x), A.append(a), Y.append(y)
    if isinstance(policy, FactoredMeTS):
        m, c = factored_oracle(prior, 1.0, X, A, Y)
        mean, cov = policy.effect_posterior()
        assert rel_err(mean, m) < RTOL
        assert rel_err(cov.reshape(2, 2, 2, 2)[np.arange(2), :, np.arange(2), :], c) < RTOL
    elif isinstance(policy, LinTS):
        m, c = independent_oracle(*marginal_action_prior(prior), 1.0, X, A, Y)
        assert rel_err(policy.posterior_mean(), m) < RTOL
        assert rel_err(policy.posterior_cov(), c) < RTOL
    else:
        ref = joint_oracle(prior, 1.0, X, A, Y)
        assert rel_err(policy.posterior_mean(), ref["action_mean"]) < RTOL
        assert rel_err(policy.posterior_cov(), ref["action_cov"]) < RTOL


def test_consistency_mean_converges_and_covariance_shrinks_like_one_over_n():
    rng = np.random.default_rng(5)
    K, L, d = 3, 1, 2
    prior = make_prior(2, K, L, d, "dense", "shared", "full")
    theta = np.array([[1.0, -0.5], [-0.8, 0.3], [0.4, 1.2]])
    covs = {}
    for n in (2000, 8000):
        policy = MeTS(prior, seed=0, likelihood="logistic")
        X = rng.uniform(-1, 1, (n * K, d))
        A = np.repeat(np.arange(K), n)
        Y = (rng.uniform(size=n * K) < expit(np.einsum("nd,nd->n", X, theta[A]))).astype(float)
        policy.update_batch(X, A, Y)
        mean, cov = policy.posterior_mean(), policy.posterior_cov()
        sd = np.sqrt(np.diagonal(cov, axis1=1, axis2=2))
        assert np.all(np.abs(mean - theta) < 5 * sd)
        assert np.max(np.abs(mean - theta)) < (0.2 if n == 2000 else 0.1)
        # negative control: a truth off by 0.6 in one coordinate (7 sd at n = 2000) fails the
        # same checks
        wrong = theta.copy()
        wrong[1, 0] += 0.6
        assert not np.all(np.abs(mean - wrong) < 5 * sd)
        assert np.max(np.abs(mean - wrong)) >= (0.2 if n == 2000 else 0.1)
        covs[n] = np.trace(cov, axis1=1, axis2=2)
    ratio = covs[2000] / covs[8000]
    assert np.all((ratio > 3.0) & (ratio < 5.0)), ratio
    # negative control: a width shrinking like 1/√n (a variance ratio of 2) fails the window
    assert not np.all((np.sqrt(ratio) > 3.0) & (np.sqrt(ratio) < 5.0))


@pytest.mark.parametrize("name", GLM_NAMES)
def test_all_ones_rewards_stay_finite(name):
    policy = build(name)
    rng = np.random.default_rng(0)
    for _ in range(50):
        x = rng.uniform(-1, 1, policy.dim)
        policy.update(x, policy.select(x), 1.0)
    assert np.all(np.isfinite(policy.posterior_mean()))
    assert np.all(np.isfinite(policy.posterior_cov()))
    assert np.all(np.isfinite(policy.sample_parameters(10, seed=0)))
    if hasattr(policy.model, "effect_posterior"):
        assert all(np.all(np.isfinite(a)) for a in policy.effect_posterior())


@pytest.mark.parametrize("name", GLM_NAMES)
@pytest.mark.parametrize("bad", [2.0, -1.0, np.nan, 0.5, np.inf])
def test_bad_rewards_are_rejected_and_change_nothing(name, bad):
    policy = build(name)
    play(policy, np.random.default_rng(1), 10)
    before = snapshot(policy)
    x = np.full(policy.dim, 0.3)
    with pytest.raises(ValueError, match="y"):
        policy.update(x, 0, bad)
    with pytest.raises(ValueError, match="Y"):
        policy.update_batch(np.stack([x, x]), np.array([0, 1]), np.array([1.0, bad]))
    assert_same_state(before, snapshot(policy))


def test_binarize_converts_fractional_rewards_with_the_policy_generator():
    prior = make_prior(0, 4, 2, 2, "dense", "shared", "full")
    a = MeTS(prior, seed=3, likelihood="logistic", binarize=True)
    b = MeTS(prior, seed=3, likelihood="logistic", binarize=True)
    x = np.array([0.2, -0.4])
    for policy in (a, b):
        policy.update(x, 1, 0.7)
        policy.update(x, 2, 0.0)
    assert a.model.fitter.history(1)[1][0] in (0.0, 1.0)
    assert np.array_equal(a.posterior_mean(), b.posterior_mean())
    with pytest.raises(ValueError, match="y"):
        a.update(x, 1, 1.5)


@pytest.mark.parametrize("name", GLM_NAMES)
def test_save_load_continues_exactly(name, tmp_path):
    policy = build(name)
    play(policy, np.random.default_rng(1), 40)
    policy.save(tmp_path / "p.npz")
    loaded = mixedts.load(tmp_path / "p.npz")
    assert type(loaded) is type(policy)
    r1, r2 = np.random.default_rng(9), np.random.default_rng(9)
    assert play(policy, r1, 150) == play(loaded, r2, 150)
    assert np.array_equal(policy.posterior_mean(), loaded.posterior_mean())


def test_exact_batch_equals_single_updates():
    """With the paper's expansion (at the likelihood's maximum) an exact refit does not depend
    on the order of the data. (At the posterior mode the expansion point moves with the
    effects, so a batch and the same data one by one differ slightly by design.)"""
    prior = make_prior(4, 6, 2, 2, "dense", "shared", "full")
    a = MeTS(prior, seed=0, likelihood="logistic", laplace_at="likelihood")
    b = MeTS(prior, seed=0, likelihood="logistic", laplace_at="likelihood")
    rng = np.random.default_rng(3)
    X = rng.uniform(-1, 1, (120, 2))
    A = rng.integers(6, size=120)
    Y = (rng.uniform(size=120) < 0.4).astype(float)
    for x, act, y in zip(X, A, Y):
        a.update(x, act, y)
    b.update_batch(X, A, Y)
    assert rel_err(a.posterior_mean(), b.posterior_mean()) < 1e-6
    assert rel_err(a.posterior_cov(), b.posterior_cov()) < 1e-6


def test_glmts_diagonal_follows_chapelle_li():
    prior = make_prior(0, 3, 2, 2, "dense", "shared", "full")
    policy = GLMTS.from_prior(prior, diagonal=True, seed=0)
    q0 = policy.model.prec.copy()
    m0 = policy.model.mean.copy()
    x = np.array([0.5, -1.0])
    policy.update(x, 1, 1.0)
    m, q = policy.model.mean[1], policy.model.prec[1]
    # the MAP under the diagonal prior: gradient zero
    grad = q0[1] * (m - m0[1]) + x * (expit(x @ m) - 1.0)
    assert np.max(np.abs(grad)) < 1e-8
    p = expit(x @ m)
    assert np.allclose(q, q0[1] + x**2 * p * (1 - p), rtol=1e-12)
    assert np.array_equal(policy.model.mean[0], m0[0])


@pytest.mark.parametrize("action_cov", ["shared", "per-action"])
def test_posterior_expansion_is_the_map_under_the_conditional_prior(action_cov):
    """laplace_at="posterior": θ̂ maximises log L + log N(θ; Γ_a μ̄, Σ0) for μ̄ before the update,
    and the pseudo-observation is b = G θ̂ + ∇log L(θ̂)."""
    prior = make_prior(5, 6, 2, 3, "dense", action_cov, "full")
    policy = MeTS(prior, seed=0, likelihood="logistic")
    logistic_stream(policy, np.random.default_rng(6), 60)
    rng = np.random.default_rng(7)
    for _ in range(5):
        a = int(rng.integers(6))
        x = rng.uniform(-1, 1, 3)
        center = parts(prior).B[a] @ policy.effect_posterior()[0]
        policy.update(x, a, 1.0)
        X, y = policy.model.fitter.history(a)
        theta = policy.model.fitter.modes[a]
        _, b, _, G, P0 = policy.model.store.state_of(np.array([a]))
        grad_loglik = X.T @ (y - expit(X @ theta))
        assert np.max(np.abs(grad_loglik - P0[0] @ (theta - center))) < 1e-6
        assert rel_err(b[0], G[0] @ theta + grad_loglik) < 1e-6
    with pytest.raises(ValueError, match="laplace_at"):
        MeTS(prior, likelihood="logistic", laplace_at="mode")
