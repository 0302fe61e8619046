"""Logs simulated from a mixedts environment, with the logging policy's true propensities."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._validation import ValidationError, as_generator
from . import _checks as C
from .logs import LoggedFeedback


def sample_actions(probabilities: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One action per row of ``probabilities`` (n, K), by inverting the row CDFs; (n,) int64.

    The drawn action always has a positive probability (the first index whose cumulative sum
    exceeds ``u · total`` with u ~ U[0, 1)).

    >>> sample_actions(np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0]]), np.random.default_rng(0))
    array([1, 0])
    """
    cdf = np.cumsum(probabilities, axis=1)
    u = rng.random(len(cdf)) * cdf[:, -1]
    return np.argmax(cdf > u[:, None], axis=1).astype(np.int64)


def logging_distribution(
    policy: Any, contexts: np.ndarray, n_actions: int, name: str
) -> np.ndarray:
    """π(· | x_t) for every round, (n, K), from ``"uniform"``, an (n, K) array or a callable."""
    n = len(contexts)
    if isinstance(policy, str):
        if policy != "uniform":
            raise ValidationError(f"{name} must be 'uniform', an (n, K) array or a callable, "
                                  f"got {policy!r}")  # fmt: skip
        return np.full((n, n_actions), 1.0 / n_actions)
    if callable(policy):
        try:
            policy = policy(contexts)
        except Exception as exc:
            raise ValidationError(f"{name}(contexts) failed: {type(exc).__name__}: {exc}") from exc
    return C.distributions(policy, name, n, n_actions)


def simulate_logs(
    environment: Any,
    logging_policy: str | np.ndarray | Callable[[np.ndarray], np.ndarray],
    n: int,
    seed: Any = None,
    *,
    action_features: Any = None,
) -> LoggedFeedback:
    """n rounds of an environment logged by a known stochastic policy.

    Parameters
    ----------
    environment : BanditEnvironment
        Any mixedts environment: ``environment.sample(n, rng)`` gives contexts (n, d) or
        (n, K, d), expected rewards (n, K) and the reward of every action (n, K).
    logging_policy : "uniform", array_like (n, K) or callable
        The logging distribution π₀(· | x_t): uniform, given row by row, or computed as
        ``logging_policy(contexts) -> (n, K)``.
    n : int
        Rounds (≥ 0).
    seed : None, int, SeedSequence or Generator
        Draws the rounds, then the logged actions.
    action_features : array_like (K, p), optional
        Stored with the log (for MIPS).

    Returns
    -------
    LoggedFeedback
        With ``propensities`` (the true π₀(a_t | x_t)), ``logging_probabilities`` (n, K),
        ``expected_rewards`` (n, K) (the truth) and ``timestamps`` 0..n−1.

    Examples
    --------
    >>> from mixedts.environments import MixedEffectEnvironment
    >>> env = MixedEffectEnvironment(n_actions=4, n_effects=2, dim=3, seed=0)
    >>> logs = simulate_logs(env, "uniform", 100, seed=1)
    >>> len(logs), logs.n_actions, float(logs.propensities[0])
    (100, 4, 0.25)
    """
    n = C.count(n, "n", low=0)
    rng = as_generator(seed)
    rounds = environment.sample(n, rng)
    K = int(environment.n_actions)
    probs = logging_distribution(logging_policy, rounds.contexts, K, "logging_policy")
    actions = sample_actions(probs, rng)
    rows = np.arange(n)
    return LoggedFeedback(
        rounds.contexts,
        actions,
        rounds.rewards[rows, actions],
        action_features=action_features,
        timestamps=rows,
        n_actions=K,
        expected_rewards=rounds.expected,
        logging_probabilities=probs,
    )


def true_policy_value(logs: LoggedFeedback, probabilities: Any) -> float:
    """(1/n) Σ_t Σ_a π(a | x_t) E[r | x_t, a]: the value of π on the logged contexts.

    Every estimator here is unbiased (or consistent) for this quantity given the contexts.

    Parameters
    ----------
    logs : LoggedFeedback
        With ``expected_rewards`` (simulated logs, see :func:`simulate_logs`).
    probabilities : array_like, shape (n, K)
        π(a | x_t), the target policy at the logged contexts.

    Returns
    -------
    float

    Raises
    ------
    ValidationError
        Logs without ``expected_rewards``, or ``probabilities`` that are not (n, K)
        distributions.

    Examples
    --------
    >>> logs = LoggedFeedback(np.zeros((2, 1)), [0, 1], [0.0, 1.0],
    ...                       expected_rewards=[[0.0, 1.0], [0.5, 0.5]])
    >>> true_policy_value(logs, [[0.0, 1.0], [1.0, 0.0]])
    0.75
    """
    if logs.expected_rewards is None:
        raise ValidationError("expected_rewards are needed: only simulated logs know the truth")
    pi = C.distributions(probabilities, "probabilities", len(logs), logs.n_actions)
    return float(np.einsum("nk,nk->n", pi, logs.expected_rewards).mean())
