"""Hand-computed references for formulas that the Bayes-rule and oracle tests cannot see.

Every number here is computed in the test from the formula of docs/math.md (§4 Laplace
statistics, §7 GTS and EXP4), by plain numpy on the raw inputs, and compared with the
policy's public outputs (weights, action probabilities, posterior mean and covariance):

* GTS weights for η ≠ 1 with the log loss (binary and fractional rewards) and the square loss:
  the Bayes-rule tests use η = 1, where a dropped η is invisible;
* EXP4 weights with and without propensities (the importance weight 1/p, the advice split over
  ties, the exploration floor over the active actions, the default η = γ/K);
* online Laplace: one Newton step from the previous Gaussian per observation;
* minibatch Laplace: the rows redrawn from a copy of the policy's generator, weighted n/B;
* UCB-GLM's mean, width and probability score, the diagonal GLM-TS (Chapelle & Li) of several
  updates, LinUCB's self-normalised width, the Beta posterior's moments;
* meTS's and meTS-Fa's action marginals and score widths (eq. 16) from the oracle's effects;
* Switch-DR's boundary w = τ.

Where a formula has a plausible wrong neighbour (η = 1, no 1/p, n/B = 1, the other loss, the
linear score, …) the test also shows that the neighbour misses the reference by far more than
the tolerance: the comparison has teeth. ``tools/mutants.py`` checks the same from the other
side (every listed mutant of these formulas fails a test here or elsewhere).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from scipy.special import expit

from conftest import make_prior
from mixedts import (
    EXP4,
    GLMTS,
    UCBGLM,
    BernoulliTS,
    EpsilonGreedyExperts,
    FactoredMeTS,
    GeneralizedTS,
    LinUCB,
    MeTS,
)
from mixedts.models.experts import LogisticExperts, TableExperts
from mixedts.rules import UCB
from oracles import (
    factored_oracle_from_stats,
    gaussian_stats,
    joint_oracle_from_stats,
    logistic_map,
    online_logistic_step,
    parts,
)


def normalise(log_w):
    w = np.exp(log_w - log_w.max())
    return w / w.sum()


def rel_err(a, b):
    return np.max(np.abs(a - b)) / max(1e-300, np.max(np.abs(b)))


# ---------------------------------------------------------------------------- GTS
def log_loss(f, r):
    return -(r * np.log(f) + (1 - r) * np.log(1 - f))


def square_loss(f, r):
    return (f - r) ** 2


def gts_stream(kind, seed):
    """Logistic experts, per-action (N, K, d) or shared (N, d), and a stream of rounds with
    binary and fractional rewards; returns the experts' prediction of the played pair too."""
    rng = np.random.default_rng(seed)
    N, K, d, n = 6, 4, 3, 12
    if kind == "per-action":
        W, bias = rng.normal(size=(N, K, d)), rng.normal(size=(N, K))
        X = rng.normal(size=(n, d))
        A = rng.integers(K, size=n)
        F = np.stack([expit(W[:, a] @ x + bias[:, a]) for x, a in zip(X, A)])
    else:
        W, bias = rng.normal(size=(N, d)), rng.normal(size=N)
        X = rng.normal(size=(n, K, d))
        A = rng.integers(K, size=n)
        F = np.stack([expit(W @ x[a] + bias) for x, a in zip(X, A)])
    Y = (rng.random(n) < 0.5).astype(float)
    Y[6:] = rng.random(n - 6)  # fractional rewards after the first six (the general log loss)
    prior = rng.dirichlet(np.ones(N))
    return LogisticExperts(W, bias), K, X, A, Y, F, prior


