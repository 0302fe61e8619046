"""The errors every data-set loader raises (MovieLens, the Open Bandit Dataset)."""

from __future__ import annotations

from mixedts._validation import ValidationError

__all__ = ["DatasetDownloadError", "DatasetError", "DatasetNotFoundError"]


class DatasetError(ValidationError):
    """A data file that does not follow its published format, or a failed checksum."""


class DatasetNotFoundError(FileNotFoundError):
    """A data file or folder that does not exist; the message says which and what to pass."""


class DatasetDownloadError(OSError):
    """The archive could not be fetched (offline, DNS failure, HTTP error)."""
