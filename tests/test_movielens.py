"""The MovieLens environment, its configs and the CLI's --data, on small files the tests write.

The real data (``../shared/data/ml-100k``) is only read by the tests marked as such, which skip
with a reason where it is absent.
"""

from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from scipy.special import expit
from typer.testing import CliRunner

from mixedts import ValidationError
from mixedts.cli import app
from mixedts.environments import MovieLensEnvironment
from mixedts.evaluation import PolicySpec, load_experiment
from mixedts.policies.registry import ConfigError
from mixedts.structure import factorize_ratings

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"
CONFIGS = Path(__file__).resolve().parents[1] / "src" / "mixedts" / "configs"
GENRES = ["unknown", "Action", "Comedy", "Drama"]
runner = CliRunner()


def write_movielens(folder: Path, n_users=60, n_items=30, rank=2, seed=0) -> Path:
    """An ml-100k folder whose ratings come from a rank-``rank`` matrix plus noise."""
    rng = np.random.default_rng(seed)
    U = rng.normal(size=(n_users, rank))
    V = rng.normal(size=(n_items, rank))
    pairs = [(u, i) for u in range(n_users) for i in range(n_items) if rng.random() < 0.5]
    lines = []
    for t, (u, i) in enumerate(pairs):
        r = int(np.clip(np.rint(3 + U[u] @ V[i] + 0.3 * rng.normal()), 1, 5))
        lines.append(f"{u + 1}\t{i + 1}\t{r}\t{880000000 + t}")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "u.data").write_text("\n".join(lines) + "\n")
    items = []
    for i in range(n_items):
        flags = [0] * len(GENRES)
        flags[1 + i % 3] = 1
        if i % 5 == 0:
            flags[1 + (i + 1) % 3] = 1
        items.append("|".join([str(i + 1), f"Film {i + 1} (1995)", "01-Jan-1995", "", "",
                               *map(str, flags)]))
    (folder / "u.item").write_bytes(("\n".join(items) + "\n").encode("latin-1"))
    (folder / "u.genre").write_text("".join(f"{g}|{k}\n" for k, g in enumerate(GENRES)))
    return folder


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_movielens(tmp_path_factory.mktemp("ml") / "ml-100k")


def small(folder, **kw):
    return MovieLensEnvironment(str(folder), **{"n_actions": 8, "dim": 2, "n_effects": 2,
                                                "seed": 3, **kw})


def test_instance_is_the_factorisation(folder):
    env = small(folder)
    learned = env.learned
    assert env.theta.shape == (8, 2) and env.users.shape == (60, 2)
    # the truth is the factorisation of every rating with the same seeds
    from mixedts.datasets import load_movielens

    r = load_movielens(folder).ratings
    seeds = np.random.SeedSequence(0).spawn(2)
    fact = factorize_ratings(r["user_id"], r["item_id"], r["rating"], rank=2, reg=1.0,
                             n_iter=20, test_fraction=0.0, seed=seeds[0])
    np.testing.assert_array_equal(learned.item_vectors, fact.item_vectors)
    rows = np.searchsorted(learned.item_ids, env.movies)
    np.testing.assert_array_equal(env.theta, fact.item_vectors[rows])
    assert len(set(env.movies.tolist())) == 8
    # the prior's mixing rows are the run's movies' memberships; the genre prior is beside it
    full = learned.priors["learned"].mixing.toarray()
    np.testing.assert_allclose(env.prior.mixing.toarray(), full[rows])
    np.testing.assert_allclose(env.prior.mixing.toarray().sum(axis=1), 1.0)
    genre = env.priors["genre"]
    assert genre.n_effects == len(GENRES) - 1  # no movie is "unknown": no such effect
    flags = load_movielens(folder).genre_matrix(env.movies).astype(float)[:, 1:]
    np.testing.assert_allclose(genre.mixing.toarray(), flags / flags.sum(1, keepdims=True))
    assert small(folder, structure="genre").prior is not None
    np.testing.assert_allclose(small(folder, structure="genre").prior.mixing.toarray(),
                               genre.mixing.toarray())


def test_runs_draw_movies_and_users_from_their_seeds(folder):
    a, b, c = small(folder), small(folder), small(folder).reseed(4)
    np.testing.assert_array_equal(a.movies, b.movies)
    assert not np.array_equal(a.movies, c.movies)
    ra = a.sample(50, np.random.default_rng(1))
    rb = b.sample(50, np.random.default_rng(1))
    np.testing.assert_array_equal(ra.rewards, rb.rewards)
    # every context is a user's vector, shared by all actions
    assert ra.contexts.shape == (50, 2)
    assert all((np.abs(a.users - x).sum(axis=1) == 0).any() for x in ra.contexts)
    np.testing.assert_allclose(ra.expected, ra.contexts @ a.theta.T)


def test_linear_rewards_are_gaussian_around_the_truth(folder):
    env = small(folder, noise_std=0.5)
    r = env.sample(20000, np.random.default_rng(5))
    z = (r.rewards - r.expected).ravel() / 0.5
    assert stats.kstest(z, "norm").pvalue > 1e-3
    assert stats.kstest(z / 1.1, "norm").pvalue < 1e-6  # a wrong σ is detected


