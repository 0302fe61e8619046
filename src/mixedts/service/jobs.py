"""The requests the engine runs in batches, the errors they end in, and a batch's plan."""

from __future__ import annotations

import dataclasses

import numpy as np


class ServiceError(Exception):
    """An answer other than 200: an HTTP status and a message that names the field."""

    def __init__(self, status: int, detail: str, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.field = field
        self.headers = headers or {}

    def body(self) -> dict:
        if self.status == 422 and self.field is not None:  # FastAPI's shape for bad fields
            return {"detail": [{"loc": ["body", *self.field.split(".")], "msg": self.detail,
                                "type": "value_error"}]}
        return {"detail": self.detail}


@dataclasses.dataclass
class Rank:
    x: np.ndarray | None
    eligible: list[int] | None = None
    event_id: str | None = None
    top: int = 0


@dataclasses.dataclass
class Reward:
    event_id: str
    reward: float


@dataclasses.dataclass
class AddAction:
    params: dict


@dataclasses.dataclass
class RetireAction:
    action: int


@dataclasses.dataclass
class Sequence:
    """Learner: number and apply the changes rankers stored."""


@dataclasses.dataclass
class Plan:
    """One batch, decided and validated, waiting for its commit."""

    jobs: list
    outcomes: list
    events: list = dataclasses.field(default_factory=list)  # per job: event rows
    changes: list = dataclasses.field(default_factory=list)  # per job: change rows
    sequence: list = dataclasses.field(default_factory=list)  # (change id, lsn)
    applies: list = dataclasses.field(default_factory=list)  # (job index, Change)
    new_events: dict = dataclasses.field(default_factory=dict)  # event id -> cached event
    rewarded: dict = dataclasses.field(default_factory=dict)  # event id -> reward
    adds: int = 0
    retires: set = dataclasses.field(default_factory=set)
    now: float = 0.0

    def rows(self):
        """All event rows and all change rows of the batch."""
        return ([r for rows in self.events for r in rows],
                [r for rows in self.changes for r in rows])

    def has_rows(self, i: int) -> bool:
        return bool(self.events[i] or self.changes[i])
