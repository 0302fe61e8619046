"""``mixedts serve`` and ``mixedts export``: the decision service's command line.

The service's packages (FastAPI, uvicorn, SQLAlchemy, psycopg) are imported only when one of
these commands runs, so ``mixedts --help`` works without the ``service`` extra.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

EXTRA = "pip install 'mixedts[service]'"

SOURCE = typer.Argument(None, help="A saved policy (policy.save(...), .npz) or an experiment "
                        "file (.toml) whose environment gives the prior and the catalogue. "
                        "Not needed for --role ranker.")
HOST = typer.Option("127.0.0.1", "--host", help="Address to listen on; a non-loopback one "
                    "needs a token.")
PORT = typer.Option(8000, "--port", help="TCP port.")
STORE = typer.Option(None, "--store", help="sqlite:///PATH or postgresql://USER@HOST:PORT/DB "
                     "(default: NAME.events.sqlite beside a policy file, or in the current "
                     "folder for an experiment file).")
TOKEN = typer.Option(None, "--token", help="Bearer token for every endpoint but /health "
                     "(default: $MIXEDTS_TOKEN).")
ROLE = typer.Option("single", "--role", help="single | learner | ranker (scale-out: one "
                    "learner and rankers sharing a PostgreSQL store).")
POLICY = typer.Option(None, "--policy", help="Which \\[policies.NAME] of the experiment file "
                      "(needed when it has several).")
TTL = typer.Option(3600.0, "--ttl", help="Seconds within which a reward is learned (later: "
                   "stored, 410).")
SNAPSHOT_EVERY = typer.Option(1000, "--snapshot-every", help="Learned changes between "
                              "snapshots.")
DRAWS = typer.Option(100, "--propensity-draws", help="Posterior draws per Thompson-sampling "
                     "propensity.")
PUBLISH = typer.Option(2.0, "--publish-seconds", help="Also snapshot this often when something "
                      "was learned (what rankers see; 0: only every --snapshot-every).")
RELOAD = typer.Option(2.0, "--reload-seconds", help="Ranker: how often to load a newer "
                      "snapshot.")
BODY_LIMIT = typer.Option(1 << 20, "--body-limit", help="Largest request body, bytes (413).")
MAX_QUEUE = typer.Option(4096, "--max-queue", help="Requests waiting to be decided beyond which "
                         "a new decision or reward gets 503 with Retry-After at once (load "
                         "shedding).")
SEED = typer.Option(None, "--seed", help="Seed of the decisions' generator.")
LOG_LEVEL = typer.Option("warning", "--log-level", help="uvicorn's log level.")


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(2)


def _service():
    try:
        from . import service
    except ImportError as exc:
        raise _fail(f"this command needs the service extra ({exc.name} is missing): "
                    f"{EXTRA}") from None
    return service


def policy_from_experiment(path: Path, name: str | None = None):
    """The policy an experiment file names, on its environment's prior and catalogue, both
    seeded from the file's ``seed`` (the environment's own ``seed`` if it sets one), so that
    the same file always serves the same policy. ``horizon`` and ``runs`` may be left out."""
    from .evaluation.config import load_experiment, tomllib

    data = tomllib.loads(path.read_text())
    data.setdefault("horizon", 1)
    data.setdefault("runs", 1)
    env = data.get("environment")
    if isinstance(env, dict):
        if not isinstance(data.get("seed", 0), bool) and isinstance(data.get("seed", 0), int):
            env.setdefault("seed", data.get("seed", 0))
        if isinstance(env.get("data"), str) and not Path(env["data"]).expanduser().is_absolute():
            env["data"] = str(path.parent / env["data"])
    exp = load_experiment(data)
    names = list(exp.policies)
    if name is None and len(names) > 1:
        raise ValueError(f"--policy: {path.name} has several policies ({', '.join(names)}); "
                         "name one")
    key = names[0] if name is None else name
    if key not in exp.policies:
        raise ValueError(f"--policy: {path.name} has no policy {key!r}; it has "
                         f"{', '.join(names)}")
    return exp.policies[key](exp.environment, np.random.default_rng(exp.seed))


def load_source(source: Path, name: str | None = None):
    """A policy from a saved ``.npz`` or an experiment ``.toml``."""
    from .persistence import load

    if not source.exists():
        raise ValueError(f"SOURCE: no such file {str(source)!r}")
    if source.suffix == ".toml":
        return policy_from_experiment(source, name)
    return load(source)


def serve(source: Path = SOURCE, host: str = HOST, port: int = PORT, store: str = STORE,
          token: str = TOKEN, role: str = ROLE, policy: str = POLICY, ttl: float = TTL,
          snapshot_every: int = SNAPSHOT_EVERY, publish_seconds: float = PUBLISH,
          reload_seconds: float = RELOAD, propensity_draws: int = DRAWS,
          body_limit: int = BODY_LIMIT, max_queue: int = MAX_QUEUE, seed: int = SEED,
          log_level: str = LOG_LEVEL) -> None:
    """Serve a policy over HTTP: POST /rank, POST /reward, /actions, /health, /metrics, /policy,
    /events, a status page at / and the OpenAPI schema at /docs (docs/service.md)."""
    service = _service()
    from ._validation import ValidationError

    try:
        loaded = None
        if source is not None:
            loaded = load_source(source, policy)
        elif role != "ranker":
            raise ValueError("SOURCE: a policy file or an experiment file is required (only "
                             "a ranker loads its policy from the store)")
        if store is None:
            if source is None:
                raise ValueError("--store: required without SOURCE")
            # beside a policy file; in the current folder for an experiment file (whose folder
            # may be the installed package's)
            folder = Path.cwd() if source.suffix == ".toml" else source.resolve().parent
            store = f"sqlite:///{folder / source.stem}.events.sqlite"
        settings = service.ServiceSettings.from_env(
            store=store, host=host, port=port, token=token, role=role, ttl=ttl,
            snapshot_every=snapshot_every, publish_seconds=publish_seconds,
            reload_seconds=reload_seconds, propensity_draws=propensity_draws,
            body_limit=body_limit, max_queue=max_queue, seed=seed)
        if loaded is not None:
            from .service.decide import check_servable
            from .service.snapshots import core_of

            check_servable(core_of(loaded))
    except (ValidationError, ValueError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(f"mixedts serve: {role} on http://{host}:{port} (docs at /docs), store "
               f"{service.app._redacted(store)}", err=True)
    service.serve(loaded, settings, log_level=log_level)


EXPORT_STORE = typer.Option(..., "--store", help="The service's store URL.")
EXPORT_OUT = typer.Option(Path("logs.parquet"), "--out",
                          help="Parquet file for LoggedFeedback.from_parquet.")
SINCE = typer.Option(0, "--since", help="Only decisions after this seq.")
SNAPSHOT = typer.Option(None, "--snapshot", help="Also write the newest snapshot here (.npz).")


def export(store: str = EXPORT_STORE, out: Path = EXPORT_OUT, since: int = SINCE,
           snapshot: Path = SNAPSHOT) -> None:
    """Write the store's rewarded decisions as a LoggedFeedback Parquet file (for mixedts
    evaluate), and optionally its newest posterior snapshot as a policy file."""
    service = _service()
    from ._validation import ValidationError

    try:
        st = service.Store(store)
    except Exception as exc:  # a bad URL, an unreachable server, a newer schema
        raise _fail(f"--store: {exc}") from None
    try:
        logs = service.logged_feedback(st, since)
        out.parent.mkdir(parents=True, exist_ok=True)
        logs.to_parquet(out)
        typer.echo(f"{len(logs)} rewarded decisions → {out}")
        if snapshot is not None:
            latest = st.latest_snapshot()
            if latest is None:
                raise ValidationError("store: no snapshot yet")
            snapshot.write_bytes(latest[2])
            typer.echo(f"snapshot at version {latest[1]} → {snapshot}")
    except ValidationError as exc:
        raise _fail(str(exc)) from None
    finally:
        st.close()


def register(app: typer.Typer) -> None:
    """Add ``serve`` and ``export`` to the ``mixedts`` command."""
    app.command()(serve)
    app.command()(export)
