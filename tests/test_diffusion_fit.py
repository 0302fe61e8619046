"""The DDPM-fitted chain prior (docs/diffusion.md §7): its links are the DDPM's reverse means,
its samples follow the training distribution (a two-sample test with negative controls), the
approximate posterior it gives is close to the exact one (the paper's App. G.3), and bad input
is refused before any fitting."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

import mixedts
from mixedts import DiffusionPrior, DiffusionTS, ValidationError
from mixedts.priors_diffusion_fit import (
    fit_cached,
    fit_denoiser,
    fit_diffusion_prior,
    noise_schedule,
)

pytest.importorskip("sklearn")


@pytest.fixture(autouse=True)
def own_fit_cache(tmp_path, monkeypatch):
    """Fitted priors cached on disk go to this test's folder, never the user's."""
    monkeypatch.setenv("MIXEDTS_FIT_CACHE", str(tmp_path / "fits"))


def two_modes(n, rng):
    """The known distribution: an equal mixture of N((±2, 0), 0.3² I)."""
    sign = np.where(rng.uniform(size=n) < 0.5, -1.0, 1.0)
    return np.c_[2.0 * sign, np.zeros(n)] + 0.3 * rng.standard_normal((n, 2))


def energy_test(a, b, n_perm=300, seed=0):
    """Energy-distance two-sample permutation test (Székely & Rizzo): (statistic, p-value)."""
    z = np.vstack([a, b])
    D = cdist(z, z)
    n = len(a)

    def stat(idx):
        i, j = idx[:n], idx[n:]
        return 2 * D[np.ix_(i, j)].mean() - D[np.ix_(i, i)].mean() - D[np.ix_(j, j)].mean()

    rng = np.random.default_rng(seed)
    observed = stat(np.arange(len(z)))
    null = np.array([stat(rng.permutation(len(z))) for _ in range(n_perm)])
    return observed, (1 + np.sum(null >= observed)) / (1 + n_perm)


@pytest.fixture(scope="module")
def fitted():
    train = two_modes(1000, np.random.default_rng(0))
    return fit_denoiser(train, n_layers=20, hidden=32, steps=800, seed=0)


def test_the_links_are_the_ddpm_reverse_step_means(fitted):
    """f_ℓ (a ReLULink with the standardisation, step and noise gain folded in) equals
    (x − β_ℓ/√(1−ᾱ_ℓ) ε̂(x, ℓ))/√α_ℓ computed from the network, in the samples' units."""
    prior = fitted.prior()
    psi = np.random.default_rng(1).normal(size=(9, 2)) * 3
    for step in range(1, prior.n_layers + 1):
        want = fitted.reverse_mean(psi, step)
        assert np.max(np.abs(prior.link(step - 1, psi) - want)) < 1e-10 * (1 + np.abs(want).max())
    s2 = np.diag(fitted.scale**2)
    assert np.allclose(prior.covs[:-1], fitted.beta[:, None, None] * s2, rtol=1e-12)
    assert np.allclose(prior.covs[-1], s2) and np.allclose(prior.mean, fitted.mean)


def test_the_chain_sampler_is_ddpm_ancestral_sampling(fitted):
    """sample_independent with the same normals as a plain DDPM loop in standardised units."""
    prior, n, L = fitted.prior(), 50, fitted.n_layers
    theta = prior.sample_independent(n, np.random.default_rng(3))
    rng = np.random.default_rng(3)
    x = rng.standard_normal((n, 2))
    for step in range(L, 0, -1):
        beta, abar = fitted.beta[step - 1], np.prod(1 - fitted.beta[:step])
        eps = fitted.predict(x, step)
        x = (x - beta / np.sqrt(1 - abar) * eps) / np.sqrt(1 - beta)
        x = x + np.sqrt(beta) * rng.standard_normal((n, 2))
    assert np.max(np.abs(theta - (fitted.mean + fitted.scale * x))) < 1e-10


