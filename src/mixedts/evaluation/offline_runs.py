"""Offline experiment files: the logged-data studies as ``mixedts reproduce NAME`` / ``run FILE``.

An offline experiment file names a *runner* (one of :data:`RUNNERS`) and its settings::

    name = "sdm-synthetic"
    kind = "offline"                 # what makes it an offline experiment file
    runner = "sdm-synthetic"         # run_sdm_synthetic (mixedts.offline.sdm_synthetic)
    title = "sDM, synthetic (Aouali et al. 2025, Fig. 2)"

    [settings]                       # keyword arguments of the runner, checked by name
    n_instances = 50
    n_logs = [100, 250, 500, 1000, 2000]
    # a table keyed by integers reaches the runner as {int: value}, e.g.
    # [settings.n_instances] "10" = 20, "100000" = 10  (run_sdm_actions: instances per K)

    [reference.paper.opl_relative_reward]   # published readings: metric → method → value
    sdm = 0.95

Running one writes ``results.parquet`` and ``results.csv`` (the runner's tidy frame: one row
per instance, x (``n`` or ``K``), method and metric), ``summary.csv`` (mean and standard error
over instances) and ``results.png`` (one panel per metric, mean ± s.e. bands against x, the
paper's readings as markers), and prints the table at the largest x beside the paper.

Every error is a :class:`~mixedts.policies.registry.ConfigError` naming the key.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..policies.registry import ConfigError

try:
    import tomllib
except ImportError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["RUNNERS", "OfflineExperiment", "Runner", "is_offline", "load_offline_experiment"]


@dataclasses.dataclass(frozen=True)
class Runner:
    """Where a runner lives and how its frame is laid out.

    Attributes
    ----------
    module, function : str
        The runner, imported when the experiment runs.
    x : str
        The frame's column plotted along the horizontal axis (``"n"`` or ``"K"``).
    data : str or None
        The runner's positional data argument, filled from the file's ``data`` key or the
        CLI's ``--data`` (None: the runner takes no data).
    """

    module: str
    function: str
    x: str = "n"
    data: str | None = None

    def load(self):
        return getattr(importlib.import_module(self.module), self.function)


#: the offline studies an experiment file may name
RUNNERS: dict[str, Runner] = {
    "sdm-synthetic": Runner("mixedts.offline.sdm_synthetic", "run_sdm_synthetic"),
    "sdm-actions": Runner("mixedts.offline.sdm_synthetic", "run_sdm_actions", x="K"),
    "sdm-binary": Runner("mixedts.offline.sdm_binary", "run_sdm_binary"),
    "sdm-movielens": Runner("mixedts.offline.sdm_movielens", "run_sdm_movielens",
                            data="ratings"),
}  # fmt: skip
_TOP = ("name", "kind", "runner", "title", "description", "data", "settings", "reference")


def is_offline(path: Path) -> bool:
    """Whether the TOML file at ``path`` is an offline experiment file (``kind = "offline"``).

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "x.toml"
    >>> _ = p.write_text('kind = "offline"\\nrunner = "sdm-binary"\\n')
    >>> is_offline(p)
    True
    """
    try:
        with open(path, "rb") as f:
            return tomllib.load(f).get("kind") == "offline"
    except (OSError, tomllib.TOMLDecodeError):
        return False


@dataclasses.dataclass
class OfflineExperiment:
    """A validated offline experiment: :meth:`run` it, then :meth:`write` its outputs.

    Build it with :func:`load_offline_experiment`.
    """

    name: str
    runner: str
    settings: dict[str, Any]
    reference: dict[str, dict[str, dict[str, float]]]
    title: str = ""
    data: str | None = None

    def replace(self, **settings: Any) -> OfflineExperiment:
        """A copy with these settings changed (None values are ignored), checked by name."""
        given = {k: v for k, v in settings.items() if v is not None}
        _check_settings(self.runner, given, "settings")
        return dataclasses.replace(self, settings={**self.settings, **given})

    def run(self, quiet: bool = False):
        """Run the runner; its tidy DataFrame."""
        spec = RUNNERS[self.runner]
        kwargs = {k: _int_keys(v) for k, v in self.settings.items()}
        if spec.data is not None:
            if self.data is None:
                raise ConfigError(f"data: {self.runner} needs its data folder (the file's "
                                  "data key or --data)")  # fmt: skip
            kwargs[spec.data] = self.data
        if "progress" in inspect.signature(spec.load()).parameters:
            kwargs["progress"] = not quiet
        return spec.load()(**kwargs)

    def summary(self, frame) -> Any:
        """Mean, standard error and count over instances, by (metric, method, x)."""
        x = RUNNERS[self.runner].x
        g = frame.groupby(["metric", "method", x])["value"]
        out = g.agg(["mean", "std", "count"]).reset_index()
        out["se"] = out["std"] / np.sqrt(out["count"])
        return out.drop(columns="std")

    def table(self, frame) -> Any:
        """The summary at the largest x, with the reference readings beside ours."""
        x = RUNNERS[self.runner].x
        s = self.summary(frame)
        last = s[s[x] == s[x].max()].copy()
        for label, metrics in self.reference.items():
            last[label] = [metrics.get(m, {}).get(meth, np.nan)
                           for m, meth in zip(last["metric"], last["method"])]  # fmt: skip
        return last.sort_values(["metric", "mean"], ascending=[True, False])

    def write(self, frame, out: Path) -> dict[str, Path]:
        """Write the tidy frame, the summary and the plot under ``out``; their paths."""
        out.mkdir(parents=True, exist_ok=True)
        paths = {"parquet": out / "results.parquet", "csv": out / "results.csv",
                 "summary": out / "summary.csv", "png": out / "results.png"}  # fmt: skip
        frame.to_parquet(paths["parquet"], index=False)
        frame.to_csv(paths["csv"], index=False)
        self.summary(frame).to_csv(paths["summary"], index=False)
        self.plot(frame, paths["png"])
        return paths

    def plot(self, frame, path: Path) -> Path:
        """One panel per metric: mean ± s.e. against x per method; the readings as markers."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        x = RUNNERS[self.runner].x
        s = self.summary(frame)
        metrics = sorted(s["metric"].unique())
        fig, axes = plt.subplots(1, len(metrics), figsize=(6 * len(metrics), 4.2), squeeze=False)
        colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        methods = list(dict.fromkeys(s["method"]))
        for ax, metric in zip(axes[0], metrics):
            part = s[s["metric"] == metric]
            for i, method in enumerate(methods):
                rows = part[part["method"] == method].sort_values(x)
                if rows.empty:
                    continue
                c = colours[i % len(colours)]
                ax.plot(rows[x], rows["mean"], "o-", color=c, ms=3, label=method)
                ax.fill_between(rows[x], rows["mean"] - rows["se"], rows["mean"] + rows["se"],
                                color=c, alpha=0.2)  # fmt: skip
                for metrics_ in self.reference.values():
                    value = metrics_.get(metric, {}).get(method)
                    if value is not None:
                        ax.plot([rows[x].max()], [value], marker="*", ms=11, color=c,
                                markeredgecolor="black", linestyle="none")  # fmt: skip
            if metric.endswith("squared_error"):
                ax.set_yscale("log")
            if x == "K":
                ax.set_xscale("log")
            ax.set(xlabel=x, ylabel=metric.replace("_", " "), title=metric.replace("_", " "))
            ax.grid(alpha=0.3)
        axes[0][-1].legend(fontsize=8, loc="best")
        refs = ", ".join(self.reference) or "none"
        fig.suptitle(f"{self.title or self.name} — mean ± s.e.; ★ = reference ({refs})",
                     fontsize=10)  # fmt: skip
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
        return path


