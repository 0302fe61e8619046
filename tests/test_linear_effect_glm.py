"""Binary rewards under the general linear structure of sDM (paper App. E.1): MeTS on a
LinearEffectPrior with ``likelihood="logistic"``.

Each action's likelihood becomes a Gaussian pseudo-observation (G_a ← Ğ_a, b_a ← Ğ_a θ̆_a, plus
∇log L at the posterior mode) and the structured closed forms apply. Checked against:

* the brute-force joint Gaussian over (ψ, θ_1, …, θ_K), built from the user's raw inputs and
  those pseudo-observations (tight tolerance);
* the pseudo-observations themselves, recomputed from the observations alone by a slow
  ``scipy.optimize`` fit per action (the effect mean before each update from the oracle);
* meTS-GLM on the MixedEffectPrior whose W_a = b_aᵀ ⊗ I_d.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import expit, log_expit

import mixedts
from builders import assert_same_state, snapshot
from mixedts import FactoredMeTS, LinearEffectPrior, MeTS, MixedEffectPrior, ValidationError


def raw(K=4, d=2, e=3, seed=0, per_action=True):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(e, e))
    cov = A @ A.T / e + 0.5 * np.eye(e)
    W = rng.uniform(-1, 1, (K, d, e))
    if per_action:
        B = rng.normal(size=(K, d, d))
        S0 = B @ np.swapaxes(B, 1, 2) / d + 0.5 * np.eye(d)
    else:
        S0 = 0.7 * np.eye(d)
    return rng.uniform(-1, 1, e), cov, W, S0


def oracle_from_stats(mu, cov, W, S0, G, b):
    """The joint Gaussian over (ψ, θ) when action a contributes precision G[a] and linear
    term b[a]: E[θ] (K, d), Cov[θ_a] (K, d, d), E[ψ], Cov[ψ]."""
    K, d, e = W.shape
    S0 = np.broadcast_to(S0, (K, d, d))
    n = e + K * d
    T = np.zeros((n, e))  # (ψ, θ) = T ψ + (0, ε)
    T[:e] = np.eye(e)
    T[e:] = W.reshape(K * d, e)
    C = T @ cov @ T.T
    for a in range(K):
        C[e + a * d:e + (a + 1) * d, e + a * d:e + (a + 1) * d] += S0[a]
    P = np.linalg.inv(C)
    h = P @ (T @ mu)
    for a in range(K):
        P[e + a * d:e + (a + 1) * d, e + a * d:e + (a + 1) * d] += G[a]
        h[e + a * d:e + (a + 1) * d] += b[a]
    post = np.linalg.inv(P)
    mean = post @ h
    tcov = np.stack([post[e + a * d:e + (a + 1) * d, e + a * d:e + (a + 1) * d]
                     for a in range(K)])
    return mean[e:].reshape(K, d), tcov, mean[:e], post[:e, :e]


def scipy_fit(X, y, P, c):
    """argmin −Σ log p(y | xᵀθ) + ½ (θ − c)ᵀ P (θ − c) by scipy's BFGS (gradient only), and
    the curvature Σ σ'(xᵀθ) x xᵀ at the optimum, written out row by row."""
    def f(th):
        z = X @ th
        return (-np.sum(y * log_expit(z) + (1 - y) * log_expit(-z))
                + 0.5 * (th - c) @ P @ (th - c))

    def grad(th):
        return X.T @ (expit(X @ th) - y) + P @ (th - c)

    res = minimize(f, c.copy(), jac=grad, method="BFGS", options={"gtol": 1e-11,
                                                                  "maxiter": 10_000})
    theta = res.x
    G = sum(expit(x @ theta) * (1 - expit(x @ theta)) * np.outer(x, x) for x in X)
    return theta, G


