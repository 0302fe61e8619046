"""Bandits over a set of experts: Generalized Thompson sampling, EXP4 and ε-greedy.

Experts are reward predictors f_j(x) ∈ [0, 1]^K (see :mod:`mixedts.models.experts` for the
forms accepted: a list of callables, an (N, d) or (N, K, d) array of logistic weights — the
fast path —, a :class:`~mixedts.models.experts.TableExperts` of fixed mean vectors, or any
object with ``n_experts`` and a vectorised ``predict(x) -> (N, K)``). Expert j acts greedily:
π_j(x) = argmax_a f_j(x)_a, ties broken uniformly at random.

* :class:`GeneralizedTS` (Li 2013, math.md §7): draw j ~ w, play π_j(x) with probability 1 − γ
  and a uniform action otherwise; after reward r of action a update every expert,
  w_j ← w_j exp(−η ℓ(f_j(x)_a, r)). With the log loss, η = 1 and γ = 0 the weights are the
  Bayes posterior over the experts and GTS *is* Thompson sampling over that discrete prior.
* :class:`EXP4` (Auer et al. 2002): the same mixture distribution over actions, weights
  updated by importance-weighted rewards.
* :class:`EpsilonGreedyExperts`: follow the expert with the smallest cumulative loss on the
  played pairs, explore uniformly with probability ε.

Contexts: whatever the experts take (validated as finite float arrays; (K, d) or (d,) for
logistic experts with their shapes checked; omitted for context-free experts). Every call
validates its arguments and every expert prediction it reads (shape (N, K), finite, in [0, 1])
before changing anything: a rejected call leaves weights and random state exactly as they were.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _validation as V
from .algorithms import ContextualBandit
from .models.experts import (
    EXP4Model,
    ExpertModel,
    ExpertSet,
    LogisticExperts,
    TableExperts,
    WeightedExperts,
    as_expert_set,
    check_loss,
    greedy_advice,
)
from .policies import DecisionRule, argmax_active

__all__ = [
    "EXP4",
    "EpsilonGreedyExperts",
    "ExpertGreedy",
    "ExpertMixture",
    "GeneralizedTS",
    "LogisticExperts",
    "TableExperts",
]


def _check_rate(value, name: str, low_open: bool = False) -> float:
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise V.ValidationError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not np.isfinite(out) or out < 0 or out > 1 or (low_open and out == 0):
        interval = "(0, 1]" if low_open else "[0, 1]"
        raise V.ValidationError(f"{name} must be in {interval}, got {value!r}")
    return out


# ---------------------------------------------------------------------------- decision rules
class ExpertMixture(DecisionRule):
    """Follow a sampled expert with probability 1 − γ, a uniform active action otherwise.

    GTS's and EXP4's action distribution: (1 − γ) Σ_j w_j π_j(x) + γ/K. The expert's
    predictions are the scores; ties between equal predictions are broken uniformly.
    """

    name = "expert-mixture"
    deterministic = True  # expert predictions can tie: break ties at random

    def __init__(self, gamma: float = 0.0) -> None:
        self.gamma = _check_rate(gamma, "gamma")

    def scores(self, model, x, rng):
        if self.gamma > 0 and rng.random() < self.gamma:
            return rng.random(model.n_actions)  # argmax over active arms: uniform among them
        return model.sample_scores(x, rng)

    def probabilities(self, model, x, active) -> np.ndarray:
        return model.action_probabilities(x, self.gamma, active)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "gamma": self.gamma}


class ExpertGreedy(ExpertMixture):
    """ε-greedy over experts: the leader's greedy action w.p. 1 − ε, uniform otherwise."""

    name = "expert-greedy"

    def __init__(self, epsilon: float = 0.1) -> None:
        self.epsilon = self.gamma = _check_rate(epsilon, "epsilon")

    def scores(self, model, x, rng):
        if self.epsilon > 0 and rng.random() < self.epsilon:
            return rng.random(model.n_actions)
        return model.leader_scores(x, rng)

    def probabilities(self, model, x, active) -> np.ndarray:
        leaders = model.log_weights == model.log_weights.max()
        share = leaders / leaders.sum()
        advice = greedy_advice(model.predict(x), active)
        return (1.0 - self.epsilon) * (share @ advice) + self.epsilon * active / active.sum()

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "epsilon": self.epsilon}


#: the expert rules by name (for persistence: ``policies.RULES.update(EXPERT_RULES)``)
EXPERT_RULES: dict[str, type] = {cls.name: cls for cls in (ExpertMixture, ExpertGreedy)}


