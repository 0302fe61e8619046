#!/usr/bin/env python
"""obp's test of off-policy estimators on the Open Bandit Dataset, "men" campaign sample.

Estimates the click rate of ZOZOTOWN's production Bernoulli TS policy from the uniform-random
policy's logs with DM, IPS, SNIPS, DR, SNDR and Switch-DR (τ chosen by SLOPE), and scores each
by its relative error against the click rate BTS got in its own logs, over bootstrap resamples
of the random logs (see :mod:`mixedts.offline.obd_protocol` and ``docs/offline.md``).

Usage:
    python examples/obd_relative_error.py [PATH/TO/obd] [--n-bootstrap 100] [--seed 0]
        [--reward-model logistic|gbm] [--n-draws 1000000] [--out results/obd]

PATH defaults to ../shared/data/obd beside the repository (random_men/, bts_men/,
prior_bts.yaml). Writes, under --out:

* ``relative_error.csv``: ours and obp's numbers (one row per estimator and source), and a
  no-skill baseline, ``random-ctr``: the random logs' own click rate as the "estimate";
* ``relative_error_raw.csv``: every resample's estimate and relative error;
* ``bts_action_distribution.csv``: P(item k at position p) under the BTS prior, with its
  Monte Carlo standard error;
* ``relative_error.png``: bars with ±1 s.d. error bars, obp's "all"-campaign numbers beside ours.

Needs the ``experiments`` and ``structure`` extras (pandas, rich, matplotlib, scikit-learn).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from mixedts.datasets.obd import load_obd
from mixedts.offline import estimate_all
from mixedts.offline.obd_protocol import (
    OBP_NAMES,
    OBP_REFERENCE,
    bts_action_distribution,
    obd_relative_error,
    read_bts_prior,
)

CAMPAIGN = "men"
BASELINE = "random-ctr"  # not an estimator of BTS: the random logs' own click rate
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "obd"


def tidy(summary: pd.DataFrame, reward_model: str) -> pd.DataFrame:
    """Ours and obp's rows: estimator, source, campaign, n_bootstrap, mean, std, ..."""
    ours = summary.assign(obp_name=summary["estimator"].map(OBP_NAMES), source="mixedts",
                          campaign=CAMPAIGN, sample_rows=10_000,
                          reward_model=np.where(summary["estimator"] == BASELINE, "none",
                                                reward_model))  # fmt: skip
    theirs = pd.DataFrame({
        "estimator": list(OBP_REFERENCE),
        "obp_name": [OBP_NAMES[k] for k in OBP_REFERENCE],
        "source": "obp examples/obd/README.md",
        "campaign": "all",
        "sample_rows": 10_000,
        "reward_model": "logistic",
        "n_bootstrap": 30,
        "mean": [m for m, _ in OBP_REFERENCE.values()],
        "std": [s for _, s in OBP_REFERENCE.values()],
    })  # fmt: skip
    columns = ["estimator", "obp_name", "source", "campaign", "sample_rows", "reward_model",
               "n_bootstrap", "mean", "std", "mean_estimate", "v_on", "v_on_stderr"]  # fmt: skip
    return pd.concat([ours, theirs], ignore_index=True).reindex(columns=columns)


def plot(table: pd.DataFrame, file: Path, n_bootstrap: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ours = table[table["source"] == "mixedts"].set_index("estimator")
    base = ours.loc[BASELINE]
    ours = ours.drop(index=BASELINE)
    theirs = table[table["source"] != "mixedts"].set_index("estimator")
    labels = list(ours.index)
    x = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(8.5, 5.2))
    ax.bar(
        x - 0.2,
        ours["mean"],
        0.4,
        yerr=ours["std"],
        capsize=3,
        color="#3b75af",
        label=f"mixedts: men campaign, 10,000 random-policy rows, {n_bootstrap} resamples",
    )
    ref = theirs.reindex(labels)
    ax.bar(x + 0.2, ref["mean"], 0.4, yerr=ref["std"], capsize=3, color="#bbbbbb",
           hatch="//", edgecolor="#666666",
           label="obp README: ALL campaign (another sample), 30 resamples")  # fmt: skip
    ax.set_xticks(x, [f"{k}\n(obp: {OBP_NAMES.get(k, '-')})" for k in labels])
    ax.set_ylabel("relative error |V̂ − V_on| / V_on\n(mean ± 1 s.d. over resamples)")
    ax.set_title("Off-policy estimates of Bernoulli TS's click rate from uniform-random logs (OBD)")
    floor = ours["v_on_stderr"].iloc[0] / ours["v_on"].iloc[0]
    ax.axhline(
        floor,
        color="#aa3333",
        ls=":",
        lw=1.2,
        label=f"men: s.e. of V_on / V_on = {floor:.2f} (noise of the ground truth)",
    )
    ax.axhline(
        base["mean"],
        color="#333333",
        ls="--",
        lw=1,
        label=f"men: no-skill baseline, the random logs' own CTR ({base['mean']:.2f})",
    )
    top = max((ours["mean"] + ours["std"]).max(), (ref["mean"] + ref["std"]).max())
    ax.set_ylim(0, 1.05 * top)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=7.5, frameon=False)
    fig.tight_layout()
    fig.savefig(file, dpi=130, bbox_inches="tight")
    plt.close(fig)