def test_logistic_rewards_are_bernoulli_of_the_sigmoid(folder):
    env = small(folder, reward="logistic")
    r = env.sample(20000, np.random.default_rng(6))
    np.testing.assert_allclose(r.expected, expit(r.contexts @ env.theta.T))
    assert set(np.unique(r.rewards)) <= {0.0, 1.0}
    # calibration: bin the expected rewards; the observed rates agree within 4 s.e.
    p, y = r.expected.ravel(), r.rewards.ravel()
    bins = np.quantile(p, np.linspace(0, 1, 11))
    idx = np.clip(np.searchsorted(bins, p, side="right") - 1, 0, 9)
    for k in range(10):
        m = idx == k
        se = np.sqrt(p[m].mean() * (1 - p[m].mean()) / m.sum())
        assert abs(y[m].mean() - p[m].mean()) < 4 * se + 1e-3


def test_bad_arguments_name_themselves(folder, tmp_path):
    for kw, name in [({"n_actions": 0}, "n_actions"), ({"n_actions": 31}, "n_actions"),
                     ({"structure": "tags"}, "structure"), ({"reward": "poisson"}, "reward"),
                     ({"effect_share": 1.0}, "effect_share"), ({"noise_std": -1}, "noise_std")]:
        with pytest.raises(ValidationError, match=name):
            small(folder, **kw)
    with pytest.raises(FileNotFoundError):
        MovieLensEnvironment(str(tmp_path / "nothing"), seed=0)


def test_policies_get_the_papers_priors(folder):
    env = small(folder)
    lints = PolicySpec("LinTS")(env, np.random.default_rng(0))
    mean, cov = env.independent_prior()
    # N(mean movie, diag(v)) over the whole catalogue, as in the paper
    np.testing.assert_allclose(mean, np.tile(env.learned.item_vectors.mean(axis=0), (8, 1)))
    np.testing.assert_allclose(cov, np.diag(env.learned.item_vectors.var(axis=0)))
    assert lints.n_actions == 8
    genre = PolicySpec("MeTS", {"structure": "genre"})(env, np.random.default_rng(0))
    assert genre.model.prior is env.priors["genre"]
    with pytest.raises(ConfigError, match="structure 'tags'"):
        PolicySpec("MeTS", {"structure": "tags"})(env, np.random.default_rng(0))


def _tiny_config(tmp_path, data: str | None) -> Path:
    path = tmp_path / "ml-tiny.toml"
    data_line = f'data = "{data}"\n' if data else ""
    path.write_text(f"""horizon = 30
runs = 2
seed = 1
[environment]
type = "movielens"
{data_line}n_actions = 6
dim = 2
n_effects = 2
[policies.meTS]
type = "MeTS"
[policies.meTS-genre]
type = "MeTS"
structure = "genre"
[policies.LinTS]
type = "LinTS"
""")
    return path


def test_cli_run_with_data(folder, tmp_path):
    config = _tiny_config(tmp_path, None)
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(config), "--data", str(folder), "--out", str(out),
                                 "--jobs", "1", "-q"])
    assert result.exit_code == 0, result.output
    assert (out / "summary.csv").is_file() and (out / "regret.png").is_file()
    assert "meTS-genre" in result.output
    # the same file with the data named inside (relative to the file) gives the same numbers
    config2 = _tiny_config(folder.parent, "ml-100k")
    a = load_experiment(config, {"data": str(folder)}).run(n_jobs=1, quiet=True)
    b = load_experiment(config2).run(n_jobs=1, quiet=True)
    np.testing.assert_array_equal(a.frame["reward"], b.frame["reward"])


def test_cli_bad_data_exits_2(folder, tmp_path):
    config = _tiny_config(tmp_path, None)
    result = runner.invoke(app, ["run", str(config), "--data", str(tmp_path / "missing")])
    assert result.exit_code == 2 and "--data" in result.output
    empty = tmp_path / "empty"
    empty.mkdir()
    result = runner.invoke(app, ["run", str(config), "--data", str(empty)])
    assert result.exit_code == 2 and "environment.data" in result.output
    bad = tmp_path / "bad" / "ml-100k"
    write_movielens(bad)
    (bad / "u.data").write_text("1\t1\t7\t880000000\n")
    result = runner.invoke(app, ["run", str(config), "--data", str(bad)])
    assert result.exit_code == 2 and "u.data" in result.output


def test_shipped_movielens_configs_are_valid(folder):
    names = sorted(p.stem for p in CONFIGS.glob("movielens*.toml"))
    assert {"movielens-linear", "movielens-logistic"} <= set(names)
    for name in names:
        exp = load_experiment(CONFIGS / f"{name}.toml", {"data": str(folder), "n_actions": 6})
        assert exp.runs == 50 and exp.horizon == 5000
        assert any(spec.options.get("structure") == "genre" for spec in exp.policies.values())


@pytest.mark.skipif(not (REAL / "u.data").is_file(), reason=f"MovieLens 100K not at {REAL}")
def test_real_movielens_instance():
    env = MovieLensEnvironment(str(REAL), seed=0)
    assert env.learned.item_vectors.shape == (1682, 5)
    assert env.prior.n_effects == 5 and env.priors["genre"].n_effects == 19
    r = env.sample(2000, np.random.default_rng(0))
    # a real preference signal: the best movie beats the average one by a clear margin
    gap = (r.expected.max(axis=1) - r.expected.mean(axis=1)).mean()
    assert 0.5 < gap < 5.0
