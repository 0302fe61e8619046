"""The model protocol: a posterior over per-action reward parameters, and nothing else."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Model(Protocol):
    """What a decision rule may ask of a model.

    Contexts ``x`` are (d,) shared by all actions or (K, d) one row per action; they arrive
    validated. A model never chooses an action.
    """

    n_actions: int
    dim: int

    def sample_scores(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One posterior draw of every action's expected reward in context ``x``, (K,)."""

    def mean_scores(self, x: np.ndarray) -> np.ndarray:
        """Posterior mean of every action's expected reward, (K,)."""

    def score_std(self, x: np.ndarray) -> np.ndarray:
        """Posterior standard deviation of every action's expected reward, (K,)."""

    def update(self, x: np.ndarray, a: int, y: float) -> None:
        """Condition on one observation: context ``x`` (d,) of action ``a``, reward ``y``."""

    def update_batch(self, X: np.ndarray, A: np.ndarray, Y: np.ndarray) -> None:
        """Condition on n observations: contexts (n, d) of the actions ``A`` (n,), rewards (n,)."""

    def posterior_mean(self) -> np.ndarray:
        """Marginal posterior mean of each θ_i, (K, d)."""

    def posterior_cov(self) -> np.ndarray:
        """Marginal posterior covariance of each θ_i, (K, d, d)."""

    def sample_parameters(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` joint posterior draws of all θ, (n, K, d)."""

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON-able configuration, arrays) that rebuild this model exactly."""
