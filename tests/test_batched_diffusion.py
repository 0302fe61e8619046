"""dTS runs stepped together: ``BatchedDiffusionModel`` equals R one-run ``DiffusionTS``.

Each run of a lockstep batch must take its one-run policy's action in every round (the same
normals, drawn in the same order and shapes from the run's own generator), hold its posterior
(actions, latents, sums) to 1e-12 and refactor when it does; the joint latent covariance is
checked against the brute-force Gaussian over (ψ_1 … ψ_L, θ_1 … θ_K). Experiments give the same
results with runs stepped together or one at a time, for any plan of tasks. Models the batch
cannot hold (non-linear links, per-action latents, Bernoulli-binarised rewards) go one run at a
time. All seeds are fixed.
"""

from __future__ import annotations

import numpy as np
import pytest

from mixedts import DiffusionPrior, DiffusionTS, ReLULink, ValidationError
from mixedts.environments import DiffusionEnvironment
from mixedts.evaluation import PolicySpec, simulate
from mixedts.evaluation.lockstep import LockstepPolicies
from mixedts.evaluation.results import TIMING_COLUMNS
from mixedts.models.batched_diffusion import BatchedDiffusionModel
from oracles import gaussian_stats

RTOL = 1e-12


def rel_err(a, b):
    return np.max(np.abs(a - b)) / max(1e-300, np.max(np.abs(b)))


def chain_prior(seed, L, d, sparse=False):
    """Random links (sparse: the papers' W_ℓ = (W̄_ℓ, 0), d − ℓ + 1 columns kept), random SPD
    covariances and a non-zero top mean."""
    rng = np.random.default_rng(seed)
    links = []
    for layer in range(L):
        W = rng.uniform(-1, 1, (d, d))
        if sparse:
            W[:, max(1, d - layer):] = 0.0
        links.append(W)
    covs = []
    for _ in range(L + 1):
        Q = rng.normal(size=(d, d))
        covs.append(Q @ Q.T / d + 0.5 * np.eye(d))
    return DiffusionPrior(links, covs, rng.normal(size=d))


def make_runs(R, K, L, d, sparse, refactor_every=60, **options):
    """R one-run policies, each run its own problem (prior, noise, seed); sparse: every other
    run has the papers' sparse links."""
    return [DiffusionTS(chain_prior(10 + r, L, d, sparse and r % 2 == 0), K,
                        noise_std=0.6 + 0.4 * r, seed=100 + r, refactor_every=refactor_every,
                        **options) for r in range(R)]


def check_same_posterior(batch, policies):
    model = batch.model
    mean, cov = model.action_posterior()
    marg = model.latent_posterior()
    for r, p in enumerate(policies):
        one = p.latent_posterior()
        assert rel_err(mean[r], p.posterior_mean()) < RTOL
        assert rel_err(cov[r], p.model.posterior_cov()) < RTOL
        assert rel_err(marg.mean[r], one.mean) < RTOL
        assert rel_err(marg.cov[r], one.cov) < RTOL
        assert rel_err(model.G_act[r], p.model.G_act) < RTOL
        assert rel_err(model.eta_act[r], p.model.eta_act) < RTOL
        assert model._since[r] == p.model._since_refactor  # the same refactor cadence


def lockstep(policies, twins, n, contexts, seed=0, reward=None):
    """n rounds of the lockstep batch of ``policies`` (or a batch) against the one-run
    ``twins``: the same actions every round (asserted), the same rewards. Returns the batch."""
    batch = policies if isinstance(policies, LockstepPolicies) else \
        LockstepPolicies.from_policies(policies)
    assert isinstance(batch.model, BatchedDiffusionModel)
    rng = np.random.default_rng(seed)
    R, K, d = len(twins), twins[0].n_actions, twins[0].dim
    for t in range(n):
        per_action = contexts == "per-action" or (contexts == "mixed" and t % 2)
        X = rng.uniform(-1, 1, (R, K, d) if per_action else (R, d))
        A = batch.select(X)
        np.testing.assert_array_equal(A, [p.select(X[r]) for r, p in enumerate(twins)])
        Y = rng.normal(size=R) + 0.3 if reward is None else reward(rng, R)
        batch.update(X, A, Y)
        for r, p in enumerate(twins):
            p.update(X[r], int(A[r]), float(Y[r]))
    return batch