def diagnostics(random_logs, bts_logs, dist) -> None:
    """How far the prior's distribution is from what BTS logged, and what that does to IPS."""
    K, L = dist.shape
    freq = np.zeros((K, L))
    np.add.at(freq, (bts_logs.actions, bts_logs.positions - 1), 1.0)
    freq /= freq.sum(axis=0)
    tv = 0.5 * np.abs(freq - dist).sum(axis=0)
    print(
        f"total variation, prior-based BTS distribution vs the BTS logs' (item, position) "
        f"frequencies, per position: {np.round(tv, 3).tolist()}"
    )
    pos = random_logs.positions - 1
    for name, target in (
        ("prior-based BTS (the protocol's target)", dist),
        ("BTS logs' empirical frequencies", freq),
        ("uniform random (its own logs)", np.full((K, L), 1.0 / K)),
    ):
        est = estimate_all(random_logs, target.T[pos], ["ips"])["ips"]
        print(f"  IPS on the full random log, target = {name}: {est.value:.5f} ± {est.stderr:.5f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--n-bootstrap", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reward-model", choices=("logistic", "gbm"), default="logistic")
    parser.add_argument("--n-draws", type=int, default=1_000_000)
    parser.add_argument("--out", type=Path, default=Path("results") / "obd")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    t0 = time.perf_counter()
    random_logs = load_obd(args.path, CAMPAIGN, "random")
    bts_logs = load_obd(args.path, CAMPAIGN, "bts")
    alpha, beta = read_bts_prior(args.path, CAMPAIGN)
    print(
        f"OBD '{CAMPAIGN}': random {len(random_logs):,} rows, CTR "
        f"{random_logs.rewards.mean():.4%} ({int(random_logs.rewards.sum())} clicks); BTS "
        f"{len(bts_logs):,} rows, CTR {bts_logs.rewards.mean():.4%} "
        f"({int(bts_logs.rewards.sum())} clicks); K = {random_logs.n_actions} items"
    )

    t1 = time.perf_counter()
    dist, se = bts_action_distribution(alpha, beta, 3, args.n_draws, rng=args.seed,
                                       return_stderr=True)  # fmt: skip
    t_mc = time.perf_counter() - t1
    print(
        f"BTS action distribution: {args.n_draws:,} draws in {t_mc:.1f} s, largest Monte Carlo "
        f"s.e. {se.max():.5f}, largest weight π/π₀ = {dist.max() * random_logs.n_actions:.2f}"
    )
    items, positions = np.meshgrid(np.arange(dist.shape[0]), np.arange(1, 4), indexing="ij")
    pd.DataFrame({"item_id": items.ravel(), "position": positions.ravel(),
                  "probability": dist.ravel(), "mc_stderr": se.ravel()}).to_csv(
        args.out / "bts_action_distribution.csv", index=False)  # fmt: skip
    diagnostics(random_logs, bts_logs, dist)

    t2 = time.perf_counter()
    summary, raw = obd_relative_error(random_logs, bts_logs, dist, reward_model=args.reward_model,
                                      n_bootstrap=args.n_bootstrap, seed=args.seed,
                                      progress=True)  # fmt: skip
    t_boot = time.perf_counter() - t2
    # no-skill baseline on the same resamples: IPS of the uniform policy = the random logs' CTR
    uniform = np.full(dist.shape, 1.0 / dist.shape[0])
    baseline = obd_relative_error(random_logs, bts_logs, uniform, {BASELINE: "ips"},
                                  reward_model=None, n_bootstrap=args.n_bootstrap,
                                  seed=args.seed).summary  # fmt: skip
    summary = pd.concat([summary, baseline], ignore_index=True)
    table = tidy(summary, args.reward_model)
    table.to_csv(args.out / "relative_error.csv", index=False)
    raw.to_csv(args.out / "relative_error_raw.csv", index=False)
    plot(table, args.out / "relative_error.png", args.n_bootstrap)

    side = summary.set_index("estimator")[["mean", "std", "mean_estimate"]].join(
        pd.DataFrame(OBP_REFERENCE, index=["obp_all_mean", "obp_all_std"]).T
    )
    print(
        f"\nV_on = {summary['v_on'].iloc[0]:.5f} ± {summary['v_on_stderr'].iloc[0]:.5f} "
        f"(BTS logs' mean click ± s.e.); relative error over {args.n_bootstrap} resamples, "
        f"reward model '{args.reward_model}':"
    )
    print(side.round(4).to_string())
    print(
        f"\n{args.n_bootstrap} resamples in {t_boot:.1f} s; total {time.perf_counter() - t0:.1f} "
        f"s. Wrote {args.out}/relative_error.csv, relative_error_raw.csv, "
        "bts_action_distribution.csv, relative_error.png"
    )


if __name__ == "__main__":
    main()
