"""Decision rules: turn a posterior summary into an action.

A rule declares the summary it consumes (its :class:`~mixedts.models.base.Draw`), and the
policy asks the model for exactly that summary and hands it over: a rule never sees a model.
The summaries:

=================  =========================================================================
``Draw``           what the rule receives
=================  =========================================================================
``SAMPLE``         one posterior draw of every action's expected reward, (K,)
``MEAN``           the posterior mean of every action's expected reward, (K,)
``MEAN_STD``       ``(mean, std)``, each (K,)
``MEAN_STD_COUNT`` ``(mean, std, counts)``, each (K,) (widths that grow with the data)
``LEADER``         the predictions of the expert with the largest weight, (K,)
``SAMPLES``        ``n`` posterior draws for ``n`` rounds at once, (n, K) (context-free)
``SAMPLES_MEAN``   ``(draws (n, K), mean (K,))`` (optimistic Thompson sampling)
``ARGMAX``         ``n`` draws of the argmax of a posterior sample, (n,) (exact lazy samplers)
``INDEX``          ``(counts, empirical means)``, each (K,) (frequentist indices)
=================  =========================================================================

Every rule with a ``name`` registers itself (``RULES``), which is how a saved policy finds its
rule again. A rule that mixes in uniform exploration also gives the probability of each action
(``probabilities``), from the model's own advice distribution.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from scipy.special import expit

from ._validation import ValidationError, check_int, check_positive
from .models.base import Draw
from .models.beta import argmax_rows

#: every named rule, by name (filled by ``DecisionRule.__init_subclass__``)
RULES: dict[str, type[DecisionRule]] = {}


class DecisionRule:
    """Base class: ``scores(summary, rng)`` returns one score per action, (K,).

    ``draw`` names the summary the rule consumes; ``random_ties`` says whether equal scores
    need random tie-breaking (deterministic scores do). A subclass with a ``name`` registers
    itself in :data:`RULES`; ``config()`` returns its constructor's arguments.

    Examples
    --------
    A rule that scores the posterior mean minus its standard deviation (a pessimist):

    >>> from mixedts.models.base import Draw
    >>> class LCB(DecisionRule):
    ...     draw = Draw.MEAN_STD
    ...     def scores(self, summary, rng):
    ...         mean, std = summary
    ...         return mean - std
    >>> LCB().scores((np.array([1.0, 0.8]), np.array([0.5, 0.1])), None)
    array([0.5, 0.7])
    """

    name: ClassVar[str] = ""
    draw: Draw = Draw.SAMPLE
    random_ties: ClassVar[bool] = True
    #: whether ``choose`` decides n rounds at once from one batched summary (context-free)
    batched: ClassVar[bool] = False
    #: a cheaper summary with the same law, used where the model offers it (else ``draw``)
    fast_draw: Draw | None = None

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if cls.__dict__.get("name"):
            RULES[cls.name] = cls

    def scores(self, summary, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        return {"name": self.name}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({args})"


def rule_from_config(cfg: dict[str, Any]) -> DecisionRule:
    """The rule that ``rule.config()`` describes.

    Parameters
    ----------
    cfg : dict
        ``{"name": ..., **arguments}``, as ``config()`` returns it.

    Returns
    -------
    DecisionRule

    Examples
    --------
    >>> rule_from_config(UCB(alpha=0.5).config()).alpha
    0.5
    >>> rule_from_config({"name": "kl-ucb", "c": 3.0})
    KLUCBIndex(c=3.0, iterations=50)
    """
    cfg = dict(cfg)
    return RULES[cfg.pop("name")](**cfg)


def argmax_active(
    scores: np.ndarray, active: np.ndarray, rng: np.random.Generator, break_ties: bool,
    all_active: bool | None = None,
) -> int:
    """Index of the best active action; ties broken uniformly with ``rng`` when asked.

    Parameters
    ----------
    scores : ndarray, shape (K,)
    active : ndarray of bool, shape (K,)
        The actions that may be chosen (at least one).
    rng : numpy.random.Generator
        Breaks ties.
    break_ties : bool
        Break ties uniformly (else the lowest index wins).
    all_active : bool, optional
        Whether every action is active, if the caller knows it already.

    Returns
    -------
    int

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> argmax_active(np.array([3.0, 1.0, 3.0]), np.array([True, True, False]), rng, True)
    0
    """
    if all_active is None:
        all_active = bool(active.all())
    masked = scores if all_active else np.where(active, scores, -np.inf)
    best = int(np.argmax(masked))
    if break_ties:
        ties = np.flatnonzero(masked == masked[best])
        if len(ties) > 1:
            best = int(ties[rng.integers(len(ties))])
    return best


def _check_rate(value, name: str, low_open: bool = False) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not np.isfinite(out) or out < 0 or out > 1 or (low_open and out == 0):
        interval = "(0, 1]" if low_open else "[0, 1]"
        raise ValidationError(f"{name} must be in {interval}, got {value!r}")
    return out


# ---------------------------------------------------------------------------- contextual rules
class ThompsonSampling(DecisionRule):
    """Argmax of one posterior draw of every action's expected reward.

    Examples
    --------
    >>> rule = ThompsonSampling()
    >>> rule.draw.value, rule.scores(np.array([0.2, 0.9]), None)
    ('sample', array([0.2, 0.9]))
    """

    name = "thompson"
    draw = Draw.SAMPLE
    random_ties = False

    def scores(self, summary, rng):
        return summary


class Greedy(DecisionRule):
    """Argmax of the posterior mean.

    Examples
    --------
    >>> rule = Greedy()
    >>> rule.draw.value, rule.scores(np.array([0.4, 0.1]), None)
    ('mean', array([0.4, 0.1]))
    """

    name = "greedy"
    draw = Draw.MEAN

    def scores(self, summary, rng):
        return summary


class UCB(DecisionRule):
    """Posterior mean plus a multiplier times the posterior standard deviation.

    With ``width="constant"`` the multiplier is ``alpha``. With ``width="abbasi-yadkori"`` the
    multiplier of action a is the self-normalised bound of Abbasi-Yadkori et al. (2011):
    ``σ √(d log((1 + n_a / (λ d)) / δ)) + √λ · theta_norm``, with ``n_a`` the action's number
    of observations and ``d = dim``.

    Parameters
    ----------
    alpha : float
        The constant multiplier (≥ 0).
    width : {"constant", "abbasi-yadkori"}
    delta : float
        δ ∈ (0, 1) of the self-normalised bound.
    regularization : float
        λ > 0.
    noise_std : float
        σ > 0.
    theta_norm : float
        A bound on ‖θ‖.
    dim : int
        d ≥ 1.

    Raises
    ------
    ValidationError
        An argument out of its range.

    Examples
    --------
    >>> mean, std = np.array([0.1, 0.5]), np.array([0.3, 0.0])
    >>> UCB(alpha=2.0).scores((mean, std), None)
    array([0.7, 0.5])
    >>> UCB(width="abbasi-yadkori", dim=2).draw.value  # also needs the counts
    'mean_std_count'
    """

    name = "ucb"

    def __init__(
        self,
        alpha: float = 1.0,
        width: str = "constant",
        delta: float = 0.05,
        regularization: float = 1.0,
        noise_std: float = 1.0,
        theta_norm: float = 1.0,
        dim: int = 1,
    ) -> None:
        if width not in ("constant", "abbasi-yadkori"):
            raise ValidationError(f"width must be 'constant' or 'abbasi-yadkori', got {width!r}")
        self.alpha = float(alpha)
        if not np.isfinite(self.alpha) or self.alpha < 0:
            raise ValidationError(f"alpha must be a non-negative number, got {alpha!r}")
        self.width = width
        self.delta = check_positive(delta, "delta")
        if self.delta >= 1:
            raise ValidationError(f"delta must be in (0, 1), got {delta}")
        self.regularization = check_positive(regularization, "regularization")
        self.noise_std = check_positive(noise_std, "noise_std")
        self.theta_norm = float(theta_norm)
        self.dim = check_int(dim, "dim", low=1)
        self.draw = Draw.MEAN_STD if width == "constant" else Draw.MEAN_STD_COUNT

    def multiplier(self, counts: np.ndarray | None) -> np.ndarray | float:
        if self.width == "constant":
            return self.alpha
        d, lam = self.dim, self.regularization
        return self.noise_std * np.sqrt(
            d * np.log((1.0 + counts / (lam * d)) / self.delta)
        ) + np.sqrt(lam) * self.theta_norm

    def scores(self, summary, rng):
        mean, std, *counts = summary
        return mean + self.multiplier(counts[0] if counts else None) * std

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "alpha": self.alpha,
            "width": self.width,
            "delta": self.delta,
            "regularization": self.regularization,
            "noise_std": self.noise_std,
            "theta_norm": self.theta_norm,
            "dim": self.dim,
        }


class ProbabilityUCB(DecisionRule):
    """UCB on the probability scale, the meTS authors' UCB-GLM: sigmoid(mean) + α · std.

    ``mean`` is on the linear-predictor scale (a logistic model's x_iᵀθ̂_i).

    Parameters
    ----------
    alpha : float
        α ≥ 0.

    Raises
    ------
    ValidationError
        A negative or non-finite ``alpha``.

    Examples
    --------
    >>> ProbabilityUCB(0.5).scores((np.array([0.0, 1.0]), np.array([0.4, 0.0])), None).round(3)
    array([0.7  , 0.731])
    """

    name = "ucb-probability"
    draw = Draw.MEAN_STD

    def __init__(self, alpha: float = 1.0) -> None:
        self.alpha = float(alpha)
        if not np.isfinite(self.alpha) or self.alpha < 0:
            raise ValidationError(f"alpha must be a non-negative number, got {alpha!r}")

    def scores(self, summary, rng):
        mean, std = summary
        return expit(mean) + self.alpha * std

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "alpha": self.alpha}


# ---------------------------------------------------------------------------- expert rules
class ExpertMixture(DecisionRule):
    """Follow a sampled expert with probability 1 − γ, a uniform active action otherwise.

    GTS's and EXP4's action distribution: (1 − γ) Σ_j w_j π_j(x) + γ/K. The sampled expert's
    predictions are the scores; ties between equal predictions are broken uniformly.

    Parameters
    ----------
    gamma : float
        γ ∈ [0, 1].

    Raises
    ------
    ValidationError
        ``gamma`` outside [0, 1].

    Examples
    --------
    >>> rule = ExpertMixture(gamma=0.3)
    >>> rule.probabilities(np.array([1.0, 0.0, 0.0]), np.ones(3, dtype=bool))
    array([0.8, 0.1, 0.1])
    """

    name = "expert-mixture"
    draw = Draw.SAMPLE

    def __init__(self, gamma: float = 0.0) -> None:
        self.gamma = _check_rate(gamma, "gamma")

    @property
    def exploration(self) -> float:
        """The probability of a uniform action."""
        return self.gamma

    def scores(self, summary, rng):
        if self.gamma > 0 and rng.random() < self.gamma:
            return rng.random(len(summary))  # argmax over active arms: uniform among them
        return summary

    def probabilities(self, advice: np.ndarray, active: np.ndarray) -> np.ndarray:
        """Mix the model's advice distribution (K,) with uniform exploration, (K,)."""
        e = self.exploration
        return (1.0 - e) * advice + e * active / active.sum()

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "gamma": self.gamma}


