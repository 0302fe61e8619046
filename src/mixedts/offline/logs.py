"""Logged bandit feedback: what a logging policy saw, did and earned, checked once."""

from __future__ import annotations

import datetime
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import ValidationError, as_generator
from . import _checks as C

#: Fields with one entry per logged round, in the order they are stored and written.
ROW_FIELDS = (
    "contexts",
    "actions",
    "rewards",
    "propensities",
    "positions",
    "timestamps",
    "expected_rewards",
    "logging_probabilities",
)


@dataclass(frozen=True, init=False, eq=False, repr=False)
class LoggedFeedback:
    """Rounds logged by a policy: contexts, the actions it took, their rewards and propensities.

    Everything is validated at construction (and never again): a bad entry raises
    :class:`~mixedts.ValidationError` naming the field and the first bad row, e.g.
    ``propensities[17] must be in (0, 1], got 0.0``. The stored arrays are read-only copies.

    Parameters
    ----------
    contexts : array_like, shape (n, d) shared by all actions, or (n, K, d) one row per action
    actions : array_like of int, shape (n,)
        The logged actions, in ``[0, K)``.
    rewards : array_like, shape (n,)
        The observed rewards (finite).
    propensities : array_like, shape (n,), optional
        π₀(a_t | x_t), the logging policy's probability of the logged action, in (0, 1]. When
        omitted and ``logging_probabilities`` is given, it is read off those.
    action_features : array_like, shape (K, p), optional
        One feature vector (embedding) per action, e.g. for MIPS.
    positions : array_like of int, shape (n,), optional
        Slot of the logged action in the page (kept as published, e.g. 1..3 for OBD).
    timestamps : array_like, shape (n,), optional
        Numbers or ``datetime64`` values (stored as ``datetime64[ns]``).
    n_actions : int, optional
        K. Inferred from ``contexts`` (n, K, d), ``action_features``, ``expected_rewards`` or
        ``logging_probabilities`` when one is given, else ``max(actions) + 1``.
    expected_rewards : array_like, shape (n, K), optional
        The true mean reward of every action in every round (simulated logs only: the ground
        truth for experiments, never used by the estimators).
    logging_probabilities : array_like, shape (n, K), optional
        π₀(· | x_t), the logging policy's full action distribution (what MIPS needs).

    Raises
    ------
    ValidationError
        A malformed or inconsistent field; the message names it and its first bad row.

    Examples
    --------
    >>> logs = LoggedFeedback(np.zeros((4, 2)), [0, 1, 1, 0], [1.0, 0.0, 1.0, 1.0],
    ...                       propensities=[0.5, 0.5, 0.5, 0.5], timestamps=[1, 2, 3, 4])
    >>> len(logs), logs.n_actions, logs.dim
    (4, 2, 2)
    >>> train, test = logs.time_split(0.75)
    >>> len(train), len(test), logs[1:3].rewards.tolist()
    (3, 1, [0.0, 1.0])
    >>> LoggedFeedback(np.zeros((2, 2)), [0, 1], [1.0, 0.0], propensities=[0.5, 0.0])
    Traceback (most recent call last):
    ...
    mixedts._validation.ValidationError: propensities[1] must be in (0, 1], got 0.0
    """

    contexts: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    propensities: np.ndarray | None
    action_features: np.ndarray | None
    positions: np.ndarray | None
    timestamps: np.ndarray | None
    n_actions: int
    expected_rewards: np.ndarray | None
    logging_probabilities: np.ndarray | None

    def __init__(
        self,
        contexts: Any,
        actions: Any,
        rewards: Any,
        propensities: Any = None,
        action_features: Any = None,
        positions: Any = None,
        timestamps: Any = None,
        n_actions: int | None = None,
        *,
        expected_rewards: Any = None,
        logging_probabilities: Any = None,
    ) -> None:
        fields = _validate(
            contexts, actions, rewards, propensities, action_features, positions, timestamps,
            n_actions, expected_rewards, logging_probabilities,
        )  # fmt: skip
        _set(self, fields)

    @classmethod
    def _trusted(cls, **fields: Any) -> LoggedFeedback:
        """A log from fields that are already validated (slicing, splitting, resampling)."""
        logs = cls.__new__(cls)
        _set(logs, fields)
        return logs

    # ------------------------------------------------------------------ sizes
    def __len__(self) -> int:
        return len(self.actions)

    @property
    def dim(self) -> int:
        """d, the context dimension."""
        return int(self.contexts.shape[-1])

    @property
    def shared_context(self) -> bool:
        """True when one context (d,) is shared by all actions each round."""
        return self.contexts.ndim == 2

    @property
    def logged_action_contexts(self) -> np.ndarray:
        """The context row of each logged action, (n, d) (the contexts themselves if shared)."""
        if self.shared_context:
            return self.contexts
        return self.contexts[np.arange(len(self)), self.actions]

    def _fields(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _ALL_FIELDS}

    def __repr__(self) -> str:
        given = [f for f in ROW_FIELDS[3:] if getattr(self, f) is not None]
        if self.action_features is not None:
            given.append("action_features")
        return (
            f"LoggedFeedback(n={len(self)}, n_actions={self.n_actions}, dim={self.dim}, "
            f"shared_context={self.shared_context}, with={given})"
        )

    def replace(self, **changes: Any) -> LoggedFeedback:
        """A new log with some fields replaced, validated like a new one.

        >>> logs = LoggedFeedback(np.zeros((2, 1)), [0, 1], [1.0, 2.0], propensities=[0.5, 0.5])
        >>> logs.replace(rewards=[3.0, 4.0]).rewards.tolist()
        [3.0, 4.0]
        """
        unknown = set(changes) - set(_ALL_FIELDS)
        if unknown:
            raise ValidationError(f"unknown LoggedFeedback field(s): {sorted(unknown)}")
        fields = {**self._fields(), **changes}
        if "propensities" not in changes and "logging_probabilities" in changes:
            fields["propensities"] = None  # read off the new distributions
        return type(self)(**fields)

    def equals(self, other: object) -> bool:
        """True when every field is present in both, with the same dtype and values."""
        if not isinstance(other, LoggedFeedback):
            return False
        for name in _ALL_FIELDS:
            a, b = getattr(self, name), getattr(other, name)
            if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
                if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
                    return False
                if a.dtype != b.dtype or not np.array_equal(a, b):
                    return False
            elif a != b:
                return False
        return True

    # ------------------------------------------------------------------ rows
    def __getitem__(self, index: Any) -> LoggedFeedback:
        """Rows by slice, integer, integer array or boolean mask (n,); a new log."""
        return self._take(_row_index(index, len(self)))

    def _take(self, index: Any) -> LoggedFeedback:
        fields = self._fields()
        for name in ROW_FIELDS:
            if fields[name] is not None:
                fields[name] = _read_only(fields[name][index])
        return self._trusted(**fields)

    def time_split(self, fraction: float | None = None, *, at: Any = None):
        """Split into (earlier, later) logs at a fraction of the rows or at a time.

        ``fraction`` in (0, 1): the first ``floor(n · fraction)`` rows go to the first part.
        ``at``: rows with ``timestamps < at`` go to the first part. Either way the timestamps
        must be present and sorted (non-decreasing); otherwise :class:`ValidationError` names
        ``timestamps`` and the first row out of order.
        """
        if (fraction is None) == (at is None):
            raise ValidationError("time_split needs exactly one of fraction and at")
        ts = self.timestamps
        if ts is None:
            raise ValidationError("timestamps are needed to split by time; this log has none")
        if len(ts) > 1:
            early = ts[1:] < ts[:-1]
            if early.any():
                i = int(np.argmax(early)) + 1
                raise ValidationError(
                    f"timestamps must be sorted (non-decreasing) to split by time: "
                    f"timestamps[{i}] = {ts[i]} is earlier than timestamps[{i - 1}] = {ts[i - 1]}"
                )
        if fraction is not None:
            f = _fraction(fraction)
            k = int(np.floor(len(self) * f))
        else:
            k = int(np.searchsorted(ts, _time_like(at, ts), side="left"))
        return self[:k], self[k:]

    def bootstrap(self, rng: Any = None) -> LoggedFeedback:
        """n rows drawn with replacement (kept in log order), from a seed or a Generator.

        >>> logs = LoggedFeedback(np.zeros((3, 1)), [0, 1, 0], [1.0, 2.0, 3.0])
        >>> len(logs.bootstrap(0))
        3
        """
        gen = as_generator(rng)
        n = len(self)
        return self._take(np.sort(gen.integers(0, n, size=n)) if n else slice(0, 0))

    # ------------------------------------------------------------------ files and frames
    def to_parquet(self, path: Any) -> None:
        """Write every field to one Parquet file (needs pyarrow); see :mod:`.parquet`."""
        from .parquet import write_parquet

        write_parquet(self, path)

    @classmethod
    def from_parquet(cls, path: Any) -> LoggedFeedback:
        """Read a file written by :meth:`to_parquet`, validating it like a new log."""
        from .parquet import read_parquet

        return read_parquet(path)

    @classmethod
    def from_dataframe(cls, df: Any, context_columns: Any, action: str, reward: str,
                       **columns: Any) -> LoggedFeedback:  # fmt: skip
        """A log from the columns of a pandas DataFrame; see :func:`.frames.from_dataframe`."""
        from .frames import from_dataframe

        return from_dataframe(df, context_columns, action, reward, **columns)


