#!/usr/bin/env python
"""The synthetic experiment of sDM (Aouali, Brunel, Rohde & Korba, AISTATS 2025, Fig. 2).

K = 1000 actions, d = d′ = 10, Σ = 3I, Σ_a = I, μ and W_a uniform on [−1, 1], σ = 1,
contexts uniform on [−1, 1]^d, uniform logging (see :mod:`mixedts.offline.sdm_synthetic`).
OPE: squared error of the ε-greedy (ε = 0.5) target's value, the truth being its value under
the context distribution (10,000 fresh contexts). OPL: relative reward, on the same fresh
contexts, of the greedy policy of each reward model (sDM, DM (Bayes), DM (Freq)) and of the
linear-softmax policy that maximises DR (DM (Freq) reward model), snIPS, MIPS or IPS (its
expected value under π_β).

Usage:
    python examples/sdm_synthetic.py [--instances 50] [--n 50 100 250 500 1000 2000]
        [--seed 0] [--out results/sdm_synthetic] [--docs-img docs/img/sdm-synthetic.png]
        [--learners dr snips mips ips] [--l2 1e-3] [--maxiter 10]
        [--clusters theta|prior] [--n-clusters 100] [--jobs 2]

Writes ``results.csv`` (tidy: instance, n, method, metric, value, truth), ``summary.csv``
(mean and s.e. over instances) and ``sdm-synthetic.png`` under ``--out``, copies the PNG
to ``--docs-img`` (pass ``--docs-img ''`` to skip), and prints the table at the largest n
(ours ± s.e. beside the paper's readings) as Markdown. Needs pandas and matplotlib.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

# One BLAS thread per process (set before numpy loads): the learners' matrix products are
# thin, and L-BFGS-B's BLAS calls slow down about tenfold when threads contend for 2 cores.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from mixedts.offline.sdm_synthetic import PAPER_FIG2, run_sdm_synthetic, summarize  # noqa: E402

COLORS = {"sdm": "#d62728", "dm-bayes": "#1f77b4", "dm-freq": "#2ca02c", "ips": "#7f7f7f",
          "snips": "#9467bd", "dr": "#ff7f0e", "dr-freq": "#8c564b", "mips": "#e377c2"}  # fmt: skip
LABELS = {"sdm": "sDM", "dm-bayes": "DM (Bayes)", "dm-freq": "DM (Freq)", "ips": "IPS",
          "snips": "snIPS", "dr": "DR (sDM model)", "dr-freq": "DR (Freq model)",
          "mips": "MIPS"}  # fmt: skip
#: In the OPL panel "dr" is the paper's DR learner (DM (Freq) reward model): drawn as dr-freq.
OPL_AS = {"dr": "dr-freq"}
METRICS = (("ope_squared_error", "OPE MSE"), ("opl_relative_reward", "OPL relative reward"))
#: the IPS-family learners' markers in the OPL panel (dashed lines)
LEARNER_MARKERS = {"dr": "s", "snips": "^", "mips": "D", "ips": "x"}


def _key(metric: str, method: str) -> str:
    """The method's colour and label in a panel (the paper's DR is dr-freq in both)."""
    return OPL_AS.get(method, method) if metric == "opl_relative_reward" else method


def plot(summary, file: Path, n_instances: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 5))
    panels = (("ope_squared_error", "OPE: MSE of the ε-greedy target's value (log scale)"),
              ("opl_relative_reward", "OPL: relative reward of the learned policy"))  # fmt: skip
    n_max = summary["n"].max()
    for ax, (metric, title) in zip(axes, panels):
        part = summary[summary["metric"] == metric]
        for method, g in part.groupby("method"):
            g = g.sort_values("n")
            key = _key(metric, method)
            c = COLORS.get(key, "k")
            learner = metric == "opl_relative_reward" and method in LEARNER_MARKERS
            ax.plot(g["n"], g["mean"], "--" if learner else "-",
                    marker=LEARNER_MARKERS[method] if learner else "o", ms=4 if learner else 3,
                    color=c, label=LABELS.get(key, key))  # fmt: skip
            lo, hi = g["mean"] - g["se"], g["mean"] + g["se"]
            if metric == "ope_squared_error":
                lo = np.maximum(lo, g["mean"] * 0.05)
            ax.fill_between(g["n"], lo, hi, color=c, alpha=0.2)
        for method, value in PAPER_FIG2[metric].items():
            ax.plot([n_max * 1.04], [value], marker="*", ms=11, ls="none",
                    color=COLORS.get(_key(metric, method), "k"), markeredgecolor="k",
                    markeredgewidth=0.5)  # fmt: skip
        if metric == "ope_squared_error":
            ax.set_yscale("log")
        ax.set_xlabel("logged rounds n")
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    axes[1].plot([], [], "--", color="k", label="softmax policy maximising the estimator")
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


#: (row, OPE method, OPL method): the paper's DR is DR (Freq) in OPE and the "dr" learner
ROWS = (("sDM", "sdm", "sdm"), ("DM (Bayes)", "dm-bayes", "dm-bayes"),
        ("DM (Freq)", "dm-freq", "dm-freq"), ("DR (DM (Freq) model)", "dr-freq", "dr"),
        ("snIPS", "snips", "snips"), ("MIPS", "mips", "mips"), ("IPS", "ips", "ips"),
        ("DR (sDM model; not in the paper)", "dr", None))  # fmt: skip


def table(summary, n: int) -> str:
    """Markdown: every method's OPE MSE and OPL relative reward at n, ours ± s.e. and paper's."""
    at = summary[summary["n"] == n].set_index(["metric", "method"])
    lines = ["| method | OPE MSE (ours) | OPE MSE (paper) | OPL relative reward (ours) "
             "| OPL (paper) |", "|---|---|---|---|---|"]  # fmt: skip
    for name, *methods in ROWS:
        cells = []
        for (metric, _), method in zip(METRICS, methods):
            digits = 3 if metric == "opl_relative_reward" else 2
            if (metric, method) in at.index:
                row = at.loc[(metric, method)]
                cells.append(f"{row['mean']:.{digits}f} ± {row['se']:.{digits}f}")
            else:
                cells.append("–")
            paper = PAPER_FIG2[metric].get(method) if method != "dr" or metric != \
                "ope_squared_error" else None
            cells.append("–" if paper is None else f"≈{paper:g}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--instances", type=int, default=50)
    parser.add_argument("--n", type=int, nargs="+", default=[50, 100, 250, 500, 1000, 2000])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("results/sdm_synthetic"))
    parser.add_argument("--docs-img", default="docs/img/sdm-synthetic.png")
    parser.add_argument("--learners", nargs="*", default=["dr", "snips", "mips", "ips"])
    parser.add_argument("--l2", type=float, default=1e-3)
    parser.add_argument("--maxiter", type=int, default=10)
    parser.add_argument("--clusters", choices=("theta", "prior"), default="theta")
    parser.add_argument("--n-clusters", type=int, default=None)
    parser.add_argument("--jobs", type=int, default=2, help="worker processes (instances)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    df = run_sdm_synthetic(args.instances, args.n, seed=args.seed, progress=True,
                           learners=args.learners, l2=args.l2, maxiter=args.maxiter,
                           clusters=args.clusters, n_clusters=args.n_clusters,
                           jobs=args.jobs)  # fmt: skip
    elapsed = time.perf_counter() - start
    df.to_csv(args.out / "results.csv", index=False)
    summary = summarize(df)
    summary.to_csv(args.out / "summary.csv", index=False)
    png = args.out / "sdm-synthetic.png"
    plot(summary, png, args.instances)
    if args.docs_img:
        Path(args.docs_img).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, args.docs_img)
    print(f"\n{args.instances} instances in {elapsed:.1f} s; at n = {max(args.n)} "
          f"(mean ± s.e.; the paper's readings by eye):\n")  # fmt: skip
    print(table(summary, max(args.n)))


if __name__ == "__main__":
    main()
