"""The diffusion environments, their experiment files and dTS built from them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from scipy.special import expit

from mixedts import DiffusionTS, HierTS, ReLULink
from mixedts.environments import DiffusionEnvironment, MixedEffectEnvironment
from mixedts.evaluation import PolicySpec, load_experiment
from mixedts.policies.registry import ConfigError
from test_diffusion import rel_err

CONFIGS = Path(__file__).resolve().parents[1] / "src" / "mixedts" / "configs"
DTS_CONFIGS = ["dts-fig1", "dts-fig1-shared", "dts-fig1-logistic", "dts-fig1-nonlinear",
               "lindiffts-fig2", "dts-fig1-k10000"]


def test_links_follow_the_sparsity_pattern_and_the_instance_is_a_chain_draw():
    env = DiffusionEnvironment(n_actions=7, dim=5, n_layers=3, layer_dims=(5, 3, 1), seed=2)
    for W, k in zip(env.diffusion_prior.links, (5, 3, 1)):
        assert np.all(W[:, k:] == 0) and np.all(W[:, :k] != 0)
        assert np.all(np.abs(W) <= 1)
    again = DiffusionEnvironment(n_actions=7, dim=5, n_layers=3, layer_dims=(5, 3, 1), seed=2)
    assert np.array_equal(env.theta, again.theta)  # an instance is a function of its seed
    assert not np.array_equal(env.theta, env.reseed(3).theta)
    # the Gaussian prior given to the baselines is the exact one-effect reduction
    assert rel_err(env.prior.effect_cov_full(), env.diffusion_prior.effect_cov()) < 1e-12
    mean, cov = env.independent_prior()
    assert mean.shape == (7, 5) and np.all(mean == 0)
    assert rel_err(cov, np.eye(5) + env.diffusion_prior.effect_cov()) < 1e-12


@pytest.mark.parametrize("contexts", ["per-action", "shared"])
def test_linear_rewards_are_the_truth_plus_gaussian_noise(contexts):
    env = DiffusionEnvironment(n_actions=4, dim=3, n_layers=2, noise_std=0.5, contexts=contexts,
                               seed=0)
    rounds = env.sample(3000, np.random.default_rng(1))
    X = rounds.contexts
    truth = (np.einsum("nkd,kd->nk", X, env.theta) if contexts == "per-action"
             else X @ env.theta.T)
    assert X.shape == ((3000, 4, 3) if contexts == "per-action" else (3000, 3))
    assert np.all(np.abs(X) <= 1)
    assert np.allclose(rounds.expected, truth)
    resid = (rounds.rewards - rounds.expected).ravel()
    assert stats.kstest(resid / 0.5, "norm").pvalue > 1e-3
    # negative control: the same residuals are not N(0, 1) (the noise would be σ = 1)
    assert stats.kstest(resid, "norm").pvalue < 1e-6
    x = X[0]
    assert np.allclose(env.expected_rewards(x), truth[0])


def test_logistic_rewards_are_calibrated():
    env = DiffusionEnvironment(n_actions=5, dim=2, n_layers=1, reward="logistic", seed=4,
                               action_std=0.3, latent_std=0.3)
    rounds = env.sample(20000, np.random.default_rng(0))
    y = rounds.rewards.ravel()
    assert set(np.unique(y)) <= {0.0, 1.0}
    truth = expit(np.einsum("nkd,kd->nk", rounds.contexts, env.theta))
    assert np.allclose(rounds.expected, truth)

    def worst_bin(p):
        """The largest |mean(y) − mean(p)| over 5 bins of p, in standard errors."""
        bins = np.digitize(p, np.linspace(0, 1, 6)[1:-1])
        out = 0.0
        for b in range(5):
            sel = bins == b
            if sel.sum() > 500:
                se = np.sqrt(p[sel].mean() * (1 - p[sel].mean()) / sel.sum())
                out = max(out, abs(y[sel].mean() - p[sel].mean()) / se)
        return out

    assert worst_bin(rounds.expected.ravel()) < 5
    # negative control: a link twice as steep is not what the rewards follow
    raw = np.einsum("nkd,kd->nk", rounds.contexts, env.theta).ravel()
    assert worst_bin(expit(2 * raw)) > 10


def test_relu_links_and_their_moment_matched_prior():
    env = DiffusionEnvironment(n_actions=50, dim=3, n_layers=2, link="relu", hidden=8, seed=1)
    assert all(isinstance(f, ReLULink) for f in env.diffusion_prior.links)
    assert not env.diffusion_prior.is_linear
    f = env.diffusion_prior.links[0]
    psi = np.random.default_rng(0).normal(size=(4, 3))
    by_hand = np.maximum(psi @ f.weights[0].T + f.biases[0], 0) @ f.weights[1].T + f.biases[1]
    assert np.allclose(f(psi), by_hand)
    # the moment-matched u = f_1(ψ_1): mean and covariance from 20 000 chain draws, checked
    # against a fresh estimate from the prior's own sampler
    rng = np.random.default_rng(5)
    u = np.stack([env.diffusion_prior.link(0, env.diffusion_prior.sample(1, rng, True)[1][0])
                  for _ in range(4000)])
    se = u.std(0) / np.sqrt(4000)
    assert np.all(np.abs(env.prior.effect_mean[0] - u.mean(0)) < 5 * se)
    with pytest.raises(Exception, match="linear links"):
        env.diffusion_prior.to_hierts2(50)


@pytest.mark.parametrize("field, value, key", [
    ("link", "tanh", "link"), ("contexts", "pool", "contexts"), ("layer_dims", (5,), "layer_dims"),
    ("layer_dims", (9, 2), r"layer_dims\[0\]"), ("n_layers", 0, "n_layers"),
    ("noise_std", -1.0, "noise_std"), ("hidden", 0, "hidden"),
])
def test_bad_fields_are_named(field, value, key):
    kwargs = {"n_actions": 3, "dim": 5, "n_layers": 2, field: value}
    with pytest.raises(ValueError, match=key):
        DiffusionEnvironment(**kwargs)


@pytest.mark.parametrize("name", DTS_CONFIGS)
def test_shipped_diffusion_configs_are_valid_and_run(name):
    exp = load_experiment(CONFIGS / f"{name}.toml")
    assert exp.horizon == 5000 and exp.runs == (5 if name.endswith("k10000") else 50)
    env = exp.environment
    assert isinstance(env, DiffusionEnvironment)
    assert env.contexts == ("shared" if name.endswith("shared") else "per-action")
    assert set(exp.reference["paper"]) <= set(exp.policies)
    if name in ("lindiffts-fig2", "dts-fig1-k10000"):
        assert (env.n_actions, env.dim, env.n_layers, env.layer_dims) == (
            1000 if name == "lindiffts-fig2" else 10_000, 20, 4, (20, 10, 5, 2))
        return  # its policies were built by load_experiment; a run is too long for a test
    res = exp.replace(runs=1, horizon=20, jobs=1).run(quiet=True)
    assert set(res.summary()["policy"]) == set(exp.policies)


def test_config_errors_name_the_key():
    base = {"horizon": 10, "runs": 1, "policies": {"dTS": {"type": "DiffusionTS"}}}
    with pytest.raises(ConfigError, match=r"^environment\.link: expected one of"):
        load_experiment({**base, "environment": {"type": "diffusion", "link": "tanh"}})
    with pytest.raises(ConfigError, match=r"^environment\.layer_dims"):
        load_experiment({**base, "environment": {"type": "diffusion", "layer_dims": [2]}})
    with pytest.raises(ConfigError, match=r"^policy\.reduction: expected one of"):
        PolicySpec("DiffusionTS", {"reduction": "hierts3"})


def test_dts_on_a_mixed_effect_environment_is_hierts():
    """Without a chain prior, dTS takes HierTS's one effect: the same posterior."""
    env = MixedEffectEnvironment(6, 2, 2, seed=1)
    dts = PolicySpec("DiffusionTS")(env, np.random.default_rng(0))
    hier = PolicySpec("HierTS")(env, np.random.default_rng(0))
    assert isinstance(dts, DiffusionTS) and isinstance(hier, HierTS)
    rng = np.random.default_rng(2)
    X = rng.uniform(-1, 1, (40, 2))
    A = rng.integers(6, size=40)
    Y = rng.normal(size=40)
    dts.update_batch(X, A, Y)
    hier.update_batch(X, A, Y)
    assert rel_err(dts.posterior_mean(), hier.posterior_mean()) < 1e-9
    assert rel_err(dts.posterior_cov(), hier.posterior_cov()) < 1e-9


