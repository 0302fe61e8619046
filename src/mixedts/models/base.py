"""The model contract: a posterior over per-action rewards, what it can summarise, a registry.

A model holds a posterior and never chooses an action. :class:`Model` is the protocol every
registered model satisfies (``tests/test_contract.py`` checks them all). What a model can
summarise for a decision rule is *declared* in its ``draws`` (a set of :class:`Draw`), and
:func:`summarise` is the one place that turns a declared draw into calls on the model: rules
receive the summary, never the model.

Models register with :func:`register_model` so that a saved policy finds its model class by
name (``MODELS``); nothing is imported from a file's contents.
"""

from __future__ import annotations

import enum
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np


class Draw(enum.Enum):
    """A posterior summary a decision rule consumes (see :mod:`mixedts.rules`)."""

    #: one posterior draw of every action's expected reward, (K,)
    SAMPLE = "sample"
    #: the posterior mean of every action's expected reward, (K,)
    MEAN = "mean"
    #: (mean, std), each (K,)
    MEAN_STD = "mean_std"
    #: (mean, std, counts), each (K,)
    MEAN_STD_COUNT = "mean_std_count"
    #: the predictions of the expert of largest weight, (K,)
    LEADER = "leader"
    #: n independent posterior draws of every action's expected reward in one context, (n, K)
    #: (``sample_scores_many``; n rounds of a context-free model)
    SAMPLES = "samples"
    #: (draws (n, K), mean (K,))
    SAMPLES_MEAN = "samples_mean"
    #: n draws of the argmax of a posterior sample over the active actions, (n,)
    ARGMAX = "argmax"
    #: (counts, empirical means), each (K,)
    INDEX = "index"


#: the draws of a model with Gaussian-like scores (sample, mean and widths)
SCORE_DRAWS = frozenset({Draw.SAMPLE, Draw.MEAN, Draw.MEAN_STD})


@runtime_checkable
class Model(Protocol):
    """What a policy may ask of a model.

    Contexts ``x`` are (d,) shared by all actions or (K, d) one row per action (``None`` for
    context-free models); a policy passes each action's row, validated. ``rng`` is the
    policy's generator, for models that draw while updating (minibatch Laplace fits).

    Notes
    -----
    A model trusts its inputs: policies validate them once, at the boundary. A model never
    chooses; it declares in ``draws`` the summaries it can give a decision rule.

    Examples
    --------
    >>> from mixedts.models import IndependentGaussianModel, Model
    >>> model = IndependentGaussianModel(np.zeros((3, 2)), np.eye(2))
    >>> isinstance(model, Model)
    True
    >>> x = np.array([1.0, 0.0])
    >>> model.update(x, 1, 2.0)
    >>> model.mean_scores(x)
    array([0., 1., 0.])
    >>> model.sample_scores(x, np.random.default_rng(0)).shape
    (3,)
    """

    n_actions: int
    #: d, the context dimension (0 for context-free arms; None where experts do not fix it)
    dim: int | None
    #: the summaries this model offers a rule
    draws: ClassVar[frozenset[Draw]]

    def sample_scores(self, x: Any, rng: np.random.Generator) -> np.ndarray:
        """One posterior draw of every action's expected reward in context ``x``, (K,)."""

    def mean_scores(self, x: Any) -> np.ndarray:
        """Posterior mean of every action's expected reward, (K,)."""

    def score_std(self, x: Any) -> np.ndarray:
        """Posterior standard deviation of every action's expected reward, (K,)."""

    def update(self, x: Any, a: int, y: float, rng: np.random.Generator | None = None) -> None:
        """Condition on one observation: reward ``y`` of action ``a`` with its context ``x``."""

    def update_batch(
        self, X: Any, A: np.ndarray, Y: np.ndarray, rng: np.random.Generator | None = None
    ) -> None:
        """Condition on n observations: contexts (n, d), actions (n,), rewards (n,)."""

    def add_action(self, *args: Any) -> int:
        """Append an action at its prior; returns its index."""

    def posterior_mean(self) -> np.ndarray:
        """Marginal posterior mean of each action's parameter, (K, d)."""

    def posterior_cov(self) -> np.ndarray:
        """Marginal posterior covariance of each action's parameter, (K, d, d)."""

    def sample_parameters(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` joint posterior draws of all parameters, (n, K, d)."""

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(JSON-able configuration, arrays) that rebuild this model exactly."""

    @classmethod
    def from_state(cls, cfg: dict[str, Any], arrays: dict[str, np.ndarray]) -> Model:
        """The model that ``get_state`` described."""


#: every registered model class by name (a saved file names its model)
MODELS: dict[str, type] = {}


def register_model(cls: type) -> type:
    """Class decorator: make ``cls`` loadable by name. Returns ``cls``."""
    if not isinstance(getattr(cls, "draws", None), frozenset):
        raise TypeError(f"{cls.__name__} must declare draws = frozenset({{Draw...}})")
    MODELS[cls.__name__] = cls
    return cls


def summarise(model, draw: Draw, x: Any, rng: np.random.Generator, n: int = 1,
              active: np.ndarray | None = None):
    """The summary ``draw`` of ``model`` in context ``x`` (``n`` rounds for batched draws)."""
    if draw is Draw.SAMPLE:
        return model.sample_scores(x, rng)
    if draw is Draw.MEAN:
        return model.mean_scores(x)
    if draw is Draw.MEAN_STD:
        return model.mean_scores(x), model.score_std(x)
    if draw is Draw.MEAN_STD_COUNT:
        return model.mean_scores(x), model.score_std(x), model.counts()
    if draw is Draw.LEADER:
        return model.leader_scores(x, rng)
    if draw is Draw.SAMPLES:
        return model.sample_scores_many(x, n, rng)
    if draw is Draw.SAMPLES_MEAN:
        return model.sample_scores_many(x, n, rng), model.mean_scores(x)
    if draw is Draw.ARGMAX:
        return model.sample_argmax(n, active, rng)
    if draw is Draw.INDEX:
        return model.counts(), model.empirical_means()
    raise ValueError(f"unknown draw {draw!r}")  # pragma: no cover - Draw is closed
