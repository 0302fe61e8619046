"""Exact linear dTS (docs/diffusion.md §2) against the brute-force joint Gaussian over
(ψ_1 … ψ_L, θ_1 … θ_K), its one-effect equivalent (HierTS-2 = MeTS), and its sampler."""

from __future__ import annotations

import numpy as np
import pytest

import mixedts
from builders import assert_same_state, snapshot
from mixedts import DiffusionPrior, DiffusionTS, MeTS, ReLULink, ValidationError
from mixedts.models.diffusion_chain import draw_latents
from oracles import gaussian_stats

RTOL = 1e-9


def rel_err(a, b):
    return np.max(np.abs(a - b)) / max(1e-300, np.max(np.abs(b)))


def raw_chain(seed, L, d, sparse=False, mean=True):
    """Random links (sparse: W_ℓ = (W̄_ℓ, 0) keeping d_ℓ = max(1, d − ℓ + 1) columns, or with
    ``sparse="low-rank"`` one fewer, so that W_1 and Ω₂ are singular), random SPD covariances
    and top mean, as plain lists (the oracle reads these, never the prior)."""
    rng = np.random.default_rng(seed)
    links = []
    for layer in range(L):
        W = rng.uniform(-1, 1, (d, d))
        if sparse:
            W[:, max(1, d - layer - (sparse == "low-rank")):] = 0.0
        links.append(W)
    covs = []
    for _ in range(L + 1):
        Q = rng.normal(size=(d, d))
        covs.append(Q @ Q.T / d + 0.5 * np.eye(d))
    m = rng.normal(size=d) if mean else np.zeros(d)
    return links, covs, m


def chain_oracle(links, covs, m, G, b):
    """Posterior of z = (ψ_1 … ψ_L, θ_1 … θ_K) written plainly: one Gaussian factor
    N(child; W parent, Σ) at a time into the joint precision, then the data, then an inverse."""
    L, K, d = len(links), len(G), len(m)
    n = (L + K) * d
    prec, h = np.zeros((n, n)), np.zeros(n)

    def blk(i):
        return slice(i * d, (i + 1) * d)

    def factor(child, parent, W, S):
        P = np.linalg.inv(S)
        prec[blk(child), blk(child)] += P
        if parent is not None:
            prec[blk(child), blk(parent)] -= P @ W
            prec[blk(parent), blk(child)] -= W.T @ P
            prec[blk(parent), blk(parent)] += W.T @ P @ W

    factor(L - 1, None, None, covs[L])  # ψ_L ~ N(m, Σ_{L+1})
    h[blk(L - 1)] += np.linalg.inv(covs[L]) @ m
    for layer in range(2, L + 1):  # ψ_{ℓ-1} | ψ_ℓ ~ N(W_ℓ ψ_ℓ, Σ_ℓ)
        factor(layer - 2, layer - 1, links[layer - 1], covs[layer - 1])
    for i in range(K):  # θ_i | ψ_1 ~ N(W_1 ψ_1, Σ_1), plus its data
        factor(L + i, 0, links[0], covs[0])
        prec[blk(L + i), blk(L + i)] += G[i]
        h[blk(L + i)] += b[i]
    cov = np.linalg.inv(prec)
    mean = cov @ h
    return {
        "latent_mean": mean[: L * d].reshape(L, d),
        "latent_cov": np.stack([cov[blk(j), blk(j)] for j in range(L)]),
        "action_mean": mean[L * d:].reshape(K, d),
        "action_cov": np.stack([cov[blk(L + i), blk(L + i)] for i in range(K)]),
        "theta_cov": cov[L * d:, L * d:],
    }


def play(policy, rng, n, per_action=True, batch=False):
    """n rounds; returns the observations (contexts of the chosen actions, actions, rewards)."""
    K, d = policy.n_actions, policy.dim
    X, A, Y, full = [], [], [], []
    for _ in range(n):
        x = rng.uniform(-1, 1, (K, d)) if per_action else rng.uniform(-1, 1, d)
        a = policy.select(x)
        y = rng.normal() + 0.3
        if not batch:
            policy.update(x, a, y)
        full.append(x)
        X.append(x[a] if per_action else x)
        A.append(a)
        Y.append(y)
    if batch:
        policy.update_batch(np.array(full), np.array(A), np.array(Y))
    return np.array(X), np.array(A), np.array(Y)


