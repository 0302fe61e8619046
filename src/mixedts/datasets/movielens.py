"""MovieLens ratings and genres, read from the files GroupLens publishes.

:func:`load_movielens` reads one of two published formats from a folder:

``ml-100k``
    ``u.data``: tab-separated ``user id, item id, rating, timestamp``, one rating a line.
    ``u.item``: ``|``-separated, Latin-1: ``movie id | title | release date | video release date |
    IMDb URL`` followed by one 0/1 flag per genre (19 in the release). ``u.genre``: one
    ``name|index`` line per genre, giving the names and order of the flags (when it is absent the
    19 published names are used).
``ml-1m``
    ``ratings.dat``: ``UserID::MovieID::Rating::Timestamp``. ``movies.dat``, Latin-1:
    ``MovieID::Title::Genres`` with the genres ``|``-separated, each one of the 18 names listed in
    the release's README.

Ratings are integers 1..5 in both releases, timestamps are seconds since the Unix epoch, and ids
are kept exactly as published (1-based, and the 1M release's movie ids have gaps). Files are read
with :func:`pandas.read_csv` (explicit separators, Latin-1, explicit dtypes); a file that does not
follow its format raises :class:`DatasetError` naming the file and, where it can, the line.

With ``download=True`` the official archive is fetched from ``files.grouplens.org`` into a cache
folder (``cache_dir``, else ``$MIXEDTS_DATA``, else ``~/.cache/mixedts``), its SHA-256 is checked
against :data:`ARCHIVE_SHA256` (and, for ml-100k, the extracted ``u.data`` and ``u.item`` against
:data:`FILE_SHA256`), its members are extracted only if every path stays inside the cache, and
later calls read the cached copy without touching the network. A variant whose constant is
``None`` is downloaded without a checksum.

Licence. The MovieLens data sets belong to GroupLens Research (University of Minnesota) and may
be used for research only, with a citation of F. Maxwell Harper and Joseph A. Konstan, "The
MovieLens Datasets: History and Context", ACM TiiS 5(4), 2015. They must not be redistributed:
this module ships no data, only code that reads a copy the user obtained from GroupLens. Never
commit MovieLens files to this repository. ``pandas`` is needed (the ``experiments`` extra).
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import shutil
import stat
import sys
import tempfile
import urllib.error
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from http.client import HTTPException
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, NoReturn

import numpy as np

from mixedts._validation import ValidationError

from .errors import DatasetDownloadError, DatasetError, DatasetNotFoundError

if TYPE_CHECKING:
    import pandas as pd

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

VARIANTS = ("ml-100k", "ml-1m")

#: Official archives, one per variant.
ARCHIVE_URLS: dict[str, str] = {
    "ml-100k": "https://files.grouplens.org/datasets/movielens/ml-100k.zip",
    "ml-1m": "https://files.grouplens.org/datasets/movielens/ml-1m.zip",
}

#: SHA-256 of the official archives; ``None`` downloads without a check. Both values are the ones
#: recorded independently by many public projects (ml-100k.zip is 4,924,029 bytes, ml-1m.zip
#: 5,917,549 bytes whose MD5 is GroupLens' published c4d9eecfca2ab87c1945afe126590906).
ARCHIVE_SHA256: dict[str, str | None] = {
    "ml-100k": "50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229",
    "ml-1m": "a6898adb50b9ca05aa231689da44c217cb524e7ebd39d264c56e2832f2c54e20",
}

#: SHA-256 of extracted files, checked after extraction (none are known for ml-1m).
FILE_SHA256: dict[str, dict[str, str]] = {
    "ml-100k": {
        "u.data": "06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490",
        "u.item": "553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701",
    },
    "ml-1m": {},
}

_FILES = {"ml-100k": ("u.data", "u.item"), "ml-1m": ("ratings.dat", "movies.dat")}

ML100K_GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
    "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
    "Thriller", "War", "Western",
)  # fmt: skip
ML1M_GENRES = ML100K_GENRES[1:]

_ITEM_FIELDS = ("item id", "title", "release date", "video release date", "IMDb URL")
_DOWNLOAD_TIMEOUT_S = 60.0
_MAX_DOWNLOAD_BYTES = 256 * 2**20
_MAX_EXTRACTED_BYTES = 1024 * 2**20
_CONTROL = b"".join(bytes([b]) for b in (*range(1, 9), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F))
_NOT_CONTROL = bytes(b for b in range(256) if bytes([b]) not in _CONTROL)
_INTEGER = re.compile(r"[+-]?\d+")



def _urlopen(*args: Any, **kwargs: Any) -> Any:
    """The URL opener, looked up as ``mixedts.datasets._urlopen`` at each call: tests replace
    that package attribute to serve an archive without network access."""
    return sys.modules[__package__]._urlopen(*args, **kwargs)


@dataclass(frozen=True, eq=False, repr=False)
class MovieLens:
    """One MovieLens release, as published.

    Attributes
    ----------
    name : str
        ``"ml-100k"`` or ``"ml-1m"``.
    ratings : pandas.DataFrame
        Shape (n_ratings, 4), in file order: ``user_id`` (int64), ``item_id`` (int64), ``rating``
        (float64, in 1..5), ``timestamp`` (int64, Unix seconds). Ids are as published.
    items : pandas.DataFrame
        Shape (n_items, 2 + G), in file order: ``item_id`` (int64, unique), ``title`` (str), then
        one int64 0/1 column per genre, named as in :attr:`genres`.
    genres : tuple of str
        The G genre names, in the order of the genre columns of :attr:`items`.

    Notes
    -----
    The frame attributes are not copied: treat them as read-only.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())  # a two-rating ml-100k layout
    >>> _ = (folder / "u.data").write_text("1\\t2\\t5\\t881250949\\n2\\t1\\t3\\t891717742\\n")
    >>> _ = (folder / "u.item").write_text("1|Toy Story|||x|0|1\\n2|GoldenEye|||x|1|0\\n")
    >>> _ = (folder / "u.genre").write_text("unknown|0\\nAction|1\\n")
    >>> from mixedts.datasets import load_movielens
    >>> load_movielens(folder)
    MovieLens(name='ml-100k', n_ratings=2, n_users=2, n_items=2, n_genres=2)
    """

    name: str
    ratings: pd.DataFrame
    items: pd.DataFrame
    genres: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "genres", tuple(self.genres))

    def __repr__(self) -> str:
        return (
            f"MovieLens(name={self.name!r}, n_ratings={len(self.ratings)}, "
            f"n_users={self.n_users}, n_items={self.n_items}, n_genres={len(self.genres)})"
        )

    @property
    def n_users(self) -> int:
        """Number of distinct users in :attr:`ratings`."""
        return int(self.ratings["user_id"].nunique())

    @property
    def n_items(self) -> int:
        """Number of items in the catalogue :attr:`items` (rated or not)."""
        return len(self.items)

    @cached_property
    def _item_index(self) -> pd.Index:
        import pandas as pd

        return pd.Index(self.items["item_id"].to_numpy(dtype=np.int64))

    @cached_property
    def _genre_array(self) -> np.ndarray:
        arr = self.items[list(self.genres)].to_numpy(dtype=np.int64)
        arr.flags.writeable = False
        return arr

    def genre_matrix(self, item_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Genre flags of the given items.

        Parameters
        ----------
        item_ids : array_like of int, shape (n,)
            Item ids as published (values of ``items["item_id"]``), in any order, repeats allowed.

        Returns
        -------
        numpy.ndarray of int64, shape (n, G)
            Row i holds the 0/1 genre flags of ``item_ids[i]``, columns in :attr:`genres` order.

        Raises
        ------
        ValidationError
            If ``item_ids`` is not a 1-D array of integers or holds an id not in :attr:`items`.
        """
        ids = np.asarray(item_ids)
        if ids.ndim != 1:
            raise ValidationError(f"item_ids must be 1-D, got shape {ids.shape}")
        if ids.dtype.kind == "f" and np.all(np.isfinite(ids)) and np.all(ids == np.round(ids)):
            ids = ids.astype(np.int64)
        if ids.dtype.kind not in "iu":
            raise ValidationError(f"item_ids must be integers, got dtype {ids.dtype}")
        rows = self._item_index.get_indexer(ids.astype(np.int64, copy=False))
        unknown = ids[rows < 0]
        if unknown.size:
            shown = ", ".join(str(int(i)) for i in np.unique(unknown)[:5])
            raise ValidationError(
                f"item_ids holds {np.unique(unknown).size} id(s) not in the {self.name} items: "
                f"{shown}{', ...' if np.unique(unknown).size > 5 else ''}"
            )
        return self._genre_array[rows]