@pytest.mark.parametrize("kind", ["per-action", "shared"])
@pytest.mark.parametrize("loss", ["log", "square"])
@pytest.mark.parametrize("eta", [0.5, 2.0])
def test_gts_weights_by_hand(eta, loss, kind):
    """w_j ∝ π_j exp(−η Σ_t ℓ(f_j(x_t)_{a_t}, r_t)) after singles and batches."""
    experts, K, X, A, Y, F, prior = gts_stream(kind, seed=int(eta * 10) + len(loss))
    ell = log_loss if loss == "log" else square_loss
    policy = GeneralizedTS(experts, loss, eta=eta, gamma=0.2, prior=prior, seed=0, n_actions=K)
    greedy = EpsilonGreedyExperts(experts, epsilon=0.1, loss=loss, eta=eta, prior=prior, seed=0,
                                  n_actions=K)
    log_w = np.log(prior)
    for start, stop in [(0, 1), (1, 5), (5, 6), (6, 7), (7, 12)]:  # singles and batches
        if stop - start == 1:
            policy.update(X[start], int(A[start]), Y[start])
        else:
            policy.update_batch(X[start:stop], A[start:stop], Y[start:stop])
        greedy.update_batch(X[start:stop], A[start:stop], Y[start:stop])
        log_w = log_w - eta * ell(F[start:stop], Y[start:stop, None]).sum(axis=0)
        expected = normalise(log_w)
        assert np.max(np.abs(policy.weights() - expected)) < 1e-12
        assert np.max(np.abs(greedy.weights() - expected)) < 1e-12
    # teeth: η = 1 or the other loss gives weights far from these
    wrong_eta = normalise(np.log(prior) - ell(F, Y[:, None]).sum(axis=0))
    other = square_loss if loss == "log" else log_loss
    wrong_loss = normalise(np.log(prior) - eta * other(F, Y[:, None]).sum(axis=0))
    for wrong in (wrong_eta, wrong_loss):
        assert np.max(np.abs(wrong - expected)) > 1e-3


def test_gts_log_loss_clips_predictions():
    """f is clipped into [clip, 1 − clip]: an expert predicting exactly 0 or 1 keeps a finite
    loss of −log(clip) when it is wrong."""
    means = np.array([[0.0, 0.5], [1.0, 0.5], [0.3, 0.5]])
    clip = 1e-3
    policy = GeneralizedTS(TableExperts(means), "log", eta=0.5, clip=clip, seed=0)
    policy.update_batch(A=np.array([0, 0, 1]), Y=np.array([1.0, 0.0, 1.0]))
    f = np.clip(means[:, [0, 0, 1]], clip, 1 - clip)
    log_w = -0.5 * log_loss(f, np.array([1.0, 0.0, 1.0])).sum(axis=1)
    assert np.max(np.abs(policy.weights() - normalise(log_w))) < 1e-12


def greedy_advice_by_hand(P, active):
    """ξ_j: expert j's argmax over the active actions, ties split evenly, (N, K)."""
    N, K = P.shape
    out = np.zeros((N, K))
    for j in range(N):
        top = max(P[j, a] for a in range(K) if active[a])
        ties = [a for a in range(K) if active[a] and P[j, a] == top]
        for a in ties:
            out[j, a] = 1.0 / len(ties)
    return out


def test_gts_action_probabilities_by_hand():
    """p(a) = (1 − γ) Σ_j w_j ξ_j(a) + γ / K_active, with a tie and a retired action."""
    means = np.array([[0.9, 0.9, 0.1, 0.2], [0.1, 0.2, 0.8, 0.3], [0.3, 0.3, 0.3, 0.95],
                      [0.5, 0.6, 0.6, 0.2]])
    policy = GeneralizedTS(TableExperts(means), "square", eta=1.5, gamma=0.3, seed=0)
    policy.update_batch(A=np.array([0, 2, 3]), Y=np.array([1.0, 0.0, 0.4]))
    w = policy.weights()
    active = np.ones(4, dtype=bool)
    expected = 0.7 * w @ greedy_advice_by_hand(means, active) + 0.3 / 4
    assert np.max(np.abs(policy.action_probabilities() - expected)) < 1e-14
    policy.retire_action(3)
    active[3] = False
    expected = 0.7 * w @ greedy_advice_by_hand(means, active) + 0.3 / 3 * active
    assert np.max(np.abs(policy.action_probabilities() - expected)) < 1e-14


