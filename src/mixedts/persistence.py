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

from ._validation import ValidationError

FORMAT = "mixedts-policy"
VERSION = 1


class CorruptFileError(ValidationError):
    """A saved policy file is truncated, altered, or not a mixedts file."""


def _digest(arr: np.ndarray) -> str:
    h = hashlib.sha256()
    h.update(str(arr.dtype).encode())
    h.update(str(arr.shape).encode())
    h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def _rng_state(rng: np.random.Generator) -> dict[str, Any]:
    return rng.bit_generator.state


def _rng_from_state(state: dict[str, Any]) -> np.random.Generator:
    name = state["bit_generator"]
    bitgen_cls = getattr(np.random, name, None)
    if bitgen_cls is None:
        raise CorruptFileError(f"unknown bit generator {name!r} in saved file")
    bitgen = bitgen_cls()
    bitgen.state = state
    return np.random.Generator(bitgen)


def save_policy(policy, path) -> None:
    """Write ``policy`` to ``path`` atomically (a temporary file renamed into place)."""
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
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as fh:
        np.savez(fh, __meta__=np.array(json.dumps(meta)), **arrays)
    os.replace(tmp, path)


def load(path):
    """Load a policy saved with ``policy.save(path)``; it continues exactly where it stopped.

    Raises
    ------
    CorruptFileError
        The file is missing parts, truncated, altered or not a mixedts policy.
    FileNotFoundError
        No file at ``path``.
    """
    from .algorithms import MODEL_CLASSES, POLICY_CLASSES, ContextualBandit
    from .policies import rule_from_config

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no saved policy at {path}")
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError) as exc:
        raise CorruptFileError(f"{path} is not a readable mixedts policy file: {exc}") from None
    if "__meta__" not in data:
        raise CorruptFileError(f"{path} has no mixedts metadata")
    try:
        meta = json.loads(str(data.pop("__meta__")))
    except json.JSONDecodeError as exc:
        raise CorruptFileError(f"{path} has unreadable metadata: {exc}") from None
    if meta.get("format") != FORMAT:
        raise CorruptFileError(f"{path} is not a mixedts policy file")
    if meta.get("version") != VERSION:
        raise CorruptFileError(
            f"{path} has format version {meta.get('version')}, expected {VERSION}"
        )
    digests = meta.get("digests", {})
    if set(digests) != set(data):
        raise CorruptFileError(f"{path} is missing or has extra arrays")
    for k, v in data.items():
        if _digest(v) != digests[k]:
            raise CorruptFileError(f"{path}: array {k!r} does not match its checksum (altered?)")
    try:
        policy_cls = POLICY_CLASSES[meta["policy"]]
        model_cls = MODEL_CLASSES[meta["model"]]
        model_arrays = {k[len("model.") :]: v for k, v in data.items() if k.startswith("model.")}
        model = model_cls.from_state(meta["model_config"], model_arrays)
        policy = ContextualBandit.__new__(policy_cls)
        ContextualBandit.__init__(
            policy, model, rule_from_config(meta["rule"]), _rng_from_state(meta["rng"])
        )
        policy.active = data["policy.active"].astype(bool).copy()
    except (KeyError, TypeError, ValueError) as exc:
        raise CorruptFileError(f"{path} could not be rebuilt: {exc}") from None
    return policy
