"""Public data sets, read from the files their owners publish (nothing is shipped here).

* :mod:`.movielens`: MovieLens 100K / 1M ratings and genres (:func:`load_movielens`).
* :mod:`.obd`: the Open Bandit Dataset as logged bandit feedback (``load_obd``, imported from
  :mod:`mixedts.datasets.obd` or :mod:`mixedts.offline`).

This package re-exports exactly the names the former ``mixedts.datasets`` module exported, so
``from mixedts.datasets import load_movielens, DatasetError`` keeps working.
``_urlopen`` is the URL opener the MovieLens download uses, looked up here at each call (tests
replace it to serve an archive without network access).
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable
from typing import Any

from .errors import DatasetDownloadError, DatasetError, DatasetNotFoundError
from .movielens import (
    ARCHIVE_SHA256,
    ARCHIVE_URLS,
    FILE_SHA256,
    ML1M_GENRES,
    ML100K_GENRES,
    VARIANTS,
    MovieLens,
    load_movielens,
)

_urlopen: Callable[..., Any] = urllib.request.urlopen

__all__ = [
    "ARCHIVE_SHA256",
    "ARCHIVE_URLS",
    "FILE_SHA256",
    "ML1M_GENRES",
    "ML100K_GENRES",
    "VARIANTS",
    "DatasetDownloadError",
    "DatasetError",
    "DatasetNotFoundError",
    "MovieLens",
    "load_movielens",
]
