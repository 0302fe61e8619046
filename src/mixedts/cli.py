"""The ``mixedts`` command line (typer): demo, run, reproduce, plot, evaluate, bench, version.

Bad arguments or experiment files exit with status 2 and one line naming the problem.
"""

from __future__ import annotations

import os
from pathlib import Path

try:
    import typer
except ImportError as exc:  # pragma: no cover - the CLI needs the 'experiments' extra
    raise SystemExit("the full mixedts command needs: pip install 'mixedts[experiments]'") from exc

from .cli_service import register as register_service
from .evaluation import ConfigError, Results, load_experiment
from .evaluation.demo import DEMO

app = typer.Typer(
    help="Thompson sampling for bandits whose actions share structure.",
    no_args_is_help=True,
    add_completion=False,
)

#: what ``reproduce`` accepts: a config stem, or a group of them
GROUPS = {
    "fig4": ["fig4-k50", "fig4-k20"],
    "dts": ["dts-fig1", "dts-fig1-shared", "dts-fig1-logistic", "dts-fig1-nonlinear",
            "lindiffts-fig2"],
    # the experiments whose dTS prior is a DDPM fitted on offline samples (minutes each)
    "dts-fitted": ["dts-fig1-nonlinear-fitted", "dts-swissroll", "dts-movielens"],
    "movielens": ["movielens-linear", "movielens-logistic", "movielens-linear-d2",
                  "movielens-linear-k50", "movielens-linear-k20"],
}

RUNS = typer.Option(None, "--runs", help="Runs (overrides the file).")
HORIZON = typer.Option(None, "--horizon", help="Rounds per run (overrides the file).")
JOBS = typer.Option(None, "--jobs", help="Local processes; -1: all cores (overrides the file).")
SCHEDULER = typer.Option(None, "--scheduler", help="Dask scheduler address, tcp://host:port.")
SEED = typer.Option(None, "--seed", help="Root seed (overrides the file).")
QUIET = typer.Option(False, "--quiet", "-q", help="No progress bar.")
VECTORIZE = typer.Option(None, "--vectorize/--no-vectorize",
                         help="Step runs of a policy together where it can (default: the "
                              "file's, else yes).")
OUT = typer.Option(None, "--out", help="Output folder (default results/NAME).")
POLICIES = typer.Option(None, "--policies", metavar="NAMES",
                        help="Run only these policies of the file, comma-separated (each "
                             "policy's results do not depend on which others run).")
DEMO_OUT = typer.Option(Path("results/demo"), "--out", help="Output folder.")
CONFIG = typer.Argument(..., help="Experiment file (TOML).")
NAME = typer.Argument(..., help="fig2-linear, fig2-linear-text, fig2-logistic, fig4, "
                      "movielens-linear, movielens-logistic, movielens, dts-fig1, dts, "
                      "lindiffts-fig2, dts-swissroll, dts-fitted, sdm-synthetic, sdm-actions, "
                      "sdm-binary, sdm-movielens, …")
RESULTS = typer.Argument(..., help="A results folder (or its results.parquet).")
PNG = typer.Option(None, "--out", help="PNG path (default: regret.png beside the results).")
DATA = typer.Option(None, "--data", help="MovieLens folder (overrides environment.data; "
                    "unset: download ml-100k once into the cache).")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _console():
    from rich.console import Console

    return Console()


def print_table(results: Results, title: str = "", reference: dict | None = None) -> None:
    """Final cumulative regret (mean ± s.e.), sorted, next to the reference values."""
    from rich.table import Table

    reference = reference or {}
    s = results.summary().sort_values("cum_regret_mean")
    table = Table(title=title or None, caption=f"cumulative regret at n = {results.horizon}, "
                  f"{results.n_runs} runs, mean ± standard error")
    table.add_column("policy")
    for col in ("regret", "± s.e.", *reference, *(f"/ {k}" for k in reference), "ms/round"):
        table.add_column(col, justify="right")
    for r in s.itertuples():
        refs = [reference[k].get(r.policy) for k in reference]
        ratios = [f"{r.cum_regret_mean / v:.2f}" if v else "" for v in refs]
        se = "" if r.cum_regret_se != r.cum_regret_se else f"{r.cum_regret_se:.1f}"
        table.add_row(r.policy, f"{r.cum_regret_mean:.1f}", se,
                      *("" if v is None else f"{v:.0f}" for v in refs), *ratios,
                      f"{r.ms_per_round:.3f}")
    console = _console()
    console.print(table)
    for label, values in reference.items():
        console.print(f"same order as {label}: {order_verdict(results, values, label)}")