def test_fitted_samples_pass_a_two_sample_test_and_the_controls_fail(fitted):
    prior = fitted.prior()
    truth = two_modes(300, np.random.default_rng(11))
    stat, p = energy_test(prior.sample_independent(300, np.random.default_rng(2)), truth)
    assert p > 0.01, (stat, p)
    # negative controls: an untrained network, and the moment-matched Gaussian, both fail
    untrained = fit_diffusion_prior(two_modes(1000, np.random.default_rng(0)), n_layers=20,
                                    hidden=32, steps=1, seed=0)
    bad_stat, bad_p = energy_test(untrained.sample_independent(300, np.random.default_rng(2)),
                                  truth)
    assert bad_p < 0.01 and bad_stat > 5 * stat
    rng = np.random.default_rng(2)
    gauss = fitted.mean + fitted.scale * rng.standard_normal((300, 2))
    assert energy_test(gauss, truth)[1] < 0.01


def test_the_fit_is_a_function_of_its_seed(fitted):
    train = two_modes(300, np.random.default_rng(0))
    a = fit_diffusion_prior(train, n_layers=4, hidden=8, steps=30, seed=4).arrays()
    b = fit_diffusion_prior(train, n_layers=4, hidden=8, steps=30, seed=4).arrays()
    c = fit_diffusion_prior(train, n_layers=4, hidden=8, steps=30, seed=5).arrays()
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["link0.w0"], c["link0.w0"])
    cached = fit_cached(train, 4, hidden=8, steps=30, seed=4)
    assert cached is fit_cached(train.copy(), 4, hidden=8, steps=30, seed=4)
    assert np.array_equal(cached.arrays()["link3.w1"], a["link3.w1"])
    other = fit_cached(train, 4, hidden=8, steps=30, seed=5)  # the options are in the key
    assert np.array_equal(other.arrays()["link0.w0"], c["link0.w0"])


def test_the_disk_cache_returns_the_same_fit(tmp_path, monkeypatch):
    """A second process (an empty in-process cache) reads the fit back from disk, without
    pickle; a damaged file is refitted."""
    import mixedts.priors_diffusion_fit as fitmod

    train = two_modes(200, np.random.default_rng(1))
    first = fit_cached(train, 3, hidden=8, steps=20, seed=1)
    files = list((tmp_path / "fits").glob("*.npz"))
    assert len(files) == 1
    monkeypatch.setattr(fitmod, "_CACHE", {})
    monkeypatch.setattr(fitmod, "fit_diffusion_prior", None)  # a refit would fail
    again = fit_cached(train, 3, hidden=8, steps=20, seed=1)
    assert again is not first and all(np.array_equal(again.arrays()[k], v)
                                      for k, v in first.arrays().items())
    monkeypatch.undo()
    monkeypatch.setenv("MIXEDTS_FIT_CACHE", str(tmp_path / "fits"))
    monkeypatch.setattr(fitmod, "_CACHE", {})
    files[0].write_bytes(b"not an npz")
    refit = fit_cached(train, 3, hidden=8, steps=20, seed=1)
    assert np.array_equal(refit.arrays()["link0.w0"], first.arrays()["link0.w0"])


def test_noise_schedules_grow_and_end_in_noise():
    for L in (1, 2, 10, 40, 100):
        for kind in ("cosine", "linear"):
            beta = noise_schedule(L, kind)
            assert beta.shape == (L,) and np.all((beta > 0) & (beta < 1))
            assert np.all(np.diff(beta) >= 0) and np.prod(1 - beta) < 0.02
            assert L == 1 or beta[0] < beta[-1]


def test_the_approximate_posterior_is_close_to_the_exact_one():
    """App. G.3: a DDPM fitted on N(0, I) samples; after 100 rewards of one action, dTS's
    approximate posterior (per-action chain) has the exact N(0, I)-prior posterior's moments.
    Negative control: the same data under a DDPM fitted on N((2, 2), I) do not."""
    rng = np.random.default_rng(0)
    X = rng.uniform(-1, 1, (100, 2))
    y = X @ np.array([1.0, -0.5]) + rng.standard_normal(100)
    S = np.linalg.inv(np.eye(2) + X.T @ X)
    mean = S @ X.T @ y

    def moments(samples):
        prior = fit_diffusion_prior(samples, n_layers=10, hidden=32, steps=600, seed=0)
        policy = DiffusionTS(prior, n_actions=1, latents="per-action", seed=0)
        policy.update_batch(X, np.zeros(100, dtype=int), y)
        draws = policy.model.sample_parameters(8000, np.random.default_rng(1))[:, 0]
        return draws.mean(axis=0), np.cov(draws.T)

    m, c = moments(rng.standard_normal((1000, 2)))
    se = np.sqrt(np.diag(S) / 8000)
    assert np.all(np.abs(m - mean) < 0.05 + 4 * se), (m, mean)
    assert np.allclose(c, S, atol=0.25 * np.abs(S).max()), (c, S)
    m_bad, _ = moments(rng.standard_normal((1000, 2)) + 2.0)
    assert np.max(np.abs(m_bad - mean)) > 0.1


