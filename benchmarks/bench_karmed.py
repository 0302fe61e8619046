#!/usr/bin/env python
"""Speed of the K-armed policies and of Generalized Thompson sampling with many experts.

Sections (printed as markdown and written to ``benchmarks/results_karmed.md``):

* **BernoulliTS, K = 100, 10⁶ rounds.** Arms with means U[0.1, 0.9], Bernoulli rewards.
  Decisions are drawn in batches with ``select_batch(B)`` and their rewards delivered with
  ``update_batch`` (feedback delayed by one batch of B rounds), for several B; each run is
  timed end to end (reward simulation included) and its regret is reported, so the price of
  the delay is visible. B = 1 (``select()`` + ``update()`` per round) is timed on
  ``--sequential-rounds`` rounds and extrapolated. The row "all arms drawn" repeats B = 1000
  with the lazy sampler switched off (every arm's Beta drawn every round), for comparison.
* **UCB1 / KL-UCB**, same problem, B = 1000.
* **GTS with 10⁴ experts.** N = 10⁴ logistic experts stacked as an (N, d) array (d = 20,
  K = 10 actions, per-action contexts (K, d)); one of them is the truth (realizability).
  Per-round medians of ``select(x)``, ``update(x, a, y)`` and ``action_probabilities(x)``;
  ``update_batch`` throughput; the weight on the true expert after the run; EXP4 and table
  experts (context-free) for comparison.

BLAS is pinned to one thread unless OPENBLAS/OMP/MKL_NUM_THREADS is set (see README.md).

    python benchmarks/bench_karmed.py [--quick] [--out FILE]
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    if __name__ == "__main__":
        os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402
import scipy  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
try:
    import mixedts  # noqa: F401
except ImportError:  # pragma: no cover
    sys.path.insert(0, str(ROOT / "src"))

from mixedts import EXP4, KLUCB, UCB1, BernoulliTS, GeneralizedTS  # noqa: E402  # noqa: E402
from mixedts.models.experts import TableExperts  # noqa: E402


def fmt_time(s: float) -> str:
    if s >= 1:
        return f"{s:.2f} s"
    if s >= 1e-3:
        return f"{s * 1e3:.2f} ms"
    return f"{s * 1e6:.0f} µs"


def git_info() -> str:
    try:
        head = subprocess.run(["git", "-C", str(ROOT), "log", "-1", "--format=%h"],
                              capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src"],
                               capture_output=True, text=True, check=True).stdout.strip()
        n = len(dirty.splitlines())
        return f"{head}" + (f" (src/ has {n} uncommitted change(s))" if n else " (clean)")
    except (OSError, subprocess.CalledProcessError):
        return "unavailable"


# ====================================================================== K-armed
def karmed_run(policy, mu, rounds, batch, env_seed):
    """select_batch(B) → rewards → update_batch, for ``rounds`` rounds; (seconds, regret)."""
    env = np.random.default_rng(env_seed)
    best = mu.max()
    regret = 0.0
    t0 = time.perf_counter()
    if batch == 1:
        for _ in range(rounds):
            a = policy.select()
            policy.update(a, float(env.random() < mu[a]))
            regret += best - mu[a]
    else:
        for start in range(0, rounds, batch):
            m = min(batch, rounds - start)
            A = policy.select_batch(m)
            policy.update_batch(A, (env.random(m) < mu[A]).astype(np.float64))
            regret += float((best - mu[A]).sum())
    return time.perf_counter() - t0, regret


def bench_karmed(args, lines):
    K, T = 100, args.rounds
    mu = np.random.default_rng(args.seed).uniform(0.1, 0.9, K)
    lines += [
        f"## BernoulliTS, K = {K}, {T:,} rounds",
        "",
        f"Means U[0.1, 0.9] (seed {args.seed}, gap to the second arm "
        f"{np.sort(mu)[-1] - np.sort(mu)[-2]:.4f}); Beta(1, 1) priors. B decisions per "
        "`select_batch(B)`, rewards delivered by `update_batch` one batch later. Time is the "
        "whole run (reward simulation included).",
        "",
        "| feedback | rounds timed | time | time for 10⁶ rounds | per round | regret |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    rows = []
    for batch in args.batches:
        policy = BernoulliTS(K, seed=args.seed + 1)
        sec, reg = karmed_run(policy, mu, T, batch, args.seed + 2)
        rows.append((f"batches of {batch}", T, sec, sec * 1e6 / T, reg))
    policy = BernoulliTS(K, seed=args.seed + 1)
    policy.model.lazy_min_rounds = 2**62  # every arm drawn every round
    naive_rounds = T if not args.quick else T // 10
    sec, reg = karmed_run(policy, mu, naive_rounds, 1000, args.seed + 2)
    rows.append(("batches of 1000, all arms drawn", naive_rounds, sec, sec * 1e6 / naive_rounds,
                 reg))
    policy = BernoulliTS(K, seed=args.seed + 1)
    seq = args.sequential_rounds
    sec, reg = karmed_run(policy, mu, seq, 1, args.seed + 2)
    rows.append(("sequential: select() + update()", seq, sec, sec * 1e6 / seq, reg))
    for label, n, sec, per_million, reg in rows:
        lines.append(f"| {label} | {n:,} | {fmt_time(sec)} | {fmt_time(per_million)}"
                     f"{'' if n == 10**6 else ' (extrapolated)'} | {fmt_time(sec / n)} | "
                     f"{reg:,.0f}{'' if n == T else f' (after {n:,})'} |")
        print(lines[-1], flush=True)
    lines += ["", "UCB baselines, batches of 1000:", "",
              "| policy | rounds | time | regret |", "|---|---:|---:|---:|"]
    for cls in (UCB1, KLUCB):
        policy = cls(K, seed=args.seed + 1)
        n = T if not args.quick else T // 10
        sec, reg = karmed_run(policy, mu, n, 1000, args.seed + 2)
        lines.append(f"| {cls.__name__} | {n:,} | {fmt_time(sec)} | {reg:,.0f} |")
        print(lines[-1], flush=True)
    lines.append("")


# ====================================================================== GTS
def timed(fn, *a):
    t0 = time.perf_counter()
    out = fn(*a)
    return out, time.perf_counter() - t0


def bench_gts(args, lines):
    N, K, d, T = args.experts, 10, 20, args.gts_rounds
    rng = np.random.default_rng(args.seed + 10)
    W = rng.normal(0, 1, (N, d)) * 0.5
    truth = 1234 % N
    lines += [
        f"## Generalized TS with {N:,} experts",
        "",
        f"Logistic experts, weights (N, d) = ({N:,}, {d}), K = {K}, contexts (K, d) ~ N(0, I); "
        f"rewards Bernoulli(σ(x_a · w_j*)) for expert j* = {truth}. {T:,} rounds of "
        "`select` + `update` (medians per call), then `update_batch` throughput and "
        "`action_probabilities`.",
        "",
        "| policy | select | update | round (median) | action_probabilities | "
        "update_batch per round (B = 100) | weight of j* | regret vs j* |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    configs = [
        ("GTS log loss, γ = 0", lambda: GeneralizedTS(W, "log", seed=1, n_actions=K)),
        ("GTS square loss, η = 2, γ = 0.05",
         lambda: GeneralizedTS(W, "square", eta=2.0, gamma=0.05, seed=1, n_actions=K)),
        ("EXP4, γ = 0.05", lambda: EXP4(W, gamma=0.05, eta=0.05, seed=1, n_actions=K)),
    ]
    for label, make in configs:
        policy = make()
        env = np.random.default_rng(args.seed + 11)
        ts, tu, regret = [], [], 0.0
        for _ in range(T):
            x = env.normal(size=(K, d))
            p = 1 / (1 + np.exp(-(x @ W[truth])))
            a, s1 = timed(policy.select, x)
            _, s2 = timed(policy.update, x, a, float(env.random() < p[a]))
            ts.append(s1)
            tu.append(s2)
            regret += p.max() - p[a]
        weight = policy.weights()[truth]  # before the timing below feeds it random rewards
        x = env.normal(size=(K, d))
        probs = [timed(policy.action_probabilities, x)[1] for _ in range(50)]
        X = env.normal(size=(100, K, d))
        A = env.integers(K, size=100)
        Y = (env.random(100) < 0.5).astype(float)
        batch_times = [timed(policy.update_batch, X, A, Y)[1] for _ in range(20)]
        rnd = np.median(np.array(ts) + np.array(tu))
        lines.append(
            f"| {label} | {fmt_time(np.median(ts))} | {fmt_time(np.median(tu))} | "
            f"{fmt_time(rnd)} | {fmt_time(np.median(probs))} | "
            f"{fmt_time(np.median(batch_times) / 100)} | {weight:.3f} | "
            f"{regret:.1f} |")
        print(lines[-1], flush=True)
    # context-free table experts: a discrete prior over 10^4 bandit instances of K = 10 arms
    means = rng.uniform(0.05, 0.95, (N, K))
    policy = GeneralizedTS(TableExperts(means), "log", seed=2)
    env = np.random.default_rng(args.seed + 12)
    ts = []
    for _ in range(T):
        t0 = time.perf_counter()
        a = policy.select()
        policy.update(a=a, y=float(env.random() < means[truth, a]))
        ts.append(time.perf_counter() - t0)
    lines.append(f"| GTS log loss, table experts (N, K) = ({N:,}, {K}), context-free | | | "
                 f"{fmt_time(np.median(ts))} | | | {policy.weights()[truth]:.3f} | |")
    print(lines[-1], flush=True)
    lines.append("")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="10x fewer rounds (smoke run)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--experts", type=int, default=10_000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    args.rounds = 10**6 if not args.quick else 10**5
    args.batches = [10_000, 1000, 100, 10] if not args.quick else [1000, 100]
    args.sequential_rounds = 100_000 if not args.quick else 10_000
    args.gts_rounds = 2000 if not args.quick else 300
    out = args.out or HERE / ("results_karmed.md" if not args.quick else
                              "results_karmed_quick.md")
    lines = [
        "# mixedts K-armed and expert benchmark",
        "",
        f"- date: {time.strftime('%Y-%m-%dT%H:%M:%S')}, mode: "
        f"{'quick' if args.quick else 'full'}, seed {args.seed}",
        f"- machine: {platform.processor() or platform.machine()}, {os.cpu_count()} logical "
        f"CPUs, {platform.system()} {platform.release()}",
        f"- python {platform.python_version()}, numpy {np.__version__}, scipy {scipy.__version__}",
        f"- mixedts source: git {git_info()}",
        "- BLAS threads: OPENBLAS_NUM_THREADS="
        f"{os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}",
        "",
        f"Command: `python benchmarks/bench_karmed.py{' --quick' if args.quick else ''}`",
        "",
    ]
    t0 = time.perf_counter()
    bench_karmed(args, lines)
    bench_gts(args, lines)
    lines.append(f"Total wall time: {time.perf_counter() - t0:.0f} s.")
    text = "\n".join(lines) + "\n"
    out.write_text(text)
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
