"""Experiment wall times of issue #15 (Speed II), measured back to back in one run.

Runs ``mixedts reproduce NAME`` (the command a user types) as subprocesses and times each:

* the pairs ``fig2-linear`` / ``fig2-logistic`` and ``movielens-linear`` / ``movielens-logistic``
  (ratio logistic / linear; the acceptance asks for ≤ 3 and ≤ 4);
* ``fig2-logistic`` with ``--jobs 1`` and ``--jobs 2`` (the speed-up; ≥ 1.8 asked);
* optionally the same pairs with another source tree (``--before SRC``, e.g. an export of the
  previous commit: ``git archive HEAD src | tar -x -C /tmp/before``), interleaved with ours.

Each experiment's results file gives the policy time per run-round; the report (markdown) goes
to ``benchmarks/results_speed2.md`` (``--out``). The machine's load average is recorded before
and after every command: the ratios are only meaningful between commands run under the same
load, which is why the two sides of a pair run back to back.

    .venv/bin/python benchmarks/bench_speed2.py --data /path/to/ml-100k [--runs 10] \\
        [--before /tmp/before/src] [--skip-movielens] [--skip-jobs] [--skip-pairs]
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SRC = HERE.parent / "src"


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def reproduce(name: str, src: Path, out: Path, runs: int | None, jobs: int | None,
              data: str | None) -> dict:
    """One ``mixedts reproduce`` in a fresh interpreter with ``src`` first on the path."""
    cmd = [sys.executable, "-m", "mixedts", "reproduce", name, "--quiet", "--out", str(out)]
    if runs is not None:
        cmd += ["--runs", str(runs)]
    if jobs is not None:
        cmd += ["--jobs", str(jobs)]
    if data is not None and name.startswith("movielens"):
        cmd += ["--data", data]
    env = {**os.environ, "PYTHONPATH": str(src)}
    before = load()
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    per_policy, simulated = {}, float("nan")
    try:
        sys.path.insert(0, str(src))
        from mixedts.evaluation.results import Results

        results = Results.read_parquet(out / "results.parquet")
        frame = results.frame
        per_policy = (frame.groupby("policy", sort=False)["seconds"].mean() * 1e6).to_dict()
        simulated = float(results.meta.get("wall_seconds", float("nan")))
    except Exception:  # pragma: no cover - pandas/pyarrow missing: wall times only
        pass
    return {"name": name, "wall": wall, "load": f"{before} → {load()}", "policy": per_policy,
            "jobs": jobs, "runs": runs, "simulated": simulated}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="the MovieLens 100K folder (ml-100k)")
    parser.add_argument("--runs", type=int, default=None, help="override the files' 50 runs")
    parser.add_argument("--before", type=Path, default=None,
                        help="another source tree (its src/ folder) to time beside this one")
    parser.add_argument("--skip-movielens", action="store_true")
    parser.add_argument("--skip-jobs", action="store_true")
    parser.add_argument("--skip-pairs", action="store_true",
                        help="only the --jobs 1 / --jobs 2 comparison")
    parser.add_argument("--repeat", type=int, default=2,
                        help="pairs of --jobs 1 / --jobs 2 runs, alternated (default 2)")
    parser.add_argument("--out", type=Path, default=HERE / "results_speed2.md")
    args = parser.parse_args()
    sides = [("after", SRC)] + ([("before", args.before)] if args.before else [])
    pairs = [] if args.skip_pairs else [("fig2-linear", "fig2-logistic")]
    if not args.skip_movielens and args.data and not args.skip_pairs:
        pairs.append(("movielens-linear", "movielens-logistic"))
    rows, jobs_rows = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for lin, log in pairs:
            for side, src in sides:
                got = [reproduce(n, src, Path(tmp) / f"{side}-{n}", args.runs, None, args.data)
                       for n in (lin, log)]
                rows.append((side, got))
                print(side, [(g["name"], round(g["wall"], 1), g["load"]) for g in got],
                      flush=True)
        if not args.skip_jobs:
            for _ in range(args.repeat):
                for jobs in (1, 2):
                    jobs_rows.append(reproduce("fig2-logistic", SRC, Path(tmp) / f"jobs{jobs}",
                                               args.runs, jobs, None))
                    print("jobs", jobs, round(jobs_rows[-1]["wall"], 1), jobs_rows[-1]["load"],
                          flush=True)
    lines = [
        "# Speed II: experiment wall times (issue #15)", "",
        f"- date: {_dt.datetime.now().isoformat(timespec='seconds')}",
        f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical "
        f"CPUs, {platform.system()} {platform.release()}",
        f"- python {platform.python_version()}, runs: {args.runs or 'the files (50)'}",
        "- load: the load average (1, 5, 15 min) before → after each command; other jobs "
        "shared the machine", "",
        f"Command: `python benchmarks/bench_speed2.py {' '.join(sys.argv[1:])}`", "",
        "## Logistic against linear, back to back", "",
        "| code | linear | wall | logistic | wall | ratio | load (linear; logistic) |",
        "|---|---|---:|---|---:|---:|---|",
    ]
    for side, (a, b) in rows:
        lines.append(f"| {side} | {a['name']} | {a['wall']:.1f} s | {b['name']} | "
                     f"{b['wall']:.1f} s | {b['wall'] / a['wall']:.2f}× | {a['load']}; "
                     f"{b['load']} |")
    lines += ["", "Policy time per run-round (µs, the results' `seconds`: select + update, "
              "the batched round divided by its runs):", ""]
    for side, pair in rows:
        for r in pair:
            cells = ", ".join(f"{k} {v:.0f}" for k, v in r["policy"].items())
            lines.append(f"- {side} {r['name']}: {cells}")
    if jobs_rows:
        lines += ["", "## Scaling with processes: fig2-logistic", "",
                  "Pairs run back to back (`--jobs 1`, then `--jobs 2`). *command*: the wall "
                  "time of `mixedts reproduce` (start-up, loading, simulation, tables and "
                  "figure); *simulation*: the simulation's own wall time (`wall_seconds` in "
                  "the results' metadata), the part that the workers share.", "",
                  "| pair | --jobs | command | simulation | load |", "|---:|---:|---:|---:|---|"]
        speedups, sim_speedups = [], []
        for k in range(0, len(jobs_rows), 2):
            one, two = jobs_rows[k], jobs_rows[k + 1]
            for r in (one, two):
                lines.append(f"| {k // 2 + 1} | {r['jobs']} | {r['wall']:.1f} s | "
                             f"{r['simulated']:.1f} s | {r['load']} |")
            speedups.append(one["wall"] / two["wall"])
            sim_speedups.append(one["simulated"] / two["simulated"])
        lines += ["", "Speed-up, command: " + ", ".join(f"{v:.2f}×" for v in speedups)
                  + f" (median {statistics.median(speedups):.2f}×); simulation: "
                  + ", ".join(f"{v:.2f}×" for v in sim_speedups)
                  + f" (median {statistics.median(sim_speedups):.2f}×)."]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
