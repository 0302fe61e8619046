"""The errors every data-set loader raises (MovieLens, the Open Bandit Dataset)."""

from __future__ import annotations

from mixedts._validation import ValidationError

__all__ = ["DatasetDownloadError", "DatasetError", "DatasetNotFoundError"]


class DatasetError(ValidationError):
    """A data file that does not follow its published format, or a failed checksum.

    A :class:`~mixedts.ValidationError`, hence a ``ValueError``; the message names the file and
    line.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from mixedts.datasets import DatasetError, load_movielens
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / "u.item").write_text("2|GoldenEye|||x|1\\n")
    >>> _ = (folder / "u.genre").write_text("Action|0\\n")
    >>> _ = (folder / "u.data").write_text("1\\t2\\tfive\\t881250949\\n")
    >>> try:
    ...     load_movielens(folder)
    ... except DatasetError as exc:
    ...     print(str(exc).split(": ", 1)[1])
    rating 'five' is not a number: '1\\t2\\tfive\\t881250949'
    """


class DatasetNotFoundError(FileNotFoundError):
    """A data file or folder that does not exist; the message says which and what to pass.

    A ``FileNotFoundError``.

    Examples
    --------
    >>> from mixedts.datasets import DatasetNotFoundError, load_movielens
    >>> try:
    ...     load_movielens("no/such/folder")
    ... except DatasetNotFoundError as exc:
    ...     print(str(exc).split(":")[0])
    MovieLens folder no/such/folder does not exist
    """


class DatasetDownloadError(OSError):
    """The archive could not be fetched (offline, DNS failure, HTTP error).

    An ``OSError``: ``except OSError`` catches it with the other failures of the network.

    Examples
    --------
    >>> from mixedts.datasets import DatasetDownloadError
    >>> issubclass(DatasetDownloadError, OSError)
    True
    """