def check_exact(policy, links, covs, m, noise, X, A, Y):
    K, d = policy.n_actions, policy.dim
    G, b = gaussian_stats(K, d, noise, X, A, Y)
    ref = chain_oracle(links, covs, m, G, b)
    marg = policy.latent_posterior()
    assert rel_err(marg.mean, ref["latent_mean"]) < RTOL
    assert rel_err(marg.cov, ref["latent_cov"]) < RTOL
    assert rel_err(policy.posterior_mean(), ref["action_mean"]) < RTOL
    assert rel_err(policy.posterior_cov(), ref["action_cov"]) < RTOL
    assert rel_err(policy.joint_cov(np.arange(K)), ref["theta_cov"]) < RTOL  # cross-covariances
    return ref


@pytest.mark.parametrize("L", [1, 2, 4])
@pytest.mark.parametrize("sparse", [False, True, "low-rank"])
def test_exact_posterior_matches_the_joint_gaussian(L, sparse):
    K, d, noise = 9, 3, 0.8
    links, covs, m = raw_chain(L, L, d, sparse)
    policy = DiffusionTS(DiffusionPrior(links, covs, m), n_actions=K, noise_std=noise, seed=3,
                         refactor_every=150)  # a refactor mid-run: both paths are checked
    policy.retire_action(7)
    policy.retire_action(8)  # never played: unobserved actions
    X, A, Y = play(policy, np.random.default_rng(L), 220)
    assert set(A) <= set(range(7)) and policy.model.store.n >= 4
    check_exact(policy, links, covs, m, noise, X, A, Y)


def test_shared_contexts_and_batch_feedback_are_exact():
    K, d, L, noise = 6, 2, 3, 1.3
    links, covs, m = raw_chain(5, L, d)
    prior = DiffusionPrior(links, covs, m)
    one = DiffusionTS(prior, n_actions=K, noise_std=noise, seed=0)
    X, A, Y = play(one, np.random.default_rng(2), 60, per_action=False)
    check_exact(one, links, covs, m, noise, X, A, Y)
    batch = DiffusionTS(prior, n_actions=K, noise_std=noise, seed=0)
    X2, A2, Y2 = play(batch, np.random.default_rng(2), 60, per_action=False, batch=True)
    check_exact(batch, links, covs, m, noise, X2, A2, Y2)
    batch.update_batch(np.array(X[:5]), A[:5], Y[:5])  # a second batch on observed actions
    check_exact(batch, links, covs, m, noise, np.concatenate([X2, X[:5]]),
                np.concatenate([A2, A[:5]]), np.concatenate([Y2, Y[:5]]))


def test_a_new_action_starts_at_the_prior_and_is_exact():
    d, L, noise = 2, 2, 1.0
    links, covs, m = raw_chain(8, L, d)
    policy = DiffusionTS(DiffusionPrior(links, covs, m), n_actions=4, noise_std=noise, seed=1)
    X, A, Y = play(policy, np.random.default_rng(0), 30)
    assert policy.add_action() == 4
    X2, A2, Y2 = play(policy, np.random.default_rng(1), 30)
    check_exact(policy, links, covs, m, noise, np.concatenate([X, X2]),
                np.concatenate([A, A2]), np.concatenate([Y, Y2]))