def _int_keys(value: Any) -> Any:
    """TOML tables keyed by integers (``"1000" = 20``) as int-keyed dicts; else ``value``."""
    if isinstance(value, Mapping) and value and all(str(k).isdigit() for k in value):
        return {int(k): v for k, v in value.items()}
    return value


def _check_settings(runner: str, settings: Mapping[str, Any], where: str) -> None:
    spec = RUNNERS[runner]
    params = inspect.signature(spec.load()).parameters
    allowed = [p for p in params if p not in ("progress", spec.data)]
    for key in settings:
        if key not in allowed:
            raise ConfigError(f"{where}.{key}: unknown setting for {runner}; expected one of "
                              f"{sorted(allowed)}")  # fmt: skip


def _reference(table: Any) -> dict[str, dict[str, dict[str, float]]]:
    if table is None:
        return {}
    out: dict[str, dict[str, dict[str, float]]] = {}
    if not isinstance(table, Mapping):
        raise ConfigError("reference: expected tables [reference.LABEL.METRIC]")
    for label, metrics in table.items():
        if not isinstance(metrics, Mapping):
            raise ConfigError(f"reference.{label}: expected tables of metric → method → value")
        for metric, values in metrics.items():
            if not isinstance(values, Mapping):
                raise ConfigError(f"reference.{label}.{metric}: expected method = value")
            for method, v in values.items():
                if isinstance(v, bool) or not isinstance(v, (int, float)):
                    raise ConfigError(f"reference.{label}.{metric}.{method}: expected a "
                                      f"number, got {v!r}")  # fmt: skip
            out.setdefault(str(label), {})[str(metric)] = {str(k): float(v)
                                                           for k, v in values.items()}
    return out


def load_offline_experiment(path: Any, data: Any = None) -> OfflineExperiment:
    """Read and check an offline experiment file; ``data`` overrides its ``data`` key.

    Raises
    ------
    ConfigError
        Naming the key: an unknown top-level key or runner, a setting the runner does not
        take, a malformed reference table.

    Examples
    --------
    >>> import tempfile
    >>> p = Path(tempfile.mkdtemp()) / "tiny.toml"
    >>> _ = p.write_text('kind = "offline"\\nrunner = "sdm-binary"\\n[settings]\\nK = 5\\n')
    >>> exp = load_offline_experiment(p)
    >>> exp.runner, exp.settings
    ('sdm-binary', {'K': 5})
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            table = tomllib.load(f)
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    for key in table:
        if key not in _TOP:
            raise ConfigError(f"{key}: unknown key of an offline experiment file; expected one "
                              f"of {list(_TOP)}")  # fmt: skip
    if table.get("kind") != "offline":
        raise ConfigError(f"kind: expected \"offline\", got {table.get('kind')!r}")
    runner = table.get("runner")
    if runner not in RUNNERS:
        raise ConfigError(f"runner: unknown offline runner {runner!r}; expected one of "
                          f"{sorted(RUNNERS)}")  # fmt: skip
    settings = table.get("settings", {})
    if not isinstance(settings, Mapping):
        raise ConfigError("settings: expected a table of the runner's keyword arguments")
    _check_settings(runner, settings, "settings")
    folder = data if data is not None else table.get("data")
    if folder is not None and RUNNERS[runner].data is None:
        raise ConfigError(f"data: {runner} takes no data")
    if folder is not None:
        folder = str((path.parent / folder) if not Path(folder).is_absolute() and data is None
                     else folder)  # fmt: skip
    return OfflineExperiment(name=str(table.get("name", path.stem)), runner=runner,
                             settings=dict(settings), reference=_reference(table.get("reference")),
                             title=str(table.get("title", "")), data=folder)  # fmt: skip
