"""A decision service: rank and reward over HTTP, every event stored, nothing lost.

``mixedts serve SOURCE`` (or :func:`serve`) runs a FastAPI app on uvicorn for one policy:
``POST /rank`` chooses an action and logs it with its propensity, ``POST /reward`` joins a
reward to its decision and learns from it, and every decision and reward is committed to the
event store (SQLite in WAL mode, or PostgreSQL) before the answer is sent. The posterior is
snapshotted every N rewards and at shutdown; a restart loads the newest snapshot and replays
the rewards stored after it, so it holds exactly the posterior of a service that never stopped.
See ``docs/service.md``.

Needs ``pip install 'mixedts[service]'``.
"""

from .app import create_app
from .export import logged_feedback
from .server import serve
from .settings import ServiceSettings, is_loopback
from .store import Store

__all__ = ["ServiceSettings", "Store", "create_app", "is_loopback", "logged_feedback", "serve"]
