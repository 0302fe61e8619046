"""Offline experiment files (issue #12): `mixedts reproduce sdm-synthetic` and friends."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mixedts.evaluation.offline_runs import RUNNERS, is_offline, load_offline_experiment
from mixedts.policies.registry import ConfigError

CONFIGS = Path(__file__).resolve().parents[1] / "src" / "mixedts" / "configs"
TINY = """
name = "tiny"
kind = "offline"
runner = "sdm-binary"
[settings]
n_instances = 2
n_logs = [20, 40]
K = 5
d = 2
d_eff = 2
n_test = 100
[reference.paper.opl_relative_reward]
sdm = 0.9
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "exp.toml"
    path.write_text(text)
    return path


def test_a_tiny_offline_file_runs_writes_and_compares(tmp_path):
    exp = load_offline_experiment(_write(tmp_path, TINY))
    frame = exp.run(quiet=True)
    direct = RUNNERS["sdm-binary"].load()(n_instances=2, n_logs=[20, 40], K=5, d=2, d_eff=2,
                                          n_test=100)  # fmt: skip
    assert frame.equals(direct)  # the file is only a way to call the runner
    paths = exp.write(frame, tmp_path / "out")
    assert all(p.is_file() and p.stat().st_size > 0 for p in paths.values())
    table = exp.table(frame)
    assert set(table["n"]) == {40}
    row = table[(table["metric"] == "opl_relative_reward") & (table["method"] == "sdm")]
    assert row["paper"].tolist() == [0.9]
    s = exp.summary(frame)
    mine = frame[(frame["metric"] == "opl_relative_reward") & (frame["method"] == "sdm")
                 & (frame["n"] == 40)]["value"]  # fmt: skip
    got = s[(s["metric"] == "opl_relative_reward") & (s["method"] == "sdm") & (s["n"] == 40)]
    assert got["mean"].item() == pytest.approx(mine.mean())
    assert got["se"].item() == pytest.approx(mine.std() / np.sqrt(2))


@pytest.mark.parametrize(("text", "key"), [
    (TINY.replace('runner = "sdm-binary"', 'runner = "nope"'), "runner"),
    (TINY.replace("K = 5", "KK = 5"), "settings.KK"),
    (TINY.replace('kind = "offline"', 'kind = "online"'), "kind"),
    ("horizon = 3\n" + TINY, "horizon"),
    (TINY.replace("sdm = 0.9", 'sdm = "high"'), "reference.paper.opl_relative_reward.sdm"),
])  # fmt: skip
def test_bad_files_name_the_key(tmp_path, text, key):
    with pytest.raises(ConfigError, match=rf"^{key}"):
        load_offline_experiment(_write(tmp_path, text))


def test_replace_checks_names_and_data_is_required(tmp_path):
    exp = load_offline_experiment(_write(tmp_path, TINY))
    assert exp.replace(n_instances=3).settings["n_instances"] == 3
    assert exp.replace(n_instances=None).settings["n_instances"] == 2
    with pytest.raises(ConfigError, match=r"^settings\.bogus"):
        exp.replace(bogus=1)
    ml = load_offline_experiment(_write(tmp_path, TINY.replace("sdm-binary", "sdm-movielens")
                                        .replace("d_eff = 2\n", "")))  # fmt: skip
    with pytest.raises(ConfigError, match=r"^data"):
        ml.run(quiet=True)


def test_shipped_offline_files_load():
    files = [p for p in CONFIGS.glob("*.toml") if is_offline(p)]
    assert {p.stem for p in files} >= {"sdm-synthetic", "sdm-actions", "sdm-binary"}
    for p in files:
        exp = load_offline_experiment(p)
        assert exp.runner in RUNNERS


def test_cli_reproduce_and_run_offline_files(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from mixedts.cli import app

    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "tiny-offline.toml").write_text(TINY)
    monkeypatch.setenv("MIXEDTS_CONFIGS", str(folder))
    runner = CliRunner()
    out = tmp_path / "out"
    result = runner.invoke(app, ["reproduce", "tiny-offline", "--runs", "1", "--out", str(out),
                                 "-q"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert (out / "results.parquet").is_file() and (out / "results.png").is_file()
    assert "opl relative reward" in result.output and "0.9" in result.output
    import pandas as pd

    assert pd.read_parquet(out / "results.parquet")["instance"].nunique() == 1  # --runs
    bad = runner.invoke(app, ["run", str(folder / "tiny-offline.toml"), "--horizon", "5"])
    assert bad.exit_code == 2 and "--horizon" in bad.output