# ---------------------------------------------------------------------------- EXP4
EXP4_MEANS = np.array([
    [0.9, 0.9, 0.1, 0.2],  # a tie: advice 1/2 on actions 0 and 1
    [0.1, 0.2, 0.8, 0.3],
    [0.3, 0.3, 0.3, 0.95],
    [0.5, 0.6, 0.6, 0.2],
    [0.2, 0.1, 0.2, 0.4],
])


def exp4_stream(seed, n=15):
    rng = np.random.default_rng(seed)
    A = rng.integers(4, size=n)
    Y = rng.random(n)
    Y[::3] = 0.0
    return A, Y, rng.uniform(0.15, 0.9, n), rng.dirichlet(np.ones(len(EXP4_MEANS)))


def test_exp4_weights_with_propensities_by_hand():
    """r̂_b = r 1{b = a} / p_a, ŷ_j = ξ_j · r̂ = ξ_j(a) r / p_a, w_j ∝ w_j exp(η ŷ_j)."""
    A, Y, P, prior = exp4_stream(1)
    eta = 0.4
    policy = EXP4(TableExperts(EXP4_MEANS), gamma=0.2, eta=eta, prior=prior, seed=0)
    xi = greedy_advice_by_hand(EXP4_MEANS, np.ones(4, dtype=bool))
    log_w = np.log(prior)
    for t in range(len(A)):
        if t < 5:
            policy.update(a=int(A[t]), y=Y[t], propensity=P[t])
        elif t == 5:
            policy.update_batch(A=A[5:], Y=Y[5:], propensities=P[5:])
        r_hat = np.zeros(4)
        r_hat[A[t]] = Y[t] / P[t]
        log_w = log_w + eta * xi @ r_hat
        if t < 5 or t == len(A) - 1:
            assert np.max(np.abs(policy.weights() - normalise(log_w))) < 1e-12
    # teeth: without the importance weight the weights are far from these
    r_plain = np.zeros((len(A), 4))
    r_plain[np.arange(len(A)), A] = Y
    wrong = normalise(np.log(prior) + eta * (r_plain @ xi.T).sum(axis=0))
    assert np.max(np.abs(wrong - policy.weights())) > 1e-2


@pytest.mark.parametrize("retire", [False, True])
def test_exp4_weights_without_propensities_by_hand(retire):
    """Without propensities p_a is recomputed from the weights before each round:
    p = (1 − γ) Σ_j w_j ξ_j + γ / K_active; the default η is γ/K."""
    A, Y, _, prior = exp4_stream(2)
    gamma = 0.3
    policy = EXP4(TableExperts(EXP4_MEANS), gamma=gamma, prior=prior, seed=0)
    eta = gamma / 4
    assert policy.model.eta == pytest.approx(eta, rel=1e-15)
    active = np.ones(4, dtype=bool)
    if retire:
        policy.retire_action(2)
        active[2] = False
        keep = A != 2
        A, Y = A[keep], Y[keep]
    xi = greedy_advice_by_hand(EXP4_MEANS, active)
    log_w = np.log(prior)
    for t in range(len(A)):
        w = normalise(log_w)
        p = (1 - gamma) * w @ xi + gamma * active / active.sum()
        if t <= 6:  # the policy is at this round's weights (then the rest is one batch)
            assert np.max(np.abs(policy.action_probabilities() - p)) < 1e-13
        if t < 6:
            policy.update(a=int(A[t]), y=Y[t])
        elif t == 6:
            policy.update_batch(A=A[6:], Y=Y[6:])
        log_w = log_w + eta * xi[:, A[t]] * Y[t] / p[A[t]]
        if t < 6 or t == len(A) - 1:
            assert np.max(np.abs(policy.weights() - normalise(log_w))) < 1e-12


# ---------------------------------------------------------------------------- online Laplace
def logistic_stream(rng, n, K, d, actions=None):
    X = rng.uniform(-1.5, 1.5, (n, d))
    A = rng.integers(K, size=n) if actions is None else rng.choice(actions, size=n)
    theta = rng.normal(size=(K, d)) * 1.5
    Y = (rng.random(n) < expit(np.einsum("nd,nd->n", X, theta[A]))).astype(float)
    return X, A, Y