@pytest.mark.parametrize("L", [1, 3])
def test_exact_dts_is_mets_on_the_one_effect_prior(L):
    K, d, noise = 8, 3, 0.9
    links, covs, m = raw_chain(20 + L, L, d)
    prior = DiffusionPrior(links, covs, m)
    dts = DiffusionTS(prior, n_actions=K, noise_std=noise, seed=0)
    X, A, Y = play(dts, np.random.default_rng(4), 200)
    mets = MeTS(prior.to_hierts2(K), noise_std=noise, seed=0)
    mets.update_batch(X, A, Y)
    assert rel_err(dts.posterior_mean(), mets.posterior_mean()) < RTOL
    assert rel_err(dts.posterior_cov(), mets.posterior_cov()) < RTOL
    x = np.random.default_rng(5).uniform(-1, 1, (K, d))
    assert rel_err(dts.model.mean_scores(x), mets.model.mean_scores(x)) < RTOL
    assert rel_err(dts.model.score_std(x), mets.model.score_std(x)) < RTOL


def test_the_reductions_keep_the_actions_marginal_prior():
    links, covs, m = raw_chain(3, 4, 3)
    prior = DiffusionPrior(links, covs, m)
    B = [links[0]]
    for W in links[1:]:
        B.append(B[-1] @ W)
    omega2 = sum(B[j] @ covs[j + 1] @ B[j].T for j in range(4))
    hier2 = prior.to_hierts2(5)
    assert rel_err(hier2.effect_cov_full(), omega2) < 1e-12
    assert rel_err(hier2.effect_mean[0], B[-1] @ m) < 1e-12
    one = prior.to_hierts1()  # θ | ψ_L ~ N(B_L ψ_L, Ω₁): the same marginal, no shared ψ_1
    assert one.n_layers == 1
    assert rel_err(one.covs[0] + B[-1] @ covs[4] @ B[-1].T, covs[0] + omega2) < 1e-12
    assert rel_err(one.links[0], B[-1]) < 1e-12


# ---------------------------------------------------------------------------- sampling
def _z(sample_mean, sample_var, n, mean, var):
    """z-scores of sample means against exact means (standard errors from the exact var)."""
    return np.abs(sample_mean - mean) / np.sqrt(var / n)


def test_the_top_down_sampler_has_the_exact_moments():
    K, d, L, n = 5, 2, 3, 40_000
    links, covs, m = raw_chain(11, L, d)
    policy = DiffusionTS(DiffusionPrior(links, covs, m), n_actions=K, noise_std=0.7, seed=0)
    play(policy, np.random.default_rng(1), 25)
    draws = policy.sample_parameters(n, seed=123).reshape(n, K * d)
    mean = policy.posterior_mean().reshape(-1)
    cov = policy.joint_cov(np.arange(K))
    var = np.diag(cov)
    assert _z(draws.mean(0), None, n, mean, var).max() < 4.5
    emp = np.cov(draws.T)
    # the covariance estimate's standard error: sqrt((Σ_ij² + Σ_ii Σ_jj) / n)
    se = np.sqrt((cov**2 + np.outer(var, var)) / n)
    assert (np.abs(emp - cov) / se).max() < 5.0
    # negative control: the latents held at their mean (no chain uncertainty) must fail
    T = policy.model.store.state_of(np.arange(K))
    S_only = np.zeros_like(cov)
    for i in range(K):
        S_only[i * d:(i + 1) * d, i * d:(i + 1) * d] = T[0][i]
    assert (np.abs(emp - S_only) / se).max() > 20.0


def test_score_draws_have_the_exact_moments():
    K, d, L, n = 6, 3, 2, 3000
    links, covs, m = raw_chain(12, L, d)
    policy = DiffusionTS(DiffusionPrior(links, covs, m), n_actions=K, noise_std=1.0, seed=0)
    play(policy, np.random.default_rng(2), 15)
    x = np.random.default_rng(3).uniform(-1, 1, (K, d))
    mean, std = policy.model.mean_scores(x), policy.model.score_std(x)
    rng = np.random.default_rng(9)
    one_by_one = np.array([policy.model.sample_scores(x, rng) for _ in range(n)])
    many = policy.model.sample_scores_many(x, 20 * n, np.random.default_rng(10))
    for draws in (one_by_one, many):
        k = len(draws)
        assert _z(draws.mean(0), None, k, mean, std**2).max() < 4.5
        # Var estimate of a Gaussian: s.e. = σ² √(2/(k−1))
        assert (np.abs(draws.var(0) - std**2) / (std**2 * np.sqrt(2 / (k - 1)))).max() < 4.5
    # negative control: the conditional variance alone (latents fixed) is too small
    cond = policy.model._scores_given(x, policy.latent_posterior().u_mean)[1]
    assert (np.abs(many.var(0) - cond) / (cond * np.sqrt(2 / (20 * n - 1)))).max() > 20.0