def order_verdict(results: Results, values: dict, label: str) -> str:
    """"yes", "yes up to ties: …" (every swap within 2 paired s.e.) or "no (…)"."""
    swaps = results.order_swaps(values)
    if not swaps:
        return "yes"
    said = "; ".join(f"{a} − {b} = {m:+.1f} ± {se:.1f} paired" for a, b, m, se in swaps)
    if all(abs(m) < 2 * se for _, _, m, se in swaps):
        return f"yes up to ties ({said})"
    ours = [p for p in results.summary().sort_values("cum_regret_mean")["policy"] if p in values]
    return f"no ({label}: {', '.join(sorted(ours, key=lambda p: values[p]))}; {said})"


def write_outputs(results: Results, out: Path, title: str = "",
                  reference: dict | None = None) -> list[Path]:
    """``results.parquet``, ``summary.csv`` (10 checkpoints, the last the final round) and
    ``regret.png`` (when matplotlib is installed) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    written = [results.to_parquet(out / "results.parquet")]
    n = results.horizon
    checkpoints = sorted({max(1, round(n * k / 10)) for k in range(1, 11)})
    summary = results.summary(checkpoints)
    summary.to_csv(out / "summary.csv", index=False)
    written.append(out / "summary.csv")
    try:
        written.append(results.plot(out / "regret.png", title=title or None,
                                    reference=reference))
    except ImportError:
        typer.echo("note: no regret.png (pip install matplotlib)", err=True)
    return written


def _run_experiment(exp, out: Path | None, jobs, scheduler, quiet: bool) -> Results:
    console = _console()
    if exp.description:
        console.print(exp.description)
    console.print(f"{exp.name}: {exp.environment!r}\n{len(exp.policies)} policies × "
                  f"{exp.runs} runs × {exp.horizon} rounds")
    results = exp.run(n_jobs=jobs, scheduler=scheduler, quiet=quiet)
    reference = exp.comparable_reference
    print_table(results, exp.title, reference)
    if exp.reference and not reference:
        console.print(f"(the file's reference values are at n = {exp.reference_horizon}; "
                      f"not compared at n = {exp.horizon})")
    console.print(f"wall time {results.meta['wall_seconds']:.1f} s")
    if out is not None:
        written = write_outputs(results, out, exp.title, reference)
        console.print("wrote " + ", ".join(str(p) for p in written))
    return results


@app.command()
def demo(
    runs: int = typer.Option(8, help="Runs (seeded from --seed)."),
    horizon: int = typer.Option(2000, help="Rounds per run."),
    jobs: int = typer.Option(2, help="Local processes."),
    seed: int = typer.Option(0, help="Root seed."),
    out: Path = DEMO_OUT,
    quiet: bool = QUIET,
) -> None:
    """meTS Fig. 2 (linear, K=100, L=3, d=2), shortened: a table, results/demo/regret.png."""
    try:
        exp = load_experiment({**DEMO, "runs": runs, "horizon": horizon, "seed": seed})
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    _run_experiment(exp, out, jobs, None, quiet)


@app.command()
def run(
    config: Path = CONFIG,
    runs: int | None = RUNS,
    horizon: int | None = HORIZON,
    jobs: int | None = JOBS,
    scheduler: str | None = SCHEDULER,
    seed: int | None = SEED,
    out: Path | None = OUT,
    data: Path | None = DATA,
    vectorize: bool | None = VECTORIZE,
    policies: str | None = POLICIES,
    quiet: bool = QUIET,
) -> None:
    """Run an experiment file; write results.parquet, summary.csv and regret.png."""
    from . import cli_offline
    from .evaluation.offline_runs import is_offline

    try:
        if is_offline(config):
            unused = {"--horizon": horizon, "--jobs": jobs, "--scheduler": scheduler,
                      "--policies": policies, "--vectorize": vectorize}
            exp = cli_offline.load(config, runs, seed, data, unused)
            cli_offline.run(exp, out or Path("results") / exp.name, quiet, _console())
            return
        _check_overrides(runs, horizon, jobs, seed)
        exp = load_experiment(config, _data_override(data)).replace(
            runs=runs, horizon=horizon, seed=seed, vectorize=vectorize
        ).only(_names(policies))
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    _run_experiment(exp, out or Path("results") / exp.name, jobs, scheduler, quiet)


def _takes_data(path: Path) -> bool:
    """Whether the experiment file's environment type has a ``data`` key."""
    from .evaluation.config import ENVIRONMENTS, tomllib

    try:
        kind = tomllib.loads(path.read_text()).get("environment", {}).get("type", "mixed-effect")
    except (OSError, tomllib.TOMLDecodeError, AttributeError):
        return True  # let load_experiment say what is wrong
    return kind in ENVIRONMENTS and "data" in ENVIRONMENTS[kind][1]


def _data_override(data: Path | None) -> dict | None:
    if data is None:
        return None
    if not data.expanduser().exists():
        raise ConfigError(f"--data: no such folder {str(data)!r}")
    return {"data": str(data.expanduser().resolve())}


