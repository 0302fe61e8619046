"""The event store's tables (SQLAlchemy 2 Core) and their migrations, in code.

``meta`` holds ``schema_version``; :func:`migrate` brings a store from any earlier version to
:data:`SCHEMA_VERSION`, one step at a time, and refuses a store written by a newer mixedts.

Tables
------
events
    One row per decision: the context (float64 bytes, one row or one per action), the action,
    its propensity, the model version it was decided with and the catalogue size.
changes
    Everything that changes the posterior, in the order it is applied: rewards (joined to their
    event by ``event_id``), ``add`` and ``retire`` catalogue changes. ``lsn`` is the learner's
    sequence number: set when the change is applied (NULL until a learner sequences a change
    that a ranker stored). ``learned`` is false for a reward that came after the time-to-live.
snapshots
    The posterior in the no-pickle ``.npz`` format, with the ``lsn`` of the last change in it.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    select,
    text,
)

#: the layout this mixedts writes; stores of older layouts are migrated at start
SCHEMA_VERSION = 2
#: the advisory lock key that serialises migrations of one PostgreSQL store
MIGRATION_LOCK = 0x6D697864  # "mixd"

metadata = MetaData()

meta = Table(
    "mixedts_meta", metadata,
    Column("key", String(64), primary_key=True),
    Column("value", Text, nullable=False),
)

events = Table(
    "mixedts_events", metadata,
    Column("seq", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("event_id", String(128), nullable=False, unique=True),
    Column("created", Double, nullable=False),
    Column("context", LargeBinary, nullable=True),
    Column("context_rows", Integer, nullable=False),
    Column("action", Integer, nullable=False),
    Column("probability", Double, nullable=False),
    Column("model_version", BigInteger, nullable=False),
    Column("n_actions", Integer, nullable=False),
    Column("eligible", LargeBinary, nullable=True),
)

changes = Table(
    "mixedts_changes", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("lsn", BigInteger, nullable=True, unique=True),
    Column("kind", String(8), nullable=False),
    Column("event_id", String(128), nullable=True, unique=True),
    Column("reward", Double, nullable=True),
    Column("action", Integer, nullable=True),
    Column("payload", Text, nullable=True),
    Column("learned", Boolean, nullable=False),
    Column("created", Double, nullable=False),
)

snapshots = Table(
    "mixedts_snapshots", metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("lsn", BigInteger, nullable=False),
    Column("created", Double, nullable=False),
    Column("n_actions", Integer, nullable=False),
    Column("data", LargeBinary, nullable=False),
)

#: version 2 added the index on events.created (the status page and the TTL sweep read it)
events_created = Index("mixedts_events_created", events.c.created)


class SchemaError(RuntimeError):
    """The store was written by a newer mixedts, or is not a mixedts store."""


def _v1(conn) -> None:
    """Version 1: the four tables."""
    for table in (meta, events, changes, snapshots):
        table.create(conn, checkfirst=True)


def _v2(conn) -> None:
    """Version 2: an index on the decision time."""
    events_created.create(conn, checkfirst=True)


#: MIGRATIONS[v] brings a store at version v to v + 1
MIGRATIONS = {0: _v1, 1: _v2}


def stored_version(conn) -> int:
    """The store's schema version (0 for an empty database)."""
    from sqlalchemy import inspect

    if not inspect(conn).has_table(meta.name):
        return 0
    value = conn.execute(select(meta.c.value).where(meta.c.key == "schema_version")).scalar()
    return 0 if value is None else int(value)


def migrate(engine) -> int:
    """Bring the store to :data:`SCHEMA_VERSION`; returns the version it was at.

    One transaction, under a PostgreSQL advisory lock, so that processes starting together on
    one store migrate it once (SQLite stores serve one process).
    """
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        start = stored_version(conn)
        if start > SCHEMA_VERSION:
            raise SchemaError(f"store: schema version {start} was written by a newer mixedts "
                              f"(this one reads up to {SCHEMA_VERSION})")
        for version in range(start, SCHEMA_VERSION):
            MIGRATIONS[version](conn)
            _set_version(conn, version + 1)
    return start


def _set_version(conn, version: int) -> None:
    updated = conn.execute(meta.update().where(meta.c.key == "schema_version")
                           .values(value=str(version))).rowcount
    if not updated:
        conn.execute(meta.insert().values(key="schema_version", value=str(version)))
