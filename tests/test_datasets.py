"""MovieLens loader: both published formats, malformed files, encodings, and the download path.

Every fixture is a handful of made-up lines written into tmp_path; no MovieLens data is copied
into the repository. The real ml-100k release is read in place from ../shared/data when present.
The download tests never touch the network: the URL opener is replaced by one that serves a zip
built in tmp_path.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import time
import urllib.error
import zipfile
from pathlib import Path

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from mixedts import datasets  # noqa: E402
from mixedts._validation import ValidationError  # noqa: E402
from mixedts.datasets import (  # noqa: E402
    DatasetDownloadError,
    DatasetError,
    DatasetNotFoundError,
    MovieLens,
    load_movielens,
)

REAL_100K = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"

GENRE_100K = "unknown|0\nAction|1\nComedy|2\n\n"
ITEM_100K = (
    "1|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy|0|0|1\n"
    "2|Metisse (Café au Lait) (1993)|01-Jan-1993||http://us.imdb.com/Title?M%E9tisse|0|1|1\n"
    "3|unknown||||1|0|0\n"
)
DATA_100K = "1\t1\t5\t881250949\n1\t2\t3\t881250950\n2\t3\t1\t881250951\n3\t1\t4\t881250952\n"

MOVIES_1M = (
    "1::Toy Story (1995)::Animation|Children's|Comedy\n"
    "2::Café au Lait (1993)::Comedy|Drama\n"
    "5::Star Wars: Episode IV - A New Hope (1977)::Action|Sci-Fi\n"
)
RATINGS_1M = "1::1::5::978300760\n1::5::3::978302109\n2::2::4::978301968\n"


def _write(folder: Path, name: str, content: str | bytes | None) -> None:
    if content is None:
        return
    folder.mkdir(parents=True, exist_ok=True)
    raw = content if isinstance(content, bytes) else content.encode("latin-1")
    (folder / name).write_bytes(raw)


def make_100k(folder: Path, data=DATA_100K, item=ITEM_100K, genre=GENRE_100K) -> Path:
    """An ml-100k folder; pass ``None`` to leave a file out, bytes to write them verbatim."""
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder, "u.data", data)
    _write(folder, "u.item", item)
    _write(folder, "u.genre", genre)
    return folder


def make_1m(folder: Path, ratings=RATINGS_1M, movies=MOVIES_1M) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    _write(folder, "ratings.dat", ratings)
    _write(folder, "movies.dat", movies)
    return folder


# --------------------------------------------------------------------------- well-formed files


def test_100k_fixture(tmp_path):
    ml = load_movielens(make_100k(tmp_path / "ml-100k"))
    assert isinstance(ml, MovieLens) and ml.name == "ml-100k"
    assert list(ml.ratings.columns) == ["user_id", "item_id", "rating", "timestamp"]
    assert [str(t) for t in ml.ratings.dtypes] == ["int64", "int64", "float64", "int64"]
    assert ml.ratings["item_id"].tolist() == [1, 2, 3, 1]
    assert ml.ratings["rating"].tolist() == [5.0, 3.0, 1.0, 4.0]
    assert ml.ratings["timestamp"].iloc[0] == 881250949
    assert ml.genres == ("unknown", "Action", "Comedy")  # from u.genre, in index order
    assert list(ml.items.columns) == ["item_id", "title", "unknown", "Action", "Comedy"]
    assert ml.items["item_id"].dtype == np.int64
    assert all(ml.items[g].dtype == np.int64 for g in ml.genres)
    assert ml.items["title"].tolist()[1] == "Metisse (Café au Lait) (1993)"  # Latin-1 decoded
    assert ml.items["title"].tolist()[2] == "unknown"
    assert (ml.n_users, ml.n_items) == (3, 3)
    np.testing.assert_array_equal(ml.genre_matrix([2, 1, 2]), [[0, 1, 1], [0, 0, 1], [0, 1, 1]])
    assert ml.genre_matrix(np.array([3])).dtype == np.int64
    assert "ml-100k" in repr(ml) and "n_ratings=4" in repr(ml)


def test_1m_fixture(tmp_path):
    ml = load_movielens(make_1m(tmp_path / "ml-1m"))
    assert ml.name == "ml-1m"
    assert [str(t) for t in ml.ratings.dtypes] == ["int64", "int64", "float64", "int64"]
    assert ml.ratings.values.tolist() == [
        [1, 1, 5, 978300760],
        [1, 5, 3, 978302109],
        [2, 2, 4, 978301968],
    ]
    assert ml.genres == datasets.ML1M_GENRES and len(ml.genres) == 18
    assert list(ml.items.columns) == ["item_id", "title", *datasets.ML1M_GENRES]
    assert ml.items["item_id"].tolist() == [1, 2, 5]  # ids as published, with gaps
    titles = ml.items["title"].tolist()
    assert titles[1] == "Café au Lait (1993)"
    assert titles[2] == "Star Wars: Episode IV - A New Hope (1977)"  # one ':' is not a separator
    row = dict(zip(ml.genres, ml.genre_matrix([1])[0]))
    assert {g for g, v in row.items() if v} == {"Animation", "Children's", "Comedy"}
    assert ml.genre_matrix([5, 2]).sum(axis=1).tolist() == [2, 2]
    assert (ml.n_users, ml.n_items) == (2, 3)


def test_detects_variant_from_folder_parent_or_file(tmp_path):
    make_100k(tmp_path / "a" / "ml-100k")
    make_1m(tmp_path / "b" / "ml-1m")
    assert load_movielens(tmp_path / "a").name == "ml-100k"  # parent holding ml-100k/
    assert load_movielens(str(tmp_path / "b")).name == "ml-1m"
    assert load_movielens(tmp_path / "a" / "ml-100k" / "u.data").name == "ml-100k"
    assert load_movielens(tmp_path / "b" / "ml-1m", variant="ml-1m").name == "ml-1m"
    # a folder named anything works: detection looks at the files
    make_1m(tmp_path / "elsewhere")
    assert load_movielens(tmp_path / "elsewhere").name == "ml-1m"


def test_parent_with_both_variants_needs_variant(tmp_path):
    make_100k(tmp_path / "ml-100k")
    make_1m(tmp_path / "ml-1m")
    with pytest.raises(ValidationError, match="variant="):
        load_movielens(tmp_path)
    assert load_movielens(tmp_path, variant="ml-1m").name == "ml-1m"
    assert load_movielens(tmp_path, variant="ml-100k").name == "ml-100k"


def test_crlf_line_ends_and_blank_lines(tmp_path):
    folder = make_100k(
        tmp_path,
        data=DATA_100K.replace("\n", "\r\n") + "\r\n",
        item=ITEM_100K.replace("\n", "\r\n"),
    )
    ml = load_movielens(folder)
    assert len(ml.ratings) == 4
    assert ml.items["title"].tolist()[0] == "Toy Story (1995)"


def test_missing_u_genre_uses_the_published_names(tmp_path):
    flags = "|".join(["0"] * 18 + ["1"])  # Western
    item = f"1|A||||{flags}\n2|B||||{flags}\n3|C||||{flags}\n"
    ml = load_movielens(make_100k(tmp_path, item=item, genre=None))
    assert ml.genres == datasets.ML100K_GENRES and len(ml.genres) == 19
    assert ml.genre_matrix([1]).tolist() == [[0] * 18 + [1]]


def test_titles_that_look_like_missing_values_stay_strings(tmp_path):
    item = "1|NA|||x|0|0|1\n2|None||||0|1|0\n3|nan||||1|0|0\n"
    ml = load_movielens(make_100k(tmp_path, item=item))
    assert ml.items["title"].tolist() == ["NA", "None", "nan"]


def test_result_is_frozen(tmp_path):
    ml = load_movielens(make_100k(tmp_path))
    with pytest.raises(dataclasses.FrozenInstanceError):
        ml.name = "other"  # type: ignore[misc]


# --------------------------------------------------------------------------- malformed files


def _assert_dataset_error(excinfo, file: str, line: int | None):
    err = excinfo.value
    assert isinstance(err, DatasetError) and isinstance(err, ValidationError)
    assert isinstance(err, ValueError)
    assert file in str(err)
    if line is not None:
        assert f"line {line}:" in str(err), str(err)


@pytest.mark.parametrize(
    ("bad_line", "needle"),
    [
        ("2\t2\t3\t881250953\t7", "expected 4 fields"),  # too many fields
        ("2\t2\t3", "expected 4 fields"),  # too few
        ("2 2 3 881250953", "expected 4 fields"),  # spaces, not tabs
        ("2\t2\t6\t881250953", "rating '6' is outside 1..5"),
        ("2\t2\t0\t881250953", "outside 1..5"),
        ("2\t2\tfive\t881250953", "rating 'five' is not a number"),
        ("2\t2\tnan\t881250953", "outside 1..5"),
        ("abc\t2\t3\t881250953", "user id 'abc' is not an integer"),
        ("2\t1.5\t3\t881250953", "item id '1.5' is not an integer"),
        ("2\t-4\t3\t881250953", "item id -4 is not a positive integer"),
        ("0\t2\t3\t881250953", "user id 0 is not a positive integer"),
        ("2\t2\t3\tyesterday", "timestamp 'yesterday' is not an integer"),
        ("2\t2\t3\t99999999999999999999", "does not fit in 64 bits"),
    ],
)
def test_malformed_u_data_names_file_and_line(tmp_path, bad_line, needle):
    lines = DATA_100K.splitlines()
    lines.insert(2, bad_line)
    folder = make_100k(tmp_path, data="\n".join(lines) + "\n")
    with pytest.raises(DatasetError) as excinfo:
        load_movielens(folder)
    _assert_dataset_error(excinfo, "u.data", 3)
    assert needle in str(excinfo.value)


def test_line_numbers_count_blank_lines(tmp_path):
    folder = make_100k(tmp_path, data="1\t1\t5\t1\n\n\n1\t2\t9\t1\n")
    with pytest.raises(DatasetError) as excinfo:
        load_movielens(folder)
    _assert_dataset_error(excinfo, "u.data", 4)


@pytest.mark.parametrize(
    ("bad_line", "needle"),
    [
        ("4|Extra (1995)|||x|0|0|1|1", "expected 8 fields"),
        ("4|Short (1995)|||x|0|1", "expected 8 fields"),
        ("4|Flag (1995)|||x|0|2|0", "genre flag 'Action' is '2', not 0 or 1"),
        ("4|Flag (1995)|||x|0|y|0", "genre flag 'Action' is 'y'"),
        ("four|Id (1995)|||x|0|0|0", "item id 'four' is not an integer"),
        ("1|Twice (1995)|||x|0|0|0", "item id 1 appears twice"),
    ],
)
def test_malformed_u_item(tmp_path, bad_line, needle):
    folder = make_100k(tmp_path, item=ITEM_100K + bad_line + "\n")
    with pytest.raises(DatasetError) as excinfo:
        load_movielens(folder)
    _assert_dataset_error(excinfo, "u.item", 4)
    assert needle in str(excinfo.value)


@pytest.mark.parametrize(
    ("genre", "needle"),
    [
        ("unknown|0\nAction\n", "line 2: expected 'name|index'"),
        ("unknown|0\nAction|x\n", "line 2: expected 'name|index'"),
        ("unknown|0\nAction|0\n", "line 2: repeated or reserved genre"),
        ("unknown|0\nAction|2\n", "indices must be 0, 1, ..., G-1"),
        ("title|0\n", "reserved"),
    ],
)
def test_malformed_u_genre(tmp_path, genre, needle):
    with pytest.raises(DatasetError, match=r"u\.genre") as excinfo:
        load_movielens(make_100k(tmp_path, genre=genre))
    assert needle in str(excinfo.value)


def test_u_genre_and_u_item_disagree_on_the_number_of_genres(tmp_path):
    folder = make_100k(tmp_path, genre="unknown|0\nAction|1\n")
    with pytest.raises(DatasetError) as excinfo:
        load_movielens(folder)
    _assert_dataset_error(excinfo, "u.item", 1)
    assert "expected 7 fields" in str(excinfo.value)


@pytest.mark.parametrize(
    ("ratings", "movies", "file", "line", "needle"),
    [
        ("1::1::5::1\n2::2::4\n", MOVIES_1M, "ratings.dat", 2, "expected 4 fields"),
        ("1::1::5::1\n1::2::4::1::9\n", MOVIES_1M, "ratings.dat", 2, "expected 4 fields"),
        ("1::1::5::1\n1::2::7::1\n", MOVIES_1M, "ratings.dat", 2, "outside 1..5"),
        ("1::1::5::1\nx::2::4::1\n", MOVIES_1M, "ratings.dat", 2, "user id 'x'"),
        ("1\t1\t5\t1\n", MOVIES_1M, "ratings.dat", 1, "expected 4 fields"),  # 100k format
        (RATINGS_1M, MOVIES_1M + "7::Odd::Horror|Cartoon\n", "movies.dat", 4, "'Cartoon'"),
        (RATINGS_1M, MOVIES_1M + "7::No genres\n", "movies.dat", 4, "expected 3 fields"),
        (RATINGS_1M, MOVIES_1M + "seven::T::Drama\n", "movies.dat", 4, "not an integer"),
        (RATINGS_1M, MOVIES_1M + "2::Again::Drama\n", "movies.dat", 4, "appears twice"),
    ],
)
def test_malformed_1m(tmp_path, ratings, movies, file, line, needle):
    folder = make_1m(tmp_path, ratings=ratings, movies=movies)
    with pytest.raises(DatasetError) as excinfo:
        load_movielens(folder)
    _assert_dataset_error(excinfo, file, line)
    assert needle in str(excinfo.value)


def test_ratings_of_unknown_items(tmp_path):
    folder = make_100k(tmp_path, data=DATA_100K + "4\t99\t3\t881250960\n4\t98\t2\t881250961\n")
    with pytest.raises(DatasetError) as excinfo:
        load_movielens(folder)
    _assert_dataset_error(excinfo, "u.data", 5)
    msg = str(excinfo.value)
    assert "line 5: item id 99 is not in u.item" in msg
    assert "2 rating(s) in all refer to 2 item id(s) missing from" in msg and "98, 99" in msg

    folder = make_1m(tmp_path / "1m", ratings=RATINGS_1M + "3::4::2::978301999\n")
    with pytest.raises(
        DatasetError, match=r"ratings\.dat, line 4: item id 4 is not in movies\.dat.*: 4$"
    ):
        load_movielens(folder)


@pytest.mark.parametrize("which", ["u.data", "u.item"])
def test_empty_file(tmp_path, which):
    folder = make_100k(tmp_path, **{"data" if which == "u.data" else "item": "\n"})
    with pytest.raises(DatasetError, match=rf"{which} is empty"):
        load_movielens(folder)


# --------------------------------------------------------------------------- encodings


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-32"])
def test_utf16_files_are_rejected(tmp_path, codec):
    folder = make_100k(tmp_path, item=ITEM_100K.encode(codec))
    with pytest.raises(DatasetError, match=r"u.item: not a Latin-1 text file .*UTF-16"):
        load_movielens(folder)
    folder = make_100k(tmp_path / "d", data=DATA_100K.encode(codec))
    with pytest.raises(DatasetError, match=r"u\.data: not a Latin-1"):
        load_movielens(folder)


def test_utf8_titles_are_rejected_not_garbled(tmp_path):
    folder = make_100k(tmp_path, item=ITEM_100K.encode("utf-8"))
    with pytest.raises(DatasetError) as excinfo:
        load_movielens(folder)
    _assert_dataset_error(excinfo, "u.item", 2)
    assert "UTF-8" in str(excinfo.value) and "Latin-1" in str(excinfo.value)
    folder = make_1m(tmp_path / "1m", movies=b"\xef\xbb\xbf" + MOVIES_1M.encode("utf-8"))
    with pytest.raises(DatasetError, match=r"movies\.dat.*UTF-8"):
        load_movielens(folder)


def test_control_bytes_are_rejected_with_their_line(tmp_path):
    folder = make_100k(tmp_path, data=DATA_100K.encode() + b"5\t1\t\x1a3\t1\n")
    with pytest.raises(DatasetError) as excinfo:
        load_movielens(folder)
    _assert_dataset_error(excinfo, "u.data", 5)
    assert "0x1a" in str(excinfo.value)


def test_latin1_accents_decode_in_both_formats(tmp_path):
    accented = "1|Á köldum klaka (Cold Fever) (1994)||||0|0|1\n2|Cérémonie, La (1995)||||0|0|1\n"
    ml = load_movielens(make_100k(tmp_path, data="1\t1\t5\t1\n", item=accented))
    assert ml.items["title"].tolist() == [
        "Á köldum klaka (Cold Fever) (1994)",
        "Cérémonie, La (1995)",
    ]
    assert "Café" in load_movielens(make_1m(tmp_path / "1m")).items["title"].iloc[1]


# --------------------------------------------------------------------------- missing files


@pytest.mark.parametrize("missing", ["u.data", "u.item"])
def test_missing_100k_file(tmp_path, missing):
    folder = make_100k(tmp_path, **{"data" if missing == "u.data" else "item": None})
    with pytest.raises(DatasetNotFoundError) as excinfo:
        load_movielens(folder)
    assert isinstance(excinfo.value, FileNotFoundError)
    msg = str(excinfo.value)
    assert missing in msg and "download=True" in msg and "path=" in msg


def test_missing_1m_file_and_wrong_variant(tmp_path):
    folder = make_1m(tmp_path, movies=None)
    with pytest.raises(DatasetNotFoundError, match=r"movies\.dat not found"):
        load_movielens(folder)
    with pytest.raises(DatasetNotFoundError, match=r"u\.data not found"):
        load_movielens(make_1m(tmp_path / "1m"), variant="ml-100k")


def test_missing_or_empty_folder(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"does not exist.*path="):
        load_movielens(tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetNotFoundError, match=r"no MovieLens files .*download=True"):
        load_movielens(tmp_path / "empty")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(DatasetNotFoundError, match="is a file"):
        load_movielens(tmp_path / "notes.txt")


# --------------------------------------------------------------------------- arguments


def test_invalid_arguments(tmp_path):
    folder = make_100k(tmp_path)
    with pytest.raises(ValidationError, match="variant"):
        load_movielens(folder, variant="100k")
    with pytest.raises(ValidationError, match="not both"):
        load_movielens(folder, download=True)
    with pytest.raises(ValidationError, match="cache_dir"):
        load_movielens(folder, cache_dir=tmp_path)
    with pytest.raises(ValidationError, match="download must be a bool"):
        load_movielens(download="yes", cache_dir=tmp_path)


def test_genre_matrix_validation(tmp_path):
    ml = load_movielens(make_100k(tmp_path))
    with pytest.raises(ValidationError, match=r"1 id\(s\) not in the ml-100k items: 42"):
        ml.genre_matrix([1, 42])
    with pytest.raises(ValidationError, match="1-D"):
        ml.genre_matrix([[1, 2]])
    with pytest.raises(ValidationError, match="integers"):
        ml.genre_matrix(["1"])
    with pytest.raises(ValidationError, match="integers"):
        ml.genre_matrix([1.5])
    assert ml.genre_matrix(np.array([2.0])).tolist() == [[0, 1, 1]]
    assert ml.genre_matrix([]).shape == (0, 3)
    out = ml.genre_matrix([1])
    out[0, 0] = 7  # a copy: the dataset is unchanged
    assert ml.genre_matrix([1])[0, 0] == 0


# --------------------------------------------------------------------------- download


def _zip_of(
    folder: Path, prefix: str, extra: dict[str, bytes] | None = None, deflate=True
) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED) as zf:
        zf.writestr(f"{prefix}/", b"")
        for file in sorted(folder.iterdir()):
            zf.writestr(f"{prefix}/{file.name}", file.read_bytes())
        for name, content in (extra or {}).items():
            zf.writestr(name, content)
    return buf.getvalue()


class FakeOpener:
    """Serves ``payload`` for any URL (or raises ``error``) and records the calls."""

    def __init__(self, payload: bytes = b"", error: Exception | None = None):
        self.payload, self.error, self.calls = payload, error, []

    def __call__(self, url, timeout=None):
        self.calls.append(url)
        if self.error is not None:
            raise self.error
        return io.BytesIO(self.payload)


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def archive_100k(tmp_path) -> bytes:
    return _zip_of(make_100k(tmp_path / "src"), "ml-100k")


@pytest.fixture
def fixture_checksums(monkeypatch, archive_100k):
    """Point the checksum constants at the fixture archive and its files."""
    monkeypatch.setitem(datasets.ARCHIVE_SHA256, "ml-100k", _sha(archive_100k))
    monkeypatch.setitem(
        datasets.FILE_SHA256,
        "ml-100k",
        {"u.data": _sha(DATA_100K.encode()), "u.item": _sha(ITEM_100K.encode("latin-1"))},
    )


def test_download_verifies_extracts_and_caches(tmp_path, monkeypatch, archive_100k,
                                                 fixture_checksums):  # fmt: skip
    opener = FakeOpener(archive_100k)
    monkeypatch.setattr(datasets, "_urlopen", opener)
    cache = tmp_path / "cache"
    ml = load_movielens(download=True, cache_dir=cache)
    assert opener.calls == [datasets.ARCHIVE_URLS["ml-100k"]]
    assert ml.name == "ml-100k" and len(ml.ratings) == 4
    assert sorted(p.name for p in cache.iterdir()) == ["ml-100k"]  # no temporary leftovers
    assert (cache / "ml-100k" / "u.data").read_text() == DATA_100K
    again = load_movielens(download=True, cache_dir=cache)  # cached: no second download
    assert len(opener.calls) == 1 and again.items.equals(ml.items)
    assert load_movielens(cache_dir=cache, variant="ml-100k").name == "ml-100k"
    monkeypatch.setenv("MIXEDTS_DATA", str(cache))  # the default cache folder
    assert load_movielens().name == "ml-100k" and len(opener.calls) == 1


def test_download_into_mixedts_data(tmp_path, monkeypatch, archive_100k, fixture_checksums):
    monkeypatch.setattr(datasets, "_urlopen", FakeOpener(archive_100k))
    monkeypatch.setenv("MIXEDTS_DATA", str(tmp_path / "env-cache"))
    assert load_movielens(download=True).name == "ml-100k"
    assert (tmp_path / "env-cache" / "ml-100k" / "u.item").is_file()


def test_bad_archive_checksum_leaves_nothing(tmp_path, monkeypatch, archive_100k):
    # the real constant cannot match the fixture archive
    monkeypatch.setattr(datasets, "_urlopen", FakeOpener(archive_100k))
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError, match="SHA-256 mismatch"):
        load_movielens(download=True, cache_dir=cache)
    assert list(cache.iterdir()) == []
    with pytest.raises(DatasetNotFoundError, match="download=True"):
        load_movielens(cache_dir=cache)


def test_bad_file_checksum_leaves_nothing(tmp_path, monkeypatch, archive_100k, fixture_checksums):
    monkeypatch.setitem(datasets.FILE_SHA256, "ml-100k", {"u.data": "0" * 64})
    monkeypatch.setattr(datasets, "_urlopen", FakeOpener(archive_100k))
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError, match=r"extracted u\.data has SHA-256"):
        load_movielens(download=True, cache_dir=cache)
    assert list(cache.iterdir()) == []


@pytest.mark.parametrize("member", ["../evil.txt", "/tmp/evil.txt", "ml-100k/../../evil.txt",
                                    "C:/evil.txt", "ml-100k\\..\\..\\evil.txt"])  # fmt: skip
def test_unsafe_archive_members_are_rejected(tmp_path, monkeypatch, member):
    payload = _zip_of(make_100k(tmp_path / "src"), "ml-100k", {member: b"owned"})
    monkeypatch.setitem(datasets.ARCHIVE_SHA256, "ml-100k", _sha(payload))
    monkeypatch.setattr(datasets, "_urlopen", FakeOpener(payload))
    cache = tmp_path / "deep" / "cache"
    with pytest.raises(DatasetError, match="unsafe member"):
        load_movielens(download=True, cache_dir=cache)
    assert list(cache.iterdir()) == []
    assert not list(tmp_path.rglob("evil.txt"))


def test_symlink_members_are_rejected(tmp_path, monkeypatch):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        info = zipfile.ZipInfo("ml-100k/u.data")
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/passwd")
    payload = buf.getvalue()
    monkeypatch.setitem(datasets.ARCHIVE_SHA256, "ml-100k", _sha(payload))
    monkeypatch.setattr(datasets, "_urlopen", FakeOpener(payload))
    with pytest.raises(DatasetError, match="symbolic link"):
        load_movielens(download=True, cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


@pytest.mark.parametrize(
    ("payload", "needle"),
    [(b"<html>not a zip</html>", "not a valid zip"), (None, "holds no ml-100k/ folder")],
)
def test_archive_that_is_not_movielens(tmp_path, monkeypatch, payload, needle):
    if payload is None:  # a valid zip with the files in the wrong folder
        payload = _zip_of(make_100k(tmp_path / "src"), "other")
    monkeypatch.setitem(datasets.ARCHIVE_SHA256, "ml-100k", None)  # no checksum: still checked
    monkeypatch.setattr(datasets, "_urlopen", FakeOpener(payload))
    with pytest.raises(DatasetError, match=needle):
        load_movielens(download=True, cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache").iterdir()) == []


def test_offline_download_says_to_pass_path(tmp_path, monkeypatch):
    error = urllib.error.URLError(OSError("[Errno -3] Temporary failure in name resolution"))
    opener = FakeOpener(error=error)
    monkeypatch.setattr(datasets, "_urlopen", opener)
    with pytest.raises(DatasetDownloadError) as excinfo:
        load_movielens(download=True, cache_dir=tmp_path / "cache", variant="ml-1m")
    assert isinstance(excinfo.value, OSError)
    msg = str(excinfo.value)
    assert "ml-1m.zip" in msg and "offline" in msg and "path=" in msg
    assert "name resolution" in msg
    assert isinstance(excinfo.value.__cause__, urllib.error.URLError)
    assert list((tmp_path / "cache").iterdir()) == []


def test_http_error_and_timeout(tmp_path, monkeypatch):
    url = datasets.ARCHIVE_URLS["ml-100k"]
    error = urllib.error.HTTPError(url, 404, "Not Found", {}, None)
    monkeypatch.setattr(datasets, "_urlopen", FakeOpener(error=error))
    with pytest.raises(DatasetDownloadError, match=r"HTTP 404.*path="):
        load_movielens(download=True, cache_dir=tmp_path / "cache")
    monkeypatch.setattr(datasets, "_urlopen", FakeOpener(error=TimeoutError("timed out")))
    with pytest.raises(DatasetDownloadError, match="timed out"):
        load_movielens(download=True, cache_dir=tmp_path / "cache")


def test_no_cache_and_no_download(tmp_path, monkeypatch):
    opener = FakeOpener(error=AssertionError("no network access expected"))
    monkeypatch.setattr(datasets, "_urlopen", opener)
    with pytest.raises(DatasetNotFoundError) as excinfo:
        load_movielens(cache_dir=tmp_path / "cache")
    assert "path=" in str(excinfo.value) and "download=True" in str(excinfo.value)
    assert opener.calls == []


def test_incomplete_cache_folder_is_reported_not_overwritten(tmp_path, monkeypatch):
    opener = FakeOpener(error=AssertionError("no network access expected"))
    monkeypatch.setattr(datasets, "_urlopen", opener)
    make_100k(tmp_path / "cache" / "ml-100k", item=None)
    with pytest.raises(DatasetNotFoundError, match=r"exists but does not hold u\.data and u\.item"):
        load_movielens(download=True, cache_dir=tmp_path / "cache")
    assert opener.calls == [] and (tmp_path / "cache" / "ml-100k" / "u.data").is_file()


def test_download_1m(tmp_path, monkeypatch):
    payload = _zip_of(make_1m(tmp_path / "src"), "ml-1m")
    monkeypatch.setitem(datasets.ARCHIVE_SHA256, "ml-1m", _sha(payload))
    opener = FakeOpener(payload)
    monkeypatch.setattr(datasets, "_urlopen", opener)
    ml = load_movielens(download=True, variant="ml-1m", cache_dir=tmp_path / "cache")
    assert ml.name == "ml-1m" and opener.calls == [datasets.ARCHIVE_URLS["ml-1m"]]
    assert load_movielens(cache_dir=tmp_path / "cache").name == "ml-1m"  # found in the cache


def test_checksum_constants_are_well_formed():
    for table in (datasets.ARCHIVE_SHA256, *datasets.FILE_SHA256.values()):
        for digest in table.values():
            assert digest is None or (len(digest) == 64 and int(digest, 16) >= 0)
    assert set(datasets.ARCHIVE_URLS) == set(datasets.ARCHIVE_SHA256) == set(datasets.VARIANTS)
    assert all(u.startswith("https://files.grouplens.org/") for u in datasets.ARCHIVE_URLS.values())


# --------------------------------------------------------------------------- the real release


@pytest.fixture(scope="module")
def real_100k() -> Path:
    if not (REAL_100K / "u.data").is_file():
        pytest.skip(f"MovieLens 100K not available at {REAL_100K}")
    return REAL_100K


def test_real_ml100k(real_100k):
    start = time.perf_counter()
    ml = load_movielens(real_100k)
    elapsed = time.perf_counter() - start
    assert ml.name == "ml-100k"
    assert len(ml.ratings) == 100_000
    assert ml.n_users == 943 and ml.n_items == 1682 and len(ml.genres) == 19
    assert ml.ratings["user_id"].between(1, 943).all()
    assert ml.ratings["item_id"].between(1, 1682).all()
    assert set(ml.ratings["rating"].unique()) == {1.0, 2.0, 3.0, 4.0, 5.0}
    assert ml.genres[:2] == ("unknown", "Action") and ml.genres[-1] == "Western"
    assert ml.items.shape == (1682, 21)
    titles = dict(zip(ml.items["item_id"], ml.items["title"]))
    assert titles[1] == "Toy Story (1995)"
    assert titles[1322] == "Metisse (Café au Lait) (1993)"
    assert titles[1633] == "Á köldum klaka (Cold Fever) (1994)"
    G = ml.genre_matrix(ml.items["item_id"].to_numpy())
    assert G.shape == (1682, 19) and set(np.unique(G)) <= {0, 1}
    assert G[0].nonzero()[0].tolist() == [3, 4, 5]  # Toy Story: Animation, Children's, Comedy
    assert elapsed < 2.0, f"loading took {elapsed:.2f} s"  # about 0.1 s warm


def test_real_ml100k_matches_the_checksum_constants(real_100k):
    for name, want in datasets.FILE_SHA256["ml-100k"].items():
        assert hashlib.sha256((real_100k / name).read_bytes()).hexdigest() == want


def test_download_path_with_the_real_files(tmp_path, monkeypatch, real_100k):
    """The extracted-file checksums (unpatched) accept the real u.data and u.item."""
    payload = _zip_of(real_100k, "ml-100k", deflate=False)  # in memory, never in the repo
    monkeypatch.setitem(datasets.ARCHIVE_SHA256, "ml-100k", _sha(payload))
    monkeypatch.setattr(datasets, "_urlopen", FakeOpener(payload))
    ml = load_movielens(download=True, cache_dir=tmp_path / "cache")
    assert len(ml.ratings) == 100_000 and ml.n_items == 1682
