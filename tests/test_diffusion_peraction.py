"""Per-action latents (every action its own chain), the Swiss-roll environment and dTS with a
prior fitted on an environment's offline samples (docs/diffusion.md §7)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from mixedts import DiffusionPrior, DiffusionTS, ReLULink, ValidationError
from mixedts.environments import DiffusionEnvironment
from mixedts.environments.diffusion import swiss_roll
from mixedts.evaluation import PolicySpec, load_experiment
from mixedts.policies.registry import ConfigError
from test_diffusion import raw_chain, rel_err
from test_diffusion_env import CONFIGS


@pytest.fixture(autouse=True)
def own_fit_cache(tmp_path, monkeypatch):
    """Fitted priors cached on disk go to this test's folder, never the user's."""
    monkeypatch.setenv("MIXEDTS_FIT_CACHE", str(tmp_path / "fits"))


def marginal_oracle(links, covs, m, X, A, Y, noise):
    """Independent actions, each θ_i ~ N(B_L m, Σ_1 + Ω₂) (the chain marginalised, written
    plainly), then each action's own data: per-action posterior means and covariances."""
    d = len(m)
    B, mean0, cov0 = np.eye(d), None, covs[0].copy()
    for W, S in zip(links, covs[1:]):
        B = B @ W
        cov0 += B @ S @ B.T
    mean0 = B @ m
    K = int(A.max()) + 3
    P0 = np.linalg.inv(cov0)
    means, covs_out = np.empty((K, d)), np.empty((K, d, d))
    for a in range(K):
        x, y = X[A == a], Y[A == a]
        S = np.linalg.inv(P0 + x.T @ x / noise**2)
        means[a], covs_out[a] = S @ (P0 @ mean0 + x.T @ y / noise**2), S
    return means, covs_out


@pytest.mark.parametrize("L", [1, 3])
def test_per_action_linear_chains_are_independent_exact_posteriors(L):
    links, covs, m = raw_chain(4, L, 3, sparse=True)
    K, noise = 8, 0.7
    policy = DiffusionTS(DiffusionPrior(links, covs, m), n_actions=K + 2, noise_std=noise,
                         latents="per-action", refactor_every=45, seed=0)
    rng = np.random.default_rng(1)
    X, A = rng.uniform(-1, 1, (230, 3)), rng.integers(0, K, 230)
    Y = rng.normal(size=230)
    for x, a, y in zip(X[:200], A[:200], Y[:200]):
        policy.select(np.tile(x, (K + 2, 1)))  # as in a run: the chains are read every round
        policy.update(np.tile(x, (K + 2, 1)), int(a), float(y))
    # after single updates (the last refactor was at 180): every touched chain is current
    means, _ = marginal_oracle(links, covs, m, X[:200], A[:200], Y[:200], noise)
    assert rel_err(policy.posterior_mean(), means[: K + 2]) < 1e-9
    policy.update_batch(np.tile(X[200:, None], (1, K + 2, 1)), A[200:], Y[200:])
    means, covs_out = marginal_oracle(links, covs, m, X, A, Y, noise)
    assert rel_err(policy.posterior_mean(), means) < 1e-9
    assert rel_err(policy.posterior_cov(), covs_out) < 1e-9
    J = policy.joint_cov([0, 5, 9])
    assert rel_err(J[:3, :3], covs_out[0]) < 1e-9 and np.all(J[:3, 3:] == 0)
    marg = policy.latent_posterior()
    assert marg.mean.shape == (K + 2, L, 3) and marg.u_cov.shape == (K + 2, 3, 3)


