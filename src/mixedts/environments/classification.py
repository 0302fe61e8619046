"""Any classification data set as a bandit: one action per class, reward 1 for the right one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import ValidationError, as_float_array, check_int
from .base import BanditEnvironment, Rounds


@dataclass(repr=False)
class ClassificationEnvironment(BanditEnvironment):
    """Classification data (X, y) as a contextual bandit (the classic supervised-to-bandit
    reduction): each round a row is drawn uniformly, its features are the context shared by all
    actions, there is one action per class, and the reward is 1 for the row's class, 0 otherwise.

    The expected reward of class k in context x is the share of rows equal to x that have
    class k (1 or 0 when rows are distinct), so regret is exact.

    Parameters
    ----------
    X : array_like (N, d)
        Features.
    y : array_like (N,)
        Labels (any values; the sorted distinct labels are the actions, see ``classes``).
    intercept : bool
        Append a constant 1 feature (linear policies then learn a per-class bias).
    seed : ignored
        The instance is the data; kept so that :meth:`reseed` works like elsewhere.

    Examples
    --------
    >>> X = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    >>> env = ClassificationEnvironment(X, ["a", "b", "a"])
    >>> env.n_actions, env.classes.tolist()
    (2, ['a', 'b'])
    >>> env.expected_rewards(np.array([1.0, 0.0]))
    array([0., 1.])
    """

    X: Any
    y: Any
    intercept: bool = False
    seed: Any = None
    classes: np.ndarray = field(init=False, repr=False)
    features: np.ndarray = field(init=False, repr=False)
    labels: np.ndarray = field(init=False, repr=False)
    _row_of: np.ndarray = field(init=False, repr=False)
    _truth: np.ndarray = field(init=False, repr=False)
    _lookup: dict = field(init=False, repr=False)

    def __post_init__(self) -> None:
        X = as_float_array(self.X, "X", ndim=2)
        y = np.asarray(self.y)
        if y.ndim != 1 or len(y) != len(X):
            raise ValidationError(f"y must have shape ({len(X)},), got {y.shape}")
        if len(X) == 0:
            raise ValidationError("X must have at least one row")
        self.classes, self.labels = np.unique(y, return_inverse=True)
        if len(self.classes) < 2:
            raise ValidationError("y must hold at least two classes")
        if self.intercept:
            X = np.hstack([X, np.ones((len(X), 1))])
        self.features = np.ascontiguousarray(X)
        unique, self._row_of = np.unique(self.features, axis=0, return_inverse=True)
        self._row_of = self._row_of.ravel()
        K = len(self.classes)
        counts = np.zeros((len(unique), K))
        np.add.at(counts, (self._row_of, self.labels), 1.0)
        self._truth = counts / counts.sum(axis=1, keepdims=True)
        self._lookup = {row.tobytes(): i for i, row in enumerate(unique)}

    def __repr__(self) -> str:
        return (
            f"ClassificationEnvironment(n_rows={len(self.features)}, n_actions={self.n_actions}, "
            f"dim={self.dim}, intercept={self.intercept})"
        )

    @property
    def n_actions(self) -> int:  # type: ignore[override]
        return len(self.classes)

    @property
    def dim(self) -> int:  # type: ignore[override]
        return self.features.shape[1]

    @property
    def context_bound(self) -> float:
        return float(np.linalg.norm(self.features, axis=1).max())

    def expected_rewards(self, x: np.ndarray) -> np.ndarray:
        """P(class k | x) over the rows equal to ``x`` (d,), shape (K,)."""
        key = np.ascontiguousarray(x, dtype=np.float64).tobytes()
        if key not in self._lookup:
            raise ValidationError("x is not a row of this data set")
        return self._truth[self._lookup[key]].copy()

    def draw_reward(self, x: np.ndarray, a: int, rng: np.random.Generator) -> float:
        """1 with probability P(class a | x)."""
        return float(rng.uniform() < self.expected_rewards(x)[a])

    def sample(self, n: int, rng: np.random.Generator) -> Rounds:
        n = check_int(n, "n", 0)
        rows = rng.integers(len(self.features), size=n)
        rewards = np.zeros((n, self.n_actions))
        rewards[np.arange(n), self.labels[rows]] = 1.0
        return Rounds(self.features[rows], self._truth[self._row_of[rows]], rewards)
