"""Bandits over a set of experts: Generalized Thompson sampling, EXP4 and ε-greedy.

Experts are reward predictors f_j(x) ∈ [0, 1]^K (see :mod:`mixedts.models.experts` for the
forms accepted: a list of callables, an (N, d) or (N, K, d) array of logistic weights — the
fast path —, a :class:`~mixedts.models.experts.TableExperts` of fixed mean vectors, or any
object with ``n_experts`` and a vectorised ``predict(x) -> (N, K)``). Expert j acts greedily:
π_j(x) = argmax_a f_j(x)_a, ties broken uniformly at random.

* :class:`GeneralizedTS` (Li 2013, docs/math.md §7): draw j ~ w, play π_j(x) with probability 1 − γ
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

import copy
from typing import Literal

import numpy as np

from .. import _validation as V
from ..models.base import Draw
from ..models.experts import (
    EXP4Model,
    ExpertModel,
    ExpertSet,
    LogisticExperts,
    WeightedExperts,
    as_expert_set,
    check_loss,
)
from ..rules import ExpertGreedy, ExpertMixture, _check_rate
from .base import ContextualBandit
from .registry import Positive, PositiveInt, Probability, register

__all__ = ["EXP4", "EpsilonGreedyExperts", "GeneralizedTS"]


def experts_from_environment(environment, n_experts: int, seed) -> LogisticExperts:
    """N logistic experts whose weights are drawn from the environment's mixed-effect prior:
    θ_j,i = Σ_l b_il ψ_jl + Σ0^{1/2} z, expert j predicts σ(x_iᵀ θ_j,i), (N, K, d) weights.

    Drawn from a generator of their own (``seed``), so the experts do not depend on the
    policy's stream. Meant for Bernoulli environments (``likelihood = "logistic"``).
    """
    from ._environment import prior_of

    prior = prior_of(environment, "expert policies")
    rng = V.as_generator(seed)
    L, d, K = prior.n_effects, prior.dim, prior.n_actions
    psi = rng.multivariate_normal(np.ravel(prior.effect_mean), prior.effect_cov_full(),
                                  size=n_experts).reshape(n_experts, L, d)
    means = np.einsum("kl,nld->nkd", prior.mixing.toarray(), psi)
    chol = np.linalg.cholesky(np.broadcast_to(prior.action_cov, (K, d, d)))
    noise = np.einsum("kde,nke->nkd", chol, rng.standard_normal((n_experts, K, d)))
    return LogisticExperts(means + noise)


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


def _expert_seed(seed) -> np.random.Generator:
    """The experts' own generator: a draw from a *copy* of the policy's stream, salted, so
    the experts are reproducible and the policy's stream is left untouched."""
    rng = copy.deepcopy(seed) if isinstance(seed, np.random.Generator) else V.as_generator(seed)
    return np.random.default_rng([int(rng.integers(2**63)), 0x5EED])


def _n_actions(expert_set: ExpertSet, n_actions) -> int | None:
    """K: given, fixed by the experts, or None (learnt from the first prediction)."""
    if n_actions is None:
        return expert_set.n_actions
    K = V.check_int(n_actions, "n_actions", low=1)
    if expert_set.n_actions is not None and expert_set.n_actions != K:
        raise V.ValidationError(
            f"n_actions must match the experts' {expert_set.n_actions} actions, got {K}"
        )
    return K


class _ExpertBandit(ContextualBandit):
    """Shared plumbing of the expert policies: contexts are whatever the experts take.

    Where the experts do not fix the number of actions (plain callables) and ``n_actions`` is
    not given, the first prediction fixes it. A call that fails (bad argument, bad expert
    output, an exception raised by an expert) restores the random generator: the policy is
    exactly as it was.
    """

    model: WeightedExperts

    def __init__(self, model: WeightedExperts, rule, seed=None) -> None:
        if model.n_actions is None:  # the first prediction fixes K (see _context)
            self.model, self.rule, self.rng = model, rule, V.as_generator(seed)
            self.active = np.ones(0, dtype=bool)
            return
        super().__init__(model, rule, seed)

    # ------------------------------------------------------------------ sizes
    @property
    def n_experts(self) -> int:
        """N, the number of experts."""
        return self.model.n_experts

    # ------------------------------------------------------------------ contexts
    def _learn_n_actions(self, x) -> None:
        if self.model.n_actions is None:
            self.model.infer_n_actions(x)
            self.active = np.ones(self.model.n_actions, dtype=bool)

    def _context(self, x):
        if self.model.n_actions is None:
            x = self._set_check(x)
            self._learn_n_actions(x)
        return self.model.check_context(x)

    def _set_check(self, x):
        return self.model._set().check_context(x, None)

    def _contexts(self, X, n):
        if self.model.n_actions is None:
            X = self.model._set().check_contexts(X, n, None)
            if len(X):
                self._learn_n_actions(X[0])
            else:
                raise V.ValidationError("X must hold at least one round before K is known")
        return self.model.check_contexts(X, n)

    # ------------------------------------------------------------------ guard
    def _guarded(self, fn, *args):
        state = self.rng.bit_generator.state
        try:
            return fn(*args)
        except BaseException:
            self.rng.bit_generator.state = state
            raise

    # ------------------------------------------------------------------ decisions
    def select(self, x=None) -> int:
        """Choose an action for context ``x`` (omit it for context-free experts)."""
        return self._guarded(super().select, x)

    def select_batch(self, X=None, n=None) -> np.ndarray:
        """Choose one action per round of ``X`` from the current weights, (n,).

        Context-free experts: ``select_batch(n=...)``.
        """
        return self._guarded(super().select_batch, X, n)

    def _is_batch(self, x, batch: bool | None) -> bool:
        """Expert contexts have any shape: a batch only when asked (``batch=True``)."""
        return bool(batch)

    def _probabilities(self, x, n_draws: int, rng) -> tuple[np.ndarray, np.ndarray]:
        """Exact: the experts' advice mixed with γ (or ε) uniform exploration."""
        if self.rule.draw is Draw.LEADER:
            advice = self.model.leader_advice(x, self.active)
        else:
            advice = self.model.advice(x, self.active)
        return self.rule.probabilities(advice, self.active), np.zeros(len(self.active))

    # ------------------------------------------------------------------ feedback
    def _rewards(self, Y: np.ndarray, name: str) -> np.ndarray:
        return self.model.check_rewards(Y, name)

    def _feedback(self, X, A, Y):
        n = len(V.check_actions(A, np.iinfo(np.int64).max)) if X is None else None
        X = self._contexts(X, n)
        A = V.check_actions(A, self.n_actions)
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
        x = self._context(x)
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


