#!/usr/bin/env python
"""The MovieLens experiment of sDM (Aouali, Brunel, Rohde & Korba, AISTATS 2025, §6.2, Fig. 2).

ML-100K in place of the paper's ML-1M: an uncentered rank-5 ALS of the ratings is the truth
(user vectors = contexts, movie vectors = θ), K = 1000 random movies per instance, rewards
N(x_uᵀθ_a, 1), uniform logging; sDM's prior is a 5-component Gaussian mixture fitted on the
instance's K movie vectors, DM (Bayes)'s is N(mean movie, diag(v)) of the same vectors (see
:mod:`mixedts.offline.sdm_movielens`). OPE: squared error of the ε-greedy (ε = 0.5) target's
value; OPL: relative reward of the learned policy, on every user.

Usage:
    python examples/sdm_movielens.py [PATH/TO/ml-100k] [--instances 50]
        [--n 100 250 500 1000 2000] [--seed 0] [--no-control] [--learner-instances 20]
        [--out results/sdm_movielens] [--docs-img docs/img/sdm_movielens.png]

Also runs the negative control (the same instances with the mixture memberships shuffled across
the movies: "sDM, shuffled") and, on the first ``--learner-instances`` instances at the largest
n only, the IPS-family learners (softmax policies maximising IPS / snIPS / DR / MIPS).
Writes ``results.csv``, ``results.parquet`` (with pyarrow), ``summary.csv`` and
``sdm_movielens.png`` under ``--out`` and copies the PNG to ``--docs-img`` (``''`` skips).
Without the data it prints why and exits 0. Needs pandas, scikit-learn and matplotlib.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time
from pathlib import Path

# one BLAS / OpenMP thread unless the caller set one: on 2 busy cores, the mixture's k-means
# initialisation with two spinning threads is ten times slower (as in benchmarks/)
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from mixedts.datasets import DatasetNotFoundError  # noqa: E402
from mixedts.offline.sdm_movielens import PAPER_ML1M, run_sdm_movielens, summarize  # noqa: E402

COLORS = {"sdm": "#d62728", "sdm-shuffled": "#d62728", "dm-bayes": "#ff7f0e",
          "dm-freq": "#9467bd", "ips": "#1f77b4", "snips": "#2ca02c", "dr": "#8c564b",
          "dr-freq": "#7f7f7f", "mips": "#17becf", "pc": "#000000"}  # fmt: skip
LABELS = {"sdm": "sDM", "sdm-shuffled": "sDM, shuffled memberships (control)",
          "dm-bayes": "DM (Bayes)", "dm-freq": "DM (Freq)", "ips": "IPS", "snips": "snIPS",
          "dr": "DR (sDM model)", "dr-freq": "DR (Freq model, the paper's)", "mips": "MIPS",
          "pc": "PC (paper only)"}  # fmt: skip
OPL_LABELS = {"dr": "DR learner (Freq model, the paper's)"}  # the same label, another method
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"


def plot(summary, file: Path, n_instances: int, n_learner: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.8))
    panels = (("ope_squared_error", "OPE: MSE of the ε-greedy target's value (log scale)"),
              ("opl_relative_reward", "OPL: relative reward of the learned policy"))  # fmt: skip
    n_max = summary["n"].max()
    for ax, (metric, title) in zip(axes, panels):
        part = summary[summary["metric"] == metric]
        for method, g in part.groupby("method"):
            g = g.sort_values("n")
            c = COLORS.get(method, "k")
            ls = "--" if method == "sdm-shuffled" else "-"
            label = (OPL_LABELS if metric.startswith("opl") else {}).get(method,
                                                                         LABELS.get(method, method))
            if len(g) == 1:  # the learners: the largest n only
                ax.errorbar(g["n"], g["mean"], g["se"], fmt="s", ms=5, color=c, capsize=3,
                            label=f"{label} ({n_learner} instances)")  # fmt: skip
                continue
            ax.plot(g["n"], g["mean"], ls, marker="o", ms=3, color=c, label=label)
            lo, hi = g["mean"] - g["se"], g["mean"] + g["se"]
            if metric == "ope_squared_error":
                lo = np.maximum(lo, g["mean"] * 0.05)
            ax.fill_between(g["n"], lo, hi, color=c, alpha=0.2)
        for method, value in PAPER_ML1M[metric].items():
            ax.plot([n_max * 1.05], [value], marker="*", ms=11, ls="none",
                    color=COLORS.get(method, "k"), markeredgecolor="k",
                    markeredgewidth=0.5)  # fmt: skip
        if metric == "ope_squared_error":
            ax.set_yscale("log")
        ax.set_xlabel("logged rounds n")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].plot([], [], marker="*", ms=11, ls="none", color=COLORS["pc"], label=LABELS["pc"])
    axes[0].plot([], [], marker="*", ms=11, ls="none", color="w", markeredgecolor="k",
                 label="paper's Fig. 2 (ML-1M) at n = 2000, by eye")  # fmt: skip
    handles, labels = axes[0].get_legend_handles_labels()
    for h, lab in zip(*axes[1].get_legend_handles_labels()):
        if lab not in labels:
            handles.append(h)
            labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False)
    fig.suptitle("sDM on MovieLens 100K (K = 1000, d = 5, J = 5, d′ = 25): mean ± s.e. over "
                 f"{n_instances} instances", fontsize=11)  # fmt: skip
    fig.tight_layout(rect=(0, 0.14, 1, 0.95))
    fig.savefig(file, dpi=120)
    plt.close(fig)


def table(summary, n: int) -> str:
    lines = [f"{'metric':20s} {'method':13s} {'ours (ML-100K)':>20s}   paper (ML-1M)"]
    at = summary[summary["n"] == n]
    for metric in ("ope_squared_error", "opl_relative_reward"):
        part = at[at["metric"] == metric].sort_values("mean", ascending=metric.startswith("ope"))
        for _, row in part.iterrows():
            ref = PAPER_ML1M[metric].get(row["method"])
            ours = f"{row['mean']:.4f} ± {row['se']:.4f}"
            lines.append(f"{metric:20s} {row['method']:13s} {ours:>20s}   "
                         f"{'' if ref is None else f'≈ {ref:g}'}  (N = {int(row['count'])})")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("data", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--instances", type=int, default=50)
    parser.add_argument("--n", type=int, nargs="+", default=[100, 250, 500, 1000, 2000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-control", action="store_true")
    parser.add_argument("--learner-instances", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path("results/sdm_movielens"))
    parser.add_argument("--docs-img", default="docs/img/sdm_movielens.png")
    args = parser.parse_args()
    import pandas as pd

    start = time.perf_counter()
    try:
        df = run_sdm_movielens(args.data, args.instances, args.n, seed=args.seed, progress=True)
    except DatasetNotFoundError as exc:
        print(f"skipped: no MovieLens data ({exc})")
        return
    parts = [df]
    if not args.no_control:
        print("negative control: memberships shuffled across the movies")
        ctrl = run_sdm_movielens(args.data, args.instances, args.n, seed=args.seed,
                                 structure="shuffled", progress=True)  # fmt: skip
        parts.append(ctrl[ctrl["method"] == "sdm"].assign(method="sdm-shuffled"))
    if args.learner_instances > 0:
        print(f"IPS-family learners at n = {max(args.n)} on {args.learner_instances} instances")
        learned = run_sdm_movielens(args.data, args.learner_instances, [max(args.n)],
                                    seed=args.seed, progress=True,
                                    learners=("ips", "snips", "dr", "mips"))  # fmt: skip
        keep = (learned["metric"] == "opl_relative_reward") & ~learned["method"].isin(
            ("sdm", "dm-bayes", "dm-freq"))
        parts.append(learned[keep])
    elapsed = time.perf_counter() - start
    df = pd.concat(parts, ignore_index=True)
    args.out.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out / "results.csv", index=False)
    try:
        df.to_parquet(args.out / "results.parquet", index=False)
    except ImportError:
        print("results.parquet not written (pip install pyarrow)")
    summary = summarize(df)
    summary.to_csv(args.out / "summary.csv", index=False)
    png = args.out / "sdm_movielens.png"
    plot(summary, png, args.instances, args.learner_instances)
    if args.docs_img:
        Path(args.docs_img).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, args.docs_img)
    print(f"\n{args.instances} instances in {elapsed:.0f} s; at n = {max(args.n)}:")
    print(table(summary, max(args.n)))
    print(f"wrote {args.out}/results.csv, summary.csv, sdm_movielens.png")


if __name__ == "__main__":
    sys.exit(main())
