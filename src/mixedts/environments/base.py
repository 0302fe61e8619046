"""What every environment offers: vectorised rounds and the truth (expected rewards)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Rounds:
    """A block of ``n`` rounds drawn at once.

    Attributes
    ----------
    contexts : ndarray, shape (n, d) shared by all actions, or (n, K, d) one per action
    expected : ndarray, shape (n, K)
        Expected reward of every action in every round (the truth regret is measured against).
    rewards : ndarray, shape (n, K)
        The reward every action *would* return in that round. A policy only sees the entry of
        the action it plays; drawing them all keeps the random numbers common to every policy
        (the same action in the same round of the same run pays the same) and gives the
        realised regret of the authors' code (reward of the best action minus the chosen one).

    Examples
    --------
    >>> from mixedts.environments import MixedEffectEnvironment
    >>> rounds = MixedEffectEnvironment(4, 2, 3, seed=0).sample(10, np.random.default_rng(1))
    >>> len(rounds), rounds.contexts.shape, rounds.expected.shape, rounds.rewards.shape
    (10, (10, 3), (10, 4), (10, 4))
    >>> regret = rounds.expected.max(axis=1) - rounds.expected[:, 0]  # always playing action 0
    >>> bool((regret >= 0).all())
    True
    """

    contexts: np.ndarray
    expected: np.ndarray
    rewards: np.ndarray

    def __len__(self) -> int:
        return len(self.expected)


class BanditEnvironment:
    """Base class of the environments.

    A subclass is a dataclass with a ``seed`` field and implements ``n_actions``, ``dim``,
    ``shared_context``, ``context_bound`` and :meth:`sample`; the single-round helpers
    (:meth:`context`, :meth:`expected_rewards`, :meth:`draw_reward`) default to ``sample``.

    Notes
    -----
    Environments own a *problem instance* (true parameters, drawn from ``seed``) and draw
    *rounds* (contexts and rewards) from the generator they are handed, so one instance can be
    replayed identically for every policy.

    Examples
    --------
    Two Bernoulli arms, one constant context:

    >>> from dataclasses import dataclass
    >>> from mixedts.environments import BanditEnvironment, Rounds
    >>> @dataclass(frozen=True)
    ... class Coins(BanditEnvironment):
    ...     p: tuple = (0.2, 0.8)
    ...     seed: int = 0
    ...     n_actions = 2
    ...     dim = 1
    ...     context_bound = 1.0
    ...     def sample(self, n, rng):
    ...         expected = np.tile(self.p, (n, 1))
    ...         return Rounds(np.ones((n, 1)), expected, rng.binomial(1, expected) * 1.0)
    >>> Coins().sample(3, np.random.default_rng(0)).rewards
    array([[0., 1.],
           [0., 1.],
           [1., 0.]])
    >>> Coins().context(np.random.default_rng(0))
    array([1.])
    """

    #: rounds between reward deliveries (1: every reward arrives at once)
    feedback_delay: int = 1

    #: K and d (subclasses set them as fields or properties)
    n_actions: int
    dim: int

    # ---------------------------------------------------------------- interface
    @property
    def shared_context(self) -> bool:
        """True when one context (d,) is shared by all actions each round."""
        return True

    @property
    def context_bound(self) -> float:
        """An upper bound on the norm of any context row (UCB widths use it)."""
        raise NotImplementedError  # pragma: no cover - abstract

    def sample(self, n: int, rng: np.random.Generator) -> Rounds:  # pragma: no cover
        """Draw ``n`` rounds: contexts, expected rewards (n, K), rewards (n, K)."""
        raise NotImplementedError

    # ---------------------------------------------------------------- single rounds
    def context(self, rng: np.random.Generator) -> np.ndarray:
        """One context: (d,) shared or (K, d) per action."""
        return self.sample(1, rng).contexts[0]

    def expected_rewards(self, x: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        """E[y | x, i] for every action, (K,)."""
        raise NotImplementedError

    def best_action(self, x: np.ndarray) -> int:
        """The action with the highest expected reward in context ``x``."""
        return int(np.argmax(self.expected_rewards(x)))

    def draw_reward(self, x: np.ndarray, a: int, rng: np.random.Generator) -> float:
        """A random reward of action ``a`` in context ``x``."""
        raise NotImplementedError  # pragma: no cover - abstract

    # ---------------------------------------------------------------- instances
    def reseed(self, seed) -> BanditEnvironment:
        """A new problem instance of the same configuration, drawn from ``seed``."""
        return dataclasses.replace(self, seed=seed)  # type: ignore[type-var]

    def describe(self) -> str:
        """One line for tables and plot titles."""
        return repr(self)