def test_a_fitted_prior_saves_and_loads_without_pickle(fitted, tmp_path):
    policy = DiffusionTS(fitted.prior(), n_actions=5, latents="per-action", seed=3)
    rng = np.random.default_rng(0)
    for _ in range(10):
        x = rng.uniform(-1, 1, (5, 2))
        a = policy.select(x)
        policy.update(x, a, float(rng.normal()))
    policy.save(tmp_path / "fitted.npz")
    with np.load(tmp_path / "fitted.npz", allow_pickle=False) as f:
        assert len(f.files) > 0  # readable with pickle disabled
    loaded = mixedts.load(tmp_path / "fitted.npz")
    assert loaded.model.latents == "per-action" and not loaded.prior.is_linear
    x = rng.uniform(-1, 1, (5, 2))
    assert np.array_equal(policy.model.sample_scores(x, np.random.default_rng(7)),
                          loaded.model.sample_scores(x, np.random.default_rng(7)))


@pytest.mark.parametrize("samples, match", [
    (np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, 1.0]]), r"samples contains NaN.*row 1"),
    (np.array([[0.0, np.inf], [1.0, 2.0]]), r"samples contains NaN.*row 0"),
    (np.zeros((3, 2, 2)), "samples must have 1 or 2 dimension"),
    (np.ones((1, 2)), r"samples must be \(N, d\) with N >= 2"),
    (np.c_[np.arange(5.0), np.ones(5)], "samples: column 1 is constant"),
    ([["a", "b"], ["c", "d"]], "samples"),
])
def test_bad_samples_are_refused_naming_the_argument(samples, match):
    with pytest.raises(ValidationError, match=match):
        DiffusionPrior.fit(samples, n_layers=3, steps=2)


@pytest.mark.parametrize("options, match", [
    ({"n_layers": 0}, "n_layers"),
    ({"n_layers": 3, "steps": 0}, "steps"),
    ({"n_layers": 3, "hidden": 0}, "hidden"),
    ({"n_layers": 3, "learning_rate": -1.0}, "learning_rate"),
    ({"n_layers": 3, "batch_size": 0}, "batch_size"),
    ({"n_layers": 3, "schedule": "quadratic"}, "schedule"),
])
def test_bad_options_are_refused_naming_the_option(options, match):
    with pytest.raises(ValidationError, match=match):
        DiffusionPrior.fit(np.random.default_rng(0).normal(size=(20, 2)), **options)


def test_the_denoiser_learns_the_noise_posterior_mean_of_gaussian_data():
    """On N(0, I) data x_ℓ = √ᾱ_ℓ x_0 + √(1 − ᾱ_ℓ) ε is N(0, I) too, and the optimal noise
    prediction is E[ε | x_ℓ] = √(1 − ᾱ_ℓ) x_ℓ: the trained network must be close to it at the
    middle steps (where a wrong forward process, ᾱ for √ᾱ, moves the target by 0.13–0.19);
    an untrained network is not (negative control)."""
    train = np.random.default_rng(0).standard_normal((2000, 2))
    x = np.random.default_rng(1).standard_normal((400, 2))

    def error(fit):
        abar = np.cumprod(1 - fit.beta)
        return max(np.abs(fit.predict(x, s) - np.sqrt(1 - abar[s - 1]) * x).mean()
                   for s in (4, 5, 6, 7))

    assert error(fit_denoiser(train, n_layers=10, hidden=32, steps=500, seed=0)) < 0.08
    assert error(fit_denoiser(train, n_layers=10, hidden=32, steps=1, seed=0)) > 0.15
