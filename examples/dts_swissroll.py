#!/usr/bin/env python
"""The Swiss-roll experiment of dTS (Aouali, NeurIPS 2025, Sec. 5.2, Fig. 3a-b and App. G.1).

The actions' parameters are i.i.d. draws of a 2-D Swiss roll; dTS is given a DDPM pre-trained
on N offline draws of the roll (one chain per action), LinTS the roll's mean and covariance.
The paper plots LinTS regret / dTS regret at the last round against N (L = 40 here) and
against the depth L (N = 50,000 here). The experiment file ``dts-swissroll`` holds the whole
sweep as one policy per point; this script runs it, adds an exact-posterior reference (Thompson
sampling on the true roll prior, by importance sampling over 20,000 draws of the roll: the best
any prior can do in this setting), and writes the ratio table and plots.

Usage:
    python examples/dts_swissroll.py [--runs 20] [--horizon 1000] [--jobs 2]
        [--out results/dts-swissroll] [--docs-img docs/img] [--no-exact]

Writes ``results.parquet``, ``ratios.csv``, ``dts-swissroll.png`` (the two ratio panels, mean
± s.e. over runs, the paper's readings beside) and ``dts-swissroll-samples.png`` (the roll and
the fitted priors' samples, the paper's Fig. 4) under ``--out``, and copies the PNGs to
``--docs-img`` (``''`` skips). Fitted priors are cached on disk (``MIXEDTS_FIT_CACHE``), so a
second run skips the fits. Needs pandas, scikit-learn and matplotlib.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from mixedts.environments.diffusion import swiss_roll  # noqa: E402
from mixedts.evaluation import load_experiment  # noqa: E402
from mixedts.evaluation.simulate import simulate  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "src" / "mixedts" / "configs" / "dts-swissroll.toml"
#: the paper's Fig. 3a (ratio against N, L fixed) and Fig. 3b (against L), read off the figure
PAPER_N = {10: 1.2, 50: 1.5, 100: 1.9, 2500: 2.05, 5000: 2.25, 10000: 2.1, 50000: 2.95}
PAPER_L = {2: 1.9, 10: 2.85, 40: 3.0, 70: 2.95, 100: 2.75}
BANK = 20_000


class ExactRollTS:
    """Thompson sampling on the true Swiss-roll prior: each action's posterior over a bank of
    roll draws (importance weights exp(θᵀb − θᵀGθ/2)), one draw per action by the Gumbel trick;
    vectorised over the actions and the bank."""

    def __init__(self, n_actions: int, noise_std: float, roll_noise: float, rng) -> None:
        self.bank = swiss_roll(BANK, np.random.default_rng(12345), roll_noise)
        self.quad = np.einsum("bi,bj->bij", self.bank, self.bank).reshape(BANK, 4)
        self.G = np.zeros((n_actions, 4))
        self.b = np.zeros((n_actions, 2))
        self.s2 = noise_std**2
        self.rng = rng

    def select(self, x: np.ndarray) -> int:
        logw = self.b @ self.bank.T - 0.5 * self.G @ self.quad.T  # (K, bank)
        pick = np.argmax(logw + self.rng.gumbel(size=logw.shape), axis=1)
        return int(np.argmax(np.einsum("kd,kd->k", x, self.bank[pick])))

    def update(self, x: np.ndarray, a: int, y: float) -> None:
        xa = x[a] if x.ndim == 2 else x
        self.G[a] += np.outer(xa, xa).ravel() / self.s2
        self.b[a] += y * xa / self.s2


def exact_factory(env, rng):
    return ExactRollTS(env.n_actions, env.noise_std, env.roll_noise, rng)


def ratios(results):
    """LinTS / dTS final regret per dTS policy: ratio of means with a paired delta-method s.e."""
    import pandas as pd

    final = results.final().pivot(index="run", columns="policy", values="cum_regret")
    lin = final["LinTS"].to_numpy()
    rows = []
    for name in final.columns:
        if name == "LinTS":
            continue
        d = final[name].to_numpy()
        r = lin.mean() / d.mean()
        cov = np.cov(lin, d)
        var = r**2 * (cov[0, 0] / lin.mean() ** 2 + cov[1, 1] / d.mean() ** 2
                      - 2 * cov[0, 1] / (lin.mean() * d.mean())) / len(d)
        kind, _, value = name.partition("-")
        axis = value[0] if kind == "dTS" else "exact"
        point = int(value[1:]) if kind == "dTS" else 0
        rows.append({"policy": name, "axis": axis, "point": point, "ratio": r,
                     "se": float(np.sqrt(max(var, 0.0))), "regret": d.mean(),
                     "regret_se": d.std(ddof=1) / np.sqrt(len(d)), "LinTS": lin.mean()})
    out = pd.DataFrame(rows)
    out["paper"] = [PAPER_N.get(p) if a == "N" else PAPER_L.get(p) if a == "L" else None
                    for a, p in zip(out["axis"], out["point"])]
    # dTS-L40 is also Fig. 3a's N = 50,000 point
    l40 = out[out["policy"] == "dTS-L40"].assign(axis="N", point=50000, paper=PAPER_N[50000])
    return pd.concat([out, l40], ignore_index=True)


def plot_ratios(table, file: Path, runs: int, horizon: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    exact = table[table["axis"] == "exact"]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, axis, label, paper in ((axes[0], "N", "pre-training samples N (L = 40)", PAPER_N),
                                   (axes[1], "L", "diffusion depth L (N = 50,000)", PAPER_L)):
        part = table[table["axis"] == axis].sort_values("point")
        x = np.arange(len(part))
        ax.plot(x, part["ratio"], "o-", color="#d62728", label="ours (dTS, fitted DDPM)")
        ax.fill_between(x, part["ratio"] - part["se"], part["ratio"] + part["se"],
                        color="#d62728", alpha=0.2)
        ax.plot(x, [paper[p] for p in part["point"]], "s--", color="k", alpha=0.6,
                label="paper (read off Fig. 3)")
        if len(exact):
            r, se = float(exact["ratio"].iloc[0]), float(exact["se"].iloc[0])
            ax.axhline(r, color="#1f77b4", ls=":", label="exact roll posterior (reference)")
            ax.axhspan(r - se, r + se, color="#1f77b4", alpha=0.1)
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.set_xticks(x, [f"{p:g}" for p in part["point"]])
        ax.set_xlabel(label)
        ax.set_ylabel("LinTS regret / dTS regret")
        ax.legend(fontsize=8)
    fig.suptitle(f"Swiss roll: K = 10, d = 2, n = {horizon}, σ = 1 ({runs} runs, mean ± s.e.)")
    fig.tight_layout()
    fig.savefig(file, dpi=110)
    plt.close(fig)


def plot_samples(env, file: Path) -> None:
    """The roll (blue) and draws of priors fitted on N = 50, 1000, 10,000 samples (red)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mixedts.priors_diffusion_fit import fit_cached

    truth = swiss_roll(2000, np.random.default_rng(1), env.roll_noise)
    fig, axes = plt.subplots(1, 3, figsize=(12, 4))
    for ax, n in zip(axes, (50, 1000, 10000)):
        prior = fit_cached(env.pretraining_samples[:n], 40, steps=3000, hidden=64, seed=0)
        draws = prior.sample_independent(2000, np.random.default_rng(2))
        ax.scatter(*truth.T, s=2, color="#1f77b4", alpha=0.5, label="Swiss roll")
        ax.scatter(*draws.T, s=2, color="#d62728", alpha=0.5, label="fitted DDPM (L = 40)")
        ax.set_title(f"pre-trained on N = {n}")
        ax.set_xlim(-1.6, 1.6)
        ax.set_ylim(-1.6, 1.6)
        ax.set_aspect("equal")
    axes[0].legend(fontsize=8, markerscale=4)
    fig.tight_layout()
    fig.savefig(file, dpi=110)
    plt.close(fig)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--horizon", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--out", default="results/dts-swissroll")
    ap.add_argument("--docs-img", default="docs/img")
    ap.add_argument("--no-exact", action="store_true")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    exp = load_experiment(CONFIG)
    print(f"loaded (priors fitted or read from the cache) in {time.time() - t0:.0f} s")
    policies = dict(exp.policies)
    if not args.no_exact:
        policies["exact-roll"] = exact_factory
    results = simulate(exp.environment, policies, args.horizon, args.runs, exp.seed,
                       n_jobs=args.jobs, quiet=True)
    wall = time.time() - t0
    results.to_parquet(out / "results.parquet")
    table = ratios(results)
    table.to_csv(out / "ratios.csv", index=False)
    print(table.round(3).to_string(index=False))
    print(f"wall time {wall:.0f} s ({args.runs} runs, n = {args.horizon}, jobs = {args.jobs})")
    plot_ratios(table, out / "dts-swissroll.png", args.runs, args.horizon)
    plot_samples(exp.environment, out / "dts-swissroll-samples.png")
    if args.docs_img:
        for name in ("dts-swissroll.png", "dts-swissroll-samples.png"):
            shutil.copy(out / name, Path(args.docs_img) / name)


if __name__ == "__main__":
    main()
