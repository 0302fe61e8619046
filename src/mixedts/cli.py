"""The ``mixedts`` command line (typer)."""

from __future__ import annotations

import time

import numpy as np

try:
    import typer
except ImportError as exc:  # pragma: no cover - the CLI needs the 'experiments' extra
    raise SystemExit("the mixedts command needs: pip install 'mixedts[experiments]'") from exc

from . import FactoredMeTS, HierTS, LinTS, LinUCB, MeTS
from .environments import MixedEffectEnvironment
from .evaluation import run_policy

app = typer.Typer(
    help="Thompson sampling for bandits whose actions share structure.", no_args_is_help=True
)

POLICIES = {
    "meTS": lambda env, s: MeTS(env.prior, env.noise_std, seed=s),
    "meTS-Fa": lambda env, s: FactoredMeTS(env.prior, env.noise_std, seed=s),
    "LinTS": lambda env, s: LinTS.from_prior(env.prior, noise_std=env.noise_std, seed=s),
    "HierTS": lambda env, s: HierTS.from_prior(env.prior, noise_std=env.noise_std, seed=s),
    "LinUCB": lambda env, s: LinUCB(env.n_actions, env.dim, alpha=1.0, seed=s),
}


@app.command()
def demo(
    n_actions: int = typer.Option(100, help="K, the number of actions."),
    n_effects: int = typer.Option(3, help="L, the number of effects."),
    dim: int = typer.Option(2, help="d, the context dimension."),
    horizon: int = typer.Option(2000, help="Rounds per run."),
    runs: int = typer.Option(5, help="Independent runs (seeded from --seed)."),
    seed: int = typer.Option(0, help="Root seed."),
) -> None:
    """Synthetic linear comparison (the meTS paper's Fig. 2 setting): cumulative regret."""
    from rich.console import Console
    from rich.progress import track
    from rich.table import Table

    console = Console()
    children = np.random.SeedSequence(seed).spawn(runs)
    final = {name: [] for name in POLICIES}
    seconds = {name: 0.0 for name in POLICIES}
    for child in track(
        children, description="runs", console=console, disable=not console.is_terminal
    ):
        env_seed, run_seed, policy_seed = child.spawn(3)
        env = MixedEffectEnvironment(
            n_actions, n_effects, dim, seed=np.random.default_rng(env_seed)
        )
        for name, factory in POLICIES.items():
            policy = factory(env, np.random.default_rng(policy_seed))
            start = time.perf_counter()
            regret = run_policy(env, policy, horizon, np.random.default_rng(run_seed))
            seconds[name] += time.perf_counter() - start
            final[name].append(regret.sum())
    table = Table(
        title=f"Cumulative regret at n={horizon} (K={n_actions}, L={n_effects}, "
        f"d={dim}, {runs} runs, mean ± s.e.)"
    )
    for col in ("policy", "regret", "± s.e.", "ms / round"):
        table.add_column(col, justify="right" if col != "policy" else "left")
    for name, values in sorted(final.items(), key=lambda kv: np.mean(kv[1])):
        v = np.asarray(values)
        se = v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else float("nan")
        table.add_row(
            name, f"{v.mean():.1f}", f"{se:.1f}", f"{1e3 * seconds[name] / (runs * horizon):.3f}"
        )
    console.print(table)


@app.command()
def version() -> None:
    """Print the installed version."""
    from . import __version__

    typer.echo(__version__)


def main() -> None:  # pragma: no cover - entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