# ---------------------------------------------------------------------------- policies
def _log_prior(prior, n: int) -> np.ndarray:
    if prior is None:
        return np.zeros(n)
    p = V.as_float_array(prior, "prior", ndim=1)
    V.check_shape(p, (n,), "prior")
    if np.any(p < 0) or p.sum() <= 0:
        raise V.ValidationError("prior must be non-negative with a positive sum")
    with np.errstate(divide="ignore"):
        return np.log(p / p.sum())


def _one(x):
    """One validated context as a batch of one round."""
    return [None] if x is None else x[None]


def _n_actions(expert_set: ExpertSet, n_actions) -> int:
    if n_actions is None:
        if expert_set.n_actions is None:
            raise V.ValidationError(
                "n_actions must be given: these experts do not fix the number of actions"
            )
        return int(expert_set.n_actions)
    K = V.check_int(n_actions, "n_actions", low=1)
    if expert_set.n_actions is not None and expert_set.n_actions != K:
        raise V.ValidationError(
            f"n_actions must match the experts' {expert_set.n_actions} actions, got {K}"
        )
    return K


class _ExpertBandit(ContextualBandit):
    """Shared select/update/batch plumbing of the expert policies.

    A call that fails (bad argument, bad expert output, an exception raised by an expert)
    restores the random generator: the policy is exactly as it was.
    """

    model: WeightedExperts

    # ------------------------------------------------------------------ sizes
    @property
    def n_experts(self) -> int:
        """N, the number of experts."""
        return self.model.n_experts

    @property
    def dim(self):
        """The context dimension where the experts fix it (logistic experts), else None."""
        return self.model.dim

    # ------------------------------------------------------------------ guard
    def _guarded(self, fn, *args):
        state = self.rng.bit_generator.state
        try:
            return fn(*args)
        except BaseException:
            self.rng.bit_generator.state = state
            raise

    # ------------------------------------------------------------------ decisions
    def _select_one(self, x) -> int:
        scores = self.rule.scores(self.model, x, self.rng)
        return argmax_active(scores, self.active, self.rng, True)

    def select(self, x=None) -> int:
        """Choose an action for context ``x`` (omit it for context-free experts)."""
        x = self.model.check_context(x)
        self._check_any_active()
        return self._guarded(self._select_one, x)

    def select_batch(self, X=None, n=None) -> np.ndarray:
        """Choose one action per round of ``X`` from the current weights, (n,).

        Context-free experts: ``select_batch(n=...)``.
        """
        if n is not None:
            n = V.check_int(n, "n", low=0)
        X = self.model.check_contexts(X, n)
        self._check_any_active()
        return self._guarded(lambda: np.array([self._select_one(x) for x in X], dtype=np.int64))

    def action_probabilities(self, x=None) -> np.ndarray:
        """The probability of each action in context ``x``, (K,) (γ or ε mixing included)."""
        x = self.model.check_context(x)
        self._check_any_active()
        return self.rule.probabilities(self.model, x, self.active)

    # ------------------------------------------------------------------ feedback
    def _rewards(self, Y: np.ndarray, name: str) -> np.ndarray:
        return self.model.check_rewards(Y, name)

    def _feedback(self, X, A, Y):
        A = V.check_actions(A, self.n_actions)
        X = self.model.check_contexts(X, len(A) if X is None else None)
        Y = V.as_float_array(Y, "Y", ndim=1)
        if not (len(X) == len(A) == len(Y)):
            raise V.ValidationError(
                f"X, A and Y must have the same length, got {len(X)}, {len(A)}, {len(Y)}"
            )
        return X, A, self._rewards(Y, "Y")

    # ------------------------------------------------------------------ inspection
    def weights(self) -> np.ndarray:
        """The normalised expert weights, (N,) (they sum to 1)."""
        return self.model.weights()

    def log_weights(self) -> np.ndarray:
        """Normalised log weights, (N,) (−inf for experts of zero prior)."""
        return self.model.log_weights.copy()

    @property
    def experts(self) -> ExpertSet | None:
        return self.model.experts

    def posterior_mean(self):
        raise NotImplementedError("expert policies have weights, not parameters: use weights()")

    posterior_cov = posterior_mean
    sample_parameters = posterior_mean

    # ------------------------------------------------------------------ catalogue
    def add_action(self, *args) -> int:
        """Append an action; returns its index. Table experts need the new column (N,),
        per-action logistic experts the new weights (N, d) (and bias (N,)); experts that see
        the action through the context (callables, shared-weight logistic) need nothing."""
        return self._add(*args)

    def attach(self, experts=None, loss=None) -> None:
        """Attach experts (and a callable loss) that a saved file could not hold (code)."""
        if experts is not None:
            self.model.attach(as_expert_set(experts))
        if loss is not None:
            if not isinstance(self.model, ExpertModel):
                raise V.ValidationError("loss applies to GeneralizedTS and EpsilonGreedyExperts")
            self.model.loss = check_loss(loss)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n_experts={self.n_experts}, n_actions={self.n_actions}, "
            f"rule={self.rule!r}, retired={int((~self.active).sum())})"
        )


