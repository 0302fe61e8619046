"""save → load → continue, corrupt files, and loading never unpickles."""

from __future__ import annotations

import io
import json
import pickle
import zipfile

import numpy as np
import pytest

import mixedts
from builders import POLICY_NAMES, assert_same_state, build, play, snapshot
from mixedts import CorruptFileError


def _rounds(policy, rng, n, per_action):
    """Pre-drawn contexts and rewards so that two policies see exactly the same stream."""
    K, d = policy.n_actions, policy.dim
    X = rng.uniform(-1, 1, (n, K, d) if per_action else (n, d))
    return X, rng.normal(size=n)


def _continue(policy, X, Y):
    actions = []
    for x, y in zip(X, Y):
        a = policy.select(x)
        policy.update(x, a, float(y))
        actions.append(a)
    return np.array(actions)


CASES = [(name, name == "MeTS-per-action-cov") for name in POLICY_NAMES] + [("MeTS", True)]


@pytest.mark.parametrize("name,per_action", CASES)
def test_loaded_policy_continues_exactly(name, per_action, tmp_path):
    policy = build(name, seed=5, refactor_every=300)  # refactors happen after the reload too
    play(policy, np.random.default_rng(1), 40, per_action)
    policy.update_batch(np.full((3, policy.dim), 0.25), np.array([0, 1, 1]), np.ones(3))
    path = tmp_path / "policy.npz"
    policy.save(path)
    loaded = mixedts.load(path)
    assert type(loaded) is type(policy)
    assert_same_state(snapshot(policy), snapshot(loaded))
    X, Y = _rounds(policy, np.random.default_rng(2), 1000, per_action)
    a1 = _continue(policy, X, Y)
    a2 = _continue(loaded, X, Y)
    np.testing.assert_array_equal(a1, a2)
    assert len(np.unique(a1)) > 1  # a real sequence, not a constant
    assert_same_state(snapshot(policy), snapshot(loaded))  # still bitwise the same


@pytest.mark.parametrize("name", ["MeTS-per-action-cov", "JointTS", "LinTS", "HierTS"])
def test_catalogue_changes_survive_a_reload(name, tmp_path):
    policy = build(name, seed=6)
    play(policy, np.random.default_rng(3), 30)
    d = policy.dim
    if name in ("MeTS-per-action-cov", "JointTS"):
        acov = None if policy.model.prior.shared_action_cov else 0.7 * np.eye(d)
        new = policy.add_action(np.linspace(-1, 1, policy.model.prior.n_effects), acov)
    elif name == "LinTS":
        new = policy.add_action(np.ones(d), 2 * np.eye(d))
    else:
        new = policy.add_action()
    policy.retire_action(0)
    policy.save(tmp_path / "p.npz")
    loaded = mixedts.load(tmp_path / "p.npz")
    assert loaded.n_actions == new + 1
    assert not loaded.active[0] and loaded.active[new]
    X, Y = _rounds(policy, np.random.default_rng(4), 300, False)
    a1, a2 = _continue(policy, X, Y), _continue(loaded, X, Y)
    np.testing.assert_array_equal(a1, a2)
    assert 0 not in a1


@pytest.mark.parametrize(
    "bitgen", [np.random.PCG64, np.random.PCG64DXSM, np.random.MT19937, np.random.Philox,
               np.random.SFC64]
)
def test_any_numpy_generator_survives_a_reload(bitgen, tmp_path):
    policy = build("MeTS", seed=1)
    policy.rng = np.random.Generator(bitgen(7))
    play(policy, np.random.default_rng(0), 5)
    policy.save(tmp_path / "p.npz")
    loaded = mixedts.load(tmp_path / "p.npz")
    X, Y = _rounds(policy, np.random.default_rng(4), 200, False)
    np.testing.assert_array_equal(_continue(policy, X, Y), _continue(loaded, X, Y))
    assert list(tmp_path.iterdir()) == [tmp_path / "p.npz"]  # no temporary file left over


def test_save_overwrites_atomically_and_leaves_no_temporary(tmp_path):
    policy = build("MeTS", seed=1)
    path = tmp_path / "p.npz"
    path.write_bytes(b"old")
    policy.save(path)
    assert list(tmp_path.iterdir()) == [path]
    assert_same_state(snapshot(policy), snapshot(mixedts.load(path)))


# ---------------------------------------------------------------------------- corrupt files
@pytest.fixture
def saved(tmp_path):
    policy = build("MeTS", seed=2)
    play(policy, np.random.default_rng(0), 25)
    path = tmp_path / "policy.npz"
    policy.save(path)
    return policy, path