@pytest.mark.parametrize(("K", "L", "d", "sparse", "contexts"), [
    (7, 1, 2, False, "mixed"),
    (9, 2, 5, True, "per-action"),
    (6, 3, 3, True, "shared"),
    (5, 4, 3, False, "mixed"),
])
def test_runs_take_the_one_run_actions_and_posteriors(K, L, d, sparse, contexts):
    policies, twins = make_runs(3, K, L, d, sparse), make_runs(3, K, L, d, sparse)
    batch = lockstep(policies, twins, 150, contexts)
    check_same_posterior(batch, twins)
    # past every run's refactor (after max(60, observed actions) updates), per-action contexts
    lockstep(batch, twins, 170, "per-action", seed=1)
    check_same_posterior(batch, twins)
    assert all(p.model._since_refactor < 60 for p in twins)  # refactored every 60 updates
    # the same normals drawn in the same order and shapes: the generators are in one state
    for rng_r, p in zip(batch.rngs, twins):
        assert rng_r.bit_generator.state == p.rng.bit_generator.state
    # summaries other than draws (greedy, UCB rules) agree too
    R = len(twins)
    X = np.random.default_rng(2).uniform(-1, 1, (R, K, d))
    for r, p in enumerate(twins):
        assert rel_err(batch.model.mean_scores(X)[r], p.model.mean_scores(X[r])) < RTOL
        assert rel_err(batch.model.score_std(X)[r], p.model.score_std(X[r])) < RTOL


def test_the_comparison_can_fail():
    """Negative control: one run with another noise takes other actions and another
    posterior, so the identity above is not vacuous."""
    policies = make_runs(2, 6, 2, 3, False)
    other = DiffusionTS(policies[1].prior, 6, noise_std=3.0, seed=101, refactor_every=60)
    with pytest.raises(AssertionError):
        lockstep(policies, [make_runs(2, 6, 2, 3, False)[0], other], 60, "per-action")


def brute_force(prior, G, b):
    """Mean and covariance of z = (ψ_1 … ψ_L, θ_1 … θ_K) written plainly: one Gaussian factor
    N(child; W parent, Σ) at a time into the joint precision, then the data, then an inverse."""
    L, d, K = prior.n_layers, prior.dim, len(G)
    n = (L + K) * d
    prec, h = np.zeros((n, n)), np.zeros(n)
    P = np.linalg.inv(prior.covs)

    def blk(i):
        return slice(i * d, (i + 1) * d)

    def factor(child, parent, layer):  # N(child; W_layer parent, Σ_layer), 0-based
        prec[blk(child), blk(child)] += P[layer]
        if parent is None:
            h[blk(child)] += P[layer] @ prior.mean
            return
        W = prior.links[layer]
        prec[blk(child), blk(parent)] -= P[layer] @ W
        prec[blk(parent), blk(child)] -= W.T @ P[layer]
        prec[blk(parent), blk(parent)] += W.T @ P[layer] @ W

    factor(L - 1, None, L)  # ψ_L ~ N(m, Σ_{L+1})
    for j in range(L - 1):  # ψ_j | ψ_{j+1} (0-based)
        factor(j, j + 1, j + 1)
    for i in range(K):  # θ_i | ψ_1, plus its data
        factor(L + i, 0, 0)
        prec[blk(L + i), blk(L + i)] += G[i]
        h[blk(L + i)] += b[i]
    cov = np.linalg.inv(prec)
    return cov @ h, cov