class _LossBandit(_ExpertBandit):
    model: ExpertModel

    def update(self, x=None, a=None, y=None) -> None:
        """Condition every expert on reward ``y`` of action ``a`` in context ``x``."""
        x = self.model.check_context(x)
        a = V.check_action(a, self.n_actions)
        Y = self._rewards(np.array([V.check_reward(y)]), "y")
        self.model.update_batch(_one(x), np.array([a], dtype=np.int64), Y)

    def update_batch(self, X=None, A=None, Y=None) -> None:
        """Condition on n rounds at once (delayed feedback): the same as n ``update`` calls.

        ``X`` (n, ...) contexts (omit for context-free experts), ``A`` (n,), ``Y`` (n,).
        """
        X, A, Y = self._feedback(X, A, Y)
        self.model.update_batch(X, A, Y)

    @property
    def loss(self):
        return self.model.loss

    @property
    def eta(self) -> float:
        return self.model.eta


class GeneralizedTS(_LossBandit):
    """Generalized Thompson sampling over experts (Li 2013).

    Parameters
    ----------
    experts : list of callables, (N, d) or (N, K, d) array, ExpertSet, or vectorised object
        The N reward predictors (see :mod:`mixedts.experts`).
    loss : {"log", "square"} or callable
        ℓ(f, r). The log loss needs rewards in [0, 1]; a callable receives predictions (n, N)
        and rewards (n, 1) and returns (n, N) losses.
    eta : float
        Learning rate η > 0.
    gamma : float
        Uniform exploration γ ∈ [0, 1]: every active action has probability ≥ γ/K.
    prior : (N,) array, optional
        Prior weights (uniform by default; normalised).
    seed : int, SeedSequence or numpy Generator, optional
    n_actions : int, optional
        K, required when the experts do not fix it (callables, (N, d) logistic weights).
    clip : float
        Predictions are clipped into [clip, 1 − clip] inside the log loss.

    Examples
    --------
    >>> import numpy as np
    >>> from mixedts.experts import GeneralizedTS, TableExperts
    >>> experts = TableExperts([[0.2, 0.8], [0.7, 0.3], [0.5, 0.5]])  # three bandit instances
    >>> policy = GeneralizedTS(experts, loss="log", seed=0)
    >>> a = policy.select()
    >>> policy.update(a=a, y=1.0)
    >>> bool(np.isclose(policy.weights().sum(), 1.0))
    True
    >>> policy.action_probabilities().shape
    (2,)
    """

    def __init__(
        self,
        experts,
        loss="log",
        eta: float = 1.0,
        gamma: float = 0.0,
        prior=None,
        seed=None,
        n_actions: int | None = None,
        clip: float = 1e-12,
    ) -> None:
        expert_set = as_expert_set(experts)
        K = _n_actions(expert_set, n_actions)
        loss = check_loss(loss)
        eta = V.check_positive(eta, "eta")
        clip = V.check_positive(clip, "clip")
        if clip >= 0.5:
            raise V.ValidationError(f"clip must be below 0.5, got {clip}")
        model = ExpertModel(expert_set, K, _log_prior(prior, expert_set.n_experts), eta, loss,
                            clip)
        super().__init__(model, ExpertMixture(gamma), V.as_generator(seed))

    @property
    def gamma(self) -> float:
        return self.rule.gamma


class EpsilonGreedyExperts(_LossBandit):
    """ε-greedy over experts: follow the leader (smallest cumulative loss on the played pairs,
    ties uniformly at random) with probability 1 − ε, a uniform action otherwise.

    Parameters are those of :class:`GeneralizedTS` with ``epsilon`` for γ (the loss defaults to
    the square loss; η only scales the stored log weights).

    Examples
    --------
    >>> from mixedts.experts import EpsilonGreedyExperts, TableExperts
    >>> policy = EpsilonGreedyExperts(TableExperts([[0.2, 0.8], [0.7, 0.3]]), epsilon=0.1, seed=0)
    >>> policy.update(a=0, y=1.0)
    >>> [round(float(p), 2) for p in policy.action_probabilities()]
    [0.95, 0.05]
    """

    def __init__(
        self,
        experts,
        epsilon: float = 0.1,
        loss="square",
        prior=None,
        seed=None,
        n_actions: int | None = None,
        eta: float = 1.0,
    ) -> None:
        expert_set = as_expert_set(experts)
        K = _n_actions(expert_set, n_actions)
        model = ExpertModel(expert_set, K, _log_prior(prior, expert_set.n_experts),
                            V.check_positive(eta, "eta"), check_loss(loss))
        super().__init__(model, ExpertGreedy(epsilon), V.as_generator(seed))


