"""The command line of a plain ``pip install mixedts``: ``--help``, ``version`` and ``demo``.

The other commands (``run``, ``reproduce``, ``plot``, ``evaluate``, ``bench``) write Parquet
tables and PNG plots and run in parallel, so they need ``pip install 'mixedts[experiments]'``;
asked for here, they say so in one line and exit with status 2.
"""

from __future__ import annotations

import argparse

import numpy as np

EXTRA = "pip install 'mixedts[experiments]'"
FULL_ONLY = ("run", "reproduce", "plot", "evaluate", "bench")
SERVICE = "pip install 'mixedts[experiments,service]'"
SERVICE_ONLY = ("serve", "export")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mixedts",
        description="Thompson sampling for bandits whose actions share structure. "
                    "run, reproduce, plot, evaluate and bench need the experiments extra: "
                    f"{EXTRA}",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    demo = sub.add_parser("demo", help="meTS Fig. 2 (linear, K=100, L=3, d=2), shortened: "
                                       "a table of cumulative regrets")
    demo.add_argument("--runs", type=int, default=8, help="runs (seeded from --seed)")
    demo.add_argument("--horizon", type=int, default=2000, help="rounds per run")
    demo.add_argument("--seed", type=int, default=0, help="root seed")
    sub.add_parser("version", help="print the installed version")
    for name in FULL_ONLY:
        sub.add_parser(name, help=f"needs the experiments extra ({EXTRA})", add_help=False)
    for name in SERVICE_ONLY:
        sub.add_parser(name, help=f"needs the service extra ({SERVICE})", add_help=False)
    return parser


def demo(runs: int, horizon: int, seed: int) -> list[tuple[str, float, float]]:
    """The demo's policies on the demo's environment: (name, mean, s.e.) of the final
    cumulative regret over ``runs`` seeded runs (the same seeding as ``simulate``)."""
    from .environments import MixedEffectEnvironment
    from .evaluation.demo import DEMO
    from .evaluation.registry import PolicySpec
    from .evaluation.simulate import run_rounds, run_seeds

    env_cfg = {k: v for k, v in DEMO["environment"].items() if k != "type"}
    env = MixedEffectEnvironment(**env_cfg)
    _, seeds = run_seeds(seed, runs)
    rows = []
    for name, cfg in DEMO["policies"].items():
        spec = PolicySpec(cfg["type"], {k: v for k, v in cfg.items() if k != "type"},
                          horizon=horizon)
        finals = []
        for instance, rounds, own in seeds:  # runs: each one a full simulation
            run_env = env.reseed(instance)
            policy = spec(run_env, np.random.default_rng(own))
            finals.append(run_rounds(run_env, policy, horizon,
                                     np.random.default_rng(rounds))["regret"].sum())
        finals = np.asarray(finals)
        se = finals.std(ddof=1) / np.sqrt(len(finals)) if len(finals) > 1 else float("nan")
        rows.append((name, float(finals.mean()), float(se)))
    return rows


def main(argv: list[str]) -> int:
    parser = _parser()
    args, _ = parser.parse_known_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "version":
        from . import __version__

        print(__version__)
        return 0
    if args.command in FULL_ONLY:
        print(f"error: mixedts {args.command} needs the experiments extra: {EXTRA}")
        return 2
    if args.command in SERVICE_ONLY:
        print(f"error: mixedts {args.command} needs the experiments and service extras: "
              f"{SERVICE}")
        return 2
    for key in ("runs", "horizon"):
        if getattr(args, key) < 1:
            print(f"error: --{key} must be at least 1, got {getattr(args, key)}")
            return 2
    print(f"demo: {args.runs} runs x {args.horizon} rounds (no plot or files without the "
          f"experiments extra: {EXTRA})")
    print(f"{'policy':<14}{'cumulative regret':>24}")
    for name, mean, se in demo(args.runs, args.horizon, args.seed):
        print(f"{name:<14}{mean:>14.1f} ± {se:<7.1f}")
    return 0
