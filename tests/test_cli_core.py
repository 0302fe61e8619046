"""The command line of a plain ``pip install mixedts`` (numpy and scipy only)."""

from __future__ import annotations

import numpy as np
import pytest

from mixedts import __main__ as entry
from mixedts import cli_core


def test_help_and_version_exit_zero(capsys):
    assert cli_core.main([]) == 0
    with pytest.raises(SystemExit) as info:
        cli_core.main(["--help"])
    assert info.value.code == 0
    assert "experiments extra" in capsys.readouterr().out
    assert cli_core.main(["version"]) == 0
    assert capsys.readouterr().out.strip() == __import__("mixedts").__version__


@pytest.mark.parametrize("command", ["run", "reproduce", "plot", "bench"])
def test_full_commands_name_their_extra_in_one_line(command, capsys):
    assert cli_core.main([command, "x.toml"]) == 2
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "pip install 'mixedts[experiments]'" in out[0]


@pytest.mark.parametrize("command", ["serve", "export"])
def test_service_commands_name_their_extras_in_one_line(command, capsys):
    assert cli_core.main([command, "policy.npz"]) == 2
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "pip install 'mixedts[experiments,service]'" in out[0]


def test_core_demo_prints_the_table_without_the_extra(capsys):
    assert cli_core.main(["demo", "--runs", "2", "--horizon", "60", "--seed", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    names = [line.split()[0] for line in lines[2:]]
    assert names == ["meTS-Lin", "meTS-Lin-Fa", "HierTS", "LinTS", "LinUCB"]
    rows = cli_core.demo(2, 60, 3)
    assert all(np.isfinite(m) and m > 0 for _, m, _ in rows)
    assert rows == cli_core.demo(2, 60, 3)  # seeded: the same table again
    assert cli_core.main(["demo", "--runs", "0"]) == 2


def test_the_entry_point_falls_back_to_the_core_command_line(monkeypatch, capsys):
    monkeypatch.setattr(entry, "has_extra", lambda: False)
    assert entry.main(["version"]) == 0
    assert entry.main(["plot", "results"]) == 2
    assert "experiments" in capsys.readouterr().out