class ExpertGreedy(ExpertMixture):
    """ε-greedy over experts: the leader's greedy action w.p. 1 − ε, uniform otherwise.

    Parameters
    ----------
    epsilon : float
        ε ∈ [0, 1].

    Raises
    ------
    ValidationError
        ``epsilon`` outside [0, 1].

    Examples
    --------
    >>> rule = ExpertGreedy(epsilon=0.1)
    >>> rule.draw.value, rule.probabilities(np.array([0.0, 1.0]), np.ones(2, dtype=bool))
    ('leader', array([0.05, 0.95]))
    """

    name = "expert-greedy"
    draw = Draw.LEADER

    def __init__(self, epsilon: float = 0.1) -> None:
        self.epsilon = self.gamma = _check_rate(epsilon, "epsilon")

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "epsilon": self.epsilon}


# ---------------------------------------------------------------------------- K-armed rules
def _bernoulli_kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    eps = 1e-15
    p = np.clip(p, eps, 1 - eps)
    q = np.clip(q, eps, 1 - eps)
    return p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))


class KArmedRule(DecisionRule):
    """A rule for context-free arms: ``choose(summary, active, rng)`` returns n arms at once.

    The summary holds n rounds (``Draw.SAMPLES``: an (n, K) block; ``Draw.INDEX``: one index
    for every round); the choice is a row-wise argmax over active arms, ties broken uniformly.
    A subclass implements ``choose`` or ``index`` (one score per arm, the same for every
    round).

    Examples
    --------
    >>> class Greediest(KArmedRule):  # the best empirical mean, every round
    ...     draw = Draw.INDEX
    ...     def index(self, summary):
    ...         counts, means = summary
    ...         return means
    >>> summary = (np.array([3.0, 2.0]), np.array([0.2, 0.6]))
    >>> Greediest().choose(summary, 3, np.ones(2, dtype=bool), np.random.default_rng(0))
    array([1, 1, 1])
    """

    batched = True
    #: entries (rounds × arms) the policy asks for at once (bounds memory)
    chunk_entries = 1 << 20

    def index(self, summary) -> np.ndarray:
        raise NotImplementedError

    def choose(self, summary, n: int, active: np.ndarray, rng) -> np.ndarray:
        scores = np.broadcast_to(self.index(summary), (n, len(active)))
        return argmax_rows(scores, active, rng)


