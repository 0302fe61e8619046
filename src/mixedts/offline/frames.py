"""Build a :class:`~mixedts.offline.LoggedFeedback` from the columns of a pandas DataFrame."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validation import ValidationError
from .logs import LoggedFeedback


def from_dataframe(
    df: Any,
    context_columns: str | Sequence[str],
    action: str,
    reward: str,
    *,
    propensity: str | None = None,
    position: str | None = None,
    timestamp: str | None = None,
    action_features: Any = None,
    n_actions: int | None = None,
) -> LoggedFeedback:
    """A log with one row per DataFrame row (row order kept).

    Parameters
    ----------
    df : pandas.DataFrame
    context_columns : str or sequence of str
        The numeric (or boolean, e.g. one-hot) context columns, in order, giving shared contexts
        (n, d); a single string selects every column whose name starts with it, in frame order.
    action, reward : str
        Columns of the logged action indices (integers in [0, K)) and the rewards.
    propensity, position, timestamp : str, optional
        Columns of the logging propensities, positions and times (datetime columns with a time
        zone are converted to UTC).
    action_features : array_like (K, p), optional
    n_actions : int, optional

    A bad value raises :class:`~mixedts.ValidationError` naming the field, the row and the
    column it came from.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"x0": [0.1, 0.2], "x1": [1.0, 0.0], "item": [2, 0],
    ...                    "click": [1, 0], "p": [0.25, 0.5]})
    >>> logs = from_dataframe(df, "x", action="item", reward="click", propensity="p")
    >>> logs.contexts.shape, logs.actions.tolist(), logs.propensities.tolist()
    ((2, 2), [2, 0], [0.25, 0.5])
    """
    import pandas as pd

    if not isinstance(df, pd.DataFrame):
        raise ValidationError(f"df must be a pandas DataFrame, got {type(df).__name__}")
    columns = _context_columns(df, context_columns)
    # field of the log -> (argument, column)
    sources = {
        "actions": ("action", action),
        "rewards": ("reward", reward),
        "propensities": ("propensity", propensity),
        "positions": ("position", position),
        "timestamps": ("timestamp", timestamp),
    }
    fields: dict[str, Any] = {"contexts": _contexts(df, columns)}
    for field, (arg, column) in sources.items():
        if column is None:
            continue
        if column not in df.columns:
            raise ValidationError(f"{arg}: column {column!r} is not in the DataFrame")
        series = df[column]
        if field == "timestamps" and isinstance(series.dtype, pd.DatetimeTZDtype):
            series = series.dt.tz_convert("UTC").dt.tz_localize(None)
        fields[field] = series.to_numpy()
    try:
        return LoggedFeedback(**fields, action_features=action_features, n_actions=n_actions)
    except ValidationError as exc:
        message = str(exc)
        for field, (_, column) in sources.items():
            if column is not None and message.startswith(field):
                raise ValidationError(f"{message} (column {column!r})") from None
        raise


def _context_columns(df, context_columns: Any) -> list[str]:
    if isinstance(context_columns, str):
        columns = [c for c in df.columns if isinstance(c, str) and c.startswith(context_columns)]
        if not columns:
            raise ValidationError(
                f"context_columns: no column name starts with {context_columns!r}"
            )
        return columns
    try:
        columns = list(context_columns)
    except TypeError:
        raise ValidationError(
            f"context_columns must be a prefix or a sequence of column names, got "
            f"{context_columns!r}"
        ) from None
    if not columns:
        raise ValidationError("context_columns must name at least one column")
    for column in columns:
        if column not in df.columns:
            raise ValidationError(f"context_columns: column {column!r} is not in the DataFrame")
    return columns


def _contexts(df, columns: list[str]) -> np.ndarray:
    """(n, d) float64 from numeric or boolean columns; a non-finite value names its column."""
    from pandas.api.types import is_bool_dtype, is_numeric_dtype

    for column in columns:
        dtype = df[column].dtype
        if not (is_numeric_dtype(dtype) or is_bool_dtype(dtype)):
            raise ValidationError(
                f"context column {column!r} is not numeric (dtype {dtype}); encode it first, "
                "e.g. with pandas.get_dummies"
            )
    try:
        X = df[columns].to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"context columns must be numeric: {exc}") from None
    bad = ~np.isfinite(X)
    if bad.any():
        i, j = np.unravel_index(int(np.argmax(bad)), X.shape)
        raise ValidationError(
            f"contexts[{i}, {j}] (column {columns[j]!r}) must be finite, got {X[i, j]}"
        )
    return X
