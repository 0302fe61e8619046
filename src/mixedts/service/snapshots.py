"""Snapshots in the no-pickle ``.npz`` format, and start-up: latest snapshot + replay.

A snapshot holds the learner's policy (posterior, catalogue and the learner's own generator)
after the change numbered ``lsn``. Replaying, in ``lsn`` order, the changes stored after it —
each reward through ``policy.update(x_a, a, y)``, each catalogue change through
``add_action`` / ``retire_action``, exactly as the running service applied them — gives the
posterior of a service that never stopped, bit for bit (save/load is bit-identical).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from .._validation import ValidationError
from ..persistence import load
from ..policies.base import ContextFreeBandit

log = logging.getLogger("mixedts.service")


def to_bytes(policy) -> bytes:
    """The ``.npz`` bytes that ``policy.save`` writes."""
    with tempfile.TemporaryDirectory(prefix="mixedts-snap-") as tmp:
        path = Path(tmp) / "policy.npz"
        policy.save(path)
        return path.read_bytes()


def from_bytes(data: bytes):
    """The policy saved in ``data`` (checked like any saved file)."""
    fd, name = tempfile.mkstemp(prefix="mixedts-snap-", suffix=".npz")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        return load(name)
    finally:
        os.unlink(name)


def core_of(policy):
    """The contextual policy that decides and learns (a context-free policy's wrapped one)."""
    return policy.contextual if isinstance(policy, ContextFreeBandit) else policy


def check_reward(core, y: float) -> None:
    """Raise ``ValidationError`` (naming ``reward``) unless the policy accepts reward ``y``:
    the likelihood's check (e.g. 0 or 1 for logistic) and the model's (e.g. [0, 1] for
    Beta arms). Neither changes any state."""
    Y = np.array([y], dtype=np.float64)
    core.likelihood.check_rewards(Y, "reward")
    check = getattr(core.model, "check_rewards", None)
    if check is not None:
        check(Y, "reward")


def apply_change(policy, change) -> bool:
    """Apply one stored change, as the running service does (and as replay does).

    A change the policy refuses (its checks ran before the change was stored, so only a store
    edited by hand holds one) is skipped with a log line, the same way live and on replay, so
    that both stay equal; returns whether it was applied.
    """
    try:
        _apply(policy, change)
    except ValidationError as exc:
        log.error("change %s (%s) skipped: %s", change.lsn, change.kind, exc)
        return False
    return True


def _apply(policy, change) -> None:
    core = core_of(policy)
    if change.kind == "reward":
        core.update(change.row, change.action, change.reward)
    elif change.kind == "add":
        policy.add_action(**arguments(change.payload))
    elif change.kind == "retire":
        policy.retire_action(change.action)
    else:  # pragma: no cover - the store holds no other kind
        raise ValueError(f"unknown change kind {change.kind!r}")


def arguments(payload: dict | None) -> dict:
    """``add_action`` keyword arguments from their JSON form (lists become float arrays).

    >>> arguments({"mixing_row": [1, 0.5], "alpha": 2.0})
    {'mixing_row': array([1. , 0.5]), 'alpha': 2.0}
    """
    return {k: (np.asarray(v, dtype=np.float64) if isinstance(v, list) else v)
            for k, v in (payload or {}).items()}


def recover(store, source_policy):
    """(policy, version, snapshot id) at start: the newest snapshot (or ``source_policy``
    on a new store, snapshotted at version 0), then every sequenced change after it."""
    latest = store.latest_snapshot()
    if latest is None:
        policy, lsn = source_policy.copy(), 0  # the caller's object stays as it was
        sid = store.put_snapshot(0, policy.n_actions, to_bytes(policy))
    else:
        sid, lsn, data = latest
        policy = from_bytes(data)
    version = replay(store, policy, lsn)
    return policy, version, sid


def replay(store, policy, lsn: int) -> int:
    """Apply every sequenced change after ``lsn``; returns the last one's lsn."""
    while True:
        batch = store.changes_after(lsn)
        if not batch:
            return lsn
        for change in batch:  # the learner's order, one change at a time, as it was applied
            apply_change(policy, change)
            lsn = change.lsn