def test_the_swiss_roll_is_the_spiral_with_a_uniform_angle():
    """Noise-free points are (t cos t, t sin t)/10 with t = 10‖θ‖, and t ~ U[1.5π, 4.5π]
    (KS test); the environment's actions are such draws. Control: a swapped spiral fails."""
    from mixedts.environments.diffusion import swiss_roll

    theta = swiss_roll(4000, np.random.default_rng(0), noise=0.0)
    t = 10.0 * np.linalg.norm(theta, axis=1)
    assert np.max(np.abs(theta - np.c_[t * np.cos(t), t * np.sin(t)] / 10.0)) < 1e-12
    assert np.max(np.abs(theta[:, ::-1] - np.c_[t * np.cos(t), t * np.sin(t)] / 10.0)) > 0.1
    assert stats.kstest(t, stats.uniform(1.5 * np.pi, 3 * np.pi).cdf).pvalue > 0.01
    assert stats.kstest(t, stats.uniform(1.5 * np.pi, 2 * np.pi).cdf).pvalue < 0.01
    env = DiffusionEnvironment(n_actions=50, dim=2, actions="swissroll", roll_noise=1e-12,
                               seed=3)
    r = 10.0 * np.linalg.norm(env.theta, axis=1)
    assert np.max(np.abs(env.theta - np.c_[r * np.cos(r), r * np.sin(r)] / 10.0)) < 1e-9
