#!/usr/bin/env python
"""Quick check: ``mixedts.offline.evaluate`` with six estimators on 10⁶ logged rounds.

Target (issue #12): under 10 s on 2 cores for n = 10⁶, K = 10. The log is simulated once from a
mixed-effect environment (d = 5, shared contexts) under a softmax logging policy; the target
policy is another softmax policy and the reward model an (n, K) array (a noisy copy of the
true expected rewards), so the timing is the estimators' own work plus the validation of the
target probabilities and predictions. ``--sklearn`` also times a fitted scikit-learn Ridge
model as the reward model (its predictions on n·K rows are then part of the time).

Prints one line per measurement (median of ``--repeats`` runs) and the estimates.

    python benchmarks/bench_offline.py [--n 1000000] [--K 10] [--d 5] [--repeats 3] [--sklearn]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from mixedts.environments import MixedEffectEnvironment
from mixedts.offline import (
    LoggedFeedback,
    evaluate,
    reward_features,
    simulate_logs,
    true_policy_value,
)

ESTIMATORS = ("ips", "snips", "dm", "dr", "sndr", "switch-dr")


def softmax(z: np.ndarray) -> np.ndarray:
    z = np.exp(z - z.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def timed(fn, repeats: int):
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times)), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--K", type=int, default=10)
    parser.add_argument("--d", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--sklearn", action="store_true", help="also time a Ridge reward model")
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    W = rng.normal(size=(2, args.d, args.K))
    env = MixedEffectEnvironment(n_actions=args.K, n_effects=3, dim=args.d, seed=args.seed)
    start = time.perf_counter()
    logs = simulate_logs(env, lambda X: softmax(X @ W[0]), args.n, seed=args.seed)
    simulated = time.perf_counter() - start
    pi = softmax(2.0 * logs.contexts @ W[1])
    q = logs.expected_rewards + rng.normal(scale=0.3, size=logs.expected_rewards.shape)

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"numpy {np.__version__}")  # fmt: skip
    print(f"n = {args.n:,}, K = {args.K}, d = {args.d}; simulate_logs: {simulated:.2f} s")
    build, _ = timed(lambda: LoggedFeedback(logs.contexts, logs.actions, logs.rewards,
                                            propensities=logs.propensities), args.repeats)
    print(f"LoggedFeedback construction (validation): {build:.2f} s")
    seconds, table = timed(lambda: evaluate(logs, pi, ESTIMATORS, reward_model=q), args.repeats)
    print(f"evaluate, {len(ESTIMATORS)} estimators, (n, K) reward model: {seconds:.2f} s "
          f"(target < 10 s)")
    print(table.to_string(float_format=lambda v: f"{v:.5f}"))
    print(f"true value on the logged contexts: {true_policy_value(logs, pi):.5f}")
    if args.sklearn:
        from sklearn.linear_model import Ridge

        model = Ridge().fit(reward_features(logs), logs.rewards)
        seconds, _ = timed(lambda: evaluate(logs, pi, ESTIMATORS, reward_model=model),
                           args.repeats)  # fmt: skip
        print(f"evaluate, {len(ESTIMATORS)} estimators, fitted Ridge reward model: "
              f"{seconds:.2f} s")


if __name__ == "__main__":
    main()