def _names(policies: str | None) -> list[str] | None:
    if policies is None:
        return None
    names = [n.strip() for n in policies.split(",") if n.strip()]
    if not names:
        raise ConfigError("--policies: give at least one policy name")
    return names


def _check_overrides(runs, horizon, jobs, seed) -> None:
    for name, value, low in (("--runs", runs, 1), ("--horizon", horizon, 1), ("--seed", seed, 0)):
        if value is not None and value < low:
            raise ConfigError(f"{name}: must be >= {low}, got {value}")
    if jobs == 0:
        raise ConfigError("--jobs: must be a positive number of processes or -1")


def config_dirs() -> list[Path]:
    """Where ``reproduce`` looks for experiment files."""
    dirs = []
    if os.environ.get("MIXEDTS_CONFIGS"):
        dirs.append(Path(os.environ["MIXEDTS_CONFIGS"]))
    dirs.append(Path.cwd() / "configs")
    dirs.append(Path(__file__).resolve().parent / "configs")  # shipped with the package
    return dirs


def find_configs(name: str) -> list[Path]:
    stems = GROUPS.get(name, [name])
    for folder in config_dirs():
        paths = [folder / f"{stem}.toml" for stem in stems]
        if all(p.is_file() for p in paths):
            return paths
    known = sorted({p.stem for d in config_dirs() if d.is_dir() for p in d.glob("*.toml")}
                   | set(GROUPS))
    raise ConfigError(f"NAME: unknown experiment {name!r}; known: {', '.join(known) or 'none'}")


@app.command()
def reproduce(
    name: str = NAME,
    runs: int | None = RUNS,
    horizon: int | None = HORIZON,
    jobs: int | None = JOBS,
    scheduler: str | None = SCHEDULER,
    out: Path | None = OUT,
    data: Path | None = DATA,
    vectorize: bool | None = VECTORIZE,
    policies: str | None = POLICIES,
    quiet: bool = QUIET,
) -> None:
    """Reproduce a paper figure from configs/: meTS, dTS, LinDiffTS, sDM (tables, plots, files)."""
    from . import cli_offline
    from .evaluation.offline_runs import is_offline

    try:
        paths = find_configs(name)
        if any(is_offline(p) for p in paths):
            unused = {"--horizon": horizon, "--jobs": jobs, "--scheduler": scheduler,
                      "--policies": policies, "--vectorize": vectorize}
            offline = [cli_offline.load(p, runs, None, data, unused) for p in paths]
            for exp in offline:
                folder = (out or Path("results")) / exp.name if (out is None or
                                                                 len(offline) > 1) else out
                cli_offline.run(exp, folder, quiet, _console())
            return
        _check_overrides(runs, horizon, jobs, None)
        override = _data_override(data)
        # in a group, --data goes to the files whose environment reads data (MovieLens)
        exps = [load_experiment(p, override if len(paths) == 1 or _takes_data(p) else None)
                .replace(runs=runs, horizon=horizon, vectorize=vectorize).only(_names(policies))
                for p in paths]
    except ConfigError as exc:
        raise _fail(str(exc)) from None
    for exp in exps:
        folder = (out or Path("results")) / exp.name if (out is None or len(exps) > 1) else out
        _run_experiment(exp, folder, jobs, scheduler, quiet)


@app.command()
def plot(
    results: Path = RESULTS,
    out: Path | None = PNG,
) -> None:
    """Redraw regret.png (and print the table) from saved results."""
    path = results / "results.parquet" if results.is_dir() else results
    if not path.is_file():
        raise _fail(f"RESULTS: no results.parquet at {results}")
    res = Results.read_parquet(path)
    reference = res.meta.get("reference") or {}
    title = res.meta.get("title") or ""
    target = out or path.with_name("regret.png")
    res.plot(target, title=title or None, reference=reference)
    print_table(res, title, reference)
    _console().print(f"wrote {target}")