def glmts_prior(rng, K, d):
    mean = rng.normal(size=(K, d)) * 0.5
    Q = rng.normal(size=(K, d, d))
    cov = Q @ np.swapaxes(Q, 1, 2) / d + 0.5 * np.eye(d)
    return mean, cov


@pytest.mark.parametrize("laplace_at", ["likelihood", "posterior"])
def test_glmts_online_laplace_is_one_newton_step_per_update(laplace_at):
    """GLM-TS, laplace="online": after every update (single or batch) the posterior is the
    previous Gaussian plus one Newton step of the new rows, computed here from scratch.

    ``"posterior"``: μ' = μ − (G' + P0)⁻¹ g from μ = μ0, posterior N(μ', (P0 + G')⁻¹);
    ``"likelihood"``: the same step with the ridge in place of P0 from μ = 0, and the
    posterior combines N(μ', G'⁻¹) with the prior: mean (P0 + G')⁻¹ (G' μ' + P0 μ0)."""
    rng = np.random.default_rng(3)
    K, d, ridge = 4, 3, 1e-3
    mean0, cov0 = glmts_prior(rng, K, d)
    P0 = np.linalg.inv(cov0)
    policy = GLMTS(mean0, cov0, laplace="online", laplace_at=laplace_at, ridge=ridge, seed=0)
    X, A, Y = logistic_stream(rng, 40, K, d, actions=[0, 1, 3])
    mode = mean0.copy() if laplace_at == "posterior" else np.zeros((K, d))
    G = np.zeros((K, d, d))
    gap = 0.0  # how far a step of the wrong sign would land
    steps = [(t, t + 1) for t in range(25)] + [(25, 31), (31, 40)]
    for start, stop in steps:
        if stop - start == 1:
            policy.update(X[start], int(A[start]), Y[start])
        else:
            policy.update_batch(X[start:stop], A[start:stop], Y[start:stop])
        for a in np.unique(A[start:stop]):
            rows = np.arange(start, stop)[A[start:stop] == a]
            pen = P0[a] if laplace_at == "posterior" else ridge * np.eye(d)
            old = mode[a].copy()
            mode[a], G[a] = online_logistic_step(mode[a], G[a], X[rows], Y[rows], pen)
            gap = max(gap, 2 * np.max(np.abs(mode[a] - old)))  # |(old − step) − (old + step)|
        cov = np.linalg.inv(P0 + G)
        if laplace_at == "posterior":
            mean = mode.copy()
        else:
            mean = np.einsum("kij,kj->ki", cov,
                             np.einsum("kij,kj->ki", G, mode) + np.einsum("kij,kj->ki", P0, mean0))
        assert rel_err(policy.posterior_mean(), mean) < 1e-10
        assert rel_err(policy.posterior_cov(), cov) < 1e-10
    assert gap > 0.1  # teeth: the steps are not negligible


def test_mets_online_laplace_is_one_newton_step_per_update():
    """meTS-GLM, laplace="online": the action statistics are G ← G + Σ f'(xᵀμ) x xᵀ and
    b = G μ' with μ' one ridge-penalised Newton step from the previous mode; the posterior is
    the brute-force oracle's given them (checked after every update)."""
    K, L, d = 6, 2, 2
    prior = make_prior(11, K, L, d, "dense", "per-action", "full")
    policy = MeTS(prior, seed=0, likelihood="logistic", laplace="online")
    rng = np.random.default_rng(5)
    X, A, Y = logistic_stream(rng, 30, K, d, actions=[0, 2, 5])
    mode, G, b = np.zeros((K, d)), np.zeros((K, d, d)), np.zeros((K, d))
    for x, a, y in zip(X, A, Y):
        policy.update(x, int(a), y)
        mode[a], G[a] = online_logistic_step(mode[a], G[a], x, y, 1e-3 * np.eye(d))
        b[a] = G[a] @ mode[a]
        ref = joint_oracle_from_stats(prior, G, b)
        assert rel_err(policy.posterior_mean(), ref["action_mean"]) < 1e-9
        assert rel_err(policy.posterior_cov(), ref["action_cov"]) < 1e-9
    # teeth: the modes move far from their start (0), so steps of the wrong sign would not
    # land near them
    assert np.max(np.abs(mode)) > 0.3


