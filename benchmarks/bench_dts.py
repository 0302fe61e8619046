"""Benchmark of dTS (issue 14): the cost of a round against LinTS at the same K and d.

Usage: ``python benchmarks/bench_dts.py [--quick]``. Prints markdown and writes
``benchmarks/results_dts.md``. Everything is seeded; every ratio comes from one run.

A round is ``select`` + ``update``. The prior is the linear chain of Aouali (2023) Fig. 2
(d = 20, L = 4, d_ℓ = (20, 10, 5, 2), Σ_ℓ = I); every action is observed once first (so that
every action has its own posterior, LinTS's worst case too), then the policies are timed in
alternating blocks of 20 rounds on the same contexts, so that both see the same machine
conditions. Acceptance: dTS's median round at K = 10⁴ is at most 3× LinTS's.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

# one BLAS thread, as in bench_rounds.py: on 2 cores a second thread makes timings erratic
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import numpy as np  # noqa: E402

from mixedts import DiffusionTS, LinTS, MeTS  # noqa: E402
from mixedts.environments import DiffusionEnvironment  # noqa: E402

BLOCK = 20


def policies(env: DiffusionEnvironment) -> dict:
    K = env.n_actions
    mean, cov = env.independent_prior()
    return {
        "dTS": DiffusionTS(env.diffusion_prior, n_actions=K, seed=1),
        "LinTS": LinTS(mean, cov, seed=1),
        "HierTS-1": DiffusionTS(env.diffusion_prior.to_hierts1(), n_actions=K, seed=1),
        "HierTS-2 (MeTS)": MeTS(env.prior, seed=1),
    }


def time_rounds(K: int, rounds: int, per_action: bool, seed: int = 0) -> dict[str, float]:
    """Median seconds of a round of each policy, timed in alternating blocks."""
    env = DiffusionEnvironment(n_actions=K, dim=20, n_layers=4, layer_dims=(20, 10, 5, 2),
                               contexts="per-action" if per_action else "shared", seed=seed)
    rng = np.random.default_rng(seed + 1)
    pols = policies(env)
    warm = env.sample(1, rng)
    X0 = warm.contexts[0] if per_action else np.broadcast_to(warm.contexts[0], (K, env.dim))
    for p in pols.values():  # every action observed once
        p.update_batch(np.ascontiguousarray(X0), np.arange(K), warm.rewards[0])
    times: dict[str, list[float]] = {name: [] for name in pols}
    for _ in range(max(1, rounds // BLOCK)):
        block = env.sample(BLOCK, rng)
        for name, p in pols.items():  # the same contexts and rewards for every policy
            for t in range(BLOCK):
                x = block.contexts[t]
                t0 = time.perf_counter()
                a = p.select(x)
                p.update(x, a, float(block.rewards[t, a]))
                times[name].append(time.perf_counter() - t0)
    return {name: float(np.median(v)) for name, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds (a smoke test)")
    args = parser.parse_args()
    rounds = 40 if args.quick else 400
    lines = [
        "# dTS round time (benchmarks/bench_dts.py)",
        "",
        f"Machine: {platform.processor() or platform.machine()}, one BLAS thread, "
        f"numpy {np.__version__}. Median of {rounds} rounds (select + update) per policy, "
        "timed in alternating blocks of 20 rounds within one run; every action observed once "
        "first. Prior: Aouali (2023) Fig. 2 chain, d = 20, L = 4, d_ℓ = (20, 10, 5, 2).",
        "",
        "| K | contexts | dTS (ms) | LinTS (ms) | HierTS-1 (ms) | HierTS-2 = MeTS (ms) | "
        "dTS / LinTS |",
        "|---|---|---|---|---|---|---|",
    ]
    verdict = None
    cases = [(10_000, True), (10_000, False)] + ([] if args.quick else [(1_000, True),
                                                                        (100, True)])
    for K, per_action in cases:
        t = time_rounds(K, rounds, per_action)
        ratio = t["dTS"] / t["LinTS"]
        ctx = "per action (K, d)" if per_action else "shared (d,)"
        lines.append(f"| {K} | {ctx} | {t['dTS'] * 1e3:.3f} | {t['LinTS'] * 1e3:.3f} | "
                     f"{t['HierTS-1'] * 1e3:.3f} | {t['HierTS-2 (MeTS)'] * 1e3:.3f} | "
                     f"{ratio:.2f} |")
        print(lines[-1], flush=True)
        if K == 10_000:
            verdict = max(ratio, verdict or 0.0)
    lines += ["", f"Acceptance (issue 14): dTS / LinTS ≤ 3 at K = 10⁴, d = 20, L = 4: worst "
              f"ratio {verdict:.2f}, {'met' if verdict <= 3 else 'NOT met'}.", ""]
    text = "\n".join(lines)
    print(text)
    if not args.quick:
        Path(__file__).with_name("results_dts.md").write_text(text)


if __name__ == "__main__":
    main()
