"""One entry point: estimate a target policy's value on logged data with several estimators."""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

import numpy as np

from .._validation import ValidationError
from . import _checks as C
from .estimate import Estimate
from .estimators import ESTIMATORS, OffPolicyEstimator, make_estimator
from .inputs import EstimatorInputs
from .logs import LoggedFeedback
from .reward_model import predict_rewards

#: The estimators :func:`evaluate` runs by default with a reward model (without: ips, snips).
DEFAULT_ESTIMATORS = ("ips", "snips", "dm", "dr", "sndr", "switch-dr")
COLUMNS = ("value", "stderr", "ci_low", "ci_high")

#: what to pass when an estimator's input is missing
_SOURCE = {
    "propensities": "the log's propensities (LoggedFeedback(propensities=...))",
    "estimated_rewards": "reward_model (an (n, K) array or a fitted model)",
    "action_features": "the log's action_features (K, p)",
    "logging_probabilities": "the log's logging_probabilities (n, K)",
}


def target_probabilities(policy_or_probabilities: Any, logs: LoggedFeedback) -> np.ndarray:
    """π(a | x_t) at the logged contexts, (n, K), from an array or a policy.

    Parameters
    ----------
    policy_or_probabilities : array_like (n, K) or policy
        The target policy's probabilities, or an object with
        ``action_probabilities(contexts) -> (n, K)`` for the whole batch of logged contexts
        ((n, d) or (n, K, d)); it is called once.
    logs : LoggedFeedback

    Returns
    -------
    ndarray, shape (n, K)
        Validated rows: non-negative, each summing to 1.

    Raises
    ------
    ValidationError
        An array of the wrong shape or rows that are not distributions, an object with no
        ``action_probabilities``, or one whose call fails on the batch.

    Examples
    --------
    >>> logs = LoggedFeedback(np.zeros((2, 1)), [0, 1], [1.0, 0.0])
    >>> class Uniform:
    ...     def action_probabilities(self, X):
    ...         return np.full((len(X), 2), 0.5)
    >>> target_probabilities(Uniform(), logs).tolist()
    [[0.5, 0.5], [0.5, 0.5]]
    """
    n, K = len(logs), logs.n_actions
    obj = policy_or_probabilities
    if isinstance(obj, (np.ndarray, list, tuple)):
        return C.distributions(obj, "policy_or_probabilities", n, K)
    method = getattr(obj, "action_probabilities", None)
    if not callable(method):
        raise ValidationError(
            "policy_or_probabilities must be an (n, K) array of the target policy's action "
            "probabilities at the logged contexts, or a policy with "
            f"action_probabilities(contexts) -> (n, K); {type(obj).__name__} has no "
            "action_probabilities method"
        )
    kwargs = {"batch": True} if "batch" in inspect.signature(method).parameters else {}
    try:
        probs = method(logs.contexts, **kwargs)
    except Exception as exc:
        raise ValidationError(
            f"{type(obj).__name__}.action_probabilities(contexts) failed on the batch of logged "
            f"contexts {logs.contexts.shape} (it must return (n, K) probabilities for a batch): "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    return C.distributions(probs, "policy.action_probabilities(contexts)", n, K)


def _estimators(estimators: Any, with_model: bool) -> dict[str, OffPolicyEstimator]:
    """Label -> estimator, from names, instances or a mapping."""
    if estimators is None:
        estimators = DEFAULT_ESTIMATORS if with_model else ("ips", "snips")
    if isinstance(estimators, (str, OffPolicyEstimator)):
        estimators = (estimators,)
    items = estimators.items() if isinstance(estimators, Mapping) else (
        (e if isinstance(e, str) else getattr(e, "name", None), e) for e in estimators
    )  # fmt: skip
    out: dict[str, OffPolicyEstimator] = {}
    for label, est in items:
        if isinstance(est, str):
            est = make_estimator(est)
        if not isinstance(est, OffPolicyEstimator):
            raise ValidationError(
                f"estimators must hold names ({', '.join(ESTIMATORS)}) or estimator objects, "
                f"got {est!r}"
            )
        if label in out:
            raise ValidationError(
                f"estimators: {label!r} appears twice; pass a mapping {{label: estimator}} to "
                "run one estimator with several settings"
            )
        out[str(label)] = est
    if not out:
        raise ValidationError("estimators must name at least one estimator")
    return out


def estimate_all(
    logs: LoggedFeedback,
    policy_or_probabilities: Any,
    estimators: Any = None,
    reward_model: Any = None,
) -> dict[str, Estimate]:
    """Like :func:`evaluate`, as a dict label -> :class:`Estimate` (no pandas needed).

    Parameters
    ----------
    logs, policy_or_probabilities, estimators, reward_model
        As for :func:`evaluate`.

    Returns
    -------
    dict of str to Estimate
        In the order of ``estimators``.

    Raises
    ------
    ValidationError
        Empty logs, an unknown or repeated estimator, or an input an estimator needs that
        is missing (checked before any work).

    Examples
    --------
    >>> logs = LoggedFeedback(np.zeros((2, 1)), [0, 1], [1.0, 0.0], propensities=[0.5, 0.5])
    >>> estimate_all(logs, [[1.0, 0.0], [1.0, 0.0]], ["ips"])["ips"].value
    1.0
    """
    if not isinstance(logs, LoggedFeedback):
        raise ValidationError(f"logs must be a LoggedFeedback, got {type(logs).__name__}")
    if len(logs) == 0:
        raise ValidationError("logs must hold at least one round")
    chosen = _estimators(estimators, reward_model is not None)
    for label, est in chosen.items():  # refuse before any work
        for field in est.needs:
            missing = reward_model is None if field == "estimated_rewards" else (
                getattr(logs, field) is None
            )  # fmt: skip
            if missing:
                arg = "reward_model" if field == "estimated_rewards" else f"logs.{field}"
                raise ValidationError(f"{arg} is missing: estimator {label!r} needs "
                                      f"{_SOURCE[field]}")  # fmt: skip
    pi = target_probabilities(policy_or_probabilities, logs)
    q = None
    if reward_model is not None:
        if isinstance(reward_model, (np.ndarray, list, tuple)):
            q = C.float_rows(reward_model, "reward_model", len(logs), "(n, K)", ndims=(2,))
            if q.shape[1] != logs.n_actions:
                raise ValidationError(
                    f"reward_model must have shape (n, K) = ({len(logs)}, {logs.n_actions}), "
                    f"got {q.shape}"
                )
        else:
            q = predict_rewards(reward_model, logs)
    data = EstimatorInputs(
        rewards=logs.rewards,
        actions=logs.actions,
        action_dist=pi,
        propensities=logs.propensities,
        estimated_rewards=q,
        action_features=logs.action_features,
        logging_probabilities=logs.logging_probabilities,
    )
    return {label: est.estimate(data) for label, est in chosen.items()}


def evaluate(
    logs: LoggedFeedback,
    policy_or_probabilities: Any,
    estimators: Any = None,
    reward_model: Any = None,
):
    """Estimate a target policy's value on logged data with several estimators.

    Parameters
    ----------
    logs : LoggedFeedback
    policy_or_probabilities : array_like (n, K) or policy
        The target policy's action probabilities at the logged contexts, or an object with
        ``action_probabilities(contexts) -> (n, K)`` (called once, on the whole batch).
    estimators : sequence or mapping, optional
        Names from :data:`~mixedts.offline.estimators.ESTIMATORS` (``"ips"``, ``"snips"``,
        ``"dm"``, ``"dr"``, ``"sndr"``, ``"switch-dr"``, ``"mips"``, ``"replay"``), estimator
        objects (e.g. ``InverseProbabilityWeighting(max_weight=20)``), or a mapping
        ``{label: name or estimator}``. Default: :data:`DEFAULT_ESTIMATORS` with a reward
        model, ``("ips", "snips")`` without.
    reward_model : array_like (n, K), fitted model, mixedts policy or None
        q̂(x_t, a) for every round and action, a fitted scikit-learn regressor / binary
        classifier predicting from ``[context, one-hot action]`` rows (see
        :mod:`~mixedts.offline.reward_model`), or a mixedts policy fitted on the logs
        (:func:`~mixedts.offline.fit_on_logs`; MeTS is sDM, see
        :func:`~mixedts.offline.sdm_reward_models`), whose posterior means are the q̂. DM and
        the DR family need one: asking for them without raises
        :class:`~mixedts.ValidationError` naming ``reward_model``.

    Returns
    -------
    pandas.DataFrame
        Indexed by estimator label (index name ``estimator``), with columns ``value``,
        ``stderr``, ``ci_low``, ``ci_high`` (normal 95% intervals; see
        :class:`~mixedts.offline.Estimate`).

    Raises
    ------
    ValidationError
        As for :func:`estimate_all`.

    Examples
    --------
    >>> logs = LoggedFeedback(np.zeros((4, 1)), [0, 1, 1, 0], [1.0, 0.0, 1.0, 1.0],
    ...                       propensities=np.full(4, 0.5))
    >>> always_0 = np.tile([1.0, 0.0], (4, 1))
    >>> table = evaluate(logs, always_0, ["ips", "dm"], reward_model=np.full((4, 2), 0.5))
    >>> table["value"].tolist()
    [1.0, 0.5]
    """
    import pandas as pd

    results = estimate_all(logs, policy_or_probabilities, estimators, reward_model)
    frame = pd.DataFrame(
        [[getattr(e, c) for c in COLUMNS] for e in results.values()],
        index=pd.Index(list(results), name="estimator"),
        columns=list(COLUMNS),
    )
    return frame