def load_movielens(
    path: str | os.PathLike[str] | None = None,
    *,
    variant: str | None = None,
    download: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
) -> MovieLens:
    """Load MovieLens 100K or 1M from the published files.

    Parameters
    ----------
    path : str or path-like, optional
        The folder holding the files (``u.data``, ``u.item``, ``u.genre`` for ml-100k;
        ``ratings.dat``, ``movies.dat`` for ml-1m), a parent holding ``ml-100k/`` or ``ml-1m/``,
        or one of the files themselves. ``None`` reads the copy in the cache folder, downloading
        it first when ``download=True``.
    variant : {"ml-100k", "ml-1m"}, optional
        Which release. ``None`` detects it from the files present; with ``path=None`` it means
        the first one cached, else ml-100k.
    download : bool, default False
        With ``path=None``, fetch the official archive into the cache when it is not there,
        verify its SHA-256 and extract it. Never combined with ``path``.
    cache_dir : str or path-like, optional
        Cache folder used when ``path`` is None; default ``$MIXEDTS_DATA``, else
        ``~/.cache/mixedts``. Each variant lives in ``<cache_dir>/<variant>/``.

    Returns
    -------
    MovieLens
        ``ratings`` of shape (n_ratings, 4), ``items`` of shape (n_items, 2 + G), ``genres`` of
        length G (ml-100k: 100,000 ratings, 943 users, 1,682 items, G = 19; ml-1m: 1,000,209
        ratings, 6,040 users, 3,883 items, G = 18).

    Raises
    ------
    DatasetNotFoundError
        A folder or required file is missing (a ``FileNotFoundError``).
    DatasetError
        A malformed or wrongly encoded file (the message names the file and line), a rating of an
        item missing from the item file, or an archive that fails its checksum or holds unsafe
        paths (a ``ValidationError``, hence ``ValueError``).
    DatasetDownloadError
        The archive could not be fetched (an ``OSError``).
    ValidationError
        Invalid arguments.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())  # a two-rating ml-100k layout
    >>> _ = (folder / "u.data").write_text("1\\t2\\t5\\t881250949\\n2\\t1\\t3\\t891717742\\n")
    >>> _ = (folder / "u.item").write_text("1|Toy Story|||x|0|1\\n2|GoldenEye|||x|1|0\\n")
    >>> _ = (folder / "u.genre").write_text("unknown|0\\nAction|1\\n")
    >>> data = load_movielens(folder)
    >>> data.ratings["rating"].tolist(), data.genres
    ([5.0, 3.0], ('unknown', 'Action'))
    >>> data.items.columns.tolist()
    ['item_id', 'title', 'unknown', 'Action']
    """
    if variant is not None and variant not in VARIANTS:
        raise ValidationError(f"variant must be None, 'ml-100k' or 'ml-1m', got {variant!r}")
    if not isinstance(download, (bool, np.bool_)):
        raise ValidationError(f"download must be a bool, got {type(download).__name__}")
    if path is not None:
        if download:
            raise ValidationError(
                "pass either path= (read a local copy) or download=True (fetch into the cache), "
                "not both; to download into a chosen folder pass cache_dir="
            )
        if cache_dir is not None:
            raise ValidationError("cache_dir is only used when path is None")
        folder, found = _resolve(Path(os.fspath(path)).expanduser(), variant)
        return _load_folder(folder, found)

    root = _cache_root(cache_dir)
    for v in (variant,) if variant else VARIANTS:
        if _complete(root / v, v):
            return _load_folder(root / v, v)
    wanted = variant or "ml-100k"
    if (root / wanted).exists():
        raise DatasetNotFoundError(
            f"the cache folder {root / wanted} exists but does not hold "
            f"{' and '.join(_FILES[wanted])}: remove it and call again, or pass path="
        )
    if not download:
        raise DatasetNotFoundError(
            f"no path given and no MovieLens copy ({variant or 'ml-100k or ml-1m'}) in the cache "
            f"folder {root}: pass path= pointing to an extracted {wanted} folder, or "
            f"download=True to fetch {ARCHIVE_URLS[wanted]}"
        )
    return _load_folder(_download(wanted, root), wanted)


