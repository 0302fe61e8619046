"""Who may call and how much they may send: a bearer token and a body limit (pure ASGI, so
that the check costs microseconds and runs before any parsing).

* With a token, every path but ``/health`` needs ``Authorization: Bearer TOKEN`` (401
  otherwise; compared in constant time).
* A body longer than the limit is refused with 413, whether it says so in ``Content-Length``
  or streams past it.
"""

from __future__ import annotations

import hmac
import json

from starlette.exceptions import HTTPException

OPEN_PATHS = frozenset({"/health"})


async def _send_json(send, status: int, body: dict, headers=()) -> None:
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"),
                            (b"content-length", str(len(data)).encode()), *headers]})
    await send({"type": "http.response.body", "body": data})


class Guard:
    """ASGI middleware: token check and body limit."""

    def __init__(self, app, token: str | None, body_limit: int) -> None:
        self.app = app
        self.expected = None if not token else f"Bearer {token}".encode()
        self.limit = body_limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if self.expected is not None and scope["path"] not in OPEN_PATHS:
            given = headers.get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                return await _send_json(send, 401, {"detail": "a valid bearer token is "
                                                    "required (Authorization: Bearer TOKEN)"},
                                        [(b"www-authenticate", b"Bearer")])
        length = headers.get(b"content-length")
        too_large = {"detail": f"request body exceeds the limit of {self.limit} bytes"}
        if length is not None:
            try:
                if int(length) > self.limit:
                    return await _send_json(send, 413, too_large)
            except ValueError:
                return await _send_json(send, 400, {"detail": "bad Content-Length"})
        seen = 0

        async def limited_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:  # FastAPI re-raises it from body parsing: a 413
                    raise HTTPException(413, too_large["detail"])
            return message

        await self.app(scope, limited_receive, send)
