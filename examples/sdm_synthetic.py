#!/usr/bin/env python
"""The synthetic experiment of sDM (Aouali, Brunel, Rohde & Korba, AISTATS 2025, Fig. 2).

K = 1000 actions, d = d′ = 10, Σ = 3I, Σ_a = I, μ and W_a uniform on [−1, 1], σ = 1,
contexts uniform on [−1, 1]^d, uniform logging (see :mod:`mixedts.offline.sdm_synthetic`).
OPE: squared error of the ε-greedy (ε = 0.5) target's value, the truth being its value under
the context distribution (10,000 fresh contexts). OPL: relative reward of the greedy policy
on each reward model's posterior mean, on the same fresh contexts.

Usage:
    python examples/sdm_synthetic.py [--instances 50] [--n 50 100 250 500 1000 2000]
        [--seed 0] [--out results/sdm_synthetic] [--docs-img docs/img/sdm-synthetic.png]

Writes ``results.csv`` (tidy: instance, n, method, metric, value, truth), ``summary.csv``
(mean and s.e. over instances) and ``sdm-synthetic.png`` under ``--out``, and copies the PNG
to ``--docs-img`` (pass ``--docs-img ''`` to skip). Needs pandas and matplotlib.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import numpy as np

from mixedts.offline.sdm_synthetic import PAPER_FIG2, run_sdm_synthetic, summarize

COLORS = {"sdm": "#d62728", "dm-bayes": "#1f77b4", "dm-freq": "#2ca02c", "ips": "#7f7f7f",
          "snips": "#9467bd", "dr": "#ff7f0e", "dr-freq": "#8c564b", "mips": "#e377c2"}  # fmt: skip
LABELS = {"sdm": "sDM", "dm-bayes": "DM (Bayes)", "dm-freq": "DM (Freq)", "ips": "IPS",
          "snips": "snIPS", "dr": "DR (sDM model)", "dr-freq": "DR (Freq model)",
          "mips": "MIPS"}  # fmt: skip


def plot(summary, file: Path, n_instances: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.6))
    panels = (("ope_squared_error", "OPE: MSE of the ε-greedy target's value (log scale)"),
              ("opl_relative_reward", "OPL: relative reward of the greedy policy"))  # fmt: skip
    n_max = summary["n"].max()
    for ax, (metric, title) in zip(axes, panels):
        part = summary[summary["metric"] == metric]
        for method, g in part.groupby("method"):
            g = g.sort_values("n")
            c = COLORS.get(method, "k")
            ax.plot(g["n"], g["mean"], "-o", ms=3, color=c, label=LABELS.get(method, method))
            lo, hi = g["mean"] - g["se"], g["mean"] + g["se"]
            if metric == "ope_squared_error":
                lo = np.maximum(lo, g["mean"] * 0.05)
            ax.fill_between(g["n"], lo, hi, color=c, alpha=0.2)
        for method, value in PAPER_FIG2[metric].items():
            ax.plot([n_max * 1.04], [value], marker="*", ms=11, ls="none",
                    color=COLORS.get(method, "k"), markeredgecolor="k",
                    markeredgewidth=0.5)  # fmt: skip
        if metric == "ope_squared_error":
            ax.set_yscale("log")
        ax.set_xlabel("logged rounds n")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[0].plot([], [], marker="*", ms=11, ls="none", color=COLORS["mips"],
                 markeredgecolor="k", label="MIPS (paper only)")
    axes[0].plot([], [], marker="*", ms=11, ls="none", color="w", markeredgecolor="k",
                 label="paper's Fig. 2 at n = 2000 (by eye)")  # fmt: skip
    handles, labels = axes[0].get_legend_handles_labels()
    h2, l2 = axes[1].get_legend_handles_labels()
    for h, lab in zip(h2, l2):
        if lab not in labels:
            handles.append(h)
            labels.append(lab)
    fig.legend(handles, labels, loc="lower center", ncol=5, fontsize=8, frameon=False)
    fig.suptitle(f"sDM synthetic (K = 1000, d = d′ = 10): mean ± s.e. over {n_instances} "
                 "instances", fontsize=11)  # fmt: skip
    fig.tight_layout(rect=(0, 0.1, 1, 0.95))
    fig.savefig(file, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--instances", type=int, default=50)
    parser.add_argument("--n", type=int, nargs="+", default=[50, 100, 250, 500, 1000, 2000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/sdm_synthetic"))
    parser.add_argument("--docs-img", default="docs/img/sdm-synthetic.png")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    df = run_sdm_synthetic(args.instances, args.n, seed=args.seed, progress=True)
    elapsed = time.perf_counter() - start
    df.to_csv(args.out / "results.csv", index=False)
    summary = summarize(df)
    summary.to_csv(args.out / "summary.csv", index=False)
    png = args.out / "sdm-synthetic.png"
    plot(summary, png, args.instances)
    if args.docs_img:
        Path(args.docs_img).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, args.docs_img)
    at = summary[summary["n"] == max(args.n)]
    print(f"\n{args.instances} instances in {elapsed:.1f} s; at n = {max(args.n)}:")
    for metric in ("ope_squared_error", "opl_relative_reward"):
        paper = PAPER_FIG2[metric]
        for _, row in at[at["metric"] == metric].iterrows():
            ref = paper.get(row["method"])
            ref_s = "" if ref is None else f"   (paper ≈ {ref:g})"
            print(f"  {metric:20s} {row['method']:9s} {row['mean']:9.4f} ± {row['se']:.4f}{ref_s}")


if __name__ == "__main__":
    main()