def test_per_action_score_draws_have_the_exact_moments():
    links, covs, m = raw_chain(5, 2, 2)
    policy = DiffusionTS(DiffusionPrior(links, covs, m), n_actions=4, latents="per-action",
                         seed=0)
    rng = np.random.default_rng(2)
    for _ in range(30):
        a = int(rng.integers(0, 3))
        policy.update(rng.uniform(-1, 1, (4, 2)), a, float(rng.normal()))
    x = rng.uniform(-1, 1, (4, 2))
    n = 20000
    # every action's latents: the top-down sampler against Lemma 2 on its own chain
    psi = policy.model._draw_latents(n, np.random.default_rng(4))  # (n, K, L, d)
    marg = policy.latent_posterior()
    for a in range(4):
        flat = psi[:, a].reshape(n, -1)
        cov = np.cov(flat.T)
        want = np.block([[marg.cov[a, 0], np.zeros((2, 2))], [np.zeros((2, 2)), marg.cov[a, 1]]])
        sd = np.sqrt(np.diag(want))
        assert np.all(np.abs(flat.mean(axis=0) - marg.mean[a].ravel()) < 4 * sd / np.sqrt(n))
        blocks = [(slice(0, 2), slice(0, 2)), (slice(2, 4), slice(2, 4))]
        for r, c in blocks:  # each layer's covariance, in correlation units
            err = (cov[r, c] - want[r, c]) / np.outer(sd[r], sd[c])
            assert np.all(np.abs(err) < 6 / np.sqrt(n)), (a, err)
    draws = policy.model.sample_scores_many(x, n, np.random.default_rng(3))
    mean = np.einsum("kd,kd->k", x, policy.posterior_mean())
    var = np.einsum("kd,kde,ke->k", x, policy.posterior_cov(), x)
    assert np.all(np.abs(draws.mean(axis=0) - mean) < 4 * np.sqrt(var / n))
    assert np.all(np.abs(draws.var(axis=0) / var - 1) < 4 * np.sqrt(2 / n))
    # independent actions: no correlation between two actions' scores (a shared chain has it)
    assert abs(np.corrcoef(draws[:, 0], draws[:, 3])[0, 1]) < 4 / np.sqrt(n)
    shared = DiffusionTS(DiffusionPrior(links, covs, m), n_actions=4, seed=0)
    s = shared.model.sample_scores_many(x, n, np.random.default_rng(3))
    assert abs(np.corrcoef(s[:, 0], s[:, 3])[0, 1]) > 10 / np.sqrt(n)
    one = np.stack([policy.model.sample_scores(x, r) for r in
                    (np.random.default_rng(i) for i in range(3000))])
    assert np.all(np.abs(one.mean(axis=0) - mean) < 4 * np.sqrt(var / 3000))


def test_identity_relu_links_give_the_linear_per_action_posterior():
    """ReLU links equal to the identity (relu(x) − relu(−x)) take the non-linear path and
    must draw exactly what linear identity links draw."""
    d = 2
    ident = ReLULink([np.vstack([np.eye(d), -np.eye(d)]), np.hstack([np.eye(d), -np.eye(d)])],
                     [np.zeros(2 * d), np.zeros(d)])
    covs = [np.eye(d) * s for s in (0.3, 0.5, 1.0)]
    lin = DiffusionTS(DiffusionPrior([np.eye(d)] * 2, covs), n_actions=5, latents="per-action",
                      seed=1)
    non = DiffusionTS(DiffusionPrior([ident] * 2, covs), n_actions=5, latents="per-action",
                      seed=1)
    rng = np.random.default_rng(0)
    for _ in range(25):
        x = rng.uniform(-1, 1, (5, d))
        a, b = lin.select(x), non.select(x)
        assert a == b
        y = float(rng.normal())
        lin.update(x, a, y)
        non.update(x, b, y)
    assert rel_err(non.model.sample_parameters(3, np.random.default_rng(4)),
                   lin.model.sample_parameters(3, np.random.default_rng(4))) < 1e-12


def test_latents_option_is_checked():
    links, covs, m = raw_chain(1, 2, 2)
    with pytest.raises(ValidationError, match="latents must be one of"):
        DiffusionTS(DiffusionPrior(links, covs, m), n_actions=3, latents="both")


def test_per_action_glm_dts_runs_and_learns():
    links, covs, m = raw_chain(6, 2, 2)
    policy = DiffusionTS(DiffusionPrior(links, covs, m), n_actions=3, latents="per-action",
                         likelihood="logistic", seed=0)
    rng = np.random.default_rng(0)
    theta = np.array([2.0, -1.0])
    for _ in range(300):
        x = rng.uniform(-1, 1, (3, 2))
        policy.update(x, 0, float(rng.uniform() < 1 / (1 + np.exp(-x[0] @ theta))))
    assert np.linalg.norm(policy.posterior_mean()[0] - theta) < 0.8
    assert np.all(np.diag(policy.posterior_cov()[0]) < np.diag(policy.posterior_cov()[1]))


# ---------------------------------------------------------------------------- Swiss roll
def test_swiss_roll_environment_draws_actions_on_the_roll():
    env = DiffusionEnvironment(n_actions=500, dim=2, actions="swissroll", pretrain_pool=300,
                               roll_noise=0.001, seed=1)
    r, angle = np.linalg.norm(env.theta, axis=1), np.arctan2(env.theta[:, 1], env.theta[:, 0])
    # on the roll, radius = t/10 and the angle is t mod 2π (up to the noise)
    t = 10 * r
    gap = np.angle(np.exp(1j * (angle - t)))
    assert np.all(np.abs(gap) < 0.05)
    assert np.all((t > 1.5 * np.pi - 0.05) & (t < 4.5 * np.pi + 0.05))
    assert stats.kstest((t - 1.5 * np.pi) / (3 * np.pi), "uniform").pvalue > 1e-3
    # the offline pool is the same for every run; the actions are not
    other = env.reseed(2)
    assert np.array_equal(env.pretraining_samples, other.pretraining_samples)
    assert not np.array_equal(env.theta, other.theta)
    assert env.diffusion_prior is None and env.prior is None
    mean, cov = env.independent_prior()
    assert mean.shape == (500, 2) and np.allclose(cov, np.cov(swiss_roll(
        20000, np.random.default_rng(0), 0.001).T))
    # negative control: a roll with noise 0.3 is far off its curve
    noisy = DiffusionEnvironment(n_actions=500, dim=2, actions="swissroll", roll_noise=0.3,
                                 seed=1)
    t2 = 10 * np.linalg.norm(noisy.theta, axis=1)
    gap2 = np.angle(np.exp(1j * (np.arctan2(noisy.theta[:, 1], noisy.theta[:, 0]) - t2)))
    assert np.mean(np.abs(gap2) > 0.05) > 0.5