# ---------------------------------------------------------------------------- minibatch Laplace
@pytest.mark.parametrize("laplace_at", ["likelihood", "posterior"])
def test_glmts_minibatch_laplace_reproduced_from_the_generator(laplace_at):
    """GLM-TS, laplace="minibatch", B = 5: once an action has n > B rows, its refit uses the
    rows ``rng.integers(0, n, B)`` of its history (the policy's generator, copied here before
    each update) weighted n/B; below that, all rows with weight 1. The fit and its curvature
    are recomputed by a plain Newton solve."""
    rng = np.random.default_rng(7)
    K, d, B, ridge = 3, 2, 5, 1e-3
    mean0, cov0 = glmts_prior(rng, K, d)
    P0 = np.linalg.inv(cov0)
    policy = GLMTS(mean0, cov0, laplace="minibatch", laplace_batch=B, laplace_at=laplace_at,
                   ridge=ridge, seed=3)
    X, A, Y = logistic_stream(rng, 45, K, d, actions=[0, 2])
    G = np.zeros((K, d, d))
    theta = mean0.copy() if laplace_at == "posterior" else np.zeros((K, d))
    wrong_G = None
    for t in range(len(A)):
        gen = copy.deepcopy(policy.rng)
        policy.update(X[t], int(A[t]), Y[t])
        a = A[t]
        Xh, yh = X[: t + 1][A[: t + 1] == a], Y[: t + 1][A[: t + 1] == a]
        n, w = len(yh), None
        if n > B:
            rows = gen.integers(0, n, B)
            Xh, yh, w = Xh[rows], yh[rows], np.full(B, n / B)
        pen, center = (P0[a], mean0[a]) if laplace_at == "posterior" else (ridge * np.eye(d),
                                                                            np.zeros(d))
        theta[a], G[a] = logistic_map(Xh, yh, pen, center, w)
        if w is not None:
            wrong_G = logistic_map(Xh, yh, pen, center)[1]  # the same rows, weight 1
        cov = np.linalg.inv(P0 + G)
        if laplace_at == "posterior":
            mean = theta.copy()
        else:
            mean = np.einsum("kij,kj->ki", cov, np.einsum("kij,kj->ki", G, theta)
                             + np.einsum("kij,kj->ki", P0, mean0))
        assert rel_err(policy.posterior_mean(), mean) < 1e-8
        assert rel_err(policy.posterior_cov(), cov) < 1e-8
    # teeth: with weight 1 instead of n/B the fit and its curvature are far from these
    n_last = np.sum(A == A[-1])
    assert n_last / B >= 3
    assert rel_err(wrong_G, G[A[-1]]) > 0.1


def test_minibatch_with_every_row_is_the_exact_fit():
    """B ≥ n: every row with weight 1, so the minibatch posterior is the exact one (and no
    random number is drawn)."""
    rng = np.random.default_rng(9)
    K, d = 3, 2
    mean0, cov0 = glmts_prior(rng, K, d)
    X, A, Y = logistic_stream(rng, 30, K, d)
    exact = GLMTS(mean0, cov0, laplace="exact", seed=0)
    mini = GLMTS(mean0, cov0, laplace="minibatch", laplace_batch=30, seed=0)
    state = copy.deepcopy(mini.rng.bit_generator.state)
    for x, a, y in zip(X, A, Y):
        exact.update(x, int(a), y)
        mini.update(x, int(a), y)
    assert mini.rng.bit_generator.state == state
    assert rel_err(mini.posterior_mean(), exact.posterior_mean()) < 1e-8
    assert rel_err(mini.posterior_cov(), exact.posterior_cov()) < 1e-8


