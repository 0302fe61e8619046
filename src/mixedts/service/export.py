"""Stored decisions and rewards as the offline issue's :class:`~mixedts.offline.LoggedFeedback`
(``GET /events`` and ``mixedts export``): contexts, actions, rewards, propensities and
timestamps, ready for ``mixedts evaluate`` and the offline estimators."""

from __future__ import annotations

import numpy as np

from .._validation import ValidationError
from ..offline.logs import LoggedFeedback
from .store import context_from

#: rows read from the store per query
PAGE = 10_000


def event_records(rows) -> list[dict]:
    """``GET /events`` rows: one JSON object per decision (reward null while none came)."""
    out = []
    for r in rows:
        x = context_from(r.context, r.context_rows)
        out.append({
            "seq": int(r.seq), "event_id": r.event_id, "timestamp": float(r.created),
            "context": None if x is None else x.tolist(), "action": int(r.action),
            "probability": float(r.probability), "model_version": int(r.model_version),
            "n_actions": int(r.n_actions),
            "eligible": None if r.eligible is None else
            np.frombuffer(r.eligible, dtype="<i8").tolist(),
            "reward": None if r.reward is None else float(r.reward),
            "learned": None if r.learned is None else bool(r.learned),
        })
    return out


def logged_feedback(store, since: int = 0, limit: int | None = None) -> LoggedFeedback:
    """The rewarded decisions with seq > ``since`` as a :class:`LoggedFeedback`.

    Where some decisions had per-action contexts (K, d), shared ones (d,) become K equal rows;
    per-action contexts must share one K. ``n_actions`` is the largest catalogue the decisions
    saw. Timestamps are the decision times (seconds since the
    epoch, as datetime64).

    Parameters
    ----------
    store : Store
    since : int
        Export the decisions after this sequence number (``GET /events?since=``).
    limit : int, optional
        At most this many decisions.

    Raises
    ------
    ValidationError
        When the store holds no rewarded decision yet, or only context-free ones.

    Examples
    --------
    >>> import tempfile
    >>> from mixedts.service import Store
    >>> store = Store(f"sqlite:///{tempfile.mkdtemp()}/events.sqlite")
    >>> try:
    ...     logged_feedback(store)
    ... except ValueError as exc:
    ...     print(exc)
    store: no rewarded decisions to export yet
    """
    contexts, actions, rewards, props, times, n_actions = [], [], [], [], [], 0
    while limit is None or len(actions) < limit:
        page = store.export(since, PAGE if limit is None else min(PAGE, limit - len(actions)),
                            rewarded_only=True)
        if not page:
            break
        for r in page:
            contexts.append(context_from(r.context, r.context_rows))
            n_actions = max(n_actions, int(r.n_actions))
        actions += [int(r.action) for r in page]
        rewards += [float(r.reward) for r in page]
        props += [float(r.probability) for r in page]
        times += [float(r.created) for r in page]
        since = int(page[-1].seq)
    if not actions:
        raise ValidationError("store: no rewarded decisions to export yet")
    if contexts[0] is None:
        raise ValidationError("store: the decisions have no contexts (a context-free policy); "
                              "LoggedFeedback needs them")
    shapes = {c.shape for c in contexts}
    per_action = {s for s in shapes if len(s) == 2}
    if len(per_action) > 1:
        raise ValidationError(f"contexts: the stored decisions hold per-action contexts of "
                              f"different catalogues {sorted(per_action)}; export them apart "
                              "with since/limit")
    if per_action:  # a shared context is every action's row: broadcast it to (K, d)
        shape = per_action.pop()
        contexts = [np.broadcast_to(c, shape) for c in contexts]
    stamps = (np.asarray(times) * 1e9).astype("datetime64[ns]")
    return LoggedFeedback(np.stack(contexts), actions, rewards, propensities=props,
                          timestamps=stamps, n_actions=n_actions)