class KArmedThompson(KArmedRule):
    """Thompson sampling over arms: argmax of one posterior draw per round.

    ``optimistic=True`` is optimistic Thompson sampling (May et al. 2012; Chapelle & Li 2011):
    the score of an arm is max(draw, posterior mean), so no arm is scored below its mean.
    Without it the rule takes exact argmax draws where the model offers them (``Draw.ARGMAX``)
    and otherwise argmaxes its samples.

    Parameters
    ----------
    optimistic : bool

    Examples
    --------
    >>> draws = np.array([[0.1, 0.9], [0.8, 0.2]])  # two rounds' posterior draws of two arms
    >>> rng, active = np.random.default_rng(0), np.ones(2, dtype=bool)
    >>> KArmedThompson().choose(draws, 2, active, rng)
    array([1, 0])
    >>> KArmedThompson(optimistic=True).choose((draws, np.array([0.5, 0.95])), 2, active, rng)
    array([1, 1])
    """

    name = "karmed-thompson"

    def __init__(self, optimistic: bool = False) -> None:
        self.optimistic = bool(optimistic)
        self.draw = Draw.SAMPLES_MEAN if self.optimistic else Draw.SAMPLES
        #: the exact argmax sampler is a faster way to the same law
        self.fast_draw = None if self.optimistic else Draw.ARGMAX

    def choose(self, summary, n, active, rng):
        if self.optimistic:
            draws, mean = summary
            return argmax_rows(np.maximum(draws, mean), active, rng)
        if isinstance(summary, np.ndarray) and summary.ndim == 1:  # Draw.ARGMAX
            return summary
        return argmax_rows(summary, active, rng)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "optimistic": self.optimistic}


