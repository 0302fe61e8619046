"""The event store: SQLite (WAL, synchronous = FULL) or PostgreSQL (psycopg 3), through
SQLAlchemy 2 Core with bound parameters only.

Writes come in batches from one thread (the service's engine): :meth:`Store.write` inserts a
batch of decisions and changes in one transaction and returns once it is committed, so a
response sent after it never acknowledges an event a crash could lose.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterable, Sequence

import numpy as np
from sqlalchemy import bindparam, create_engine, event, func, select, update
from sqlalchemy.engine import make_url

from .schema import changes, events, migrate, snapshots

#: the advisory lock a PostgreSQL store's one learner holds
LEARNER_LOCK = 0x6D697865  # "mixe"


@dataclasses.dataclass
class StoredEvent:
    """A decision as a reward needs it, with the reward it already has (if any)."""

    event_id: str
    created: float
    action: int
    row: np.ndarray | None  # the chosen action's context row, (d,); None without contexts
    reward: float | None = None


@dataclasses.dataclass
class Change:
    """One posterior change in learner order: a reward, or a catalogue ``add`` / ``retire``."""

    lsn: int
    kind: str
    action: int | None
    reward: float | None = None
    row: np.ndarray | None = None
    payload: dict | None = None


def context_bytes(x: np.ndarray | None) -> bytes | None:
    """A context as little-endian float64 bytes (None for context-free policies)."""
    return None if x is None else np.ascontiguousarray(x, dtype="<f8").tobytes()


def context_from(blob: bytes | None, rows: int) -> np.ndarray | None:
    """The context stored by :func:`context_bytes`, (d,) for one row, (rows, d) otherwise.

    >>> x = np.arange(6.0).reshape(3, 2)
    >>> context_from(context_bytes(x), 3).tolist(), chosen_row(context_bytes(x), 3, 1).tolist()
    ([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0]], [2.0, 3.0])
    """
    if blob is None:
        return None
    x = np.frombuffer(blob, dtype="<f8").astype(np.float64)
    return x if rows == 1 else x.reshape(rows, -1)


def chosen_row(blob: bytes | None, rows: int, action: int) -> np.ndarray | None:
    x = context_from(blob, rows)
    if x is None or x.ndim == 1:
        return x
    return np.ascontiguousarray(x[action])


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=FULL")  # the WAL is synced at every commit: nothing lost
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


def make_engine(url: str):
    """A SQLAlchemy engine for ``url`` (``postgresql://`` uses psycopg 3)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.drivername.startswith("sqlite"):
        engine = create_engine(parsed, connect_args={"check_same_thread": False},
                               pool_size=8, max_overflow=8)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(parsed, pool_size=8, max_overflow=8, pool_pre_ping=True)


class Store:
    """The service's view of its database (one per process; thread-safe through the pool).

    Parameters
    ----------
    url : str
        ``sqlite:///PATH`` (WAL mode) or ``postgresql://USER@HOST:PORT/DB`` (psycopg 3). The
        schema is created, or migrated to the current version, on opening.

    Examples
    --------
    >>> import tempfile
    >>> store = Store(f"sqlite:///{tempfile.mkdtemp()}/events.sqlite")
    >>> store.dialect, store.claim_learner()
    ('sqlite', True)
    >>> store.close()
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self.dialect = self.engine.dialect.name
        self._lock = None
        migrate(self.engine)

    def close(self) -> None:
        if self._lock is not None:
            self._lock.close()
            self._lock = None
        self.engine.dispose()

    def claim_learner(self) -> bool:
        """PostgreSQL: hold the store's learner lock for this process's life (False if another
        process holds it). One learner numbers the changes; two would clash. SQLite stores
        serve one process and need no lock."""
        if self.dialect != "postgresql":
            return True
        conn = self.engine.raw_connection()
        conn.detach()  # its own session: closing it (at exit, or a crash) releases the lock
        cur = conn.cursor()
        cur.execute("SELECT pg_try_advisory_lock(%s)", (LEARNER_LOCK,))
        held = bool(cur.fetchone()[0])
        conn.commit()  # the lock is the session's, not the transaction's
        if held:
            self._lock = conn
        else:
            conn.close()
        return held

    # ------------------------------------------------------------------ writes
    def write(self, event_rows: Sequence[dict], change_rows: Sequence[dict],
              sequence: Sequence[tuple[int, int]] = ()) -> None:
        """Insert decisions and changes (and number stored changes) in one transaction;
        returns once committed."""
        with self.engine.begin() as conn:
            self.write_in(conn, event_rows, change_rows, sequence)

    @staticmethod
    def write_in(conn, event_rows, change_rows, sequence=()) -> None:
        """The statements of :meth:`write`, on an open transaction."""
        if event_rows:
            conn.execute(events.insert(), list(event_rows))
        if change_rows:
            conn.execute(changes.insert(), list(change_rows))
        if sequence:
            conn.execute(update(changes).where(changes.c.id == bindparam("cid"))
                         .values(lsn=bindparam("clsn")),
                         [{"cid": i, "clsn": n} for i, n in sequence])

    def sequence(self, ids_lsns: Sequence[tuple[int, int]]) -> None:
        """Give stored changes (by id) their learner sequence numbers, in one transaction."""
        self.write((), (), ids_lsns)

    def put_snapshot(self, lsn: int, n_actions: int, data: bytes, keep: int = 3) -> int:
        """Store a snapshot; keep the newest ``keep``. Returns its id."""
        with self.engine.begin() as conn:
            sid = conn.execute(snapshots.insert().values(
                lsn=lsn, created=time.time(), n_actions=n_actions, data=data)
                .returning(snapshots.c.id)).scalar_one()
            conn.execute(snapshots.delete().where(snapshots.c.id <= sid - keep))
        return int(sid)

    # ------------------------------------------------------------------ reads
    def event(self, event_id: str) -> StoredEvent | None:
        """The stored decision ``event_id`` and its reward, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(events.c.created, events.c.action, events.c.context,
                       events.c.context_rows, changes.c.reward)
                .select_from(events.outerjoin(changes, changes.c.event_id == events.c.event_id))
                .where(events.c.event_id == event_id)).first()
        if row is None:
            return None
        return StoredEvent(event_id, row.created, row.action,
                           chosen_row(row.context, row.context_rows, row.action), row.reward)

    def event_ids_taken(self, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` are stored decisions already."""
        ids = list(ids)
        if not ids:
            return set()
        with self.engine.connect() as conn:
            return set(conn.execute(select(events.c.event_id)
                                    .where(events.c.event_id.in_(ids))).scalars())

    def latest_snapshot(self, newer_than: int | None = None):
        """(id, lsn, data) of the newest snapshot (None if none, or none newer than the id)."""
        q = select(snapshots.c.id, snapshots.c.lsn).order_by(snapshots.c.id.desc()).limit(1)
        with self.engine.connect() as conn:
            head = conn.execute(q).first()
            if head is None or (newer_than is not None and head.id <= newer_than):
                return None
            data = conn.execute(select(snapshots.c.data)
                                .where(snapshots.c.id == head.id)).scalar_one()
        return int(head.id), int(head.lsn), bytes(data)

    def snapshot_info(self):
        """(lsn, created) of the newest snapshot, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(select(snapshots.c.lsn, snapshots.c.created)
                               .order_by(snapshots.c.id.desc()).limit(1)).first()
        return None if row is None else (int(row.lsn), float(row.created))

    def max_lsn(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.max(changes.c.lsn))).scalar() or 0)

    def changes_after(self, lsn: int, limit: int = 10_000) -> list[Change]:
        """Sequenced changes with lsn > ``lsn``, in order, with each reward's context row."""
        q = (select(changes.c.lsn, changes.c.kind, changes.c.reward, changes.c.action,
                    changes.c.payload, events.c.action.label("ev_action"),
                    events.c.context, events.c.context_rows)
             .select_from(changes.outerjoin(events, events.c.event_id == changes.c.event_id))
             .where(changes.c.lsn > lsn).order_by(changes.c.lsn).limit(limit))
        with self.engine.connect() as conn:
            rows = conn.execute(q).all()
        return [_change(r) for r in rows]

    def unsequenced(self, limit: int = 5000):
        """Changes stored by rankers that no learner has sequenced yet, oldest first."""
        q = (select(changes.c.id, changes.c.kind, changes.c.reward, changes.c.learned,
                    events.c.action, events.c.context, events.c.context_rows)
             .select_from(changes.outerjoin(events, events.c.event_id == changes.c.event_id))
             .where(changes.c.lsn.is_(None), changes.c.learned.is_(True))
             .order_by(changes.c.id).limit(limit))
        with self.engine.connect() as conn:
            return conn.execute(q).all()

    def pending_since(self, since: float, limit: int):
        """Decisions made after ``since`` without a reward (newest ``limit``)."""
        q = (select(events.c.event_id, events.c.created, events.c.action, events.c.context,
                    events.c.context_rows)
             .select_from(events.outerjoin(changes, changes.c.event_id == events.c.event_id))
             .where(events.c.created > since, changes.c.id.is_(None))
             .order_by(events.c.seq.desc()).limit(limit))
        with self.engine.connect() as conn:
            return conn.execute(q).all()

    def export(self, since: int = 0, limit: int = 10_000, rewarded_only: bool = False):
        """Decisions with seq > ``since`` joined to their rewards, in decision order."""
        q = (select(events, changes.c.reward, changes.c.learned,
                    changes.c.created.label("rewarded"))
             .select_from(events.outerjoin(changes, changes.c.event_id == events.c.event_id))
             .where(events.c.seq > since).order_by(events.c.seq).limit(limit))
        if rewarded_only:
            q = q.where(changes.c.id.is_not(None))
        with self.engine.connect() as conn:
            return conn.execute(q).all()

    def counts(self) -> dict[str, int]:
        """Stored decisions, rewards and catalogue changes."""
        with self.engine.connect() as conn:
            n_events = conn.execute(select(func.count()).select_from(events)).scalar_one()
            by_kind = dict(conn.execute(select(changes.c.kind, func.count())
                                        .group_by(changes.c.kind)).all())
        return {"events": int(n_events), "rewards": int(by_kind.get("reward", 0)),
                "catalogue": int(by_kind.get("add", 0) + by_kind.get("retire", 0))}


def _change(r) -> Change:
    payload = None if r.payload is None else json.loads(r.payload)
    if r.kind == "reward":
        return Change(int(r.lsn), "reward", int(r.ev_action), float(r.reward),
                      chosen_row(r.context, r.context_rows, r.ev_action))
    return Change(int(r.lsn), r.kind, None if r.action is None else int(r.action),
                  payload=payload)