@app.command()
def bench(
    actions: int = typer.Option(100, "--actions", "-K", help="K."),
    effects: int = typer.Option(3, "--effects", "-L", help="L."),
    dim: int = typer.Option(2, "--dim", "-d", help="d."),
    rounds: int = typer.Option(500, help="Rounds timed per policy."),
    logistic: bool = typer.Option(False, help="Logistic rewards and the GLM policies."),
) -> None:
    """Time one round (select + update) of each policy on a synthetic problem."""
    import numpy as np
    from rich.table import Table

    from .environments import MixedEffectEnvironment
    from .evaluation import PolicySpec, run_rounds

    if min(actions, effects, dim, rounds) < 1:
        raise _fail("--actions, --effects, --dim and --rounds must be >= 1")
    env = MixedEffectEnvironment(actions, effects, dim, contexts="pool",
                                 reward="logistic" if logistic else "linear", seed=0)
    kinds = {"meTS": ("MeTS", {}), "meTS-Fa": ("FactoredMeTS", {}), "HierTS": ("HierTS", {}),
             "LinTS": ("LinTS", {}), "LinUCB": ("LinUCB", {})}
    if logistic:
        kinds = {"meTS-GLM": ("MeTS", {"likelihood": "logistic"}),
                 "meTS-GLM-Fa": ("FactoredMeTS", {"likelihood": "logistic"}),
                 "GLM-TS": ("GLMTS", {}), "UCB-GLM": ("UCBGLM", {}), "meTS-Lin": ("MeTS", {})}
    table = Table(title=f"Per-round time, K={actions}, L={effects}, d={dim}, {rounds} rounds")
    for col in ("policy", "median", "mean"):
        table.add_column(col, justify="left" if col == "policy" else "right")
    for name, (kind, options) in kinds.items():
        policy = PolicySpec(kind, options, horizon=rounds)(env, np.random.default_rng(1))
        secs = run_rounds(env, policy, rounds, np.random.default_rng(2))["seconds"]
        table.add_row(name, f"{np.median(secs) * 1e3:.3f} ms", f"{secs.mean() * 1e3:.3f} ms")
    _console().print(table)


LOGS = typer.Argument(..., help="Logged feedback: a Parquet file written by "
                      "LoggedFeedback.to_parquet.")
TARGET = typer.Option(..., "--policy", help="The policy to evaluate: a saved policy (.npz) or "
                      "'uniform'.")
ESTIMATORS = typer.Option(None, "--estimators", help="Comma-separated: ips, snips, dm, dr, "
                          "sndr, switch-dr, mips, replay.")
REWARD_MODEL = typer.Option(None, "--reward-model", help="A saved policy (.npz), fitted on the "
                            "logs here and used as q̂ (a MeTS file gives sDM).")
DRAWS = typer.Option(1000, "--draws", help="Monte Carlo draws per context for Thompson "
                     "sampling's propensities.")
EVAL_OUT = typer.Option(Path("results/evaluate"), "--out", help="Output folder.")


@app.command()
def evaluate(
    logs: Path = LOGS,
    policy: str = TARGET,
    estimators: str | None = ESTIMATORS,
    reward_model: Path | None = REWARD_MODEL,
    draws: int = DRAWS,
    seed: int = typer.Option(0, "--seed", help="Seed of the Monte Carlo draws."),
    out: Path = EVAL_OUT,
) -> None:
    """Estimate a policy's value on logged data: a table, estimates.csv and estimates.png."""
    import numpy as np

    from . import load
    from ._validation import ValidationError
    from .offline import LoggedFeedback, fit_on_logs
    from .offline import evaluate as run_estimators
    from .offline.report import plot_estimates, truth_of

    try:
        if draws < 1:
            raise ValidationError(f"--draws must be at least 1, got {draws}")
        if not logs.exists():
            raise ValidationError(f"LOGS: no such file {str(logs)!r}")
        data = LoggedFeedback.from_parquet(logs)
        if policy == "uniform":
            probs = np.full((len(data), data.n_actions), 1.0 / data.n_actions)
        else:
            probs = load(policy).action_probabilities(data.contexts, batch=True,
                                                      n_draws=draws, seed=seed)
        q_hat = None if reward_model is None else fit_on_logs(load(reward_model), data)
        names = None if estimators is None else [e.strip() for e in estimators.split(",")]
        table = run_estimators(data, probs, estimators=names, reward_model=q_hat)
    except (ValidationError, FileNotFoundError) as exc:
        raise _fail(str(exc)) from None
    truth = truth_of(data, probs)
    from rich.table import Table

    shown = Table(title=f"{policy} on {logs.name}: {len(data)} rounds, K = {data.n_actions}")
    for col in ("estimator", "value", "stderr", "95% interval"):
        shown.add_column(col, justify="left" if col == "estimator" else "right")
    for name, row in table.iterrows():
        shown.add_row(str(name), f"{row['value']:.4g}", f"{row['stderr']:.2g}",
                      f"[{row['ci_low']:.4g}, {row['ci_high']:.4g}]")
    console = _console()
    console.print(shown)
    if truth is not None:
        console.print(f"true value on the logged contexts: {truth:.4g}")
    out.mkdir(parents=True, exist_ok=True)
    table.assign(truth=truth).to_csv(out / "estimates.csv")
    png = plot_estimates(table, out / "estimates.png", truth, f"{policy} on {logs.name}")
    console.print(f"wrote {out / 'estimates.csv'}, {png}")


@app.command()
def version() -> None:
    """Print the installed version."""
    from . import __version__

    typer.echo(__version__)


register_service(app)  # serve, export (cli_service.py; the service extra loads lazily)


def main() -> None:  # pragma: no cover - entry point
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
