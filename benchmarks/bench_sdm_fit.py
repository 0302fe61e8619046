#!/usr/bin/env python
"""Time fitting sDM's posterior on logged data (issue #12's target: n = 10⁵ rows, K = 10⁴,
d = 10 in under 5 s on 2 cores).

sDM is MeTS on a :class:`~mixedts.LinearEffectPrior` (θ_a | ψ ~ N(W_a ψ, Σ_a)) fitted on the
logs in one ``update_batch`` (the sufficient statistics, then one exact recompute).

    python benchmarks/bench_sdm_fit.py [--rows N] [--actions K] [--dim D] [--effect-dim E]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mixedts import LinearEffectPrior, MeTS
from mixedts.offline import LoggedFeedback, fit_on_logs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--actions", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=10)
    ap.add_argument("--effect-dim", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    n, K, d, e = args.rows, args.actions, args.dim, args.effect_dim
    rng = np.random.default_rng(0)
    prior = LinearEffectPrior(rng.uniform(-1, 1, e), 3 * np.eye(e),
                              rng.uniform(-1, 1, (K, d, e)), np.eye(d))
    logs = LoggedFeedback(rng.uniform(-1, 1, (n, d)), rng.integers(K, size=n),
                          rng.normal(size=n), np.full(n, 1 / K), n_actions=K)
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        fit_on_logs(MeTS(prior, seed=0), logs)
        times.append(time.perf_counter() - t0)
    print(f"sDM fit (build + update_batch), n={n}, K={K}, d={d}, d'={e}: "
          f"median {np.median(times):.2f} s over {args.repeats} (target < 5 s)")


if __name__ == "__main__":
    main()
