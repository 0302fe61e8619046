#!/usr/bin/env python
"""sDM with binary rewards (Aouali, Brunel, Rohde & Korba, AISTATS 2025, App. E.1 and F.4).

The synthetic sDM problem (K = 100, d = d′ = 5, Σ = 3I, Σ_a = I, μ and W_a uniform on
[−1, 1], uniform logging) with rewards r ~ Bernoulli(sigmoid(xᵀθ_a)) (see
:mod:`mixedts.offline.sdm_binary`). Compares sDM-binary (the Laplace pseudo-observations in
the structured closed forms, probit reward estimate) with DM (Bayes) and DM (Freq) for binary
rewards and with the three Gaussian (misspecified) reward models of the paper's App. F.4.
OPL: relative reward of each model's greedy policy on 10,000 fresh contexts. OPE: squared error
of the direct method's value of the ε-greedy (ε = 0.5) target.

Usage:
    python examples/sdm_binary.py [--instances 10] [--n 250 500 1000 2000] [--seed 0]
        [--laplace-at posterior|likelihood] [--out results/sdm_binary] [--docs-img PATH]

Writes ``results.csv`` (tidy: instance, n, method, metric, value), ``summary.csv`` (mean and
s.e. over instances) and ``sdm-binary.png`` under ``--out``, and copies the PNG to
``--docs-img`` when given. Needs pandas and matplotlib. The paper gives no numbers for this
experiment (its App. F.4 figures only show that Gaussian sDM stays best in OPL among the
Gaussian models), so none are drawn.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

from mixedts.offline.sdm_binary import BINARY_METHODS, run_sdm_binary
from mixedts.offline.sdm_synthetic import summarize

COLORS = {"sdm": "#d62728", "dm-bayes": "#1f77b4", "dm-freq": "#2ca02c"}
LABELS = {"sdm": "sDM", "dm-bayes": "DM (Bayes)", "dm-freq": "DM (Freq)"}


def _style(method: str) -> tuple[str, str, str]:
    base = method.removesuffix("-lin")
    lin = method.endswith("-lin")
    label = LABELS[base] + (" Gaussian (misspecified)" if lin else " binary")
    return COLORS[base], "--" if lin else "-", label


def plot(summary, file: Path, n_instances: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11.5, 4.6))
    panels = (("opl_relative_reward", "OPL: relative reward of the greedy policy"),
              ("ope_squared_error", "OPE: squared error of the DM value (log scale)"))  # fmt: skip
    for ax, (metric, title) in zip(axes, panels):
        part = summary[summary["metric"] == metric]
        for method in BINARY_METHODS:
            g = part[part["method"] == method].sort_values("n")
            color, ls, label = _style(method)
            ax.plot(g["n"], g["mean"], ls, marker="o", ms=3, color=color, label=label)
            ax.fill_between(g["n"], g["mean"] - g["se"], g["mean"] + g["se"], color=color,
                            alpha=0.2)
        if metric == "ope_squared_error":
            ax.set_yscale("log")
        ax.set_xlabel("logged rounds n")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.suptitle("sDM with Bernoulli rewards (K = 100, d = d′ = 5): mean ± s.e. over "
                 f"{n_instances} instances", fontsize=11)  # fmt: skip
    fig.tight_layout(rect=(0, 0.1, 1, 0.95))
    fig.savefig(file, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--instances", type=int, default=10)
    parser.add_argument("--n", type=int, nargs="+", default=[250, 500, 1000, 2000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--laplace-at", choices=("posterior", "likelihood"),
                        default="posterior")
    parser.add_argument("--out", type=Path, default=Path("results/sdm_binary"))
    parser.add_argument("--docs-img", default="")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    df = run_sdm_binary(args.instances, args.n, seed=args.seed, progress=True,
                        laplace_at=args.laplace_at)
    elapsed = time.perf_counter() - start
    df.to_csv(args.out / "results.csv", index=False)
    summary = summarize(df)
    summary.to_csv(args.out / "summary.csv", index=False)
    png = args.out / "sdm-binary.png"
    plot(summary, png, args.instances)
    if args.docs_img:
        Path(args.docs_img).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, args.docs_img)
    at = summary[summary["n"] == max(args.n)]
    print(f"\n{args.instances} instances in {elapsed:.1f} s; at n = {max(args.n)} "
          f"(laplace_at = {args.laplace_at}):")  # fmt: skip
    for metric in ("opl_relative_reward", "ope_squared_error"):
        for method in BINARY_METHODS:
            row = at[(at["metric"] == metric) & (at["method"] == method)].iloc[0]
            print(f"  {metric:20s} {method:13s} {row['mean']:9.4f} ± {row['se']:.4f}")


if __name__ == "__main__":
    main()