def test_joint_latent_posterior_matches_the_brute_force_gaussian():
    K, L, d, noise = 5, 3, 2, 0.7
    priors = [chain_prior(s, L, d, sparse=s == 1) for s in range(2)]
    model = BatchedDiffusionModel(np.stack([np.stack(p.links) for p in priors]),
                                  np.stack([p.covs for p in priors]),
                                  np.stack([p.mean for p in priors]), noise, n_actions=K,
                                  refactor_every=30)
    rng = np.random.default_rng(3)
    A = rng.integers(0, K - 1, (80, 2))  # the last action never observed
    X, Y = rng.uniform(-1, 1, (80, 2, d)), rng.normal(size=(80, 2))
    for t in range(80):
        model.update(X[t], A[t], Y[t])
    mean, cov = model.effect_posterior()
    a_mean, a_cov = model.action_posterior()
    for r, p in enumerate(priors):
        G, b = gaussian_stats(K, d, noise, X[:, r], A[:, r], Y[:, r])
        ref_mean, full = brute_force(p, G, b)
        assert rel_err(mean[r], ref_mean[: L * d].reshape(L, d)) < 1e-9
        assert rel_err(cov[r], full[: L * d, : L * d]) < 1e-9
        assert rel_err(a_mean[r], ref_mean[L * d:].reshape(K, d)) < 1e-9
        blocks = np.stack([full[(L + i) * d:(L + i + 1) * d, (L + i) * d:(L + i + 1) * d]
                           for i in range(K)])
        assert rel_err(a_cov[r], blocks) < 1e-9


@pytest.mark.parametrize("options", [
    {},
    {"laplace_at": "likelihood"},
    {"laplace": "minibatch", "laplace_batch": 8},
    {"laplace": "online"},
])
def test_glm_dts_runs_take_the_one_run_actions_and_posteriors(options):
    K, L, d = 6, 2, 3
    policies = make_runs(3, K, L, d, True, refactor_every=40, likelihood="logistic", **options)
    twins = make_runs(3, K, L, d, True, refactor_every=40, likelihood="logistic", **options)

    def bernoulli(rng, R):
        return (rng.uniform(size=R) < 0.6).astype(float)

    batch = lockstep(policies, twins, 150, "mixed", reward=bernoulli)
    check_same_posterior(batch, twins)
    for rng_r, p in zip(batch.rngs, twins):
        assert rng_r.bit_generator.state == p.rng.bit_generator.state


def test_a_batch_continues_models_that_have_data():
    K, L, d = 6, 2, 3
    for kw in ({}, {"likelihood": "logistic"}):
        warm, twins = make_runs(2, K, L, d, True, **kw), make_runs(2, K, L, d, True, **kw)
        rng = np.random.default_rng(5)
        for _ in range(25):  # the same data for a run's policy and its twin
            X, A, Y = rng.uniform(-1, 1, (K, d)), rng.integers(K, size=2), rng.integers(2, size=2)
            for r in range(2):
                for p in (warm[r], twins[r]):
                    p.update(X, int(A[r]), float(Y[r]))
        batch = lockstep(warm, twins, 40, "per-action",
                         reward=lambda g, R: (g.uniform(size=R) < 0.5).astype(float))
        check_same_posterior(batch, twins)


def test_models_it_cannot_hold_go_one_run_at_a_time():
    prior = chain_prior(0, 2, 3)
    relu = DiffusionPrior([ReLULink.random(3, 4, np.random.default_rng(0)), np.eye(3)],
                          list(prior.covs))
    held = DiffusionTS(prior, 5, seed=0)
    assert BatchedDiffusionModel.from_models([held.model]) is not None
    cannot = [
        [DiffusionTS(relu, 5, seed=0)],  # non-linear links: Monte Carlo marginals
        [DiffusionTS(prior, 5, seed=0, latents="per-action")],
        [DiffusionTS(prior, 5, seed=0, likelihood="logistic", binarize=True)],
        [held, DiffusionTS(prior, 6, seed=0)],  # two K
        [held, DiffusionTS(prior, 5, seed=0, likelihood="logistic")],  # two likelihoods
    ]
    for policies in cannot:
        assert BatchedDiffusionModel.from_models([p.model for p in policies]) is None
        assert LockstepPolicies.from_policies(policies) is None
    assert BatchedDiffusionModel.from_models([held.model], max_cells=5 * 9 - 1) is None
    assert BatchedDiffusionModel.from_models([held.model], max_effect_dim=5) is None


