"""Parquet round trip of :class:`~mixedts.offline.LoggedFeedback` (needs pyarrow).

One file, one row per logged round. Scalar fields are plain columns (``actions`` int64,
``rewards`` float64, ``timestamps`` int64, float64 or ``timestamp[ns]``, ...); row fields with a
shape (``contexts`` (n, d) or (n, K, d), ``expected_rewards`` and ``logging_probabilities``
(n, K)) are fixed-size list columns holding each row flattened. The schema metadata key
``mixedts`` holds JSON: the format name and version, K, the trailing shape of every list
column and the (K, p) ``action_features`` (JSON keeps float64 values exactly). Reading
validates the file like a new log, so a damaged file raises the same errors.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from .._validation import ValidationError
from .logs import ROW_FIELDS, LoggedFeedback

FORMAT = "mixedts.LoggedFeedback"
VERSION = 1
_KEY = b"mixedts"


def _pyarrow():
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow is installed wherever the tests run
        raise ImportError(
            "Parquet files need pyarrow: pip install 'mixedts[experiments]'"
        ) from None
    return pa, pq


def write_parquet(logs: LoggedFeedback, path: Any) -> None:
    """Write ``logs`` to ``path`` (overwritten).

    >>> import tempfile, os
    >>> logs = LoggedFeedback(np.eye(2), [0, 1], [1.0, 0.5], propensities=[0.5, 0.5])
    >>> with tempfile.TemporaryDirectory() as tmp:
    ...     file = os.path.join(tmp, "logs.parquet")
    ...     write_parquet(logs, file)
    ...     read_parquet(file).equals(logs)
    True
    """
    pa, pq = _pyarrow()
    n = len(logs)
    columns: dict[str, Any] = {}
    shapes: dict[str, list[int]] = {}
    for name in ROW_FIELDS:
        arr = getattr(logs, name)
        if arr is None:
            continue
        if arr.ndim == 1:
            columns[name] = pa.array(arr)
        else:
            shapes[name] = list(arr.shape[1:])
            width = int(np.prod(arr.shape[1:]))
            flat = pa.array(np.ascontiguousarray(arr).reshape(n * width))
            columns[name] = pa.FixedSizeListArray.from_arrays(flat, width)
    features = logs.action_features
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "n_actions": logs.n_actions,
        "shapes": shapes,
        "action_features": None if features is None else features.tolist(),
        "action_features_shape": None if features is None else list(features.shape),
    }
    table = pa.table(columns, metadata={_KEY: json.dumps(meta).encode()})
    pq.write_table(table, str(path))


def read_parquet(path: Any) -> LoggedFeedback:
    """Read a log written by :func:`write_parquet`; a bad file raises ValidationError."""
    pa, pq = _pyarrow()
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{file}: no such file")
    try:
        table = pq.read_table(str(file))
    except (pa.ArrowException, OSError) as exc:
        raise ValidationError(f"{file}: not a readable Parquet file ({exc})") from None
    meta = _metadata(table, file)
    n = table.num_rows
    fields: dict[str, Any] = {}
    for name in ROW_FIELDS:
        if name not in table.column_names:
            continue
        column = table.column(name).combine_chunks()
        if column.null_count:
            i = int(np.argmax(column.is_null().to_numpy(zero_copy_only=False)))
            raise ValidationError(f"{file}: {name}[{i}] is missing (null)")
        if name in meta["shapes"]:
            shape = tuple(int(s) for s in meta["shapes"][name])
            values = column.flatten().to_numpy(zero_copy_only=False)
            if values.size != n * int(np.prod(shape)):
                raise ValidationError(f"{file}: column {name} does not hold rows of shape {shape}")
            fields[name] = values.reshape((n, *shape))
        else:
            fields[name] = column.to_numpy(zero_copy_only=False)
    for required in ("contexts", "actions", "rewards"):
        if required not in fields:
            raise ValidationError(f"{file}: column {required} is missing")
    features = meta.get("action_features")
    if features is not None:
        shape = tuple(meta.get("action_features_shape") or (len(features), 0))
        features = np.asarray(features, dtype=np.float64).reshape(shape)
    return LoggedFeedback(**fields, action_features=features, n_actions=meta.get("n_actions"))


def _metadata(table, file: Path) -> dict[str, Any]:
    raw = (table.schema.metadata or {}).get(_KEY)
    if raw is None:
        raise ValidationError(
            f"{file}: not a LoggedFeedback file (no {_KEY.decode()!r} metadata); read it with "
            "pandas.read_parquet and build the log with LoggedFeedback.from_dataframe"
        )
    try:
        meta = json.loads(raw)
    except ValueError as exc:
        raise ValidationError(f"{file}: unreadable {_KEY.decode()!r} metadata ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValidationError(f"{file}: metadata does not describe a {FORMAT} file")
    if meta.get("version") != VERSION:
        raise ValidationError(
            f"{file}: format version {meta.get('version')!r}; this mixedts reads version {VERSION}"
        )
    if not isinstance(meta.get("shapes"), dict):
        raise ValidationError(f"{file}: metadata 'shapes' must be a mapping")
    return meta
