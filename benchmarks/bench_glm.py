"""Benchmarks of the logistic (GLM) policies: per-round time, horizon scaling, regret.

Usage: ``python benchmarks/bench_glm.py [--quick]``. Prints markdown and writes
``benchmarks/results_glm.md``. Everything is seeded; all ratios come from one run.

1. Per-round time (select + update, shared context, every action observed first) of meTS-GLM
   with each Laplace method against meTS-Lin, K in {1e2, 1e4}, L = 20, d = 10, 2 non-zeros per
   mixing row.
2. Horizon scaling of the minibatch and online methods: mean round time around round 5,000
   and around round 50,000 of one long run (acceptance: ratio <= 2).
3. Regret on the logistic mixed-effect problem of issue 3 (K = 30, L = 3, d = 2,
   x ~ U[-1, 1]^d, b ~ U[-1, 1], Σ_Ψ = 3I, Σ0 = I, n = 1,500, 8 seeds).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

# one BLAS thread, as in bench_rounds.py: on 2 cores a second thread makes timings erratic
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402
import scipy.sparse as sp  # noqa: E402
from scipy.special import expit  # noqa: E402

from mixedts import GLMTS, UCBGLM, HierTS, MeTS, MixedEffectPrior  # noqa: E402
from mixedts.environments import MixedEffectEnvironment  # noqa: E402
from mixedts.evaluation import run_policy  # noqa: E402


def sparse_prior(K: int, L: int, d: int, rng: np.random.Generator) -> MixedEffectPrior:
    rows = np.repeat(np.arange(K), 2)
    cols = np.argsort(rng.random((K, L)), axis=1)[:, :2].ravel()
    B = sp.csr_matrix((rng.uniform(-1, 1, 2 * K), (rows, cols)), shape=(K, L))
    return MixedEffectPrior(np.zeros((L, d)), 3 * np.broadcast_to(np.eye(d), (L, d, d)), B,
                            np.eye(d))


def per_round(K: int, L: int, d: int, factory, rounds: int, seed: int = 0) -> float:
    """Median seconds of select + update after every action was observed once."""
    rng = np.random.default_rng(seed)
    prior = sparse_prior(K, L, d, rng)
    policy = factory(prior)
    X = rng.uniform(-1, 1, (K, d))
    policy.update_batch(X, rng.permutation(K), (rng.uniform(size=K) < 0.5).astype(float))
    theta = rng.normal(size=(K, d))
    times = []
    for _ in range(rounds):
        x = rng.uniform(-1, 1, d)
        t0 = time.perf_counter()
        a = policy.select(x)
        policy.update(x, a, float(rng.uniform() < expit(theta[a] @ x)))
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def horizon_scaling(method: str, horizon: int, window: int, seed: int = 0):
    """Round time of the policy as it is at round horizon/10 and at round ``horizon``.

    One run is played to the end; copies of the policy taken at both rounds are then timed
    in alternating blocks of 20 rounds, so that both see the same machine conditions.
    """
    env = MixedEffectEnvironment(100, 5, 5, reward="logistic", seed=seed)
    policy = MeTS(env.prior, seed=seed, likelihood="logistic", laplace=method)
    rng = np.random.default_rng(seed + 1)
    early = horizon // 10
    snapshots = {}
    for t in range(1, horizon + 1):
        x = env.context(rng)
        a = policy.select(x)
        policy.update(x, a, env.draw_reward(x, a, rng))
        if t in (early, horizon):
            snapshots[t] = policy.copy()
    times = {early: [], horizon: []}
    timing_rng = np.random.default_rng(seed + 2)
    for _ in range(window // 20):
        for mark, p in snapshots.items():
            for _ in range(20):
                x = env.context(timing_rng)
                t0 = time.perf_counter()
                a = p.select(x)
                p.update(x, a, env.draw_reward(x, a, timing_rng))
                times[mark].append(time.perf_counter() - t0)
    return float(np.median(times[early])), float(np.median(times[horizon])), early


def regret_table(n: int, seeds: int):
    factories = {
        "meTS-GLM": lambda env, s: MeTS(env.prior, seed=s, likelihood="logistic"),
        "meTS-GLM (paper: expansion at the MLE)": lambda env, s: MeTS(
            env.prior, seed=s, likelihood="logistic", laplace_at="likelihood"
        ),
        "meTS-GLM (minibatch 30)": lambda env, s: MeTS(env.prior, seed=s, likelihood="logistic",
                                                       laplace="minibatch"),
        "meTS-GLM (online)": lambda env, s: MeTS(env.prior, seed=s, likelihood="logistic",
                                                 laplace="online"),
        "GLM-TS": lambda env, s: GLMTS.from_prior(env.prior, seed=s),
        "GLM-TS (likelihood plug-in)": lambda env, s: GLMTS.from_prior(
            env.prior, seed=s, laplace_at="likelihood"
        ),
        "GLM-TS (diagonal)": lambda env, s: GLMTS.from_prior(env.prior, diagonal=True, seed=s),
        "HierTS-GLM": lambda env, s: HierTS.from_prior(env.prior, seed=s, likelihood="logistic"),
        "meTS-Lin": lambda env, s: MeTS(env.prior, seed=s),
        "UCB-GLM": lambda env, s: UCBGLM(env.n_actions, env.dim, alpha=1.0, seed=s),
    }
    out = {name: [] for name in factories}
    for s in range(seeds):
        env = MixedEffectEnvironment(30, 3, 2, reward="logistic", seed=s)
        for name, factory in factories.items():
            regret = run_policy(env, factory(env, 1000 + s), n, np.random.default_rng(2000 + s))
            out[name].append(regret.sum())
    return {k: np.asarray(v) for k, v in out.items()}


def fmt(t: float) -> str:
    return f"{t * 1e3:.2f} ms" if t >= 1e-3 else f"{t * 1e6:.0f} µs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small smoke run")
    parser.add_argument("--out", default=str(Path(__file__).with_name("results_glm.md")))
    args = parser.parse_args()
    quick = args.quick
    threads = os.environ["OPENBLAS_NUM_THREADS"]
    lines = ["# mixedts GLM benchmarks", "", f"BLAS threads: {threads}", "",
             f"Command: `python benchmarks/bench_glm.py{' --quick' if quick else ''}`", ""]

    lines += ["## Per-round time (select + update), L = 20, d = 10", "",
              "| K | meTS-Lin | meTS-GLM exact | meTS-GLM minibatch | meTS-GLM online |",
              "|---|---:|---:|---:|---:|"]
    for K in ((100,) if quick else (100, 10_000)):
        rounds = 30 if quick else 300
        cells = [
            per_round(K, 20, 10, lambda p: MeTS(p, seed=0), rounds),
            *(per_round(K, 20, 10, lambda p, m=m: MeTS(p, seed=0, likelihood="logistic",
                                                      laplace=m), rounds)
              for m in ("exact", "minibatch", "online")),
        ]
        lines.append(f"| {K:.0e} | " + " | ".join(fmt(c) for c in cells) + " |")
        print(lines[-1], flush=True)

    horizon, window = (2000, 200) if quick else (50_000, 1000)
    lines += ["", f"## Horizon scaling (K = 100, L = 5, d = 5, one run of {horizon} rounds)", "",
              "| method | at round n/10 | at round n | ratio | target |",
              "|---|---:|---:|---:|---|"]
    for method in ("minibatch", "online"):
        early, late, mark = horizon_scaling(method, horizon, window)
        lines.append(f"| {method} | {fmt(early)} (round {mark}) | {fmt(late)} (round {horizon}) "
                     f"| {late / early:.2f} | <= 2 |")
        print(lines[-1], flush=True)

    n, seeds = (300, 2) if quick else (1500, 8)
    res = regret_table(n, seeds)
    lines += ["", f"## Cumulative regret, logistic mixed-effect bandit (K = 30, L = 3, d = 2, "
              f"n = {n}, {seeds} seeds, mean ± s.e.)", "", "| policy | regret | ± s.e. |",
              "|---|---:|---:|"]
    for name, v in sorted(res.items(), key=lambda kv: kv[1].mean()):
        lines.append(f"| {name} | {v.mean():.1f} | {v.std(ddof=1) / np.sqrt(len(v)):.1f} |")
    ok = res["meTS-GLM"].mean() < min(res["GLM-TS"].mean(), res["meTS-Lin"].mean())
    lines += ["", f"meTS-GLM below GLM-TS and meTS-Lin: {'PASS' if ok else 'FAIL'}"]
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
