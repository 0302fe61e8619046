"""What a decision service is told at start: where it listens, where it stores, who may call.

Every value is checked here, once, with a :class:`~mixedts.ValidationError` naming the
option; the rest of the service trusts a :class:`ServiceSettings`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
from typing import Literal

from .._validation import ValidationError

#: the environment variable that sets the bearer token when ``--token`` is not given
TOKEN_ENV = "MIXEDTS_TOKEN"

Role = Literal["single", "learner", "ranker"]
ROLES = ("single", "learner", "ranker")


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1).

    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclasses.dataclass(frozen=True)
class ServiceSettings:
    """The options of ``mixedts serve`` (see ``docs/service.md``).

    Parameters
    ----------
    store : str
        SQLAlchemy URL of the event store: ``sqlite:///path.sqlite`` (WAL) or
        ``postgresql://user@host:port/db`` (psycopg 3).
    host, port : where uvicorn listens. Without a token only a loopback host is allowed.
    token : str or None
        Bearer token required on every endpoint but ``/health``.
    role : {"single", "learner", "ranker"}
        ``single`` decides and learns; in a scale-out, one ``learner`` applies the rewards and
        publishes snapshots and any number of ``ranker`` processes decide from the newest one.
    ttl : float
        Seconds after its decision within which a reward is learned; a later one is stored
        with ``learned = false`` and answered 410.
    snapshot_every : int
        Learned changes between snapshots (also one at shutdown).
    publish_seconds : float
        A learner (or single process) also snapshots this often when it has learned something
        since the last one, so that rankers are at most this stale (0: only every N changes).
    reload_seconds : float
        How often a ranker looks for a newer snapshot.
    propensity_draws : int
        Posterior draws behind each Thompson-sampling decision's propensity (the decision is
        the first of them, so the estimate is at least 1 / draws).
    body_limit : int
        Largest request body in bytes (413 beyond).
    seed : int or None
        Seed of the decisions' generator (the learner's own generator is the policy's).
    max_batch : int
        Most requests decided together; one commit takes every batch decided while the
        previous commit ran (group commit).
    max_queue : int
        Most requests waiting to be decided; beyond, a new decision or reward gets 503 with
        ``Retry-After: 1`` at once and nothing of it is stored (load shedding).

    Examples
    --------
    >>> ServiceSettings(store="sqlite:///events.sqlite").host
    '127.0.0.1'
    >>> ServiceSettings(store="sqlite:///e.sqlite", host="0.0.0.0")
    Traceback (most recent call last):
    ...
    mixedts._validation.ValidationError: host: 0.0.0.0 is not a loopback address; set a ...
    """

    store: str
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    role: Role = "single"
    ttl: float = 3600.0
    snapshot_every: int = 1000
    publish_seconds: float = 2.0
    reload_seconds: float = 2.0
    propensity_draws: int = 100
    body_limit: int = 1 << 20
    seed: int | None = None
    max_batch: int = 32
    max_queue: int = 4096

    def __post_init__(self) -> None:
        if not isinstance(self.store, str) or "://" not in self.store:
            raise ValidationError(f"store: expected a URL such as sqlite:///events.sqlite, got "
                                  f"{self.store!r}")
        if not self.store.startswith(("sqlite", "postgresql")):
            raise ValidationError(f"store: only sqlite:// and postgresql:// stores are "
                                  f"supported, got {self.store.split('://')[0]!r}")
        if self.token is not None and (not isinstance(self.token, str) or len(self.token) < 8):
            raise ValidationError("token: expected a string of at least 8 characters")
        if not is_loopback(self.host) and not self.token:
            raise ValidationError(f"host: {self.host} is not a loopback address; set a token "
                                  f"(--token or {TOKEN_ENV}) to listen on it")
        if self.role not in ROLES:
            raise ValidationError(f"role: expected one of {list(ROLES)}, got {self.role!r}")
        if self.role == "ranker" and self.store.startswith("sqlite"):
            raise ValidationError("role: rankers share a PostgreSQL store with their learner; "
                                  "a SQLite store serves one process (role = 'single')")
        _int(self.port, "port", 0, 65535)
        _int(self.snapshot_every, "snapshot_every", 1)
        _int(self.propensity_draws, "propensity_draws", 1)
        _int(self.body_limit, "body_limit", 64)
        _int(self.max_batch, "max_batch", 1)
        _int(self.max_queue, "max_queue", 1)
        for name in ("ttl", "reload_seconds"):
            _number(getattr(self, name), name, positive=True)
        _number(self.publish_seconds, "publish_seconds", positive=False)
        if self.seed is not None:
            _int(self.seed, "seed", 0)

    @classmethod
    def from_env(cls, **kwargs) -> ServiceSettings:
        """Settings whose token, when not given, comes from ``MIXEDTS_TOKEN``."""
        if kwargs.get("token") is None and os.environ.get(TOKEN_ENV):
            kwargs["token"] = os.environ[TOKEN_ENV]
        return cls(**kwargs)


def _int(value, name: str, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < low or \
            (high is not None and value > high):
        bound = f"in [{low}, {high}]" if high is not None else f">= {low}"
        raise ValidationError(f"{name}: expected an integer {bound}, got {value!r}")


def _number(value, name: str, positive: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or \
            value < 0 or (positive and value == 0) or value == float("inf"):
        raise ValidationError(f"{name}: expected a {'positive' if positive else 'non-negative'}"
                              f" finite number, got {value!r}")