# ---------------------------------------------------------------------------- GLM baselines
def test_ucbglm_mean_and_width_by_hand():
    """UCB-GLM: θ̂_i the λ-penalised MLE of action i, V_i = λI + Σ x xᵀ; the score of action i
    is x_iᵀθ̂_i + α ‖x_i‖_{V_i⁻¹} (unobserved actions: θ̂ = 0, V = λI)."""
    rng = np.random.default_rng(12)
    K, d, lam, alpha = 4, 3, 0.7, 1.3
    policy = UCBGLM(K, d, alpha=alpha, regularization=lam, seed=0)
    X, A, Y = logistic_stream(rng, 40, K, d, actions=[0, 1, 3])
    policy.update_batch(X[:20], A[:20], Y[:20])
    for t in range(20, 40):
        policy.update(X[t], int(A[t]), Y[t])
    theta = np.zeros((K, d))
    V = np.stack([lam * np.eye(d)] * K)
    for a in (0, 1, 3):
        theta[a] = logistic_map(X[A == a], Y[A == a], lam * np.eye(d), np.zeros(d))[0]
        V[a] += X[A == a].T @ X[A == a]
    assert rel_err(policy.posterior_mean(), theta) < 1e-7
    assert rel_err(policy.posterior_cov(), np.linalg.inv(V)) < 1e-10
    x = rng.normal(size=d)
    width = np.sqrt(np.einsum("i,kij,j->k", x, np.linalg.inv(V), x))
    assert rel_err(policy.model.mean_scores(x), theta @ x) < 1e-7
    assert rel_err(policy.model.score_std(x), width) < 1e-10
    scores = theta @ x + alpha * width
    assert policy.select(x) == int(np.argmax(scores))


def test_glmts_diagonal_over_several_updates_by_hand():
    """Chapelle & Li (Algorithm 3) over a stream: m_i the MAP under N(m_i, diag(1/q_i)) of each
    batch, q_i += Σ x² f'(xᵀm_i) at the new mode."""
    rng = np.random.default_rng(13)
    K, d = 3, 2
    mean0 = rng.normal(size=(K, d)) * 0.3
    var0 = rng.uniform(0.5, 2.0, (K, d))
    policy = GLMTS(mean0, np.stack([np.diag(v) for v in var0]), diagonal=True, seed=0)
    X, A, Y = logistic_stream(rng, 24, K, d)
    m, q = mean0.copy(), 1.0 / var0
    for start, stop in [(0, 1), (1, 2), (2, 9), (9, 10), (10, 24)]:
        policy.update_batch(X[start:stop], A[start:stop], Y[start:stop])
        for a in np.unique(A[start:stop]):
            rows = np.arange(start, stop)[A[start:stop] == a]
            m[a], _ = logistic_map(X[rows], Y[rows], np.diag(q[a]), m[a])
            p = expit(X[rows] @ m[a])
            q[a] = q[a] + (X[rows] ** 2 * (p * (1 - p))[:, None]).sum(axis=0)
        assert rel_err(policy.posterior_mean(), m) < 1e-7
        assert rel_err(np.diagonal(policy.posterior_cov(), axis1=1, axis2=2), 1 / q) < 1e-7


def agreeing_argmax(policy, contexts, scores, wrong_scores):
    """``policy.select`` is the argmax of ``scores`` wherever the top two are apart, and the
    argmax of ``wrong_scores`` differs somewhere (the comparison has teeth)."""
    checked = 0
    for x, s in zip(contexts, scores):
        top2 = np.sort(s)[-2:]
        if top2[1] - top2[0] > 1e-9:
            assert policy.select(x) == int(np.argmax(s))
            checked += 1
    assert checked > 0.9 * len(contexts)
    assert np.any(np.argmax(scores, axis=1) != np.argmax(wrong_scores, axis=1))