@register
class GeneralizedTS(_LossBandit):
    """Generalized Thompson sampling over experts (Li 2013).

    Parameters
    ----------
    experts : list of callables, (N, d) or (N, K, d) array, ExpertSet, or vectorised object
        The N reward predictors (see :mod:`mixedts.policies.experts`).
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
        K where the experts do not fix it (callables, (N, d) logistic weights); without it
        the first prediction fixes it.
    clip : float
        Predictions are clipped into [clip, 1 − clip] inside the log loss.

    Examples
    --------
    >>> import numpy as np
    >>> from mixedts import GeneralizedTS, TableExperts
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

    @classmethod
    def from_environment(cls, environment, seed=None, horizon=None, *,
                         n_experts: PositiveInt = 100, loss: Literal["log", "square"] = "log",
                         eta: Positive = 1.0, gamma: Probability = 0.0):
        """GTS over ``n_experts`` logistic experts drawn from the environment's prior (see
        :func:`experts_from_environment`)."""
        experts = experts_from_environment(environment, n_experts, _expert_seed(seed))
        return cls(experts, loss=loss, eta=eta, gamma=gamma, seed=seed)

    @property
    def gamma(self) -> float:
        return self.rule.gamma


@register
class EpsilonGreedyExperts(_LossBandit):
    """ε-greedy over experts: follow the leader (smallest cumulative loss on the played pairs,
    ties uniformly at random) with probability 1 − ε, a uniform action otherwise.

    Parameters
    ----------
    experts : as for :class:`GeneralizedTS`
    epsilon : float
        The probability of a uniform action, ε ∈ [0, 1] (γ of :class:`GeneralizedTS`).
    loss : {"square", "log"} or callable
        As for :class:`GeneralizedTS`, the square loss by default.
    prior, seed, n_actions
        As for :class:`GeneralizedTS`.
    eta : float
        Only scales the stored log weights (the leader does not depend on it).

    Examples
    --------
    >>> from mixedts import EpsilonGreedyExperts, TableExperts
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

    @classmethod
    def from_environment(cls, environment, seed=None, horizon=None, *,
                         n_experts: PositiveInt = 100, epsilon: Probability = 0.1,
                         loss: Literal["log", "square"] = "square"):
        """ε-greedy over ``n_experts`` logistic experts drawn from the environment's prior."""
        experts = experts_from_environment(environment, n_experts, _expert_seed(seed))
        return cls(experts, epsilon=epsilon, loss=loss, seed=seed)


@register
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

    Notes
    -----
    Delayed feedback: ``update`` and ``update_batch`` take the probability with which each
    action was played (``propensity`` / ``propensities``, e.g. from ``action_probabilities``
    at selection time); without it, p_a is recomputed from the weights at update time (exact
    when every update follows its own select).

    Examples
    --------
    >>> from mixedts import EXP4, TableExperts
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
        if eta is None and K is None:
            raise V.ValidationError(
                "n_actions must be given when eta is not: EXP4's default η = γ/K needs K, and "
                "these experts do not fix it")
        eta = gamma / K if eta is None else V.check_positive(eta, "eta")
        model = EXP4Model(expert_set, K, _log_prior(prior, expert_set.n_experts), eta)
        super().__init__(model, ExpertMixture(gamma), V.as_generator(seed))

    @classmethod
    def from_environment(cls, environment, seed=None, horizon=None, *,
                         n_experts: PositiveInt = 100, gamma: Probability = 0.1,
                         eta: Positive | None = None):
        """EXP4 over ``n_experts`` logistic experts drawn from the environment's prior."""
        experts = experts_from_environment(environment, n_experts, _expert_seed(seed))
        return cls(experts, gamma=gamma, eta=eta, seed=seed)

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
        x = self._context(x)
        a = V.check_action(a, self.n_actions)
        Y = self._rewards(np.array([V.check_reward(y)]), "y")
        p = None
        if propensity is not None:
            p = self._propensities([V.check_reward(propensity, "propensity")], 1, "propensity")
        self.model.update_batch(_one(x), np.array([a], dtype=np.int64), Y, gamma=self.gamma,
                                active=self.active, propensities=p)

    def update_batch(self, X=None, A=None, Y=None, propensities=None) -> None:
        """Condition on n rounds: the same as n ``update`` calls (with the same propensities)."""
        X, A, Y = self._feedback(X, A, Y)
        p = self._propensities(propensities, len(A), "propensities")
        self.model.update_batch(X, A, Y, gamma=self.gamma, active=self.active, propensities=p)