def test_the_prior_sampler_has_the_chain_moments():
    K, d, L, n = 3, 2, 2, 20_000
    links, covs, m = raw_chain(13, L, d)
    prior = DiffusionPrior(links, covs, m)
    rng = np.random.default_rng(0)
    draws = np.stack([prior.sample(K, rng) for _ in range(n)]).reshape(n, K * d)
    hier2 = prior.to_hierts2(K)
    mean, cov = hier2.marginal_joint_prior()
    se = np.sqrt((cov**2 + np.outer(np.diag(cov), np.diag(cov))) / n)
    assert _z(draws.mean(0), None, n, mean, np.diag(cov)).max() < 4.5
    assert (np.abs(np.cov(draws.T) - cov) / se).max() < 5.0
    # negative control: HierTS-1's prior (actions independent given ψ_L) has the wrong
    # covariance between actions
    one = prior.to_hierts1()
    B = one.links[0]
    shared = B @ one.covs[1] @ B.T
    wrong = np.kron(np.ones((K, K)), shared) + np.kron(np.eye(K), one.covs[0])
    assert (np.abs(np.cov(draws.T) - wrong) / se).max() > 20.0


# ---------------------------------------------------------------------------- inputs, state
@pytest.mark.parametrize("links, covs, field", [
    ([np.eye(2), np.eye(3)], [np.eye(2)] * 3, r"links\[1\]"),
    ([np.eye(2)], [np.eye(2), -np.eye(2)], r"covs\[1\] must be positive definite"),
    ([np.eye(2)], [np.eye(2), np.array([[1.0, 2.0], [0.0, 1.0]])], r"covs\[1\] must be symm"),
    ([np.array([[1.0, np.nan], [0.0, 1.0]])], [np.eye(2)] * 2, r"links\[0\] contains NaN"),
    ([np.eye(2)], [np.eye(2)] * 3, r"covs must hold L \+ 1 = 2"),
    ([np.eye(2)], [np.eye(2), np.eye(3)], r"covs\[1\] must have shape \(2, 2\)"),
    ([], [np.eye(2)], "links must be a non-empty list"),
])
def test_bad_priors_are_refused_naming_the_field(links, covs, field):
    with pytest.raises(ValidationError, match=field):
        DiffusionPrior(links, covs)


def test_bad_input_leaves_state_and_rng_untouched():
    links, covs, m = raw_chain(1, 2, 3)
    policy = DiffusionTS(DiffusionPrior(links, covs, m), n_actions=5, seed=2)
    play(policy, np.random.default_rng(0), 10)
    before = snapshot(policy)
    bad = [
        lambda: policy.select(np.ones(4)),
        lambda: policy.select(np.full((5, 3), np.nan)),
        lambda: policy.update(np.ones(3), 5, 1.0),
        lambda: policy.update(np.ones(3), 0, np.inf),
        lambda: policy.update_batch(np.ones((2, 3)), np.array([0, 9]), np.ones(2)),
        lambda: policy.update_batch(np.ones((2, 3)), np.array([0, 1]), np.ones(3)),
        lambda: policy.joint_cov([0, 7]),
    ]
    for call in bad:
        with pytest.raises(ValueError):
            call()
        assert_same_state(before, snapshot(policy))
    with pytest.raises(ValidationError, match="n_actions"):
        DiffusionTS(DiffusionPrior(links, covs), n_actions=0)
    with pytest.raises(ValidationError, match="prior must be a DiffusionPrior"):
        DiffusionTS(policy.prior.to_hierts2(5), n_actions=5)


