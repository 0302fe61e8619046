"""The FastAPI application: the endpoints, start-up (snapshot + replay) and shutdown.

Every handler parses and checks its body here, hands the work to the
:class:`~mixedts.service.engine.Engine` and answers once the batch it joined is committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.engine import make_url

from .._validation import ValidationError
from . import status
from .engine import Engine
from .export import event_records
from .fastlane import FastLane
from .jobs import AddAction, Rank, RetireAction, Reward, Sequence, ServiceError
from .metrics import CONTENT_TYPE, ServiceMetrics, Timed
from .schemas import (
    ActionResponse,
    AddActionRequest,
    Health,
    RankRequest,
    RankResponse,
    RewardRequest,
    RewardResponse,
)
from .security import Guard
from .settings import ServiceSettings
from .snapshots import check_reward, from_bytes, recover
from .state import State
from .store import Store

log = logging.getLogger("mixedts.service")

#: how often a learner looks for rewards that rankers stored
SEQUENCE_SECONDS = 0.25
#: how long a ranker waits at start for its learner's first snapshot
FIRST_SNAPSHOT_SECONDS = 60.0


def _redacted(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


async def _start(policy, settings: ServiceSettings, metrics: ServiceMetrics) -> State:
    store = await asyncio.to_thread(Store, settings.store)
    if settings.role == "ranker":
        deadline = time.monotonic() + FIRST_SNAPSHOT_SECONDS
        while (latest := await asyncio.to_thread(store.latest_snapshot)) is None:
            if time.monotonic() > deadline:
                raise RuntimeError("store: no snapshot after 60 s; start the learner first")
            await asyncio.sleep(0.5)
        sid, lsn, data = latest
        policy, version = await asyncio.to_thread(from_bytes, data), lsn
    else:
        if not await asyncio.to_thread(store.claim_learner):
            store.close()
            raise RuntimeError("store: another learner (or single process) serves this store; "
                               "start this one with --role ranker")
        policy, version, sid = await asyncio.to_thread(recover, store, policy)
    return await asyncio.to_thread(State, policy, version, sid, store, settings, metrics)


async def _every(seconds: float, fn) -> None:
    while True:
        await asyncio.sleep(seconds)
        try:
            await fn()
        except ServiceError:
            pass
        except Exception:  # keep the service up; the next round tries again
            log.exception("background task failed")


def _reload(engine: Engine):
    """Ranker: load the newest snapshot (off the state thread), then swap it in."""
    async def reload():
        state = engine.state
        latest = await asyncio.to_thread(state.store.latest_snapshot, state.snapshot_id)
        if latest is None:
            return
        sid, lsn, data = latest
        policy = await asyncio.to_thread(from_bytes, data)
        await engine.run(lambda st: st.set_policy(policy, lsn, sid))
    return reload


def create_app(policy, settings: ServiceSettings):
    """The ASGI app serving ``policy`` (ignored when the store holds a snapshot already).

    The FastAPI app sits behind the metrics, the token and body-limit guard and the fast lane;
    run it with any ASGI server, one process per store (:func:`~mixedts.service.serve` runs
    it with uvicorn).

    Parameters
    ----------
    policy : mixedts policy
    settings : ServiceSettings

    Returns
    -------
    ASGI application

    Examples
    --------
    >>> import tempfile
    >>> from mixedts import BernoulliTS
    >>> from mixedts.service import ServiceSettings
    >>> app = create_app(BernoulliTS(3, seed=0),
    ...                  ServiceSettings(store=f"sqlite:///{tempfile.mkdtemp()}/e.sqlite"))
    >>> callable(app)
    True
    """
    metrics = ServiceMetrics()
    app = _api(policy, settings, metrics)
    return Timed(Guard(FastLane(app), settings.token, settings.body_limit), metrics)


def openapi_schema() -> dict:
    """The OpenAPI schema the service serves at ``/openapi.json`` (built without a policy or
    a store).

    >>> sorted(openapi_schema()["paths"])[:3]
    ['/', '/actions', '/actions/{action_id}']
    """
    settings = ServiceSettings(store="sqlite:///unused.sqlite")
    return _api(None, settings, ServiceMetrics()).openapi()


def _api(policy, settings: ServiceSettings, metrics: ServiceMetrics) -> FastAPI:
    """The FastAPI app: routes, start-up and shutdown."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        state = await _start(policy, settings, metrics)
        engine = app.state.engine = Engine(state, settings.max_batch, settings.max_queue)
        engine.loop = asyncio.get_running_loop()
        tasks = []
        if settings.role == "ranker":
            tasks.append(_every(settings.reload_seconds, _reload(engine)))
        else:
            if settings.publish_seconds:
                tasks.append(_every(settings.publish_seconds, engine.tick))
            if settings.role == "learner":
                tasks.append(_every(SEQUENCE_SECONDS, lambda: engine.submit(Sequence())))
        running = [asyncio.create_task(t) for t in tasks]
        try:
            yield
        finally:
            for t in running:
                t.cancel()
            await engine.close()
            state.store.close()

    app = FastAPI(title="mixedts decision service", version="1",
                  description="Rank and reward over HTTP; every event stored before the "
                              "answer. See docs/service.md.", lifespan=lifespan)

    @app.exception_handler(ServiceError)
    async def service_error(_request, exc: ServiceError):
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request, exc: RequestValidationError):
        """422 naming the field, without echoing the input (it may hold NaN, or be large)."""
        detail = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")),
                   "type": str(e.get("type", ""))} for e in exc.errors()]
        return JSONResponse({"detail": detail}, status_code=422)

    def engine_of(request: Request) -> Engine:
        return request.app.state.engine

    @app.post("/rank", response_model=RankResponse,
              summary="Choose an action (over an eligible set) and log the decision")
    async def rank(body: RankRequest, request: Request):
        """Choose an action for a context (over an eligible set) and log the decision."""
        job = Rank(body.context, body.eligible, body.event_id, body.ranking)
        return await engine_of(request).submit(job)

    @app.post("/reward", response_model=RewardResponse,
              summary="Join a reward to its decision and learn from it",
              responses={404: {"description": "unknown event"},
                         409: {"description": "a different reward for the event"},
                         410: {"description": "after the time-to-live: stored, not learned"}})
    async def reward(body: RewardRequest, request: Request):
        """Join a reward to its decision and learn from it."""
        engine = engine_of(request)
        try:
            check_reward(engine.state.core, body.reward)
        except ValidationError as exc:
            raise ServiceError(422, str(exc), "reward") from None
        return await engine.submit(Reward(body.event_id, body.reward))

    @app.post("/actions", response_model=ActionResponse, summary="Add an action")
    async def add_action(body: AddActionRequest, request: Request):
        """Add an action (the policy's ``add_action`` arguments in ``params``)."""
        return await engine_of(request).submit(AddAction(body.params))

    @app.delete("/actions/{action_id}", response_model=ActionResponse,
                summary="Retire an action")
    async def retire_action(action_id: int, request: Request):
        """Retire an action: it is never chosen again; late rewards for it still count."""
        return await engine_of(request).submit(RetireAction(action_id))

    @app.get("/health", response_model=Health, summary="Liveness and model version (no token)")
    async def health(request: Request):
        return {"status": "ok", "role": settings.role,
                "model_version": engine_of(request).version}

    @app.get("/metrics", summary="Prometheus metrics")
    async def metrics_text():
        return Response(metrics.text(), media_type=CONTENT_TYPE)

    @app.get("/policy", summary="The policy, its catalogue and the store")
    async def policy_summary(request: Request):
        """The policy, its catalogue, the model version and the store's counts."""
        engine = engine_of(request)

        def summary(st):
            core = st.core
            return {"policy": type(st.policy).__name__, "rule": core.rule.config(),
                    "model": type(core.model).__name__, "n_actions": int(core.n_actions),
                    "active": int(np.count_nonzero(core.active)),
                    "retired": np.flatnonzero(~core.active).tolist(),
                    "dim": core.dim, "model_version": st.version, "role": settings.role,
                    "propensity_draws": settings.propensity_draws, "ttl": settings.ttl,
                    "snapshot_version": st.snapshot_lsn, "pending": len(st.pending)}

        out = await engine.run(summary)
        out["store"] = {"url": _redacted(settings.store),
                        **await asyncio.to_thread(engine.state.store.counts)}
        return out

    @app.get("/events", summary="Stored decisions and their rewards, page by page")
    async def events(request: Request, since: int = Query(0, ge=0),
                     limit: int = Query(1000, ge=1, le=10_000),
                     rewarded: bool = Query(False)):
        """Stored decisions with seq > ``since`` (oldest first) and their rewards; ``next`` is
        the ``since`` of the following page."""
        store = engine_of(request).state.store
        rows = await asyncio.to_thread(store.export, since, limit, rewarded)
        records = event_records(rows)
        return {"events": records, "next": records[-1]["seq"] if records else since}

    @app.get("/", response_class=HTMLResponse, summary="Status page")
    async def status_page(request: Request):
        data = await engine_of(request).run(status.gather)
        return HTMLResponse(status.render(data))

    return app
