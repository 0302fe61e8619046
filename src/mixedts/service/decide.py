"""One decision over an eligible set, with the propensity of the action chosen.

The service decides with the policy's model and rule but its own generator and a per-request
mask (the catalogue's active actions ∩ the request's eligible set), so the law is that of
``policy.select`` restricted to the mask:

* deterministic rules (greedy, UCB, indices): the probability is exact (ties split evenly,
  as the choice breaks them uniformly);
* Thompson sampling: ``n_draws`` posterior draws in one batched pass (the offline issue's
  Monte Carlo propensities); the decision is the first draw's argmax — one exact Thompson
  draw — and the probability is the share of the ``n_draws`` draws whose argmax is that
  action. The decision's own draw counts, so the estimate is at least ``1 / n_draws``: its
  mean is ``(1 + (n_draws − 1) p) / n_draws`` for a true propensity ``p``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .._validation import ValidationError
from ..models.base import Draw, summarise
from ..models.beta import argmax_rows
from ..policies.base import split_ties

_SAMPLING = (Draw.SAMPLE, Draw.SAMPLES, Draw.SAMPLES_MEAN)


@dataclasses.dataclass(frozen=True)
class Decision:
    action: int
    probability: float
    ranking: list[int] | None = None


def check_servable(core) -> None:
    """Raise ``ValidationError`` unless the service can give this policy's propensities."""
    rule = core.rule
    if rule.draw in _SAMPLING and Draw.SAMPLES not in core.model.draws:
        raise ValidationError(
            f"policy: {type(core.model).__name__} cannot draw its posterior n times at once, "
            "so the service cannot log Monte Carlo propensities for it")


def decide(core, x, mask: np.ndarray, n_draws: int, rng: np.random.Generator,
           top: int = 0) -> Decision:
    """The decision for validated context ``x`` over the actions where ``mask`` is True.

    ``core`` is a :class:`~mixedts.ContextualBandit` (a context-free policy's ``contextual``).
    ``top`` > 0 also returns the first ``top`` eligible actions in the order of the scores
    the choice came from (the chosen action first).

    Examples
    --------
    >>> import numpy as np
    >>> from mixedts import LinUCB
    >>> policy = LinUCB(3, 2, alpha=1.0)
    >>> d = decide(policy, np.ones(2), np.array([True, False, True]), 100,
    ...            np.random.default_rng(0), top=2)
    >>> d.action in (0, 2), d.probability, sorted(d.ranking)
    (True, 0.5, [0, 2])
    """
    rule, model = core.rule, core.model
    if rule.draw not in _SAMPLING:
        summary = summarise(model, rule.draw, x, rng)
        scores = rule.index(summary) if rule.batched else rule.scores(summary, rng)
        scores = np.asarray(scores, dtype=np.float64)
        probs = split_ties(scores[None], mask)[0]
        best = np.flatnonzero(probs == probs.max())
        a = int(best[0] if len(best) == 1 else best[rng.integers(len(best))])
        return Decision(a, float(probs[a]), _ranking(scores, mask, a, top))
    if rule.batched:  # context-free Thompson sampling: n choices from one batched summary
        summary = summarise(model, rule.draw, x, rng, n_draws, mask)
        choices = rule.choose(summary, n_draws, mask, rng)
        scores = model.mean_scores(x) if top else None
    else:
        draws = rule.scores(summarise(model, Draw.SAMPLES, x, rng, n_draws), rng)
        choices = argmax_rows(draws, mask, rng)
        scores = draws[0] if top else None
    a = int(choices[0])
    p = np.count_nonzero(choices == a) / n_draws
    return Decision(a, float(p), _ranking(scores, mask, a, top))


def _ranking(scores, mask: np.ndarray, a: int, top: int) -> list[int] | None:
    if not top:
        return None
    eligible = np.flatnonzero(mask)
    order = eligible[np.argsort(-np.asarray(scores)[eligible], kind="stable")]
    order = order[order != a][: top - 1]
    return [a, *order.tolist()]
