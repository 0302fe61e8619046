"""Request and response bodies (pydantic): what the OpenAPI schema at ``/docs`` shows.

A bad field is answered 422 with the field's name in ``detail[*].loc`` and a message that
names the first bad entry (``context[3] must be a finite number, got nan``).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

EVENT_ID = Field(None, min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$",
                 description="Your id for the event (letters, digits, . _ : -); a UUID when "
                             "omitted.")
CONTEXT_SCHEMA = {
    "description": "The context: d numbers shared by every action, or K rows of d numbers "
                   "(one per action).",
    "anyOf": [{"type": "array", "items": {"type": "number"}},
              {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}],
}


def _finite_array(value: Any, name: str, ndims: tuple[int, ...]) -> np.ndarray:
    if not isinstance(value, list):
        raise ValueError(f"{name} must be an array of numbers")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        arr = None
    if arr is None or arr.dtype.kind != "f" or any(isinstance(v, (bool, str)) for v in value):
        raise ValueError(f"{name} must be an array of numbers, or of rows of numbers of equal "
                         "length")
    if arr.ndim not in ndims:
        raise ValueError(f"{name} must have {' or '.join(map(str, ndims))} dimension(s), got "
                         f"{arr.ndim}")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = np.unravel_index(int(np.argmax(bad)), arr.shape)
        where = "".join(f"[{j}]" for j in i)
        raise ValueError(f"{name}{where} must be a finite number, got {arr[i]}")
    return arr


class RankRequest(BaseModel):
    """``POST /rank``."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    context: Any = Field(None, json_schema_extra=CONTEXT_SCHEMA)
    eligible: list[int] | None = Field(
        None, min_length=1, description="Only these action ids may be chosen.")
    event_id: str | None = EVENT_ID
    ranking: int = Field(0, ge=0, le=1000, description="Also return this many eligible "
                         "actions in score order (the chosen one first).")

    @field_validator("context", mode="before")
    @classmethod
    def _context(cls, value: Any) -> Any:
        return None if value is None else _finite_array(value, "context", (1, 2))


class RankResponse(BaseModel):
    event_id: str
    action: int
    probability: float = Field(description="The propensity of the chosen action.")
    ranking: list[int] | None = None
    model_version: int


class RewardRequest(BaseModel):
    """``POST /reward``."""

    model_config = ConfigDict(extra="forbid")

    event_id: str = Field(min_length=1, max_length=128)
    reward: float

    @field_validator("reward")
    @classmethod
    def _reward(cls, value: float) -> float:
        if not math.isfinite(value):
            raise ValueError(f"reward must be a finite number, got {value}")
        return value


class RewardResponse(BaseModel):
    event_id: str
    status: Literal["learned", "queued", "duplicate"] = Field(
        description="learned: applied to the posterior; queued: stored by a ranker, the "
                    "learner applies it; duplicate: the same reward came before.")
    model_version: int


class AddActionRequest(BaseModel):
    """``POST /actions``: the arguments of the policy's ``add_action`` (e.g. ``mixing_row``
    for meTS, ``prior_mean`` and ``prior_cov`` for LinTS)."""

    model_config = ConfigDict(extra="forbid")

    params: dict[str, float | list[float] | list[list[float]]] = Field(default_factory=dict)


class ActionResponse(BaseModel):
    action: int
    status: Literal["added", "retired", "already retired"]
    n_actions: int
    model_version: int


class Health(BaseModel):
    status: Literal["ok"]
    role: str
    model_version: int
