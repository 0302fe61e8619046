"""Delayed feedback: rewards are delivered in batches, every ``delay`` rounds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import ValidationError, check_int
from .base import BanditEnvironment, Rounds


@dataclass(repr=False)
class DelayedFeedback(BanditEnvironment):
    """Wrap an environment so that its rewards arrive every ``delay`` rounds.

    The simulator then chooses ``delay`` actions from the same posterior (``select`` without
    updates in between) and conditions on the ``delay`` rewards at once (``update_batch``).
    Everything else (contexts, rewards, truth, prior) is the wrapped environment's.

    Parameters
    ----------
    environment : BanditEnvironment
        The environment whose rewards are delayed.
    delay : int
        Rounds between reward deliveries (≥ 1).

    Raises
    ------
    ValidationError
        ``environment`` is not a mixedts environment, or ``delay`` < 1.

    Examples
    --------
    >>> from mixedts.environments import MixedEffectEnvironment
    >>> env = DelayedFeedback(MixedEffectEnvironment(10, 2, 2, seed=0), delay=25)
    >>> env.feedback_delay, env.n_actions, env.prior.n_effects
    (25, 10, 2)
    """

    environment: BanditEnvironment
    delay: int = 10

    def __post_init__(self) -> None:
        if not isinstance(self.environment, BanditEnvironment):
            raise ValidationError("environment must be a mixedts environment")
        check_int(self.delay, "delay", 1)

    def __repr__(self) -> str:
        return f"DelayedFeedback({self.environment!r}, delay={self.delay})"

    def __getattr__(self, name: str) -> Any:
        # only called for attributes not found normally: the wrapped environment's
        if name.startswith("__") or name == "environment":
            raise AttributeError(name)
        return getattr(self.environment, name)

    @property
    def feedback_delay(self) -> int:  # type: ignore[override]
        return int(self.delay)

    @property
    def n_actions(self) -> int:  # type: ignore[override]
        return self.environment.n_actions

    @property
    def dim(self) -> int:  # type: ignore[override]
        return self.environment.dim

    @property
    def shared_context(self) -> bool:
        return self.environment.shared_context

    @property
    def context_bound(self) -> float:
        return self.environment.context_bound

    def expected_rewards(self, x: np.ndarray) -> np.ndarray:
        return self.environment.expected_rewards(x)

    def context(self, rng: np.random.Generator) -> np.ndarray:
        return self.environment.context(rng)

    def draw_reward(self, x: np.ndarray, a: int, rng: np.random.Generator) -> float:
        return self.environment.draw_reward(x, a, rng)

    def sample(self, n: int, rng: np.random.Generator) -> Rounds:
        return self.environment.sample(n, rng)

    def reseed(self, seed) -> DelayedFeedback:
        return DelayedFeedback(self.environment.reseed(seed), self.delay)