_ALL_FIELDS = (*ROW_FIELDS, "action_features", "n_actions")


def _set(logs: LoggedFeedback, fields: dict[str, Any]) -> None:
    for name in _ALL_FIELDS:
        object.__setattr__(logs, name, fields[name])


def _read_only(arr: np.ndarray) -> np.ndarray:
    arr.setflags(write=False)
    return arr


def _fraction(value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValidationError(f"fraction must be a number in (0, 1), got {value!r}")
    f = float(value)
    if not 0.0 < f < 1.0:
        raise ValidationError(f"fraction must be in (0, 1), got {value!r}")
    return f


def _time_like(at: Any, ts: np.ndarray) -> Any:
    """``at`` converted to the type of the timestamps (times with a zone are taken in UTC)."""
    if ts.dtype.kind == "M":
        if isinstance(at, datetime.datetime) and at.tzinfo is not None:
            at = at.astimezone(datetime.timezone.utc).replace(tzinfo=None)
        try:
            return np.datetime64(at, "ns")
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"at must be a time like the timestamps: {exc}") from None
    if isinstance(at, (bool, np.bool_)) or not isinstance(at, numbers.Real):
        raise ValidationError(f"at must be a number like the timestamps, got {at!r}")
    return at


def _row_index(index: Any, n: int) -> Any:
    """A slice or an int64 / boolean index array, checked against n rows."""
    if isinstance(index, slice):
        return index
    if isinstance(index, numbers.Integral) and not isinstance(index, (bool, np.bool_)):
        i = int(index)
        if not -n <= i < n:
            raise ValidationError(f"index {i} is out of range for a log of {n} rows")
        i %= n
        return slice(i, i + 1)
    arr = np.asarray(index)
    if arr.ndim != 1:
        raise ValidationError(f"index must be a slice, an integer or a 1-d array, got {index!r}")
    if arr.dtype.kind == "b":
        if len(arr) != n:
            raise ValidationError(f"a boolean index must have {n} entries, got {len(arr)}")
        return arr
    if arr.size == 0:
        return np.zeros(0, dtype=np.int64)
    if arr.dtype.kind not in "iu":
        raise ValidationError(f"index must hold integers or booleans, got dtype {arr.dtype}")
    bad = (arr < -n) | (arr >= n)
    if bad.any():
        j = int(np.argmax(bad))
        raise ValidationError(f"index[{j}] = {arr[j]} is out of range for a log of {n} rows")
    return arr.astype(np.int64)


