"""The OBD protocol's helpers: its scikit-learn reward models (a name or an estimator, cloned
and seeded for each fit, a constant where the training rewards have one class), one seed per
bootstrap resample, and the progress bar of the resamples."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import ValidationError, as_generator

__all__ = ["REWARD_MODELS", "Constant", "base_model", "fit_model", "predict_model",
           "progress_bar", "spawn_seeds"]

#: the reward models by name, with obp's hyperparameters (``examples/obd/conf/hyperparams.yaml``;
#: obp's ``lightgbm`` option is scikit-learn's GradientBoostingClassifier)
REWARD_MODELS = ("logistic", "gbm")


class Constant:
    """The click rate of a training set with one class only (a classifier cannot be fitted)."""

    def __init__(self, value: float) -> None:
        self.value = value

    def predict(self, features: np.ndarray) -> np.ndarray:
        return np.full(len(features), self.value)


def base_model(reward_model: Any):
    """An unfitted scikit-learn model from a name or an estimator (cloned for each fit)."""
    if isinstance(reward_model, str):
        if reward_model not in REWARD_MODELS:
            raise ValidationError(
                f"reward_model must be one of {', '.join(REWARD_MODELS)}, a scikit-learn "
                f"estimator or None, got {reward_model!r}"
            )
        if reward_model == "logistic":
            from sklearn.linear_model import LogisticRegression

            return LogisticRegression(C=100.0, max_iter=10_000)
        from sklearn.ensemble import GradientBoostingClassifier

        return GradientBoostingClassifier(n_estimators=30, learning_rate=0.01, max_depth=5,
                                          min_samples_leaf=10)  # fmt: skip
    if not (hasattr(reward_model, "fit") and hasattr(reward_model, "get_params")):
        raise ValidationError(
            f"reward_model must be 'logistic', 'gbm', an unfitted scikit-learn estimator or None, "
            f"got {type(reward_model).__name__}"
        )
    return reward_model


def fit_model(base: Any, features: np.ndarray, rewards: np.ndarray, gen: np.random.Generator):
    """A clone of ``base`` fitted on (features, rewards), seeded from ``gen`` when it takes a
    ``random_state``; a :class:`Constant` when the rewards have one value."""
    from sklearn.base import clone

    if np.all(rewards == rewards[0]):
        return Constant(float(rewards[0]))
    model = clone(base)
    if "random_state" in model.get_params():
        model.set_params(random_state=int(gen.integers(2**31 - 1)))
    try:
        model.fit(features, rewards)
    except Exception as exc:
        raise ValidationError(
            f"reward_model could not be fitted on [context, item features] rows "
            f"({features.shape[1]} columns): {type(exc).__name__}: {exc}"
        ) from exc
    return model


def predict_model(model: Any, features: np.ndarray) -> np.ndarray:
    """The model's mean reward for each row: a classifier's probability of its larger class."""
    if hasattr(model, "predict_proba") and getattr(model, "classes_", None) is not None:
        return np.asarray(model.predict_proba(features))[:, -1]
    return np.asarray(model.predict(features), dtype=np.float64).reshape(-1)


def spawn_seeds(seed: Any, n: int) -> list[np.random.SeedSequence]:
    """One independent SeedSequence per resample (resample b's does not depend on n)."""
    if isinstance(seed, np.random.SeedSequence):
        root = seed
    elif isinstance(seed, np.random.Generator):
        root = np.random.SeedSequence(int(seed.integers(2**63 - 1)))
    else:
        as_generator(seed)  # the same checks as everywhere else
        root = np.random.SeedSequence(seed)
    return root.spawn(n)


def progress_bar(enabled: bool, total: int):
    """A rich progress bar of ``total`` bootstrap resamples on stderr, or None."""
    if not enabled:
        return None
    try:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn
    except ImportError:  # rich comes with the 'experiments' extra
        return None
    bar = Progress("[progress.description]{task.description}", BarColumn(),
                   MofNCompleteColumn(), TimeElapsedColumn(),
                   console=Console(stderr=True))  # fmt: skip
    bar.start()
    return bar, bar.add_task("bootstrap resamples", total=total)
