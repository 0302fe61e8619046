"""Save and load policies without pickle: one ``.npz`` (``allow_pickle=False``) with JSON metadata.

The metadata records the format version, the policy and model classes and their configuration,
the decision rule, the random generator's state, and a SHA-256 digest of every array, so that a
truncated or altered file is rejected with :class:`CorruptFileError` instead of being half-read.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ._validation import ValidationError, check_int, check_positive
from .models.base import MODELS
from .policies.registry import POLICIES
from .rules import rule_from_config

FORMAT = "mixedts-policy"
VERSION = 1


class CorruptFileError(ValidationError):
    """A saved policy file is truncated, altered, or not a mixedts file.

    A :class:`~mixedts.ValidationError`, hence a ``ValueError``; the message names the path.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from mixedts import CorruptFileError, load
    >>> path = Path(tempfile.mkdtemp()) / "policy.npz"
    >>> _ = path.write_bytes(b"not a policy")
    >>> try:
    ...     load(path)
    ... except CorruptFileError as exc:
    ...     print("not an .npz archive" in str(exc))
    True
    """


def _digest(arr: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(str(arr.dtype).encode())
    h.update(str(arr.shape).encode())
    h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def _jsonable(value: Any) -> Any:
    """Bit-generator states hold numpy arrays and integers (MT19937, Philox): make them JSON."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (np.ndarray, np.generic)):
        return value.tolist()
    return value


def _rng_state(rng: np.random.Generator) -> dict[str, Any]:
    return _jsonable(rng.bit_generator.state)


def _rng_from_state(state: dict[str, Any]) -> np.random.Generator:
    name = state["bit_generator"]
    bitgen_cls = getattr(np.random, str(name), None)
    if not (isinstance(bitgen_cls, type) and issubclass(bitgen_cls, np.random.BitGenerator)):
        raise CorruptFileError(f"unknown bit generator {name!r} in saved file")
    bitgen = bitgen_cls()
    bitgen.state = state  # the setters accept lists where the state holds arrays
    return np.random.Generator(bitgen)


def _meta_checksum(meta: dict[str, Any]) -> str:
    """SHA-256 of the metadata without its own checksum (detects edited configuration)."""
    body = {k: v for k, v in meta.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def save_policy(policy, path) -> None:
    """Write ``policy`` to ``path`` atomically (a temporary file renamed into place).

    ``policy.save(path)`` calls it. The file is an ``.npz`` archive: the model's arrays and
    one JSON metadata entry (the classes, the rule, the random state and checksums); no
    pickle.

    Parameters
    ----------
    policy : ContextualBandit or ContextFreeBandit
        A policy of a registered class.
    path : str or path-like

    Raises
    ------
    TypeError
        An array of the model's state would need pickle (dtype object), or its configuration
        is not JSON.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from mixedts import GaussianTS
    >>> path = Path(tempfile.mkdtemp()) / "policy.npz"
    >>> save_policy(GaussianTS(2, seed=0), path)
    >>> type(load(path)).__name__
    'GaussianTS'
    """
    model_cfg, model_arrays = policy.model.get_state()
    arrays = {f"model.{k}": np.asarray(v) for k, v in model_arrays.items()}
    arrays["policy.active"] = policy.active
    for k, v in arrays.items():
        if v.dtype == object:
            raise TypeError(f"array {k} has dtype object and cannot be saved without pickle")
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "policy": type(policy).__name__,
        "model": type(policy.model).__name__,
        "model_config": model_cfg,
        "rule": policy.rule.config(),
        "rng": _rng_state(policy.rng),
        "digests": {k: _digest(v) for k, v in arrays.items()},
    }
    meta["checksum"] = _meta_checksum(meta)
    meta_json = json.dumps(meta)  # fails (if it does) before any file is touched
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, __meta__=np.array(meta_json), **arrays)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load(path):
    """Load a policy saved with ``policy.save(path)``; it continues exactly where it stopped.

    Parameters
    ----------
    path : str or path-like
        The ``.npz`` file written by ``policy.save``.

    Returns
    -------
    ContextualBandit or ContextFreeBandit
        The policy, of its registered class, with its posterior, catalogue and random
        generator as they were when saved.

    Raises
    ------
    CorruptFileError
        The file is missing parts, truncated, altered or not a mixedts policy.
    FileNotFoundError
        No file at ``path``.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from mixedts import BernoulliTS, load
    >>> policy = BernoulliTS(3, seed=0)
    >>> policy.update_batch([0, 1, 1], [1, 0, 1])
    >>> path = Path(tempfile.mkdtemp()) / "policy.npz"
    >>> policy.save(path)
    >>> restored = load(path)
    >>> restored.select_batch(5).tolist() == policy.select_batch(5).tolist()
    True
    """
    from . import policies  # noqa: F401  (the built-in policies register on import)

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no saved policy at {path}")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic == b"\x93NUM":  # a bare .npy array
        raise CorruptFileError(f"path: {path} is not a mixedts policy file (a single array, "
                               "not .npz)")
    if magic != b"PK\x03\x04":  # every .npz is a zip archive; anything else is refused here
        raise CorruptFileError(
            f"path: {path} is not a readable mixedts policy file (not an .npz archive; it "
            f"starts with {magic!r})"
        )
    try:
        loaded = np.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise CorruptFileError(f"{path} is not a readable mixedts policy file: {exc}") from None
    if not isinstance(loaded, np.lib.npyio.NpzFile):  # a bare .npy array
        raise CorruptFileError(f"{path} is not a mixedts policy file (a single array, not .npz)")
    try:
        with loaded as npz:
            data = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise CorruptFileError(f"{path} is not a readable mixedts policy file: {exc}") from None
    if "__meta__" not in data:
        raise CorruptFileError(f"{path} has no mixedts metadata")
    try:
        meta = json.loads(str(data.pop("__meta__")))
    except json.JSONDecodeError as exc:
        raise CorruptFileError(f"{path} has unreadable metadata: {exc}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CorruptFileError(f"{path} is not a mixedts policy file")
    if meta.get("version") != VERSION:
        raise CorruptFileError(
            f"{path} has format version {meta.get('version')}, expected {VERSION}"
        )
    if meta.get("checksum") != _meta_checksum(meta):
        raise CorruptFileError(f"{path}: metadata does not match its checksum (altered?)")
    digests = meta.get("digests", {})
    if not isinstance(digests, dict) or set(digests) != set(data):
        raise CorruptFileError(f"{path} is missing or has extra arrays")
    for k, v in data.items():
        if _digest(v) != digests[k]:
            raise CorruptFileError(f"{path}: array {k!r} does not match its checksum (altered?)")
    try:
        policy_cls = POLICIES[meta["policy"]]
        model_cls = MODELS[meta["model"]]
        model_arrays = {k[len("model.") :]: v for k, v in data.items() if k.startswith("model.")}
        cfg = meta["model_config"]
        if "noise_std" in cfg:
            check_positive(cfg["noise_std"], "noise_std")
        if "refactor_every" in cfg:
            check_int(cfg["refactor_every"], "refactor_every")
        model = model_cls.from_state(cfg, model_arrays)
        policy = policy_cls._restore(model, rule_from_config(meta["rule"]),
                                     _rng_from_state(meta["rng"]),
                                     data["policy.active"].astype(bool).copy())
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        raise CorruptFileError(f"{path} could not be rebuilt: {exc!r}") from None
    return policy
