"""What the estimators read, validated once, with the quantities they share computed once."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from .._validation import ValidationError
from . import _checks as C


@dataclass(frozen=True, eq=False)
class EstimatorInputs:
    """Logged rounds, the target policy and (optionally) a reward model's predictions.

    Attributes
    ----------
    rewards : (n,) float64
    actions : (n,) int64 in [0, K)
    action_dist : (n, K)
        π(a | x_t), the target policy's probabilities at the logged contexts.
    propensities : (n,) or None
        π₀(a_t | x_t), the logging policy's probability of the logged action.
    estimated_rewards : (n, K) or None
        q̂(x_t, a), a reward model's prediction for every action.
    action_features : (K, p) or None
        The embedding of each action (MIPS).
    logging_probabilities : (n, K) or None
        π₀(· | x_t), the full logging distribution (MIPS).

    Build it with :meth:`check` from raw arrays; the constructor trusts its arguments.

    Examples
    --------
    >>> data = EstimatorInputs.check(rewards=[1.0, 0.0], actions=[0, 1],
    ...                              action_dist=[[0.5, 0.5], [1.0, 0.0]], propensities=[0.5, 0.5])
    >>> data.weights.tolist()
    [1.0, 0.0]
    """

    rewards: np.ndarray
    actions: np.ndarray
    action_dist: np.ndarray
    propensities: np.ndarray | None = None
    estimated_rewards: np.ndarray | None = None
    action_features: np.ndarray | None = None
    logging_probabilities: np.ndarray | None = None

    @classmethod
    def check(
        cls,
        rewards: Any,
        actions: Any,
        action_dist: Any,
        propensities: Any = None,
        estimated_rewards: Any = None,
        action_features: Any = None,
        logging_probabilities: Any = None,
    ) -> EstimatorInputs:
        """Validate raw arrays: errors name the argument and the first bad row."""
        R = C.float_rows(rewards, "rewards", None, "(n,)")
        n = len(R)
        if n == 0:
            raise ValidationError("rewards must hold at least one logged round")
        pi = C.numeric(action_dist, "action_dist")
        C.ndim(pi, (2,), "action_dist", "(n, K)")
        K = pi.shape[1]
        pi = C.distributions(pi, "action_dist", n, K)
        A = C.actions(actions, "actions", n, K)
        p = None if propensities is None else C.propensities(propensities, "propensities", n)
        q = None
        if estimated_rewards is not None:
            q = C.float_rows(estimated_rewards, "estimated_rewards", n, "(n, K)", ndims=(2,))
            _columns(q, K, "estimated_rewards")
        E = None
        if action_features is not None:
            E = C.float_rows(action_features, "action_features", None, "(K, p)", ndims=(2,))
            if E.shape[0] != K:
                raise ValidationError(
                    f"action_features must have {K} rows (one per action), got shape {E.shape}"
                )
        P = None
        if logging_probabilities is not None:
            P = C.distributions(logging_probabilities, "logging_probabilities", n, K)
        return cls(R, A, pi, p, q, E, P)

    # ------------------------------------------------------------------ shared quantities
    def __len__(self) -> int:
        return len(self.rewards)

    @property
    def n_actions(self) -> int:
        return self.action_dist.shape[1]

    @cached_property
    def rows(self) -> np.ndarray:
        return np.arange(len(self.rewards))

    @cached_property
    def pi_logged(self) -> np.ndarray:
        """π(a_t | x_t), (n,)."""
        return self.action_dist[self.rows, self.actions]

    @cached_property
    def weights(self) -> np.ndarray:
        """Importance weights w_t = π(a_t | x_t) / π₀(a_t | x_t), (n,)."""
        return self.pi_logged / self.require("propensities")

    @cached_property
    def q_policy(self) -> np.ndarray:
        """Σ_a π(a | x_t) q̂(x_t, a), (n,): the direct-method term of each row."""
        return np.einsum("nk,nk->n", self.action_dist, self.require("estimated_rewards"))

    @cached_property
    def q_logged(self) -> np.ndarray:
        """q̂(x_t, a_t), (n,)."""
        return self.require("estimated_rewards")[self.rows, self.actions]

    def require(self, name: str) -> np.ndarray:
        """The field ``name``, or a ValidationError saying the estimator needs it."""
        value = getattr(self, name)
        if value is None:
            hint = {
                "propensities": "the logging policy's propensities (pass propensities=)",
                "estimated_rewards": "a reward model (pass reward_model= or estimated_rewards=)",
                "action_features": "action_features (K, p), the action embeddings",
                "logging_probabilities": "logging_probabilities (n, K), the full logging "
                "distribution",
            }[name]
            raise ValidationError(f"{name} is missing: this estimator needs {hint}")
        return value


def _columns(arr: np.ndarray, K: int, name: str) -> None:
    if arr.shape[1] != K:
        raise ValidationError(
            f"{name} must have {K} columns (one per action, as action_dist), got shape {arr.shape}"
        )