def test_swiss_roll_options_are_checked():
    with pytest.raises(ValidationError, match="dim must be 2"):
        DiffusionEnvironment(n_actions=5, dim=3, actions="swissroll")
    with pytest.raises(ValidationError, match="actions must be one of"):
        DiffusionEnvironment(n_actions=5, dim=2, actions="moons")
    with pytest.raises(ValidationError, match="pretrain_pool"):
        DiffusionEnvironment(n_actions=5, dim=2, actions="swissroll", pretrain_pool=-1)
    env = DiffusionEnvironment(n_actions=5, dim=2, actions="swissroll", pretrain_pool=50)
    with pytest.raises(ConfigError, match="no chain prior"):
        PolicySpec("DiffusionTS")(env, 0)
    with pytest.raises(ConfigError, match="offers 50 offline samples"):
        PolicySpec("DiffusionTS", {"prior": "fitted", "fit_samples": 60})(env, 0)


def test_offline_samples_come_from_the_environment_or_its_marginal_prior():
    from mixedts.environments import MixedEffectEnvironment
    from mixedts.policies.diffusion import PRIOR_DRAWS, offline_samples

    env = DiffusionEnvironment(n_actions=5, dim=2, actions="swissroll", pretrain_pool=30)
    assert offline_samples(env) is env.pretraining_samples
    mixed = MixedEffectEnvironment(4, 2, 2, seed=0)  # no offline samples: its marginal prior
    draws = offline_samples(mixed)
    mean, cov = mixed.prior.marginal_action_prior()
    assert draws.shape == (PRIOR_DRAWS, 2)
    for a in range(4):
        part = draws[a::4]
        se = np.sqrt(np.diag(cov[a]) / len(part))
        assert np.all(np.abs(part.mean(axis=0) - mean[a]) < 4 * se)
    assert np.array_equal(draws, offline_samples(mixed))  # a fixed seed

    class Bare:
        n_actions, dim, prior = 3, 2, None

    with pytest.raises(ConfigError, match="needs offline samples"):
        offline_samples(Bare())


def test_chain_pretraining_pool_is_the_marginal_law_and_leaves_the_instance():
    base = DiffusionEnvironment(n_actions=6, dim=2, n_layers=2, link="relu", hidden=5, seed=3)
    env = DiffusionEnvironment(n_actions=6, dim=2, n_layers=2, link="relu", hidden=5, seed=3,
                               pretrain_pool=4000)
    assert np.array_equal(base.theta, env.theta)  # drawn after the instance
    ref = env.diffusion_prior.sample_independent(4000, np.random.default_rng(0))
    for j in range(2):
        assert stats.ks_2samp(env.pretraining_samples[:, j], ref[:, j]).pvalue > 1e-3


def test_fitted_dts_builds_from_an_environment_and_the_fit_is_shared():
    pytest.importorskip("sklearn")
    env = DiffusionEnvironment(n_actions=4, dim=2, actions="swissroll", pretrain_pool=200,
                               seed=0)
    spec = PolicySpec("DiffusionTS", {"prior": "fitted", "fit_samples": 100, "fit_layers": 5,
                                      "fit_steps": 20, "fit_hidden": 8})
    a, b = spec(env, 0), spec(env.reseed(1), 1)
    assert a.prior is b.prior and a.model.latents == "per-action" and not a.prior.is_linear
    x = np.random.default_rng(0).uniform(-1, 1, (4, 2))
    assert 0 <= a.select(x) < 4


def test_the_swissroll_config_loads(monkeypatch):
    """The file is valid (its policies are built once on load: with a 2-step fit here)."""
    import mixedts.priors_diffusion_fit as fitmod

    real = fitmod.fit_diffusion_prior
    monkeypatch.setattr(fitmod, "_CACHE", {})  # the fake fits stay in this test
    monkeypatch.setattr(fitmod, "fit_diffusion_prior",
                        lambda x, n, **o: real(x, n, **{**o, "steps": 2, "hidden": 4}))
    exp = load_experiment(CONFIGS / "dts-swissroll.toml")
    assert exp.environment.actions == "swissroll"
    assert {"LinTS", "dTS-N10", "dTS-L40"} <= set(exp.policies)