def test_ucbglm_probability_score_by_hand():
    """score="probability": σ(x_iᵀθ̂_i) + α ‖x_i‖_{V_i⁻¹} (the meTS authors' UCB-GLM)."""
    rng = np.random.default_rng(14)
    K, d, lam, alpha = 4, 2, 1.0, 0.8
    policy = UCBGLM(K, d, alpha=alpha, regularization=lam, seed=0, score="probability")
    X, A, Y = logistic_stream(rng, 60, K, d)
    policy.update_batch(X, A, Y)
    theta, V = np.zeros((K, d)), np.stack([lam * np.eye(d)] * K)
    for a in range(K):
        theta[a] = logistic_map(X[A == a], Y[A == a], lam * np.eye(d), np.zeros(d))[0]
        V[a] += X[A == a].T @ X[A == a]
    contexts = rng.normal(size=(100, d)) * 2
    width = np.sqrt(np.einsum("ni,kij,nj->nk", contexts, np.linalg.inv(V), contexts))
    scores = expit(contexts @ theta.T) + alpha * width
    agreeing_argmax(policy, contexts, scores, contexts @ theta.T + alpha * width)


def test_linucb_abbasi_yadkori_width_by_hand():
    """width="abbasi-yadkori": the multiplier of action a is
    σ √(d log((1 + n_a/(λd))/δ)) + √λ S, times ‖x‖ under the ridge posterior N(V⁻¹ Σ y x/σ², V⁻¹),
    V = λ/σ² I + Σ x xᵀ/σ², of each action."""

    rng = np.random.default_rng(15)
    K, d, lam, sigma, delta, S = 4, 3, 2.0, 0.5, 0.1, 1.5
    policy = LinUCB(K, d, regularization=lam, noise_std=sigma, width="abbasi-yadkori",
                    delta=delta, theta_norm=S, seed=0)
    X = rng.normal(size=(80, d))
    A = rng.choice(K, size=80, p=[0.55, 0.3, 0.15, 0.0])
    Y = rng.normal(size=80)
    policy.update_batch(X, A, Y)
    n = np.bincount(A, minlength=K)
    prec = np.stack([lam / sigma**2 * np.eye(d) + X[A == a].T @ X[A == a] / sigma**2
                     for a in range(K)])
    cov = np.linalg.inv(prec)
    mean = np.einsum("kij,kj->ki", cov, np.stack([X[A == a].T @ Y[A == a] / sigma**2
                                                   for a in range(K)]))
    mult = sigma * np.sqrt(d * np.log((1 + n / (lam * d)) / delta)) + np.sqrt(lam) * S
    rule = UCB(width="abbasi-yadkori", delta=delta, regularization=lam, noise_std=sigma,
               theta_norm=S, dim=d)
    assert rel_err(rule.multiplier(n), mult) < 1e-14
    contexts = rng.normal(size=(150, d))
    std = np.sqrt(np.einsum("ni,kij,nj->nk", contexts, cov, contexts))
    scores = contexts @ mean.T + mult * std
    wrong = sigma * np.sqrt(d * np.log((1 + n / lam) / delta)) + np.sqrt(lam) * S
    agreeing_argmax(policy, contexts, scores, contexts @ mean.T + wrong * std)


def test_bernoulli_posterior_moments_by_hand():
    """Beta(α + s, β + f) with fractional rewards: mean a/(a+b), variance ab/((a+b)²(a+b+1))."""
    rng = np.random.default_rng(16)
    alpha, beta = rng.uniform(0.5, 3, 5), rng.uniform(0.5, 3, 5)
    policy = BernoulliTS(5, alpha, beta, seed=0)
    A, Y = rng.integers(5, size=40), rng.random(40)
    policy.update_batch(A[:30], Y[:30])
    for a, y in zip(A[30:], Y[30:]):
        policy.update(int(a), float(y))
    a = alpha + np.bincount(A, weights=Y, minlength=5)
    b = beta + np.bincount(A, weights=1 - Y, minlength=5)
    assert rel_err(policy.posterior_mean(), a / (a + b)) < 1e-14
    assert rel_err(policy.posterior_cov(), a * b / ((a + b) ** 2 * (a + b + 1))) < 1e-14


