"""The mixedts command line, through typer's CliRunner on tiny experiments."""

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from mixedts import __version__
from mixedts.cli import app
from mixedts.evaluation import Results

runner = CliRunner()

TINY = """\
name = "tiny"
title = "Tiny"
horizon = 30
runs = 2
seed = 1

[environment]
type = "mixed-effect"
n_actions = 6
n_effects = 2
dim = 2
contexts = "pool"
pool_size = 10

[policies.meTS]
type = "MeTS"

[policies.LinUCB]
type = "LinUCB"

[reference.paper]
meTS = 10
LinUCB = 20
"""


@pytest.fixture
def tiny(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return path


def test_help_and_version():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("demo", "run", "reproduce", "plot", "bench", "version"):
        assert command in result.output
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0 and result.output.strip() == __version__


def test_run_writes_results_summary_and_plot(tiny, tmp_path):
    out = tmp_path / "out"
    result = runner.invoke(app, ["run", str(tiny), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "meTS" in result.output and "same order as paper" in result.output
    summary = pd.read_csv(out / "summary.csv")
    assert summary.columns.tolist()[:4] == ["policy", "round", "cum_regret_mean",
                                            "cum_regret_se"]
    assert summary["round"].max() == 30 and set(summary["policy"]) == {"meTS", "LinUCB"}
    assert (out / "results.parquet").is_file()
    pytest.importorskip("matplotlib")
    assert (out / "regret.png").read_bytes()[:4] == b"\x89PNG"
    (out / "regret.png").unlink()
    result = runner.invoke(app, ["plot", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "regret.png").is_file()


def test_run_overrides(tiny, tmp_path):
    out = tmp_path / "o"
    result = runner.invoke(app, ["run", str(tiny), "--runs", "1", "--horizon", "12", "--seed",
                                 "4", "--jobs", "1", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    summary = pd.read_csv(out / "summary.csv")
    assert summary["round"].max() == 12 and (summary["n_runs"] == 1).all()
    # the file's reference values are final regrets at its own horizon (30): not compared at 12
    assert "same order as paper" not in result.output
    assert "reference values are at n = 30" in result.output
    assert Results.read_parquet(out / "results.parquet").meta["reference"] == {}


def test_run_policies_runs_a_subset_with_the_same_results(tiny, tmp_path):
    """--policies runs only the named policies; each one's rows equal the full run's."""
    full, part = tmp_path / "full", tmp_path / "part"
    assert runner.invoke(app, ["run", str(tiny), "--out", str(full), "-q"]).exit_code == 0
    result = runner.invoke(app, ["run", str(tiny), "--policies", "LinUCB", "--out", str(part),
                                 "-q"])
    assert result.exit_code == 0, result.output
    a = pd.read_parquet(full / "results.parquet")
    b = pd.read_parquet(part / "results.parquet")
    assert set(b["policy"]) == {"LinUCB"}
    cols = ["run", "round", "action", "reward", "regret"]
    pd.testing.assert_frame_equal(a[a["policy"] == "LinUCB"][cols].reset_index(drop=True),
                                  b[cols].reset_index(drop=True))
    for bad in ("LinTS", " , "):
        result = runner.invoke(app, ["run", str(tiny), "--policies", bad])
        assert result.exit_code == 2 and "--policies" in result.output, result.output


@pytest.mark.parametrize(
    "old, new, key",
    [
        ("n_actions = 6", "n_actoins = 6", "environment.n_actoins"),
        ('type = "MeTS"', 'type = "MeTZ"', "policies.meTS.type"),
        ("horizon = 30", "horizon = -3", "horizon"),
        ("pool_size = 10", 'pool_size = "ten"', "environment.pool_size"),
    ],
)
def test_bad_config_exits_2_naming_the_key(tiny, old, new, key):
    tiny.write_text(TINY.replace(old, new))
    result = runner.invoke(app, ["run", str(tiny)])
    assert result.exit_code == 2
    assert f"error: {key}" in result.output
    assert "Traceback" not in result.output


def test_bad_arguments_exit_2(tiny, tmp_path):
    assert runner.invoke(app, ["run", str(tmp_path / "none.toml")]).exit_code == 2
    assert runner.invoke(app, ["run", str(tiny), "--runs", "0"]).exit_code == 2
    assert runner.invoke(app, ["run", str(tiny), "--runs", "many"]).exit_code == 2
    assert runner.invoke(app, ["run"]).exit_code == 2
    result = runner.invoke(app, ["reproduce", "fig99"])
    assert result.exit_code == 2 and "fig2-linear" in result.output
    assert runner.invoke(app, ["plot", str(tmp_path / "nothing")]).exit_code == 2


def test_reproduce_finds_configs(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("MIXEDTS_CONFIGS", str(tiny.parent))
    out = tmp_path / "rep"
    result = runner.invoke(app, ["reproduce", "tiny", "--runs", "1", "--horizon", "10",
                                 "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert (out / "summary.csv").is_file()


def test_shipped_configs_are_found_outside_a_checkout(tmp_path, monkeypatch):
    import mixedts
    from mixedts.cli import find_configs

    monkeypatch.delenv("MIXEDTS_CONFIGS", raising=False)
    monkeypatch.chdir(tmp_path)  # no ./configs here: the package's own files are used
    paths = find_configs("fig4")
    package = Path(mixedts.__file__).resolve().parent / "configs"
    assert [p.name for p in paths] == ["fig4-k50.toml", "fig4-k20.toml"]
    assert all(p.parent == package for p in paths)


def test_demo_and_bench_run_small(tmp_path):
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--runs", "1", "--horizon", "20", "--jobs", "1",
                                 "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert "meTS-Lin" in result.output and (out / "summary.csv").is_file()
    result = runner.invoke(app, ["bench", "-K", "5", "-L", "2", "-d", "2", "--rounds", "5"])
    assert result.exit_code == 0, result.output
    assert "LinUCB" in result.output


# ---------------------------------------------------------------------------- evaluate
def test_evaluate_on_simulated_logs(tmp_path):
    import numpy as np

    from mixedts import LinUCB, MeTS
    from mixedts.environments import MixedEffectEnvironment
    from mixedts.offline import simulate_logs

    env = MixedEffectEnvironment(6, 2, 2, seed=0)
    logs = simulate_logs(env, "uniform", 300, seed=1)
    logs.to_parquet(tmp_path / "logs.parquet")
    target = LinUCB(6, 2, alpha=0.0)
    target.update_batch(logs.contexts, logs.actions, logs.rewards)
    target.save(tmp_path / "target.npz")
    MeTS(env.prior, seed=0).save(tmp_path / "sdm.npz")
    out = tmp_path / "out"
    result = runner.invoke(app, ["evaluate", str(tmp_path / "logs.parquet"), "--policy",
                                 str(tmp_path / "target.npz"), "--reward-model",
                                 str(tmp_path / "sdm.npz"), "--estimators", "ips,dm,dr",
                                 "--out", str(out)])
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out / "estimates.csv", index_col=0)
    assert list(table.index) == ["ips", "dm", "dr"]
    truth = table["truth"].iloc[0]
    assert np.isfinite(truth) and "true value" in result.output
    assert abs(table.loc["dm", "value"] - truth) < 4 * table.loc["ips", "stderr"]
    assert (out / "estimates.png").stat().st_size > 1000
    uniform = runner.invoke(app, ["evaluate", str(tmp_path / "logs.parquet"), "--policy",
                                  "uniform", "--out", str(out)])
    assert uniform.exit_code == 0, uniform.output


def test_evaluate_names_bad_arguments(tmp_path):
    missing = runner.invoke(app, ["evaluate", str(tmp_path / "nope.parquet"), "--policy",
                                  "uniform"])
    assert missing.exit_code == 2 and "LOGS: no such file" in missing.output


def test_every_reproduce_group_names_shipped_files():
    from mixedts.cli import GROUPS, find_configs

    for group, stems in GROUPS.items():
        assert [p.stem for p in find_configs(group)] == stems, group
    with pytest.raises(Exception, match="unknown experiment"):
        find_configs("dts-fitted-typo")


def test_data_goes_only_to_the_files_that_read_it():
    """``reproduce dts-fitted --data PATH``: only dts-movielens reads data; the other files of
    the group would refuse the key (a single file still does, naming it)."""
    from mixedts.cli import _takes_data, find_configs

    takes = {p.stem: _takes_data(p) for p in find_configs("dts-fitted")}
    assert takes == {"dts-fig1-nonlinear-fitted": False, "dts-swissroll": False,
                     "dts-movielens": True}
    assert all(_takes_data(p) for p in find_configs("movielens"))
    assert not any(_takes_data(p) for p in find_configs("fig4"))