def _members(path):
    with zipfile.ZipFile(path) as zf:
        return {name: zf.read(name) for name in zf.namelist()}


def _write_zip(path, members):
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def _npy_bytes(arr):
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=False)
    return buf.getvalue()


def _expect_corrupt(path, match):
    with pytest.raises(CorruptFileError, match=match) as info:
        mixedts.load(path)
    assert isinstance(info.value, ValueError)
    assert str(path) in str(info.value)


@pytest.mark.parametrize("fraction", [0.0, 0.001, 0.1, 0.5, 0.9, 0.999])
def test_truncated_file_is_rejected(saved, fraction):
    _, path = saved
    raw = path.read_bytes()
    path.write_bytes(raw[: int(len(raw) * fraction)])
    _expect_corrupt(path, "not a readable mixedts policy file")


def test_truncated_by_one_byte_is_rejected(saved):
    _, path = saved
    path.write_bytes(path.read_bytes()[:-1])
    _expect_corrupt(path, "not a readable mixedts policy file")


def _array_span(path, key):
    """(start, stop) byte offsets of the raw data of array ``key`` inside the saved file."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(key + ".npy")
        nbytes = np.load(io.BytesIO(zf.read(info))).nbytes
    assert info.compress_type == zipfile.ZIP_STORED
    raw = path.read_bytes()
    name_len = int.from_bytes(raw[info.header_offset + 26 : info.header_offset + 28], "little")
    extra_len = int.from_bytes(raw[info.header_offset + 28 : info.header_offset + 30], "little")
    stop = info.header_offset + 30 + name_len + extra_len + info.compress_size
    return stop - nbytes, stop  # the .npy member ends with the array's bytes


@pytest.mark.parametrize("key", ["model.effects.C", "model.store.S", "model.effects.h",
                                 "policy.active"])
def test_one_byte_altered_inside_an_array_is_rejected(saved, key):
    _, path = saved
    start, stop = _array_span(path, key)
    raw = bytearray(path.read_bytes())
    raw[(start + stop) // 2] ^= 0x01
    path.write_bytes(bytes(raw))
    # the zip's CRC-32 catches it first
    _expect_corrupt(path, "not a readable mixedts policy file")


def test_altered_array_with_valid_zip_checksums_is_rejected(saved):
    """Rewrite the zip with a changed array (valid CRCs): the SHA-256 digests catch it."""
    _, path = saved
    members = _members(path)
    arr = np.load(io.BytesIO(members["model.effects.C.npy"]))
    arr.reshape(-1)[3] = np.nextafter(arr.reshape(-1)[3], np.inf)  # one ulp
    members["model.effects.C.npy"] = _npy_bytes(arr)
    _write_zip(path, members)
    _expect_corrupt(path, "checksum")


def test_non_zip_files_are_rejected(tmp_path):
    path = tmp_path / "p.npz"
    for content in [b"", b"hello, not a zip file", bytes(range(256)) * 10, b"PK\x03\x04junk"]:
        path.write_bytes(content)
        _expect_corrupt(path, "not a readable mixedts policy file")


def test_a_plain_npy_file_is_rejected(tmp_path):
    path = tmp_path / "p.npz"
    with open(path, "wb") as fh:
        np.save(fh, np.arange(5.0))
    _expect_corrupt(path, "not a mixedts policy file")


def test_zip_missing_the_metadata_is_rejected(saved):
    _, path = saved
    members = _members(path)
    del members["__meta__.npy"]
    _write_zip(path, members)
    _expect_corrupt(path, "no mixedts metadata")


def test_zip_missing_an_array_is_rejected(saved):
    _, path = saved
    members = _members(path)
    del members["model.store.S.npy"]
    _write_zip(path, members)
    _expect_corrupt(path, "missing or has extra arrays")


def test_zip_with_an_extra_array_is_rejected(saved):
    _, path = saved
    members = _members(path)
    members["model.extra.npy"] = _npy_bytes(np.zeros(3))
    _write_zip(path, members)
    _expect_corrupt(path, "missing or has extra arrays")


@pytest.mark.parametrize(
    "meta, match",
    [
        ("not json {", "unreadable metadata"),
        ("3", "not a mixedts policy file"),
        ("[1, 2]", "not a mixedts policy file"),
        ('"a string"', "not a mixedts policy file"),
        ('{"format": "something-else"}', "not a mixedts policy file"),
        ('{"format": "mixedts-policy", "version": 99}', "format version"),
    ],
)
def test_bad_metadata_is_rejected(saved, meta, match):
    _, path = saved
    members = _members(path)
    members["__meta__.npy"] = _npy_bytes(np.array(meta))
    _write_zip(path, members)
    _expect_corrupt(path, match)


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m.pop("rng"),
        lambda m: m.__setitem__("rng", {"bit_generator": "NoSuchGenerator"}),
        lambda m: m.__setitem__("rng", "PCG64"),
        lambda m: m.__setitem__("policy", "NoSuchPolicy"),
        lambda m: m.__setitem__("model", "NoSuchModel"),
        lambda m: m["model_config"].pop("noise_std"),
        lambda m: m["model_config"].__setitem__("noise_std", -1.0),
        lambda m: m.__setitem__("rule", {"name": "no-such-rule"}),
        lambda m: m.__setitem__("rule", ["thompson"]),
        lambda m: m.__setitem__("model_config", None),
    ],
)
def test_inconsistent_metadata_is_rejected(saved, edit):
    """Metadata that parses but cannot rebuild a policy: CorruptFileError, never a crash."""
    _, path = saved
    members = _members(path)
    meta = json.loads(str(np.load(io.BytesIO(members["__meta__.npy"]))))
    edit(meta)
    members["__meta__.npy"] = _npy_bytes(np.array(json.dumps(meta)))
    _write_zip(path, members)
    with pytest.raises(CorruptFileError):
        mixedts.load(path)


def test_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        mixedts.load(tmp_path / "nothing.npz")


# ---------------------------------------------------------------------------- no pickle
class _Payload:
    """Unpickling this object creates ``marker`` (via ``open(marker, "w")``)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _pickle_bomb(path, marker):
    """An npz whose arrays include an object array that runs code when unpickled."""
    bomb = np.empty(1, dtype=object)
    bomb[0] = _Payload(marker)
    arrays = {"model.effects.C": bomb, "__meta__": np.array('{"format": "mixedts-policy"}')}
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)  # object arrays are pickled inside the .npy member