@pytest.mark.parametrize("likelihood", ["gaussian", "logistic"])
def test_save_load_continues_bit_identically(likelihood, tmp_path):
    links, covs, m = raw_chain(2, 3, 2, sparse=True)
    policy = DiffusionTS(DiffusionPrior(links, covs, m), n_actions=6, seed=5,
                         likelihood=likelihood, refactor_every=7)
    rng = np.random.default_rng(0)

    def rounds(p, r, n=12):
        out = []
        for _ in range(n):
            x = r.uniform(-1, 1, (6, 2))
            a = p.select(x)
            p.update(x, a, float(r.uniform() < 0.5))
            out.append(a)
        return out

    rounds(policy, rng)
    policy.add_action()
    policy.retire_action(2)
    policy.save(tmp_path / "dts.npz")
    loaded = mixedts.load(tmp_path / "dts.npz")
    assert type(loaded) is DiffusionTS and loaded.n_actions == 7
    assert_same_state(snapshot(policy), snapshot(loaded))

    def rounds7(p, r):
        out = []
        for _ in range(15):
            x = r.uniform(-1, 1, (7, 2))
            a = p.select(x)
            p.update(x, a, float(r.uniform() < 0.5))
            out.append(a)
        return out

    assert rounds7(policy, np.random.default_rng(1)) == rounds7(loaded, np.random.default_rng(1))
    assert_same_state(snapshot(policy), snapshot(loaded))
    assert np.array_equal(policy.posterior_mean(), loaded.posterior_mean())


# ---------------------------------------------------------------------------- non-linear links
def test_nonlinear_links_follow_the_papers_approximation():
    """Aouali (2025) Eqs. 9–12 written plainly (a loop over the actions, the W's dropped, f_ℓ
    in the means) from the recorded data; the model's chain and its draws at z = 0 match."""
    K, d, noise = 6, 3, 0.8
    rng = np.random.default_rng(0)
    links = [ReLULink.random(d, 7, rng) for _ in range(2)]
    covs = [np.eye(d) * s for s in (0.5, 1.0, 2.0)]
    policy = DiffusionTS(DiffusionPrior(links, covs), n_actions=K, noise_std=noise, seed=1)
    X, A, Y = play(policy, np.random.default_rng(1), 40)
    G, b = gaussian_stats(K, d, noise, X, A, Y)
    P = [np.linalg.inv(c) for c in covs]
    G1, B1 = np.zeros((d, d)), np.zeros(d)
    for a in range(K):  # Eq. 11 (an unobserved action adds nothing)
        S = np.linalg.inv(P[0] + G[a])
        G1 += P[0] - P[0] @ S @ P[0]
        B1 += P[0] @ S @ b[a]
    Sbar1 = np.linalg.inv(P[1] + G1)  # Eq. 10
    G2, B2 = P[1] - P[1] @ Sbar1 @ P[1], P[1] @ Sbar1 @ B1  # Eq. 12
    Sbar2 = np.linalg.inv(P[2] + G2)
    chain = policy.model.chain
    assert rel_err(chain.Sbar, np.stack([Sbar1, Sbar2])) < RTOL
    assert rel_err(chain.C @ np.swapaxes(chain.C, 1, 2), chain.Sbar) < RTOL
    psi = draw_latents(chain, policy.prior.link, np.zeros((1, 2, d)))[0]
    psi2 = Sbar2 @ B2
    psi1 = Sbar1 @ (P[1] @ links[1](psi2) + B1)
    assert rel_err(psi, np.stack([psi1, psi2])) < RTOL
    # the scores given ψ_1: θ_a | ψ_1 ~ N(S_a (P_1 f_1(ψ_1) + b_a), S_a) (Eq. 9)
    x = np.random.default_rng(2).uniform(-1, 1, (K, d))
    mean, var = policy.model._scores_given(x, links[0](psi1))
    for a in range(K):
        S = np.linalg.inv(P[0] + G[a])
        assert abs(mean[a] - x[a] @ S @ (P[0] @ links[0](psi1) + b[a])) < 1e-9 * (1 + abs(mean[a]))
        assert abs(var[a] - x[a] @ S @ x[a]) < 1e-12