def replay(mu, cov, W, S0, batches, at, ridge=1e-3):
    """The pseudo-observations (G, b) of exact refits, recomputed from the observations alone:
    each batch refits every touched action on its whole history, at its ridge-penalised
    maximum (``at="likelihood"``: b = G θ̆) or at its MAP under N(W_a μ̄, Σ_a) with μ̄ the
    oracle's effect mean before the batch (b = G θ̂ + Σ_a⁻¹ (θ̂ − W_a μ̄))."""
    K, d, _ = W.shape
    S0 = np.broadcast_to(S0, (K, d, d))
    G, b = np.zeros((K, d, d)), np.zeros((K, d))
    hist_X, hist_y = [np.zeros((0, d))] * K, [np.zeros(0)] * K
    for X, A, Y in batches:
        psi = oracle_from_stats(mu, cov, W, S0, G, b)[2]
        for a in np.unique(A):
            hist_X[a] = np.vstack([hist_X[a], X[A == a]])
            hist_y[a] = np.concatenate([hist_y[a], Y[A == a]])
            if at == "likelihood":
                theta, G[a] = scipy_fit(hist_X[a], hist_y[a], ridge * np.eye(d), np.zeros(d))
                b[a] = G[a] @ theta
            else:
                P0, c = np.linalg.inv(S0[a]), W[a] @ psi
                theta, G[a] = scipy_fit(hist_X[a], hist_y[a], P0, c)
                b[a] = G[a] @ theta + P0 @ (theta - c)
    return G, b


def binary_data(K, d, n, seed, scale=1.0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, (n, d))
    A = rng.integers(K, size=n)
    theta = scale * rng.normal(size=(K, d))
    Y = (rng.uniform(size=n) < expit(np.einsum("nd,nd->n", X, theta[A]))).astype(float)
    return X, A, Y


def rel_err(a, b):
    return np.max(np.abs(a - b)) / max(1e-300, np.max(np.abs(b)))