class UCB1Index(KArmedRule):
    """UCB1 (Auer, Cesa-Bianchi & Fischer 2002): μ̂_i + √(c ln t / n_i), unplayed arms first.

    t is the total number of observations, c = ``exploration`` (2 in the paper).

    Parameters
    ----------
    exploration : float
        c > 0.

    Raises
    ------
    ValidationError
        A non-positive ``exploration``.

    Examples
    --------
    >>> counts, means = np.array([2.0, 1.0, 0.0]), np.array([0.5, 1.0, 0.0])
    >>> UCB1Index().index((counts, means)).round(3)  # the unplayed arm comes first
    array([1.548, 2.482,   inf])
    """

    name = "ucb1"
    draw = Draw.INDEX

    def __init__(self, exploration: float = 2.0) -> None:
        self.exploration = check_positive(exploration, "exploration")

    def index(self, summary) -> np.ndarray:
        n, means = summary
        t = max(float(n.sum()), 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            bonus = np.sqrt(self.exploration * np.log(t) / n)
        return np.where(n > 0, means + bonus, np.inf)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "exploration": self.exploration}


class KLUCBIndex(KArmedRule):
    """KL-UCB for rewards in [0, 1] (Garivier & Cappé 2011).

    Index of arm i: max{q ∈ [μ̂_i, 1] : n_i kl(μ̂_i, q) ≤ ln t + c ln ln t}, with the Bernoulli
    KL divergence, found by vectorised bisection (``iterations`` halvings, 2⁻⁵⁰ by default);
    unplayed arms first. c = 0 is the variant recommended in practice, c = 3 the one analysed.

    Parameters
    ----------
    c : float
        c ≥ 0.
    iterations : int
        Bisection steps (≥ 1).

    Raises
    ------
    ValidationError
        A negative ``c`` or ``iterations`` < 1.

    Examples
    --------
    >>> counts, means = np.array([2.0, 1.0, 1.0]), np.array([0.5, 1.0, 0.0])
    >>> KLUCBIndex().index((counts, means)).round(3)
    array([0.933, 1.   , 0.75 ])
    """

    name = "kl-ucb"
    draw = Draw.INDEX

    def __init__(self, c: float = 0.0, iterations: int = 50) -> None:
        c = float(c)
        if not np.isfinite(c) or c < 0:
            raise ValidationError(f"c must be a non-negative number, got {c!r}")
        self.c = c
        self.iterations = check_int(iterations, "iterations", low=1)

    def index(self, summary) -> np.ndarray:
        n, means = summary
        t = max(float(n.sum()), 1.0)
        budget = np.log(t) + (self.c * np.log(np.log(t)) if t > np.e else 0.0)
        played = n > 0
        mean = np.clip(means, 0.0, 1.0)
        lo, hi = mean.copy(), np.ones_like(mean)
        nn = np.where(played, n, 1.0)
        for _ in range(self.iterations):  # bisection steps, vectorised over arms
            mid = 0.5 * (lo + hi)
            ok = nn * _bernoulli_kl(mean, mid) <= budget
            lo = np.where(ok, mid, lo)
            hi = np.where(ok, hi, mid)
        return np.where(played, lo, np.inf)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "c": self.c, "iterations": self.iterations}