def test_bad_input_leaves_the_batch_unchanged():
    batch = LockstepPolicies.from_policies(make_runs(2, 5, 2, 3, False))
    model = batch.model
    batch.update(np.ones((2, 3)), np.array([0, 1]), np.array([0.5, 1.0]))
    before = {k: np.array(v) for k, v in vars(model).items() if isinstance(v, np.ndarray)}
    bad = [(np.ones((2, 4)), [0, 1], [0.0, 0.0]), (np.ones((2, 3)), [0, 5], [0.0, 0.0]),
           (np.ones((2, 3)), [0, 1], [0.0, np.nan]), (np.ones((3, 3)), [0, 1], [0.0, 0.0])]
    for X, A, Y in bad:
        with pytest.raises(ValidationError):
            model.update(X, np.array(A), np.array(Y))
    for k, v in before.items():
        np.testing.assert_array_equal(getattr(model, k), v)
    with pytest.raises(ValidationError, match="links"):
        BatchedDiffusionModel(np.ones((2, 1, 3, 2)), np.stack([np.eye(3)] * 4)[None], np.zeros(
            (2, 3)), 1.0, n_actions=3)
    with pytest.raises(ValidationError, match="covs"):
        BatchedDiffusionModel(np.ones((2, 1, 3, 3)), np.ones((2, 2, 3, 3)), np.zeros((2, 3)),
                              1.0, n_actions=3)


# ---------------------------------------------------------------------------- experiments
def _same(a, b):
    import pandas as pd

    drop = list(TIMING_COLUMNS)
    pd.testing.assert_frame_equal(a.frame.drop(columns=drop), b.frame.drop(columns=drop))


def test_experiments_give_the_same_results_stepped_together_or_not():
    """A small dts-fig1 (one context per action, sparse links): dTS, HierTS-1 and GLM-dTS
    stepped together equal the one-run path, whatever the plan of tasks (one worker: one group
    per policy; two: the runs split between them)."""
    env = DiffusionEnvironment(n_actions=12, dim=3, n_layers=2, layer_dims=(3, 2), seed=0)
    specs = {"dTS": PolicySpec("DiffusionTS"),
             "HierTS": PolicySpec("DiffusionTS", {"reduction": "hierts1"}),
             "dTS-GLM": PolicySpec("DiffusionTS", {"likelihood": "logistic"})}
    logistic = DiffusionEnvironment(n_actions=12, dim=3, n_layers=2, layer_dims=(3, 2),
                                    reward="logistic", seed=0)
    for spec in specs.values():  # they do step together
        e = logistic if spec.options.get("likelihood") else env
        batch = spec.batch([e.reseed(1), e.reseed(2)], [np.random.default_rng(s) for s in (3, 4)])
        assert isinstance(batch.model, BatchedDiffusionModel)
    gauss = {k: v for k, v in specs.items() if k != "dTS-GLM"}
    vec = simulate(env, gauss, horizon=60, n_runs=16, seed=3, quiet=True)
    seq = simulate(env, gauss, horizon=60, n_runs=16, seed=3, quiet=True, vectorize=False)
    two = simulate(env, gauss, horizon=60, n_runs=16, seed=3, quiet=True, n_jobs=2)
    _same(vec, seq)
    _same(vec, two)
    f = seq.frame
    assert not np.array_equal(f[f["policy"] == "dTS"]["action"], f[f["policy"] == "HierTS"][
        "action"])
    glm = {"dTS-GLM": specs["dTS-GLM"]}
    _same(simulate(logistic, glm, horizon=60, n_runs=3, seed=1, quiet=True),
          simulate(logistic, glm, horizon=60, n_runs=3, seed=1, quiet=True, vectorize=False))
