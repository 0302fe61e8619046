"""Run the service under uvicorn (uvloop and httptools where installed)."""

from __future__ import annotations

import importlib.util

from .app import create_app
from .settings import ServiceSettings

#: seconds an idle keep-alive connection stays open (uvicorn's 5 s default makes clients race
#: the server's close when they reuse a pooled connection; proxies keep theirs about a minute)
KEEP_ALIVE = 75


def serve(policy, settings: ServiceSettings, log_level: str = "warning") -> None:
    """Serve ``policy`` until SIGINT/SIGTERM (then a last snapshot is written).

    BLAS runs one thread (threadpoolctl, where installed): the posterior's products are small
    and share the cores with the event loop, the store and the clients.

    Parameters
    ----------
    policy : mixedts policy
        Ignored when the store already holds a snapshot (the store wins).
    settings : ServiceSettings
        Host (127.0.0.1 unless a token is set), port, store URL, token, snapshots, …
    log_level : str
        uvicorn's log level.

    Examples
    --------
    >>> from mixedts.service import ServiceSettings
    >>> settings = ServiceSettings(store="sqlite:///events.sqlite", port=8000)
    >>> settings.host
    '127.0.0.1'
    >>> # serve(policy, settings)   # blocks until SIGINT/SIGTERM
    """
    import uvicorn

    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1, user_api="blas")
    except ImportError:  # pragma: no cover - a dependency of the service extra
        pass

    fast = importlib.util.find_spec("uvloop") is not None
    config = uvicorn.Config(
        create_app(policy, settings), host=settings.host, port=settings.port,
        log_level=log_level, access_log=False, lifespan="on",
        loop="uvloop" if fast else "asyncio",
        http="httptools" if importlib.util.find_spec("httptools") else "h11",
        timeout_graceful_shutdown=30, server_header=False,
        timeout_keep_alive=KEEP_ALIVE)
    uvicorn.Server(config).run()