@pytest.mark.parametrize("at", ["posterior", "likelihood"])
@pytest.mark.parametrize("how", ["incremental", "batch"])
@pytest.mark.parametrize("per_action", [False, True])
def test_posterior_is_the_joint_gaussian_of_its_pseudo_observations(at, how, per_action):
    """Given the pseudo-observations the model holds, every posterior summary is the
    brute-force joint Gaussian's (≤ 1e-9); a wrong curvature is detected."""
    mu, cov, W, S0 = raw(per_action=per_action)
    X, A, Y = binary_data(4, 2, 60, 1)
    policy = MeTS(LinearEffectPrior(mu, cov, W, S0), seed=0, likelihood="logistic",
                  laplace_at=at, refactor_every=0)
    if how == "batch":
        policy.update_batch(X[:25], A[:25], Y[:25])
        policy.update_batch(X[25:], A[25:], Y[25:])
    else:
        for x, a, y in zip(X, A, Y):
            policy.update(x, a, y)
    model = policy.model
    mean, tcov, psi_mean, psi_cov = oracle_from_stats(mu, cov, W, S0, model.G, model.b)
    assert rel_err(policy.posterior_mean(), mean) < 1e-9
    assert rel_err(policy.posterior_cov(), tcov) < 1e-9
    assert rel_err(policy.effect_posterior()[0], psi_mean) < 1e-9
    assert rel_err(policy.effect_posterior()[1], psi_cov) < 1e-9
    x = np.array([0.3, -0.8])
    np.testing.assert_allclose(model.mean_scores(x), mean @ x, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(model.score_std(x) ** 2, np.einsum("d,kde,e->k", x, tcov, x),
                               rtol=1e-9)
    # negative control: the curvature at θ = 0 (f' = 1/4) in place of the mode's
    G0 = np.stack([0.25 * X[A == a].T @ X[A == a] for a in range(4)])
    wrong = oracle_from_stats(mu, cov, W, S0, G0, model.b)
    assert rel_err(policy.posterior_cov(), wrong[1]) > 1e-2


@pytest.mark.parametrize("at", ["likelihood", "posterior"])
def test_pseudo_observations_are_scipy_refits_of_the_history(at):
    """Ğ_a and b_a (and the modes) recomputed by scipy.optimize from the observations alone;
    the posterior is then the oracle's. Negative control: forgetting the prior's gradient
    term of b at the posterior mode, or the effect mean's move between batches."""
    mu, cov, W, S0 = raw(seed=3)
    X, A, Y = binary_data(4, 2, 90, 4)
    batches = [(X[:30], A[:30], Y[:30]), (X[30:31], A[30:31], Y[30:31]),
               (X[31:], A[31:], Y[31:])]
    policy = MeTS(LinearEffectPrior(mu, cov, W, S0), seed=0, likelihood="logistic",
                  laplace_at=at)
    for Xb, Ab, Yb in batches:
        policy.update_batch(Xb, Ab, Yb)
    G, b = replay(mu, cov, W, S0, batches, at)
    assert rel_err(policy.model.G, G) < 1e-6
    assert rel_err(policy.model.b, b) < 1e-6
    mean, tcov, _, _ = oracle_from_stats(mu, cov, W, S0, G, b)
    assert rel_err(policy.posterior_mean(), mean) < 1e-6
    assert rel_err(policy.posterior_cov(), tcov) < 1e-6
    if at == "likelihood":  # the mode is the ridge-penalised MLE
        theta = scipy_fit(X[A == 2], Y[A == 2], 1e-3 * np.eye(2), np.zeros(2))[0]
        assert rel_err(policy.model.fitter.modes[2], theta) < 1e-6
        # control: a curvature at θ = 0 is detected
        G_wrong = G.copy()
        G_wrong[2] = 0.25 * X[A == 2].T @ X[A == 2]
        assert rel_err(policy.model.G, G_wrong) > 1e-2
    else:
        modes = np.stack([policy.model.fitter.modes[a] for a in range(4)])
        b_wrong = np.einsum("kij,kj->ki", G, modes)  # the likelihood scheme's b at the MAP
        assert rel_err(policy.model.b, b_wrong) > 1e-2
        one_batch = replay(mu, cov, W, S0, [(X, A, Y)], at)[1]
        assert rel_err(policy.model.b, one_batch) > 1e-4


def kron_loadings(B, d):
    """W_a = b_aᵀ ⊗ I_d, so that W_a vec(Ψ) = Σ_l b_al ψ_l."""
    K, L = B.shape
    return np.einsum("kl,de->kdle", B, np.eye(d)).reshape(K, d, L * d)


@pytest.mark.parametrize("method", ["exact", "minibatch", "online"])
@pytest.mark.parametrize("at", ["posterior", "likelihood"])
def test_kron_loadings_give_mets_glm_on_the_mixed_effect_prior(at, method):
    rng = np.random.default_rng(2)
    K, L, d = 6, 2, 2
    B = rng.uniform(-1, 1, (K, L))
    Q = rng.normal(size=(L * d, L * d))
    cov = Q @ Q.T / (L * d) + np.eye(L * d)
    mean = rng.normal(size=(L, d))
    mixed = MixedEffectPrior(mean, cov, B, 0.8 * np.eye(d))
    linear = LinearEffectPrior(mean.reshape(-1), cov, kron_loadings(B, d), 0.8 * np.eye(d))
    opts = {"likelihood": "logistic", "laplace_at": at, "laplace": method, "laplace_batch": 5,
            "refactor_every": 0}
    a, b = MeTS(mixed, seed=4, **opts), MeTS(linear, seed=4, **opts)
    X, A, Y = binary_data(K, d, 80, 5)
    for x, act, y in zip(X[:60], A[:60], Y[:60]):
        a.update(x, act, y)
        b.update(x, act, y)
    a.update_batch(X[60:], A[60:], Y[60:])
    b.update_batch(X[60:], A[60:], Y[60:])
    assert np.bincount(A[:60], minlength=K).max() > 5  # minibatches are drawn
    assert rel_err(b.posterior_mean(), a.posterior_mean()) < 1e-8
    assert rel_err(b.posterior_cov(), a.posterior_cov()) < 1e-8
    assert rel_err(b.effect_posterior()[0], a.effect_posterior()[0].reshape(-1)) < 1e-8
    # control: the Gaussian likelihood on the same 0/1 rewards is another posterior
    c = MeTS(linear, seed=4)
    c.update_batch(X, A, Y)
    assert rel_err(c.posterior_mean(), a.posterior_mean()) > 1e-2


def test_incremental_effect_updates_equal_an_exact_recompute():
    mu, cov, W, S0 = raw(K=8, d=3, e=4, seed=6)
    policy = MeTS(LinearEffectPrior(mu, cov, W, S0), seed=1, likelihood="logistic",
                  refactor_every=0)
    X, A, Y = binary_data(8, 3, 150, 7)
    for x, a, y in zip(X, A, Y):
        policy.update(x, a, y)
    before = (policy.posterior_mean(), policy.posterior_cov(), policy.model.precision.copy())
    policy.refactor()
    assert rel_err(before[0], policy.posterior_mean()) < 1e-10
    assert rel_err(before[1], policy.posterior_cov()) < 1e-10
    assert rel_err(before[2], policy.model.precision) < 1e-10


def test_select_draws_probabilities_and_save_load_continue_exactly(tmp_path):
    mu, cov, W, S0 = raw(K=5, seed=8)
    policy = MeTS(LinearEffectPrior(mu, cov, W, S0), seed=3, likelihood="logistic",
                  laplace="minibatch", laplace_batch=4)
    rng = np.random.default_rng(9)
    for _ in range(40):
        x = rng.uniform(-1, 1, 2)
        policy.update(x, policy.select(x), float(rng.uniform() < 0.6))
    x = np.array([0.9, -0.4])
    probs = policy.action_probabilities(x, n_draws=4000, seed=1)
    assert probs.shape == (5,) and abs(probs.sum() - 1) < 1e-12
    draws = policy.model.sample_scores_many(x, 4000, np.random.default_rng(2))
    np.testing.assert_allclose(draws.std(0), policy.model.score_std(x), rtol=0.05)
    np.testing.assert_allclose(draws.mean(0), policy.model.mean_scores(x),
                               atol=4 * policy.model.score_std(x).max() / np.sqrt(4000))
    policy.save(tmp_path / "p.npz")
    loaded = mixedts.load(tmp_path / "p.npz")
    assert_same_state(snapshot(policy), snapshot(loaded))
    for pol in (policy, loaded):  # the same future, minibatch draws included
        r = np.random.default_rng(11)
        for _ in range(30):
            z = r.uniform(-1, 1, 2)
            pol.update(z, pol.select(z), float(r.uniform() < 0.5))
    np.testing.assert_array_equal(policy.posterior_mean(), loaded.posterior_mean())
    np.testing.assert_array_equal(policy.posterior_cov(), loaded.posterior_cov())


def test_bad_rewards_change_nothing_and_variants_are_checked():
    mu, cov, W, S0 = raw()
    prior = LinearEffectPrior(mu, cov, W, S0)
    policy = MeTS(prior, seed=0, likelihood="logistic")
    policy.update(np.ones(2), 1, 1.0)
    before = snapshot(policy)
    with pytest.raises(ValidationError, match=r"^y"):
        policy.update(np.ones(2), 0, 0.5)
    with pytest.raises(ValidationError, match=r"^Y"):
        policy.update_batch(np.ones((2, 2)), [0, 1], [1.0, 2.0])
    assert_same_state(before, snapshot(policy))
    with pytest.raises(ValidationError, match=r"^prior"):
        FactoredMeTS(prior, likelihood="logistic")
    with pytest.raises(ValidationError, match="laplace_at"):
        MeTS(prior, likelihood="logistic", laplace_at="mode")
    fractional = MeTS(prior, seed=0, likelihood="logistic", binarize=True)
    fractional.update(np.ones(2), 1, 0.3)
    assert fractional.model.fitter.history(1)[1][0] in (0.0, 1.0)
