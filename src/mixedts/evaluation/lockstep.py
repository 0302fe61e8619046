"""Many runs of one policy in lockstep: one batched posterior, the runs' own rules choose.

:class:`LockstepPolicies` is what :meth:`~mixedts.evaluation.registry.PolicySpec.batch` hands
to the experiment loop (:func:`~mixedts.evaluation.simulate.run_batch_rounds`). It is built from
the R one-run policies themselves: their models become one batched model, the first of
:data:`BATCHED_MODELS` that can hold them
(:class:`~mixedts.models.batched.BatchedLinearGaussianModel` for Gaussian rewards,
:class:`~mixedts.models.batched_glm.BatchedGLMModel` for GLM rewards,
:class:`~mixedts.models.batched_diffusion.BatchedDiffusionModel` for exact linear dTS; each
reads every model's prior, options, cadence and data), and their rules and generators are
kept. A round then
does what each policy's ``select`` does, for all runs at once: ask the model for the summary
the rule declares (:func:`~mixedts.models.base.summarise`), score it with the rule's own
``scores`` and take the best action with the rules' tie-breaking
(:func:`~mixedts.rules.argmax_active`, which draws from a run's generator only when it ties).
"""

from __future__ import annotations

import copy
import numbers
from collections.abc import Iterable
from typing import Any

import numpy as np

from ..models.base import summarise
from ..models.batched import BatchedLinearGaussianModel
from ..models.batched_diffusion import BatchedDiffusionModel
from ..models.batched_glm import BatchedGLMModel
from ..policies.base import ContextualBandit
from ..rules import UCB, DecisionRule, Greedy, ProbabilityUCB, ThompsonSampling, argmax_active

__all__ = ["BATCHED_MODELS", "LockstepPolicies", "stacked_rule"]

#: rules whose scores are a function of the summary alone (they draw nothing themselves), so
#: that one call scores every run
_STACKABLE = (ThompsonSampling, Greedy, UCB, ProbabilityUCB)

#: the batched models, tried in order: each ``from_models(models, max_cells=...,
#: max_effect_dim=...)`` returns the batch that continues the R one-run models, or None when it
#: cannot hold them. A new kind of model that can step runs together appends its class here
#: (it must offer ``n_runs``, ``draws``, the summaries of its draws for (R, …) contexts with
#: ``rngs``, ``contexts(X)`` and ``update(X, A, Y, rngs)``).
BATCHED_MODELS: list[Any] = [BatchedLinearGaussianModel, BatchedGLMModel, BatchedDiffusionModel]


def stacked_rule(rules: list[DecisionRule]) -> DecisionRule | None:
    """One rule that scores R runs' summaries (R, K) at once, or None.

    The runs' rules must be of one stackable type; a numeric parameter that differs between
    them (LinUCB's width ``alpha``, set per environment) becomes a column (R, 1), which the
    rule's own numpy formula broadcasts over the actions. Any other difference: None.
    """
    first = rules[0]
    if type(first) not in _STACKABLE or any(type(r) is not type(first) for r in rules):
        return None
    params = [vars(r) for r in rules]
    if any(p.keys() != params[0].keys() for p in params):
        return None
    out = copy.copy(first)
    for name, value in params[0].items():
        values = [p[name] for p in params]
        if all(v == value for v in values):
            continue
        if not all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
            return None
        setattr(out, name, np.array(values, dtype=np.float64)[:, None])
    return out


class LockstepPolicies:
    """R one-run policies of one kind stepped together: ``select(X)`` and ``update(X, A, Y)``
    for all runs, with the posteriors, rules and generators of the policies they were built
    from.

    Parameters
    ----------
    model : BatchedLinearGaussianModel, BatchedGLMModel or BatchedDiffusionModel
        The R posteriors (any of :data:`BATCHED_MODELS`).
    rule : DecisionRule
        The runs' rule (see :func:`stacked_rule`).
    rngs : sequence of R numpy Generators
        Run r draws from ``rngs[r]`` only.
    active : ndarray of bool, shape (R, K)
        The actions each run may choose.
    """

    def __init__(self, model: Any, rule: DecisionRule,
                 rngs: list[np.random.Generator], active: np.ndarray) -> None:
        self.model = model
        self.rule = rule
        self.rngs = list(rngs)
        self.active = np.asarray(active, dtype=bool)
        self._all_active = bool(self.active.all())
        self._runs = np.arange(model.n_runs)

    @classmethod
    def from_policies(cls, policies: Iterable[Any], *, max_cells: int | None = None,
                      max_effect_dim: int | None = None) -> LockstepPolicies | None:
        """The runs of ``policies`` (one per run, of one class), or None when they cannot be
        stepped together: not contextual policies of one class, rules that are not
        :func:`stacked_rule`-able or ask for a summary the batched model does not offer
        (UCB widths that grow with the counts), or models that none of
        :data:`BATCHED_MODELS` can hold (their ``from_models`` apply the size limits)."""
        policies = list(policies)
        if not policies or not all(
            isinstance(p, ContextualBandit) and type(p) is type(policies[0]) for p in policies
        ):
            return None
        rule = stacked_rule([p.rule for p in policies])
        if rule is None:
            return None
        models = [p.model for p in policies]
        for kind in BATCHED_MODELS:
            model = kind.from_models(models, max_cells=max_cells, max_effect_dim=max_effect_dim)
            if model is not None:
                break
        if model is None or rule.draw not in model.draws:
            return None
        return cls(model, rule, [p.rng for p in policies], np.stack([p.active for p in policies]))

    @property
    def n_runs(self) -> int:
        return self.model.n_runs

    def select(self, X: Any) -> np.ndarray:
        """One action per run for the contexts ``X`` (R, d) or (R, K, d), (R,) int."""
        X = self.model.contexts(X)
        scores = self.rule.scores(summarise(self.model, self.rule.draw, X, self.rngs), None)
        masked = scores if self._all_active else np.where(self.active, scores, -np.inf)
        best = np.argmax(masked, axis=1)
        if self.rule.random_ties:
            top = masked == masked[self._runs, best][:, None]
            for r in np.flatnonzero(top.sum(axis=1) > 1):  # the tied runs only (first rounds)
                best[r] = argmax_active(scores[r], self.active[r], self.rngs[r], True)
        return best

    def update(self, X: Any, A: Any, Y: Any) -> None:
        """Condition run r on reward ``Y[r]`` of action ``A[r]`` in context ``X[r]``."""
        self.model.update(X, A, Y, self.rngs)

    def effect_posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """Every run's effect posterior: mean (R, L, d), covariance (R, L·d, L·d)."""
        return self.model.effect_posterior()

    def action_posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """Every run's marginal action posterior: mean (R, K, d), covariance (R, K, d, d)."""
        return self.model.action_posterior()

    def __repr__(self) -> str:
        return f"LockstepPolicies({self.model!r}, rule={type(self.rule).__name__})"