def test_the_pickle_bomb_is_real(tmp_path):
    """Control: with pickle allowed, reading the crafted file does run its payload."""
    marker = tmp_path / "executed"
    path = tmp_path / "bomb.npz"
    _pickle_bomb(path, marker)
    with np.load(path, allow_pickle=True) as npz:
        npz["model.effects.C"]
    assert marker.exists()


def test_load_refuses_object_arrays_without_executing_anything(tmp_path):
    marker = tmp_path / "executed"
    path = tmp_path / "bomb.npz"
    _pickle_bomb(path, marker)
    _expect_corrupt(path, "not a readable mixedts policy file")
    assert not marker.exists()


def test_load_refuses_a_pickle_file_without_executing_anything(tmp_path):
    marker = tmp_path / "executed"
    path = tmp_path / "bomb.npz"
    path.write_bytes(pickle.dumps(_Payload(marker)))
    _expect_corrupt(path, "not a readable mixedts policy file")
    assert not marker.exists()


def test_object_array_inside_a_valid_policy_file_is_refused(saved, tmp_path):
    """Swap one array of a genuine file for a pickled object array (with a matching entry)."""
    _, path = saved
    marker = tmp_path / "executed"
    members = _members(path)
    bomb = np.empty(1, dtype=object)
    bomb[0] = _Payload(marker)
    buf = io.BytesIO()
    np.save(buf, bomb, allow_pickle=True)
    members["model.store.S.npy"] = buf.getvalue()
    _write_zip(path, members)
    _expect_corrupt(path, "not a readable mixedts policy file")
    assert not marker.exists()


def test_load_works_with_pickle_disabled(saved, monkeypatch):
    policy, path = saved

    def refuse(*args, **kwargs):
        raise AssertionError("pickle must not be used")

    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "Unpickler", refuse)
    loaded = mixedts.load(path)
    assert_same_state(snapshot(policy), snapshot(loaded))
    loaded.save(path)  # saving does not pickle either
    assert_same_state(snapshot(policy), snapshot(mixedts.load(path)))


def test_save_refuses_object_arrays(tmp_path):
    policy = build("LinTS", seed=0)
    policy.model.prior_mean = policy.model.prior_mean.astype(object)
    with pytest.raises(TypeError, match="object"):
        policy.save(tmp_path / "p.npz")
    assert not any(tmp_path.iterdir())
