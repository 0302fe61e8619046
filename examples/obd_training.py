#!/usr/bin/env python
"""Train mixedts policies on 70% of the OBD random logs, evaluate them off-policy on the rest.

The "men" campaign sample of the Open Bandit Dataset: BernoulliTS, LinTS and GLM-TS on the user
features, and meTS-GLM with one effect per item category (``item_feature_1``), each trained
on the earliest 70% of the uniform-random logs (a time split). Their click rates on the latest
30% are estimated with IPS, SNIPS, DR, SNDR and DM (bootstrap standard errors), as Thompson
sampling and as greedy (posterior-mean) rankings, beside the click rates the random policy and
the production Bernoulli TS actually got over the same period (see
:mod:`mixedts.offline.obd_training` and ``docs/offline.md``).

Usage:
    python examples/obd_training.py [PATH/TO/obd] [--n-bootstrap 200] [--n-draws 1000]
        [--seed 0] [--reward-model logistic|gbm|mets-glm|...] [--out results/obd-training]
        [--plot docs/img/obd_training.png]

PATH defaults to ../shared/data/obd beside the repository (random_men/, bts_men/). Writes
``summary.csv``, ``raw.csv`` and ``reference.csv`` under --out, and the plot. Needs the
``experiments`` and ``structure`` extras (pandas, rich, matplotlib, scikit-learn).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mixedts.offline.obd_training import POLICY_NAMES, run_obd_training

CAMPAIGN = "men"
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "obd"
DEFAULT_PLOT = Path(__file__).resolve().parents[1] / "docs" / "img" / "obd_training.png"
MODE_TITLES = {"ts": "Thompson sampling (a posterior draw per impression)",
               "greedy": "greedy (posterior-mean ranking)"}  # fmt: skip
COLORS = {"ips": "#3b75af", "snips": "#6fa8dc", "dr": "#c0504d", "sndr": "#e69138",
          "dm": "#6aa84f"}  # fmt: skip


def table(summary: pd.DataFrame, reference: pd.DataFrame) -> str:
    """Estimates as 'value ± boot s.e.' per (policy, mode) and estimator, and the lift."""
    cell = summary.assign(text=[f"{v:.4f} ± {s:.4f}" for v, s in
                                zip(summary["value"], summary["boot_se"])])  # fmt: skip
    wide = cell.pivot_table(index=["name", "mode"], columns="estimator", values="text",
                            aggfunc="first", sort=False)  # fmt: skip
    ips = summary[summary["estimator"] == "ips"].set_index(["name", "mode"])
    wide["IPS lift vs random"] = [f"{v:+.4f} ± {s:.4f}" for v, s in
                                  zip(ips["lift"], ips["lift_se"])]  # fmt: skip
    wide["P(IPS > random)"] = ips["p_beats_random"].map("{:.2f}".format)
    wide["ESS"] = ips["ess"].map("{:.0f}".format)
    lines = [wide.to_string(), ""]
    for row in reference.itertuples():
        lines.append(f"on-policy {row.policy}: {row.value:.4f} ± {row.stderr:.4f} "
                     f"({row.clicks} clicks in {row.n_rows} rows, {row.start} .. {row.end})")
    return "\n".join(lines)


def plot(summary: pd.DataFrame, reference: pd.DataFrame, file: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    modes = list(dict.fromkeys(summary["mode"]))
    policies = list(dict.fromkeys(summary["policy"]))
    estimators = list(dict.fromkeys(summary["estimator"]))
    fig, axes = plt.subplots(1, len(modes), figsize=(6.2 * len(modes), 5.0), sharey=True,
                             squeeze=False)  # fmt: skip
    width = 0.8 / len(estimators)
    ref = reference.set_index("policy")
    for ax, mode in zip(axes[0], modes):
        x = np.arange(len(policies))
        for name, style, color in (("random", "--", "#333333"),
                                   ("production-bts", "-", "#aa3333")):  # fmt: skip
            if name not in ref.index:
                continue
            v, se = ref.loc[name, "value"], ref.loc[name, "stderr"]
            label = ("random policy" if name == "random" else "production BTS") + \
                f", on-policy CTR over the test period ({v:.4f} ± {se:.4f})"
            ax.axhline(v, ls=style, color=color, lw=1.2, label=label)
            if np.isfinite(se):
                ax.axhspan(v - se, v + se, color=color, alpha=0.12, lw=0)
        for j, est in enumerate(estimators):
            rows = summary[(summary["mode"] == mode) & (summary["estimator"] == est)]
            rows = rows.set_index("policy").reindex(policies)
            xs = x - 0.4 + width * (j + 0.5)
            ax.errorbar(xs, rows["value"], yerr=[rows["value"] - rows["ci_low"],
                        rows["ci_high"] - rows["value"]], fmt="none", ecolor=COLORS.get(est),
                        elinewidth=0.8, alpha=0.6)  # fmt: skip
            ax.errorbar(xs, rows["value"], yerr=rows["boot_se"], fmt="o", ms=4, capsize=2,
                        color=COLORS.get(est), label=est.upper())  # fmt: skip
        ax.set_xticks(x, [POLICY_NAMES[p] for p in policies])
        ax.set_title(MODE_TITLES[mode], fontsize=10)
        ax.grid(axis="y", alpha=0.3)
    axes[0][0].set_ylabel("estimated click rate on the test part\n"
                          "(± 1 bootstrap s.e.; thin: 95% bootstrap interval)")  # fmt: skip
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=4, fontsize=8, frameon=False,
               bbox_to_anchor=(0.5, -0.06))  # fmt: skip
    fig.suptitle(title, fontsize=11)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    file.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(file, dpi=130, bbox_inches="tight")
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--n-bootstrap", type=int, default=200)
    parser.add_argument("--n-draws", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reward-model", default="logistic")
    parser.add_argument("--out", type=Path, default=Path("results") / "obd-training")
    parser.add_argument("--plot", type=Path, default=DEFAULT_PLOT)
    args = parser.parse_args()
    if not (args.path / f"random_{CAMPAIGN}" / f"{CAMPAIGN}.csv").is_file() and not (
            args.path / "random" / CAMPAIGN / f"{CAMPAIGN}.csv").is_file():  # fmt: skip
        print(f"skipped: the Open Bandit Dataset '{CAMPAIGN}' samples are not under {args.path} "
              f"(expected random_{CAMPAIGN}/{CAMPAIGN}.csv and bts_{CAMPAIGN}/; pass the folder "
              "as the first argument)")  # fmt: skip
        return 0

    t0 = time.perf_counter()
    result = run_obd_training(args.path, campaign=CAMPAIGN, reward_model=args.reward_model,
                              n_draws=args.n_draws, n_bootstrap=args.n_bootstrap,
                              seed=args.seed, progress=True)  # fmt: skip
    elapsed = time.perf_counter() - t0
    train, test = result.train, result.test
    print(f"OBD '{CAMPAIGN}': train {len(train):,} rows ({int(train.rewards.sum())} clicks, "
          f"{train.timestamps[0]} .. {train.timestamps[-1]}), test {len(test):,} rows "
          f"({int(test.rewards.sum())} clicks); K = {test.n_actions} items; reward model "
          f"'{args.reward_model}'; {args.n_draws} Monte Carlo draws; {args.n_bootstrap} "
          f"bootstrap resamples of the test rows\n")  # fmt: skip
    print(table(result.summary, result.reference))
    args.out.mkdir(parents=True, exist_ok=True)
    result.summary.to_csv(args.out / "summary.csv", index=False)
    result.raw.to_csv(args.out / "raw.csv", index=False)
    result.reference.to_csv(args.out / "reference.csv", index=False)
    plot(result.summary, result.reference, args.plot,
         f"OBD men: policies trained on the first 70% of the random logs ({len(train):,} rows), "
         f"evaluated on the last 30% ({len(test):,} rows)")  # fmt: skip
    print(f"\n{elapsed:.1f} s. Wrote {args.out}/summary.csv, raw.csv, reference.csv and "
          f"{args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