# ---------------------------------------------------------------------------- meTS marginals
@pytest.mark.parametrize("factored", [False, True])
@pytest.mark.parametrize("mixing", ["sparse", "negative"])
@pytest.mark.parametrize("per_action_context", [False, True])
def test_mets_marginals_and_scores_by_hand(factored, mixing, per_action_context):
    """E[θ_i] = S_i (P0_i Γ_i μ̄ + b_i), Cov[θ_i] = S_i + (S_i P0_i) Γ_i Σ̄ Γ_iᵀ (S_i P0_i)ᵀ
    (docs/math.md eq. 16) with (μ̄, Σ̄) the oracle's effect posterior (joint, or meTS-Fa's
    blocks), and the scores' mean x_iᵀE[θ_i] and width √(x_iᵀ Cov[θ_i] x_i)."""

    K, L, d, sigma = 7, 3, 2, 0.6
    prior = make_prior(21, K, L, d, mixing, "per-action", "block")
    policy = (FactoredMeTS if factored else MeTS)(prior, noise_std=sigma, seed=0)
    rng = np.random.default_rng(22)
    X = rng.uniform(-1, 1, (40, d))
    A = rng.choice(K, size=40, p=[0.3, 0.3, 0.2, 0.2, 0, 0, 0])
    Y = rng.normal(size=40)
    for x, a, y in zip(X, A, Y):
        policy.update(x, int(a), y)
    P = parts(prior)
    G, b = gaussian_stats(K, d, sigma, X, A, Y)
    if factored:
        mu_bar, blocks = factored_oracle_from_stats(prior, G, b)
        mix_cov = np.einsum("kl,lde->kde", P.B**2, blocks)
    else:
        ref = joint_oracle_from_stats(prior, G, b)
        mu_bar = ref["effect_mean"]
        Gamma = np.kron(P.B, np.eye(d)).reshape(K, d, L * d)
        mix_cov = Gamma @ ref["effect_cov"] @ np.swapaxes(Gamma, 1, 2)
    P0 = np.linalg.inv(P.S0)
    S = np.linalg.inv(P0 + G)
    mean = np.einsum("kij,kj->ki", S, np.einsum("kij,kj->ki", P0, P.B @ mu_bar) + b)
    SP = S @ P0
    cov = S + SP @ mix_cov @ np.swapaxes(SP, 1, 2)
    assert rel_err(policy.posterior_mean(), mean) < 1e-9
    assert rel_err(policy.posterior_cov(), cov) < 1e-9
    x = rng.normal(size=(K, d)) if per_action_context else rng.normal(size=d)
    xs = np.broadcast_to(x, (K, d))
    assert rel_err(policy.model.mean_scores(x), np.einsum("kd,kd->k", xs, mean)) < 1e-9
    assert rel_err(policy.model.score_std(x),
                   np.sqrt(np.einsum("kd,kde,ke->k", xs, cov, xs))) < 1e-9


# ---------------------------------------------------------------------------- estimators
def test_switch_dr_keeps_weights_equal_to_tau():
    """Switch-DR: (1/n) Σ_t [q̂_π(x_t) + 1{w_t ≤ τ} w_t (r_t − q̂(x_t, a_t))]: a weight equal to
    τ is kept (w = 0.5 / 0.25 = 2 exactly), a larger one is not."""
    from mixedts.offline import SwitchDoublyRobust  # (the offline package is newer than the rest)

    pi = np.array([[0.5, 0.5], [0.5, 0.5], [1.0, 0.0]])
    actions = np.array([0, 1, 0])
    p = np.array([0.25, 0.5, 0.25])  # weights 2, 1, 4
    r = np.array([1.0, 0.0, 1.0])
    q = np.array([[0.3, 0.6], [0.2, 0.1], [0.5, 0.4]])
    q_pi = (pi * q).sum(axis=1)
    e = r - q[np.arange(3), actions]
    w = pi[np.arange(3), actions] / p
    est = SwitchDoublyRobust(tau=2.0).estimate_policy_value(r, actions, pi, p, q)
    expected = np.mean(q_pi + np.array([1, 1, 0]) * w * e)
    assert abs(est.value - expected) < 1e-14
    assert abs(expected - np.mean(q_pi + np.array([0, 1, 0]) * w * e)) > 0.1  # teeth