# --------------------------------------------------------------------------- locating files


def _cache_root(cache_dir: str | os.PathLike[str] | None) -> Path:
    if cache_dir is not None:
        return Path(os.fspath(cache_dir)).expanduser()
    env = os.environ.get("MIXEDTS_DATA")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "mixedts"


def _complete(folder: Path, variant: str) -> bool:
    return all((folder / f).is_file() for f in _FILES[variant])


def _resolve(root: Path, variant: str | None) -> tuple[Path, str]:
    """The folder holding the files and the variant they are."""
    candidates = (variant,) if variant else VARIANTS
    if root.is_file():
        for v in candidates:
            if root.name in _FILES[v] or (v == "ml-100k" and root.name == "u.genre"):
                return root.parent, v
        raise DatasetNotFoundError(
            f"{root} is a file, not a MovieLens folder: pass the folder holding "
            + " or ".join(" and ".join(_FILES[v]) for v in candidates)
        )
    if not root.is_dir():
        raise DatasetNotFoundError(
            f"MovieLens folder {root} does not exist: pass path= pointing to the extracted "
            f"{variant or 'ml-100k or ml-1m'} folder, or path=None with download=True"
        )
    direct = [v for v in candidates if any((root / f).is_file() for f in _FILES[v])]
    nested = [v for v in candidates if (root / v).is_dir()]
    for hits, folder in ((direct, root), (nested, None)):
        if len(hits) > 1:
            raise ValidationError(
                f"{root} holds both ml-100k and ml-1m; pass variant='ml-100k' or variant='ml-1m'"
            )
        if hits:
            return folder or root / hits[0], hits[0]
    if variant is not None:  # reading reports the first missing file
        return root, variant
    raise DatasetNotFoundError(
        f"no MovieLens files in {root}: expected u.data and u.item (ml-100k), ratings.dat and "
        "movies.dat (ml-1m), or a sub-folder ml-100k/ or ml-1m/. Pass path= pointing to the "
        "extracted folder, or path=None with download=True to fetch the official archive"
    )


