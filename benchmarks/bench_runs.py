"""Experiment throughput: runs stepped together (vectorize=True) against one run at a time.

Runs the fig2-linear experiment (K = 100, L = 3, d = 2, the authors' code setting) with
``--runs`` runs of ``--horizon`` rounds, once batched over runs and once one run at a time, in
this process (n_jobs = 1) so that both are timed on the same core under the same load, and
prints per policy the policy time per run-round (the ``seconds`` column: select + update) and
the ratio, plus the wall time of each whole simulation. Writes benchmarks/results_runs.md.

    .venv/bin/python benchmarks/bench_runs.py [--runs 20] [--horizon 2000] [--repeat 2]
    .venv/bin/python benchmarks/bench_runs.py --quick   # 10 runs x 1000 rounds, once, printed

The two modes alternate ``--repeat`` times and the faster of each is reported. The batched mode
steps each policy's runs with ``PolicySpec.batch`` (``LockstepPolicies``: one
``BatchedLinearGaussianModel`` built from the one-run policies, their own rules choose).
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np

from mixedts.evaluation.config import load_experiment

CONFIG = Path(__file__).resolve().parents[1] / "src" / "mixedts" / "configs" / "fig2-linear.toml"


def measure(runs: int, horizon: int, vectorize: bool) -> tuple[float, dict[str, float]]:
    exp = load_experiment(CONFIG).replace(runs=runs, horizon=horizon, vectorize=vectorize)
    t0 = time.perf_counter()
    res = exp.run(n_jobs=1, quiet=True)
    wall = time.perf_counter() - t0
    per = res.frame.groupby("policy", sort=False)["seconds"].mean() * 1e3
    return wall, per.to_dict()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--horizon", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--quick", action="store_true",
                        help="10 runs x 1000 rounds, one repeat (a smoke run)")
    parser.add_argument("--out", type=Path, default=None,
                        help="markdown output (default benchmarks/results_runs.md; with "
                             "--quick only printed unless given)")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.horizon, args.repeat = 10, 1000, 1
    if args.out is None and not args.quick:
        args.out = Path(__file__).resolve().parent / "results_runs.md"
    best = {True: (np.inf, {}), False: (np.inf, {})}
    for _ in range(args.repeat):
        for vectorize in (True, False):
            wall, per = measure(args.runs, args.horizon, vectorize)
            if wall < best[vectorize][0]:
                best[vectorize] = (wall, per)
    (wall_v, per_v), (wall_s, per_s) = best[True], best[False]
    lines = [
        "# Experiment throughput: runs batched together vs one at a time",
        "",
        f"fig2-linear (K = 100, L = 3, d = 2, pool contexts), {args.runs} runs × "
        f"{args.horizon} rounds, n_jobs = 1, best of {args.repeat} alternating repeats; "
        f"{platform.processor() or platform.machine()}, numpy {np.__version__}.",
        "",
        "| policy | one run at a time (ms / run-round) | batched (ms / run-round) | ratio |",
        "|---|---|---|---|",
    ]
    for policy in per_s:
        lines.append(f"| {policy} | {per_s[policy]:.3f} | {per_v[policy]:.3f} | "
                     f"{per_s[policy] / per_v[policy]:.1f}× |")
    lines += ["", f"Whole simulation: {wall_s:.1f} s one run at a time, {wall_v:.1f} s batched "
              f"({wall_s / wall_v:.1f}×).", ""]
    text = "\n".join(lines)
    print(text)
    if args.out is not None:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
