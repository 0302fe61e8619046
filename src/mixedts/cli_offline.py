"""``mixedts reproduce`` / ``run`` for offline experiment files (``kind = "offline"``).

The logged-data studies (the sDM paper's synthetic, number-of-actions, binary and MovieLens
experiments) are described by files of :mod:`mixedts.evaluation.offline_runs`; this module
prints their table beside the paper's readings and writes their outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .evaluation.offline_runs import RUNNERS, OfflineExperiment, load_offline_experiment
from .policies.registry import ConfigError

#: options of the regret experiments that an offline file cannot take
NOT_OFFLINE = ("--horizon", "--jobs", "--scheduler", "--policies", "--vectorize")


def load(path: Path, runs: int | None, seed: int | None, data: Path | None,
         unused: dict[str, Any]) -> OfflineExperiment:  # fmt: skip
    """The offline experiment at ``path``; ``--runs`` sets its instances, ``--seed`` its seed."""
    for option, value in unused.items():
        if value is not None:
            raise ConfigError(f"{option}: does not apply to the offline experiment {path.stem} "
                              "(it has instances, not runs of rounds)")  # fmt: skip
    if runs is not None and runs < 1:
        raise ConfigError(f"--runs: must be >= 1, got {runs}")
    exp = load_offline_experiment(path, None if data is None else str(data))
    try:
        return exp.replace(n_instances=runs, seed=seed)
    except ConfigError as exc:
        raise ConfigError(f"--runs/--seed: {exc}") from None


def print_table(exp: OfflineExperiment, frame, console) -> None:
    """The summary at the largest x, ours ± s.e. and the references, by metric."""
    import numpy as np
    from rich.table import Table

    x = RUNNERS[exp.runner].x
    table = exp.table(frame)
    labels = list(exp.reference)
    for metric, part in table.groupby("metric", sort=True):
        t = Table(title=f"{exp.title or exp.name}: {metric.replace('_', ' ')}",
                  caption=f"at {x} = {part[x].iloc[0]}, mean ± s.e. over "
                          f"{int(part['count'].max())} instances")  # fmt: skip
        t.add_column("method")
        for col in ("ours", "± s.e.", *labels):
            t.add_column(col, justify="right")
        for r in part.itertuples():
            refs = [getattr(r, label) for label in labels]
            t.add_row(r.method, f"{r.mean:.4g}", f"{r.se:.2g}",
                      *("" if v is None or np.isnan(v) else f"{v:.3g}" for v in refs))
        console.print(t)


def run(exp: OfflineExperiment, out: Path, quiet: bool, console) -> Path:
    """Run, print, write; the output folder."""
    import time

    console.print(f"{exp.name}: offline runner {exp.runner} with {exp.settings}")
    start = time.perf_counter()
    frame = exp.run(quiet=quiet)
    print_table(exp, frame, console)
    written = exp.write(frame, out)
    console.print(f"wall time {time.perf_counter() - start:.1f} s")
    console.print("wrote " + ", ".join(str(p) for p in written.values()))
    return out