def _read(folder: Path, name: str, variant: str) -> tuple[Path, bytes]:
    file = folder / name
    try:
        return file, file.read_bytes()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        need = " and ".join(_FILES[variant])
        raise DatasetNotFoundError(
            f"{file} not found: MovieLens {variant} needs {need} in {folder}. Pass path= "
            f"pointing to the extracted {variant} folder, or path=None with download=True to "
            f"fetch {ARCHIVE_URLS[variant]}"
        ) from None


# --------------------------------------------------------------------------- parsing


def _decode(data: bytes, file: Path) -> str:
    """Latin-1 text, after rejecting what is plainly another encoding or not text at all."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data:
        raise DatasetError(
            f"{file}: not a Latin-1 text file (it holds NUL bytes or a UTF-16/UTF-32 byte-order "
            "mark, as UTF-16 text does); MovieLens files are Latin-1 (ISO-8859-1)"
        )
    text = data.decode("latin-1")
    controls = data.translate(None, _NOT_CONTROL)  # fast: the control bytes, in order
    if controls:
        line = data.count(b"\n", 0, data.find(controls[:1])) + 1
        raise DatasetError(
            f"{file}, line {line}: invalid byte 0x{controls[0]:02x} (a "
            "control character): not a MovieLens text file"
        )
    if data.startswith(b"\xef\xbb\xbf"):
        utf8 = True
    elif data.isascii():
        utf8 = False
    else:
        try:
            data.decode("utf-8")
            utf8 = True
        except UnicodeDecodeError:
            utf8 = False
    if utf8:
        first = next((m.start() for m in re.finditer(r"[^\x00-\x7f]", text)), 0)
        raise DatasetError(
            f"{file}, line {text.count(chr(10), 0, first) + 1}: the file is UTF-8 encoded, but "
            "MovieLens files are Latin-1 (ISO-8859-1); use the published file or convert it "
            "(iconv -f UTF-8 -t LATIN1)"
        )
    return text


def _lines(text: str):
    """(line number, line) for every non-blank line, with the line ends pandas accepts."""
    for number, line in enumerate(text.replace("\r\n", "\n").replace("\r", "\n").split("\n"), 1):
        if line:
            yield number, line


def _locate(
    text: str, file: Path, sep: str, names: Sequence[str], check: Callable[[list[str]], str | None]
) -> str | None:
    """The first offending line, described, or None. Only run once a fast check has failed."""
    described = ", ".join(names)
    if len(names) > 6:  # u.item: five fields and the genre flags
        described = f"{', '.join(names[:5])} and {len(names) - 5} genre flags"
    for number, line in _lines(text):
        fields = line.split(sep)
        shown = line if len(line) <= 100 else line[:97] + "..."
        if len(fields) != len(names):
            return (
                f"{file}, line {number}: expected {len(names)} fields separated by {sep!r} "
                f"({described}), got {len(fields)}: {shown!r}"
            )
        problem = check(fields)
        if problem:
            return f"{file}, line {number}: {problem}: {shown!r}"
    return None


def _int_problem(value: str, what: str, positive: bool = False) -> str | None:
    s = value.strip()
    if not _INTEGER.fullmatch(s):
        return f"{what} {value!r} is not an integer"
    v = int(s)
    if not -(2**63) <= v < 2**63:
        return f"{what} {value!r} does not fit in 64 bits"
    if positive and v < 1:
        return f"{what} {v} is not a positive integer"
    return None


def _rating_problem(fields: list[str]) -> str | None:
    problem = (
        _int_problem(fields[0], "user id", positive=True)
        or _int_problem(fields[1], "item id", positive=True)
        or _int_problem(fields[3], "timestamp")
    )
    if problem:
        return problem
    try:
        r = float(fields[2])
    except ValueError:
        return f"rating {fields[2]!r} is not a number"
    if not 1.0 <= r <= 5.0:
        return f"rating {fields[2]!r} is outside 1..5"
    return None


def _fail(text: str, file: Path, sep: str, names: Sequence[str], check, fallback: str) -> NoReturn:
    """Raise a DatasetError at the first bad line, else with ``fallback``."""
    raise DatasetError(_locate(text, file, sep, names, check) or f"{file}: {fallback}")


def _read_table(data: bytes, text: str, file: Path, sep: str, names: Sequence[str], dtypes, check):
    """``pd.read_csv`` with explicit dtypes; any failure is traced to its line."""
    import pandas as pd

    if not text.strip():
        raise DatasetError(f"{file} is empty")
    # The C engine takes one-character separators: "::" becomes \x1f, which _decode has
    # already rejected anywhere in the file, so no field can contain it.
    one = sep if len(sep) == 1 else "\x1f"
    raw = data if len(sep) == 1 else data.replace(sep.encode(), b"\x1f")
    try:
        df = pd.read_csv(
            io.BytesIO(raw),
            sep=one,
            header=None,
            dtype=dict(enumerate(dtypes)),
            encoding="latin-1",
            engine="c",
            quoting=csv.QUOTE_NONE,
            na_filter=False,
        )
    except (ValueError, OverflowError) as exc:  # pandas' ParserError is a ValueError
        _fail(text, file, sep, names, check, f"could not be parsed ({exc})")
    # A row with too many fields is a parser error; one with too few is padded, so count.
    if df.shape[1] != len(names) or raw.count(one.encode()) != (len(names) - 1) * len(df):
        _fail(text, file, sep, names, check, f"expected {len(names)} fields on every line")
    df.columns = range(len(names))
    return df


def _read_ratings(data: bytes, file: Path, sep: str) -> pd.DataFrame:
    text = _decode(data, file)
    names = ("user id", "item id", "rating", "timestamp")
    df = _read_table(data, text, file, sep, names, ("int64", "int64", "float64", "int64"),
                     _rating_problem)  # fmt: skip
    users, items, ratings = (df[i].to_numpy() for i in range(3))
    bad = (users < 1) | (items < 1) | ~((ratings >= 1.0) & (ratings <= 5.0))
    if bad.any():
        _fail(text, file, sep, names, _rating_problem, f"invalid values in row {bad.argmax()}")
    df.columns = ["user_id", "item_id", "rating", "timestamp"]
    return df


def _id_checker(check_rest: Callable[[list[str]], str | None]) -> Callable[[list[str]], str | None]:
    """A row check for item files: positive, not repeated id, then ``check_rest``."""
    seen: set[int] = set()

    def check(fields: list[str]) -> str | None:
        problem = _int_problem(fields[0], "item id", positive=True)
        if problem:
            return problem
        item = int(fields[0].strip())
        if item in seen:
            return f"item id {item} appears twice"
        seen.add(item)
        return check_rest(fields)

    return check


def _check_items(df: pd.DataFrame, text: str, file: Path, sep: str, names, check) -> None:
    ids = df[0].to_numpy()
    if (ids < 1).any() or df[0].duplicated().any():
        _fail(text, file, sep, names, check, "item ids must be positive and unique")


def _read_genre_names(folder: Path) -> tuple[str, ...]:
    file = folder / "u.genre"
    if not file.is_file():
        return ML100K_GENRES
    text = _decode(file.read_bytes(), file)
    entries: dict[int, str] = {}
    for number, line in _lines(text):
        fields = line.split("|")
        if len(fields) != 2 or _int_problem(fields[1], "index") or not fields[0].strip():
            raise DatasetError(f"{file}, line {number}: expected 'name|index', got {line!r}")
        index, name = int(fields[1]), fields[0].strip()
        if index in entries or name in entries.values() or name in ("item_id", "title"):
            raise DatasetError(f"{file}, line {number}: repeated or reserved genre {line!r}")
        entries[index] = name
    if sorted(entries) != list(range(len(entries))) or not entries:
        raise DatasetError(f"{file}: genre indices must be 0, 1, ..., G-1, got {sorted(entries)}")
    return tuple(entries[i] for i in range(len(entries)))


def _read_100k_items(folder: Path) -> tuple[pd.DataFrame, tuple[str, ...], Path]:
    genres = _read_genre_names(folder)
    file, data = _read(folder, "u.item", "ml-100k")
    text = _decode(data, file)
    names = (*_ITEM_FIELDS, *(f"{g} flag" for g in genres))  # one per field

    def flags(fields: list[str]) -> str | None:
        for g, v in zip(genres, fields[5:]):
            if v.strip() not in ("0", "1"):
                return f"genre flag {g!r} is {v!r}, not 0 or 1"
        return None

    check = _id_checker(flags)
    dtypes = ("int64", "str", "str", "str", "str", *("int64",) * len(genres))
    df = _read_table(data, text, file, "|", names, dtypes, check)
    _check_items(df, text, file, "|", names, check)
    flag_values = df[list(range(5, len(names)))].to_numpy()
    if ((flag_values != 0) & (flag_values != 1)).any():
        _fail(text, file, "|", names, check, "genre flags must be 0 or 1")
    items = df[[0, 1, *range(5, len(names))]]
    items.columns = ["item_id", "title", *genres]
    return items, genres, file


def _read_1m_items(folder: Path) -> tuple[pd.DataFrame, tuple[str, ...], Path]:
    import pandas as pd

    file, data = _read(folder, "movies.dat", "ml-1m")
    text = _decode(data, file)
    names = ("movie id", "title", "genres")
    known = set(ML1M_GENRES)

    def genre_names(fields: list[str]) -> str | None:
        unknown = [g for g in fields[2].split("|") if g and g not in known]
        if unknown:
            return f"unknown genre {unknown[0]!r} (the ml-1m genres are {', '.join(ML1M_GENRES)})"
        return None

    check = _id_checker(genre_names)
    df = _read_table(data, text, file, "::", names, ("int64", "str", "str"), check)
    _check_items(df, text, file, "::", names, check)
    column = {g: j for j, g in enumerate(ML1M_GENRES)}
    flags = np.zeros((len(df), len(ML1M_GENRES)), dtype=np.int64)
    for i, cell in enumerate(df[2].tolist()):
        for g in cell.split("|") if cell else ():
            j = column.get(g)
            if j is None:
                _fail(text, file, "::", names, check, f"unknown genre {g!r}")
            flags[i, j] = 1
    items = pd.concat(
        [
            pd.DataFrame({"item_id": df[0], "title": df[1]}),
            pd.DataFrame(flags, columns=list(ML1M_GENRES), index=df.index),
        ],
        axis=1,
    )
    return items, ML1M_GENRES, file


def _load_folder(folder: Path, variant: str) -> MovieLens:
    try:
        import pandas  # noqa: F401
    except ImportError:  # pragma: no cover - pandas is installed wherever the tests run
        raise ImportError(
            "load_movielens needs pandas: pip install 'mixedts[experiments]'"
        ) from None
    if variant == "ml-100k":
        ratings_name, sep = "u.data", "\t"
    else:
        ratings_name, sep = "ratings.dat", "::"
    ratings_file, ratings_data = _read(folder, ratings_name, variant)
    if variant == "ml-100k":
        items, genres, items_file = _read_100k_items(folder)
    else:
        items, genres, items_file = _read_1m_items(folder)
    ratings = _read_ratings(ratings_data, ratings_file, sep)
    catalogue = items["item_id"].to_numpy()
    unknown = ~np.isin(ratings["item_id"].to_numpy(), catalogue)
    if unknown.any():
        missing = np.unique(ratings["item_id"].to_numpy()[unknown])
        text = ratings_data.decode("latin-1")
        missing_set = {int(m) for m in missing}
        where = _locate(
            text, ratings_file, sep, ("user id", "item id", "rating", "timestamp"),
            lambda f: (
                f"item id {int(f[1])} is not in {items_file.name}"
                if int(f[1]) in missing_set else None
            ),
        )  # fmt: skip
        shown = ", ".join(str(int(m)) for m in missing[:5]) + (", ..." if missing.size > 5 else "")
        raise DatasetError(
            f"{where or ratings_file}; {int(unknown.sum())} rating(s) in all refer to "
            f"{missing.size} item id(s) missing from {items_file}: {shown}"
        )
    return MovieLens(
        name=variant,
        ratings=ratings.reset_index(drop=True),
        items=items.reset_index(drop=True),
        genres=genres,
    )


# --------------------------------------------------------------------------- download


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with file.open("rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fetch(url: str, target: Path) -> str:
    """Stream ``url`` into ``target``; the SHA-256 of what was written."""
    digest = hashlib.sha256()
    size = 0
    try:
        with _urlopen(url, timeout=_DOWNLOAD_TIMEOUT_S) as response, target.open("wb") as out:
            for block in iter(lambda: response.read(2**16), b""):
                size += len(block)
                if size > _MAX_DOWNLOAD_BYTES:
                    raise DatasetError(f"{url}: more than {_MAX_DOWNLOAD_BYTES} bytes, refused")
                digest.update(block)
                out.write(block)
    except urllib.error.HTTPError as exc:
        raise DatasetDownloadError(
            f"could not download {url}: the server answered HTTP {exc.code} ({exc.reason}). "
            "Download the archive from https://grouplens.org/datasets/movielens/ yourself, "
            "extract it and pass path= pointing to the extracted folder"
        ) from exc
    except (urllib.error.URLError, TimeoutError, ConnectionError, HTTPException) as exc:
        reason = getattr(exc, "reason", exc)
        raise DatasetDownloadError(
            f"could not download {url} ({reason}); you may be offline. Download and extract the "
            "archive elsewhere and pass path= pointing to the extracted folder"
        ) from exc
    return digest.hexdigest()


def _member_parts(name: str) -> tuple[str, ...]:
    """The path parts of a zip member, or DatasetError if it could leave the target folder."""
    norm = name.replace("\\", "/")
    parts = PurePosixPath(norm).parts
    if (
        not norm
        or "\x00" in norm
        or norm.startswith("/")
        or re.match(r"[A-Za-z]:", norm)
        or any(p == ".." for p in parts)
    ):
        raise DatasetError(f"unsafe member {name!r} in the archive (absolute path or '..')")
    return tuple(p for p in parts if p != ".")


def _extract(archive: Path, target: Path, variant: str) -> Path:
    """Extract ``<variant>/...`` members of ``archive`` under ``target`` after checking them all."""
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            members = []
            for info in infos:
                parts = _member_parts(info.filename)
                if stat.S_ISLNK(info.external_attr >> 16):
                    raise DatasetError(f"archive member {info.filename!r} is a symbolic link")
                if parts and parts[0] == variant and not info.is_dir():
                    members.append((info, parts))
            if sum(info.file_size for info, _ in members) > _MAX_EXTRACTED_BYTES:
                raise DatasetError(f"{archive.name} expands to more than the limit, refused")
            for info, parts in members:
                dest = target.joinpath(*parts)
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, dest.open("wb") as out:
                    shutil.copyfileobj(src, out)
    except zipfile.BadZipFile as exc:  # also a corrupt member (CRC)
        raise DatasetError(f"{archive.name} is not a valid zip archive: {exc}") from exc
    folder = target / variant
    if not _complete(folder, variant):
        raise DatasetError(
            f"{archive.name} holds no {variant}/ folder with {' and '.join(_FILES[variant])}"
        )
    return folder


def _download(variant: str, root: Path) -> Path:
    """Fetch, verify and extract ``variant`` into ``root/variant``; nothing is left on failure."""
    url = ARCHIVE_URLS[variant]
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{variant}-download-", dir=root))
    try:
        archive = work / f"{variant}.zip"
        digest = _fetch(url, archive)
        expected = ARCHIVE_SHA256.get(variant)
        if expected is not None and digest != expected.lower():
            raise DatasetError(
                f"{url}: SHA-256 mismatch, got {digest}, expected {expected}; the download is "
                "corrupt or not the official archive, and was discarded"
            )
        folder = _extract(archive, work / "extracted", variant)
        for name, want in FILE_SHA256.get(variant, {}).items():
            got = _sha256(folder / name)
            if got != want.lower():
                raise DatasetError(
                    f"{url}: extracted {name} has SHA-256 {got}, expected {want}; discarded"
                )
        dest = root / variant
        try:
            folder.rename(dest)
        except OSError:
            if not _complete(dest, variant):  # not a concurrent download that finished first
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dest
