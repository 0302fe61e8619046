"""Reward-model predictions q̂(x_t, a) for every logged round and action, (n, K).

A fitted scikit-learn model (or anything with ``predict``) sees one feature row per
(round, action): ``[x, onehot(a)]``, with x the shared context (d,) or the action's own context
row (d,) when contexts are per action; :func:`reward_features` builds the same rows for the
logged actions, to fit the model on. Classifiers (``predict_proba`` and two ``classes_``) give
the probability of the larger class, ``predict_proba(...)[:, 1]``. A mixedts policy (fitted
on the logs first, e.g. by :func:`~mixedts.offline.policy_rewards.fit_on_logs`) gives its
posterior mean rewards at the logged contexts: see
:func:`~mixedts.offline.policy_rewards.predict_rewards_with_policy`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import ValidationError
from . import _checks as C
from .logs import LoggedFeedback
from .policy_rewards import is_policy, predict_rewards_with_policy

_BLOCK = 1 << 18  # (round, action) rows predicted per call


def _design(contexts: np.ndarray, actions: np.ndarray, n_actions: int) -> np.ndarray:
    """[x_t (or x_{t, a}), onehot(a)] for the pairs (t, a_t): contexts (m, d) or (m, K, d)."""
    m = len(actions)
    X = contexts if contexts.ndim == 2 else contexts[np.arange(m), actions]
    onehot = np.zeros((m, n_actions))
    onehot[np.arange(m), actions] = 1.0
    return np.hstack([X, onehot])


def reward_features(logs: LoggedFeedback) -> np.ndarray:
    """The feature rows of the logged (round, action) pairs, (n, d + K): fit a model on them.

    Parameters
    ----------
    logs : LoggedFeedback

    Returns
    -------
    ndarray, shape (n, d + K)
        Row t is ``[x_t, onehot(a_t)]`` (with per-action contexts, the played action's row
        x_{t, a_t}); :func:`predict_rewards` predicts from the same layout.

    Examples
    --------
    >>> logs = LoggedFeedback(np.array([[0.5], [1.0]]), [1, 0], [1.0, 0.0], n_actions=2)
    >>> reward_features(logs)
    array([[0.5, 0. , 1. ],
           [1. , 1. , 0. ]])
    """
    return _design(logs.contexts, logs.actions, logs.n_actions)


def _predictor(model: Any):
    classes = getattr(model, "classes_", None)
    if hasattr(model, "predict_proba") and classes is not None:
        if len(classes) != 2:
            raise ValidationError(
                f"reward_model: a classifier must have two classes (binary rewards), got "
                f"{len(classes)}"
            )
        return lambda F: np.asarray(model.predict_proba(F))[:, 1]
    if hasattr(model, "predict"):
        return lambda F: np.asarray(model.predict(F)).reshape(-1)
    raise ValidationError(
        f"reward_model must be an (n, K) array, a fitted mixedts policy or a fitted model "
        f"with predict, got "
        f"{type(model).__name__}"
    )


def _check_actions(q: np.ndarray, n_actions: int) -> None:
    if q.shape[1] != n_actions:
        raise ValidationError(
            f"reward_model predicts {q.shape[1]} actions, but the logs have {n_actions}"
        )


def predict_rewards(model: Any, logs: LoggedFeedback) -> np.ndarray:
    """q̂(x_t, a) for every round and action, (n, K), predicted in blocks of rows.

    Parameters
    ----------
    model : fitted model or mixedts policy
        A regressor with ``predict`` or a binary classifier with ``predict_proba`` (the
        probability of class 1), fitted on :func:`reward_features` rows; or a mixedts policy,
        used as it is (its current posterior: fit it on the logs first).
    logs : LoggedFeedback

    Returns
    -------
    ndarray, shape (n, K)

    Raises
    ------
    ValidationError
        A model with neither method, a classifier with other than two classes, a failed or
        misshapen prediction, non-finite predictions, or a policy over another number of
        actions.

    Examples
    --------
    >>> class Model:  # a fitted scikit-learn regressor works the same way
    ...     def predict(self, features):  # context + 2 * (action 1 indicator)
    ...         return features[:, 0] + 2.0 * features[:, 2]
    >>> logs = LoggedFeedback(np.array([[0.0], [1.0], [2.0]]), [0, 1, 0], [0.0, 2.0, 2.0])
    >>> predict_rewards(Model(), logs).tolist()
    [[0.0, 2.0], [1.0, 3.0], [2.0, 4.0]]
    """
    if is_policy(model):
        q = predict_rewards_with_policy(model, logs.contexts, name="reward_model")
        _check_actions(q, logs.n_actions)
        return q
    predict = _predictor(model)
    n, K = len(logs), logs.n_actions
    out = np.empty((n, K))
    step = max(1, _BLOCK // K)
    for start in range(0, n, step):  # blocks of rounds, each with all K actions at once
        X = logs.contexts[start:start + step]
        m = len(X)
        # rows in (round, action) order: round t's K rows, then round t + 1's
        ctx = np.repeat(X, K, axis=0) if X.ndim == 2 else X.reshape(m * K, -1)
        features = np.hstack([ctx, np.tile(np.eye(K), (m, 1))])
        try:
            pred = predict(features)
        except Exception as exc:
            raise ValidationError(
                f"reward_model failed to predict on [context, one-hot action] features "
                f"({features.shape[1]} columns): {type(exc).__name__}: {exc}"
            ) from exc
        if pred.shape != (m * K,):
            raise ValidationError(
                f"reward_model must predict one value per row, got shape {pred.shape} for "
                f"{m * K} rows"
            )
        out[start:start + m] = pred.reshape(m, K)
    return C.finite(out.astype(np.float64), "reward_model predictions")
