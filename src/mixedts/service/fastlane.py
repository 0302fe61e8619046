"""The hot path: ``POST /rank`` and ``POST /reward`` with a JSON body, answered in front of
FastAPI's routing (pure ASGI).

The bodies are checked by the same pydantic models as the documented FastAPI routes (which
answer anything else, e.g. another content type), and errors have the same shape: 422 with
``detail[*].loc`` naming the field. What it saves is the per-request cost of the framework's
middleware stack, dependency resolution and response-model pass: the work left is parsing,
validation, the batch and the answer.
"""

from __future__ import annotations

import json

from pydantic import ValidationError as PydanticError
from starlette.exceptions import HTTPException

from .._validation import ValidationError
from .jobs import Rank, Reward, ServiceError
from .schemas import RankRequest, RewardRequest
from .snapshots import check_reward

JSON = [(b"content-type", b"application/json")]


def _json_content(scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-type":
            return value.split(b";")[0].strip().lower() == b"application/json"
    return False


async def _reply(send, status: int, payload, headers: dict[str, str] | None = None) -> None:
    data = json.dumps(payload, allow_nan=False).encode()
    extra = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status,
                "headers": [*JSON, (b"content-length", str(len(data)).encode()), *extra]})
    await send({"type": "http.response.body", "body": data})


def _errors(exc: PydanticError) -> list[dict]:
    return [{"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False)]


class FastLane:
    """ASGI middleware: /rank and /reward straight to the engine; the rest to ``app``."""

    PATHS = frozenset({"/rank", "/reward"})

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or \
                scope["path"] not in self.PATHS or not _json_content(scope):
            return await self.app(scope, receive, send)
        chunks, more = [], True
        try:
            while more:
                message = await receive()
                if message["type"] != "http.request":
                    return
                chunks.append(message.get("body", b""))
                more = message.get("more_body", False)
        except HTTPException as exc:  # the Guard's receive: 413 past the body limit
            return await _reply(send, exc.status_code, {"detail": exc.detail})
        try:
            data = json.loads(b"".join(chunks))
        except ValueError as exc:
            pos = getattr(exc, "pos", 0)
            return await _reply(send, 422, {"detail": [
                {"loc": ["body", pos], "msg": "JSON decode error", "type": "json_invalid"}]})
        engine = self.app.state.engine
        try:
            if scope["path"] == "/rank":
                body = RankRequest.model_validate(data)
                job = Rank(body.context, body.eligible, body.event_id, body.ranking)
            else:
                body = RewardRequest.model_validate(data)
                try:
                    check_reward(engine.state.core, body.reward)
                except ValidationError as exc:
                    raise ServiceError(422, str(exc), "reward") from None
                job = Reward(body.event_id, body.reward)
            out = await engine.submit(job)
        except PydanticError as exc:
            return await _reply(send, 422, {"detail": _errors(exc)})
        except ServiceError as exc:
            return await _reply(send, exc.status, exc.body(), exc.headers)
        await _reply(send, 200, out)
