"""Row-locating checks for logged data: every error names the field and the first bad row.

:mod:`mixedts._validation` checks arguments of a single call; logs are tables, so a bad entry is
reported with its position, e.g. ``propensities[17] must be in (0, 1], got 0.0``. Each helper
converts once (float64 / int64), checks with vectorised masks, and locates the first offending
entry with ``argmax`` only after a check has failed.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .._validation import ValidationError, _check_numeric_kind


def where(arr: np.ndarray, bad: np.ndarray) -> tuple[int, ...]:
    """The index of the first True entry of ``bad`` (same shape as ``arr``)."""
    return tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), arr.shape))


def label(name: str, index: tuple[int, ...]) -> str:
    """``name[i]`` or ``name[i, j]``."""
    return f"{name}[{', '.join(str(i) for i in index)}]"


def numeric(value: Any, name: str) -> np.ndarray:
    """A float64 array (a copy), refusing text, None, complex and other non-numbers."""
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{name} must be numeric: {exc}") from None
    _check_numeric_kind(raw, name)
    if np.iscomplexobj(raw):
        raise ValidationError(f"{name} must be real, got complex values")
    if raw.dtype.kind in "mM":
        raise ValidationError(f"{name} must be numeric, got {raw.dtype} values")
    try:
        return np.array(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{name} must be numeric: {exc}") from None


def rows(arr: np.ndarray, n: int, name: str, against: str = "contexts") -> None:
    """``arr`` has ``n`` rows (one per logged round); else say which row is missing or extra."""
    m = arr.shape[0] if arr.ndim else 0
    if m != n:
        which = f"row {m} is missing" if m < n else f"row {n} is extra"
        raise ValidationError(
            f"{name} must have {n} rows, one per logged round as in {against}, got {m} "
            f"({which})"
        )


def ndim(arr: np.ndarray, allowed: tuple[int, ...], name: str, shape: str) -> None:
    if arr.ndim not in allowed:
        raise ValidationError(f"{name} must have shape {shape}, got {arr.shape}")


def finite(arr: np.ndarray, name: str) -> np.ndarray:
    """``arr`` itself once every entry is finite."""
    ok = np.isfinite(arr)
    if not ok.all():
        i = where(arr, ~ok)
        raise ValidationError(f"{label(name, i)} must be finite, got {arr[i]}")
    return arr


def float_rows(value: Any, name: str, n: int | None, shape: str, ndims=(1,)) -> np.ndarray:
    """A finite float64 array with ``ndims`` dimensions and ``n`` rows (when given)."""
    arr = numeric(value, name)
    ndim(arr, ndims, name, shape)
    if n is not None:
        rows(arr, n, name)
    return finite(arr, name)


def integers(value: Any, name: str, n: int | None, what: str = "an integer") -> np.ndarray:
    """A 1-d int64 array with ``n`` entries (integral floats are accepted)."""
    raw = np.asarray(value)
    if raw.dtype.kind in "iu":
        arr = raw.astype(np.int64)
    else:
        flt = numeric(raw, name)
        if flt.size:
            bad = ~np.isfinite(flt) | (flt != np.round(flt))
            if bad.any():
                i = where(flt, bad)
                raise ValidationError(f"{label(name, i)} must be {what}, got {flt[i]}")
        arr = flt.astype(np.int64)
    ndim(arr, (1,), name, "(n,)")
    if n is not None:
        rows(arr, n, name)
    return arr


def actions(value: Any, name: str, n: int | None, n_actions: int | None) -> np.ndarray:
    """int64 action indices (n,), each in [0, n_actions) when ``n_actions`` is known."""
    arr = integers(value, name, n, "an integer action index")
    bad = arr < 0 if n_actions is None else (arr < 0) | (arr >= n_actions)
    if bad.any():
        i = where(arr, bad)
        span = "non-negative" if n_actions is None else f"in [0, {n_actions})"
        raise ValidationError(f"{label(name, i)} must be an action index {span}, got {arr[i]}")
    return arr


def propensities(value: Any, name: str, n: int) -> np.ndarray:
    """Probabilities of the logged actions (n,), each in (0, 1]."""
    arr = float_rows(value, name, n, "(n,)")
    bad = ~((arr > 0.0) & (arr <= 1.0))
    if bad.any():
        i = where(arr, bad)
        raise ValidationError(f"{label(name, i)} must be in (0, 1], got {arr[i]}")
    return arr


def distributions(value: Any, name: str, n: int, n_actions: int | None, atol=1e-6) -> np.ndarray:
    """(n, K) rows of action probabilities: entries in [0, 1], each row summing to 1."""
    arr = float_rows(value, name, n, "(n, K)", ndims=(2,))
    if n_actions is not None and arr.shape[1] != n_actions:
        raise ValidationError(
            f"{name} must have {n_actions} columns (one per action), got shape {arr.shape}"
        )
    bad = (arr < 0.0) | (arr > 1.0)
    if bad.any():
        i = where(arr, bad)
        raise ValidationError(f"{label(name, i)} must be a probability in [0, 1], got {arr[i]}")
    total = arr.sum(axis=1)
    bad = np.abs(total - 1.0) > atol
    if bad.any():
        i = int(np.argmax(bad))
        raise ValidationError(
            f"{name}[{i}] must sum to 1 over the {arr.shape[1]} actions, got {total[i]!r}"
        )
    return arr


def count(value: Any, name: str, low: int = 1) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValidationError(f"{name} must be an integer, got {value!r}")
    if int(value) < low:
        raise ValidationError(f"{name} must be >= {low}, got {value}")
    return int(value)


def timestamps(value: Any, name: str, n: int) -> np.ndarray:
    """(n,) times: datetime64[ns] (no NaT), int64, or finite float64."""
    raw = np.asarray(value)
    if raw.dtype.kind == "M":
        arr = raw.astype("datetime64[ns]")
        ndim(arr, (1,), name, "(n,)")
        rows(arr, n, name)
        bad = np.isnat(arr)
        if bad.any():
            raise ValidationError(f"{label(name, where(arr, bad))} must be a time, got NaT")
        return arr
    if raw.dtype.kind in "iu":
        arr = raw.astype(np.int64)
        ndim(arr, (1,), name, "(n,)")
        rows(arr, n, name)
        return arr
    if raw.dtype.kind == "b":
        raise ValidationError(f"{name} must be numbers or datetime64 values, got booleans")
    return float_rows(raw, name, n, "(n,)")