class EXP4(_ExpertBandit):
    """EXP4 (Auer, Cesa-Bianchi, Freund & Schapire 2002) over reward-predicting experts.

    Expert j advises its greedy policy ξ_j (ties split evenly). Actions are drawn from
    p = (1 − γ) Σ_j w_j ξ_j + γ/K; after reward r ∈ [0, 1] of action a, every expert gains
    the importance-weighted estimate ξ_j(a) r / p_a: w_j ← w_j exp(η ξ_j(a) r / p_a).

    Parameters
    ----------
    experts : as for :class:`GeneralizedTS`
    gamma : float
        Uniform exploration γ ∈ (0, 1] (EXP4 needs p_a > 0).
    eta : float, optional
        Learning rate η (γ/K by default, the original choice).
    prior, seed, n_actions : as for :class:`GeneralizedTS`

    Delayed feedback: ``update`` and ``update_batch`` take the probability with which each
    action was played (``propensity`` / ``propensities``, e.g. from ``action_probabilities``
    at selection time); without it, p_a is recomputed from the weights at update time (exact
    when every update follows its own select).

    Examples
    --------
    >>> from mixedts.experts import EXP4, TableExperts
    >>> policy = EXP4(TableExperts([[0.2, 0.8], [0.7, 0.3]]), gamma=0.1, seed=0)
    >>> a = policy.select()
    >>> policy.update(a=a, y=1.0)
    >>> policy.weights().shape
    (2,)
    """

    model: EXP4Model

    def __init__(
        self,
        experts,
        gamma: float = 0.1,
        eta: float | None = None,
        prior=None,
        seed=None,
        n_actions: int | None = None,
    ) -> None:
        expert_set = as_expert_set(experts)
        K = _n_actions(expert_set, n_actions)
        gamma = _check_rate(gamma, "gamma", low_open=True)
        eta = gamma / K if eta is None else V.check_positive(eta, "eta")
        model = EXP4Model(expert_set, K, _log_prior(prior, expert_set.n_experts), eta)
        super().__init__(model, ExpertMixture(gamma), V.as_generator(seed))

    @property
    def gamma(self) -> float:
        return self.rule.gamma

    @staticmethod
    def _propensities(p, n: int, name: str) -> np.ndarray | None:
        if p is None:
            return None
        arr = V.as_float_array(p, name, ndim=1)
        if len(arr) != n:
            raise V.ValidationError(f"{name} must have length {n}, got {len(arr)}")
        if np.any(arr <= 0) or np.any(arr > 1):
            raise V.ValidationError(f"{name} must lie in (0, 1]")
        return arr

    def update(self, x=None, a=None, y=None, propensity=None) -> None:
        """Condition on reward ``y`` of action ``a`` (played with probability ``propensity``)."""
        x = self.model.check_context(x)
        a = V.check_action(a, self.n_actions)
        Y = self._rewards(np.array([V.check_reward(y)]), "y")
        p = None
        if propensity is not None:
            p = self._propensities([V.check_reward(propensity, "propensity")], 1, "propensity")
        A = np.array([a], dtype=np.int64)
        advice = self.model.played_advice(_one(x), A, self.active)
        self.model._commit(self.model.proposal(advice, Y, self.gamma, self.active, p), 1)

    def update_batch(self, X=None, A=None, Y=None, propensities=None) -> None:
        """Condition on n rounds: the same as n ``update`` calls (with the same propensities)."""
        X, A, Y = self._feedback(X, A, Y)
        p = self._propensities(propensities, len(A), "propensities")
        advice = self.model.played_advice(X, A, self.active)
        self.model._commit(self.model.proposal(advice, Y, self.gamma, self.active, p), len(A))


#: user-facing classes by name (for ``POLICY_CLASSES``) and their models (``MODEL_CLASSES``)
EXPERT_POLICIES: dict[str, type] = {
    cls.__name__: cls for cls in (GeneralizedTS, EXP4, EpsilonGreedyExperts)
}
EXPERT_MODELS: dict[str, type] = {cls.__name__: cls for cls in (ExpertModel, EXP4Model)}