def _validate(contexts, actions, rewards, propensities, action_features, positions, timestamps,
              n_actions, expected_rewards, logging_probabilities) -> dict[str, Any]:  # fmt: skip
    X = C.float_rows(contexts, "contexts", None, "(n, d) or (n, K, d)", ndims=(2, 3))
    n = X.shape[0]
    sources: list[tuple[str, int]] = []
    if n_actions is not None:
        sources.append(("n_actions", C.count(n_actions, "n_actions")))
    if X.ndim == 3:
        sources.append(("contexts", X.shape[1]))
    E = None
    if action_features is not None:
        E = C.float_rows(action_features, "action_features", None, "(K, p)", ndims=(2,))
        sources.append(("action_features", E.shape[0]))
    Q = None
    if expected_rewards is not None:
        Q = C.float_rows(expected_rewards, "expected_rewards", n, "(n, K)", ndims=(2,))
        sources.append(("expected_rewards", Q.shape[1]))
    P = None
    if logging_probabilities is not None:
        P = C.distributions(logging_probabilities, "logging_probabilities", n, None)
        sources.append(("logging_probabilities", P.shape[1]))
    K = _n_actions(sources)
    A = C.actions(actions, "actions", n, K)
    if K is None:
        if n == 0:
            raise ValidationError("n_actions must be given for a log without rows")
        K = int(A.max()) + 1
    R = C.float_rows(rewards, "rewards", n, "(n,)")
    p = None if propensities is None else C.propensities(propensities, "propensities", n)
    if P is not None:
        p = _match_propensities(p, P, A)
    pos = None if positions is None else C.integers(positions, "positions", n)
    ts = None if timestamps is None else C.timestamps(timestamps, "timestamps", n)
    fields = dict(contexts=X, actions=A, rewards=R, propensities=p, positions=pos, timestamps=ts,
                  expected_rewards=Q, logging_probabilities=P, action_features=E)  # fmt: skip
    for name, arr in fields.items():
        if arr is not None:
            fields[name] = _read_only(np.ascontiguousarray(arr))
    fields["n_actions"] = K
    return fields


def _n_actions(sources: list[tuple[str, int]]) -> int | None:
    """K from the first source; any other that disagrees is named."""
    if not sources:
        return None
    ref, K = sources[0]
    if K < 1:
        raise ValidationError(f"{ref} gives {K} actions; at least one is needed")
    for name, k in sources[1:]:
        if k != K:
            what = "n_actions" if ref == "n_actions" else f"{ref} (K = {K})"
            raise ValidationError(f"{name} has {k} actions, but {what} says {K}")
    return K


def _match_propensities(p: np.ndarray | None, P: np.ndarray, A: np.ndarray) -> np.ndarray:
    """The propensities implied by the full distributions, checked against given ones."""
    implied = P[np.arange(len(A)), A]
    if p is None:
        bad = implied <= 0.0
        if bad.any():
            i = int(np.argmax(bad))
            raise ValidationError(
                f"logging_probabilities[{i}, {A[i]}] must be positive: action {A[i]} was logged "
                f"in row {i}, got {implied[i]}"
            )
        return implied
    bad = np.abs(p - implied) > 1e-9 * np.maximum(1.0, implied)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValidationError(
            f"propensities[{i}] = {p[i]} differs from logging_probabilities[{i}, {A[i]}] = "
            f"{implied[i]}"
        )
    return p
