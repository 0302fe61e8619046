"""Online replay (Li et al. 2011): run a learning policy over a uniformly logged stream."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import ValidationError
from .estimate import Estimate
from .estimators import _ratio, check_uniform
from .logs import LoggedFeedback


def replay(logs: LoggedFeedback, policy: Any, *, require_uniform: bool = True) -> Estimate:
    """The value of a policy that learns online, replayed on a uniformly logged stream.

    Rounds are visited in log order: the policy chooses ``policy.select(x_t)``; when its choice
    equals the logged action the round is kept and the policy learns from it
    (``policy.update(x_t, a_t, r_t)``), otherwise the round is skipped and the policy is left
    as it was. The value is the mean reward of the kept rounds, an unbiased estimate of the
    policy's online reward per round when the logging policy is uniform (Li et al. 2011); with
    ``require_uniform`` every propensity of the log must be 1/K. The standard error treats the
    kept rewards as independent (approximate: the policy changes as it learns). NaN when no
    round is kept.

    Parameters
    ----------
    logs : LoggedFeedback
        Logged by a uniform policy.
    policy : policy
        A mixedts policy, or any object with ``select(x)`` and ``update(x, a, y)``; a
        context-free policy (``select()``, ``update(a, y)``) is replayed without contexts. It
        is trained in place.
    require_uniform : bool
        Refuse logs whose propensities are not all 1/K.

    Returns
    -------
    Estimate
        The mean reward of the kept rounds, its standard error and 95% interval.

    Raises
    ------
    ValidationError
        A policy over another number of actions or context dimension, one without ``select``
        and ``update``, or (with ``require_uniform``) a propensity other than 1/K.

    Notes
    -----
    The loop over rounds is sequential by nature (each choice depends on every earlier
    update).

    Examples
    --------
    >>> from mixedts import GaussianTS
    >>> rng = np.random.default_rng(0)
    >>> logs = LoggedFeedback(np.zeros((200, 1)), rng.integers(0, 2, 200),
    ...                       rng.normal(size=200), propensities=np.full(200, 0.5))
    >>> est = replay(logs, GaussianTS(2, seed=0))
    >>> bool(np.isfinite(est.value))
    True
    """
    from ..policies.base import ContextFreeBandit

    K = getattr(policy, "n_actions", None)
    if K is not None and K != logs.n_actions:
        raise ValidationError(f"policy has {K} actions, but the log has {logs.n_actions}")
    if not (hasattr(policy, "select") and hasattr(policy, "update")):
        raise ValidationError(
            f"policy must have select and update methods, got {type(policy).__name__}"
        )
    dim = getattr(policy, "dim", None)
    if isinstance(dim, int) and dim not in (0, logs.dim):
        raise ValidationError(f"policy takes contexts of dimension {dim}, the log has {logs.dim}")
    if require_uniform and logs.propensities is not None:
        check_uniform(logs.propensities, logs.n_actions)
    context_free = isinstance(policy, ContextFreeBandit)
    no_context = context_free or getattr(policy, "dim", None) == 0
    X, A, R = logs.contexts, logs.actions, logs.rewards
    kept = np.zeros(len(logs))
    for t in range(len(logs)):  # sequential: a learning policy's choice depends on the past
        x = None if no_context else X[t]
        a = policy.select() if context_free else policy.select(x)
        if a == A[t]:
            if context_free:
                policy.update(a, R[t])
            else:
                policy.update(x, a, R[t])
            kept[t] = 1.0
    return _ratio(kept * R, kept)
