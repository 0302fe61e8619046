"""Weighted sets of experts: reward predictors f_j(x) ∈ [0, 1]^K with log-space weights.

An *expert set* predicts every action's mean reward for N experts at once:
``predict(x) -> (N, K)``. The fast path is :class:`LogisticExperts`, N logistic models stacked
as an (N, d) or (N, K, d) array, where one round costs one matrix product; the experts of
Generalized Thompson sampling are often such a grid or particle set. :class:`TableExperts` are
context-free mean vectors (a discrete prior over K-armed bandit instances), and
:class:`CallableExperts` wraps a list of user functions ``f(x) -> (K,)`` (one Python call per
expert: the slow path). Any object with ``n_experts`` and a vectorised ``predict(x) -> (N, K)``
is wrapped by :class:`VectorisedExperts`.

:class:`ExpertModel` holds the log weights of GTS (exponentiated loss updates, Li 2013) and
:class:`EXP4Model` those of EXP4 (importance-weighted gains, Auer et al. 2002). Weights are kept
normalised in log space (log-sum-exp = 0 after every update), so 10⁶ updates neither overflow
nor underflow. Models validate every prediction they read (shape (N, K), finite, in [0, 1]) and
compute an update completely before committing it, so a bad prediction leaves them unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from scipy.special import expit

from .._validation import (
    ValidationError,
    as_float_array,
    check_context,
    check_contexts,
    check_shape,
)
from .base import SCORE_DRAWS, Draw, register_model

#: memory budget (float64 entries) of one chunk of a vectorised batch prediction
_CHUNK_ENTRIES = 1 << 22


def logsumexp(v: np.ndarray) -> float:
    """log Σ exp(v) of a 1-d array, stable; −inf entries allowed (scipy's is slow for small v)."""
    m = float(v.max())
    if not np.isfinite(m):
        return m
    return m + float(np.log(np.exp(v - m).sum()))


def check_predictions(P: Any, shape: tuple[int, ...], name: str = "experts") -> np.ndarray:
    """Predictions as float64 of exactly ``shape``, finite and in [0, 1]; else ValidationError."""
    try:
        arr = np.asarray(P, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{name} must return numeric predictions: {exc}") from None
    if arr.shape != shape:
        raise ValidationError(f"{name} must return predictions of shape {shape}, got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValidationError(f"{name} returned NaN or infinite predictions")
    if arr.size and (arr.min() < 0.0 or arr.max() > 1.0):
        raise ValidationError(f"{name} must return predictions in [0, 1]")
    return arr


def greedy_advice(P: np.ndarray, active: np.ndarray) -> np.ndarray:
    """Each expert's greedy policy as a distribution over actions, (N, K).

    Expert j plays argmax over the active actions of its predictions P[j]; ties are split
    evenly (the policies break them uniformly at random).
    """
    masked = np.where(active, P, -np.inf)
    top = masked.max(axis=1, keepdims=True)
    mask = masked == top
    return mask / mask.sum(axis=1, keepdims=True)


# ---------------------------------------------------------------------------- expert sets
class ExpertSet:
    """N reward predictors over K actions (base class; subclasses vectorise ``predict``).

    Attributes
    ----------
    n_experts : int
        N.
    n_actions : int or None
        K where the set fixes it (tables, per-action weights), None where the context does.
    dim : int or None
        The context dimension where the set knows it (logistic experts), else None.
    """

    n_experts: int
    n_actions: int | None = None
    dim: int | None = None
    kind = "external"
    #: whether contexts may be omitted (the predictions ignore them)
    context_free = False

    def predict(self, x) -> np.ndarray:
        """Every expert's predicted mean reward of every action, (N, K)."""
        raise NotImplementedError

    def predict_one(self, j: int, x) -> np.ndarray:
        """Expert ``j``'s predictions, (K,)."""
        return np.asarray(self.predict(x))[j]

    def predict_played(self, X, A: np.ndarray) -> np.ndarray:
        """Every expert's prediction of the played action in each round, (n, N)."""
        return np.stack([np.asarray(self.predict(x))[:, a] for x, a in zip(X, A)])

    # contexts ------------------------------------------------------------
    def check_context(self, x, n_actions: int, name: str = "x"):
        """Validate one context (a finite float array of any shape by default)."""
        if x is None and self.context_free:
            return None
        return as_float_array(x, name)

    def check_contexts(self, X, n: int | None, n_actions: int, name: str = "X"):
        """Validate a batch of contexts with leading length ``n`` (None: any)."""
        if X is None and self.context_free:
            if n is None:
                raise ValidationError(f"{name} must be given (or pass n for context-free experts)")
            return [None] * n
        arr = as_float_array(X, name)
        if arr.ndim < 1:
            raise ValidationError(f"{name} must have a leading axis of rounds, got a scalar")
        if n is not None and len(arr) != n:
            raise ValidationError(f"{name} must have {n} rows, got {len(arr)}")
        return arr

    # catalogue / persistence -------------------------------------------------
    def add_action(self, *args) -> None:
        """Predictions for one more action come from the experts themselves (nothing to do)."""
        if args and any(a is not None for a in args):
            raise ValidationError(
                f"{type(self).__name__} takes no arguments for a new action: the experts must "
                "predict it themselves"
            )

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
        """(config, arrays) that rebuild the set, or None when it is code (not saved)."""
        return None


class CallableExperts(ExpertSet):
    """A list of callables ``f_j(x) -> (K,)`` (one Python call per expert and round).

    Callables are code, not data: a saved policy keeps their weights only; after
    ``mixedts.load`` call ``policy.attach(experts=...)`` with the same experts.
    """

    def __init__(self, functions: Sequence[Callable]) -> None:
        functions = list(functions)
        if not functions:
            raise ValidationError("experts must not be empty")
        for j, f in enumerate(functions):
            if not callable(f):
                raise ValidationError(f"experts[{j}] must be callable, got {type(f).__name__}")
        self.functions = functions
        self.n_experts = len(functions)

    def predict(self, x):
        rows = []
        for j, f in enumerate(self.functions):  # user code: one call per expert
            try:
                rows.append(np.asarray(f(x), dtype=np.float64))
            except (TypeError, ValueError) as exc:
                raise ValidationError(f"experts[{j}] must return numeric predictions: {exc}") \
                    from None
        shapes = {r.shape for r in rows}
        if len(shapes) != 1:
            raise ValidationError(f"experts must all return the same shape, got {sorted(shapes)}")
        return np.stack(rows)

    def predict_one(self, j, x):
        return self.functions[j](x)

    def __repr__(self) -> str:
        return f"CallableExperts(n_experts={self.n_experts})"


class VectorisedExperts(ExpertSet):
    """Wraps any object with ``n_experts`` and a vectorised ``predict(x) -> (N, K)``.

    Optional method used when present: ``predict_one(j, x) -> (K,)``. Not saved (it is code);
    re-attach after loading.
    """

    def __init__(self, obj) -> None:
        n = getattr(obj, "n_experts", None)
        if isinstance(n, (bool, np.bool_)) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValidationError(
                "experts must be a list of callables, an (N, d) or (N, K, d) array of logistic "
                "weights, an ExpertSet, or an object with n_experts (int) and predict(x)"
            )
        self.obj = obj
        self.n_experts = int(n)
        self.n_actions = getattr(obj, "n_actions", None)
        self.context_free = bool(getattr(obj, "context_free", False))
        self.one_from_full = not hasattr(obj, "predict_one")

    def predict(self, x):
        return self.obj.predict(x)

    def predict_one(self, j, x):
        if self.one_from_full:
            return np.asarray(self.obj.predict(x))[j]
        return self.obj.predict_one(j, x)

    def __repr__(self) -> str:
        return f"VectorisedExperts({self.obj!r}, n_experts={self.n_experts})"


class TableExperts(ExpertSet):
    """Context-free experts: expert j predicts the fixed mean vector ``means[j]`` (K,).

    A discrete prior over K-armed Bernoulli bandit instances (GTS with log loss, η = 1, γ = 0
    is then exactly Thompson sampling over that prior). Contexts are ignored and may be omitted.

    Parameters
    ----------
    means : ndarray, shape (N, K), entries in [0, 1]

    Raises
    ------
    ValidationError
        ``means`` is not a non-empty (N, K) array of finite values in [0, 1].

    Examples
    --------
    >>> from mixedts import GeneralizedTS, TableExperts
    >>> experts = TableExperts([[0.2, 0.8], [0.7, 0.3]])  # two Bernoulli bandit instances
    >>> policy = GeneralizedTS(experts, seed=0)
    >>> policy.update(a=1, y=1.0)  # a click on action 1: the first instance gains weight
    >>> policy.weights().round(3)
    array([0.727, 0.273])
    """

    kind = "table"
    context_free = True

    def __init__(self, means) -> None:
        means = as_float_array(means, "experts", ndim=2)
        if means.shape[0] < 1 or means.shape[1] < 1:
            raise ValidationError(f"experts must have shape (N, K), got {means.shape}")
        self.means = check_predictions(means, means.shape)
        self.n_experts, self.n_actions = means.shape

    def check_context(self, x, n_actions, name="x"):
        return None if x is None else as_float_array(x, name)

    def predict(self, x):
        return self.means

    def predict_one(self, j, x):
        return self.means[j]

    def predict_played(self, X, A):
        return self.means[:, A].T

    def add_action(self, column=None) -> None:
        """Append one action: ``column`` (N,) holds every expert's prediction for it."""
        if column is None:
            raise ValidationError("column must give every expert's prediction for the new action")
        col = check_predictions(column, (self.n_experts,), "column")
        self.means = np.concatenate([self.means, col[:, None]], axis=1)
        self.n_actions += 1

    def get_state(self):
        return {"kind": self.kind}, {"means": self.means}

    @classmethod
    def from_state(cls, cfg, arrays):
        return cls(arrays["means"])

    def __repr__(self) -> str:
        return f"TableExperts(n_experts={self.n_experts}, n_actions={self.n_actions})"


class LogisticExperts(ExpertSet):
    """N logistic reward models stacked in one array: the vectorised fast path.

    ``weights`` (N, d): one weight vector per expert, shared by the actions; contexts are then
    per action, x (K, d), and f_j(x)_a = σ(x_a · w_j + b_j). ``weights`` (N, K, d): one
    weight vector per expert and action; contexts are (d,) shared or (K, d) per action, and
    f_j(x)_a = σ(x_a · w_ja + b_ja).

    Parameters
    ----------
    weights : ndarray, shape (N, d) or (N, K, d)
    bias : ndarray, shape (N,) or (N, K), optional
        Zero by default.

    Raises
    ------
    ValidationError
        ``weights`` with an empty axis, or ``bias`` of the wrong shape.

    Notes
    -----
    One round of GTS with these experts costs one (K, d) product for the sampled expert in
    ``select`` and one (N, d) matrix-vector product in ``update``.

    Examples
    --------
    >>> from mixedts import GeneralizedTS, LogisticExperts
    >>> experts = LogisticExperts(np.eye(2), bias=[0.0, -1.0])  # weights shared by the actions
    >>> x = np.array([[2.0, 0.0], [0.0, 2.0], [0.0, 0.0]])     # one row per action, K = 3
    >>> experts.predict(x).round(2)
    array([[0.88, 0.5 , 0.5 ],
           [0.27, 0.73, 0.27]])
    >>> policy = GeneralizedTS(experts, n_actions=3, seed=0)
    >>> policy.select(x) in (0, 1, 2)
    True
    """

    kind = "logistic"

    def __init__(self, weights, bias=None) -> None:
        W = as_float_array(weights, "experts", ndim=(2, 3))
        if min(W.shape) < 1:
            raise ValidationError(f"experts must have no empty axis, got shape {W.shape}")
        self.weights = W
        self.n_experts, self.dim = W.shape[0], W.shape[-1]
        self.per_action = W.ndim == 3
        self.n_actions = W.shape[1] if self.per_action else None
        bshape = W.shape[:-1]
        if bias is None:
            self.bias = np.zeros(bshape)
        else:
            self.bias = as_float_array(bias, "bias", ndim=len(bshape))
            check_shape(self.bias, bshape, "bias")

    # contexts ------------------------------------------------------------
    def check_context(self, x, n_actions, name="x"):
        x = check_context(x, n_actions, self.dim, name)
        if not self.per_action and x.ndim == 1:
            raise ValidationError(
                f"{name} must have shape ({n_actions}, {self.dim}) (one row per action): the "
                f"experts share one weight vector across actions, got {x.shape}"
            )
        return x

    def check_contexts(self, X, n, n_actions, name="X"):
        X = check_contexts(X, n_actions, self.dim, name)
        if not self.per_action and X.ndim == 2:
            raise ValidationError(
                f"{name} must have shape (n, {n_actions}, {self.dim}) (one row per action): "
                f"the experts share one weight vector across actions, got {X.shape}"
            )
        if n is not None and len(X) != n:
            raise ValidationError(f"{name} must have {n} rows, got {len(X)}")
        return X

    # predictions ---------------------------------------------------------
    def predict(self, x):
        if not self.per_action:  # x (K, d)
            return expit(self.weights @ x.T + self.bias[:, None])
        if x.ndim == 1:
            return expit(self.weights @ x + self.bias)
        return expit(np.einsum("nkd,kd->nk", self.weights, x) + self.bias)

    def predict_one(self, j, x):
        if not self.per_action:
            return expit(x @ self.weights[j] + self.bias[j])
        if x.ndim == 1:
            return expit(self.weights[j] @ x + self.bias[j])
        return expit(np.einsum("kd,kd->k", self.weights[j], x) + self.bias[j])

    def predict_played(self, X, A):
        n = len(A)
        if not self.per_action:  # X (n, K, d): the played rows (n, d) times W (N, d)
            Xa = X[np.arange(n), A]
            return expit(Xa @ self.weights.T + self.bias[None, :])
        Xa = X if X.ndim == 2 else X[np.arange(n), A]  # (n, d)
        out = np.empty((n, self.n_experts))
        step = max(1, _CHUNK_ENTRIES // (self.n_experts * self.dim))
        for s in range(0, n, step):  # chunks of rounds bound the (step, N, d) gather
            a = A[s : s + step]
            Wa = self.weights[:, a, :]  # (N, m, d)
            out[s : s + step] = (
                np.einsum("nmd,md->mn", Wa, Xa[s : s + step]) + self.bias[:, a].T
            )
        return expit(out)

    # catalogue / persistence -------------------------------------------------
    def add_action(self, weights=None, bias=None) -> None:
        """Per-action experts need every expert's weights (N, d) (and bias (N,)) for the new
        action; shared-weight experts need nothing (the new action's context row suffices)."""
        if not self.per_action:
            return super().add_action(weights, bias)
        if weights is None:
            raise ValidationError(
                f"weights must give every expert's weight vector ({self.n_experts}, {self.dim}) "
                "for the new action"
            )
        w = as_float_array(weights, "weights", ndim=2)
        check_shape(w, (self.n_experts, self.dim), "weights")
        b = np.zeros(self.n_experts) if bias is None else as_float_array(bias, "bias", ndim=1)
        check_shape(b, (self.n_experts,), "bias")
        self.weights = np.concatenate([self.weights, w[:, None, :]], axis=1)
        self.bias = np.concatenate([self.bias, b[:, None]], axis=1)
        self.n_actions += 1

    def get_state(self):
        return {"kind": self.kind}, {"weights": self.weights, "bias": self.bias}

    @classmethod
    def from_state(cls, cfg, arrays):
        return cls(arrays["weights"], arrays["bias"])

    def __repr__(self) -> str:
        shape = "x".join(map(str, self.weights.shape))
        return f"LogisticExperts(weights {shape})"


EXPERT_SETS: dict[str, type] = {"table": TableExperts, "logistic": LogisticExperts}


def as_expert_set(experts) -> ExpertSet:
    """Interpret the ``experts`` argument of the expert policies (see the module docstring)."""
    if isinstance(experts, ExpertSet):
        return experts
    if isinstance(experts, np.ndarray):
        return LogisticExperts(experts)
    if isinstance(experts, (list, tuple)):
        if experts and all(callable(f) for f in experts):
            return CallableExperts(experts)
        if experts and not any(callable(f) for f in experts):
            return LogisticExperts(np.asarray(experts, dtype=np.float64))
        return CallableExperts(experts)  # raises, naming the first non-callable
    return VectorisedExperts(experts)


# ---------------------------------------------------------------------------- losses
LOSSES = ("log", "square")


def check_loss(loss) -> str | Callable:
    if callable(loss):
        return loss
    if loss not in LOSSES:
        raise ValidationError(f"loss must be 'log', 'square' or a callable, got {loss!r}")
    return loss


# ---------------------------------------------------------------------------- models
class WeightedExperts:
    """Log-space weights over an expert set, with the shared prediction and catalogue logic.

    Parameters
    ----------
    experts : ExpertSet or None
        None after loading a policy whose experts are code (``attach`` them again).
    n_actions : int
    log_prior : ndarray, shape (N,)
        Log prior weights (any normalisation; -inf for excluded experts).
    eta : float
        Learning rate η.
    """

    def __init__(
        self, experts: ExpertSet | None, n_actions: int, log_prior: np.ndarray, eta: float
    ) -> None:
        self.experts = experts
        self.n_actions = None if n_actions is None else int(n_actions)
        self.log_prior = np.array(log_prior, dtype=np.float64)
        self.n_experts = len(self.log_prior)
        self.log_weights = self.log_prior - logsumexp(self.log_prior)
        self.eta = float(eta)
        self.n_updates = 0
        self._cdf: np.ndarray | None = None

    @property
    def dim(self):
        return None if self.experts is None else self.experts.dim

    # experts ------------------------------------------------------------------
    def _set(self) -> ExpertSet:
        if self.experts is None:
            raise ValidationError(
                "experts are not attached (they are code and were not saved): call "
                "policy.attach(experts=...) with the same experts"
            )
        return self.experts

    def infer_n_actions(self, x) -> None:
        """Learn K from the experts' first prediction (experts that do not fix it)."""
        if self.n_actions is not None:
            return
        P = np.asarray(self._set().predict(x), dtype=np.float64)
        if P.ndim != 2 or P.shape[0] != self.n_experts or P.shape[1] < 1:
            raise ValidationError(
                f"experts must return predictions of shape ({self.n_experts}, K), got {P.shape}"
            )
        check_predictions(P, P.shape)
        self.n_actions = int(P.shape[1])

    def check_context(self, x, name="x"):
        return self._set().check_context(x, self.n_actions, name)

    def check_contexts(self, X, n=None, name="X"):
        return self._set().check_contexts(X, n, self.n_actions, name)

    def predict(self, x) -> np.ndarray:
        """Validated predictions of every expert, (N, K)."""
        return check_predictions(self._set().predict(x), (self.n_experts, self.n_actions))

    def predict_one(self, j: int, x) -> np.ndarray:
        """Validated predictions of expert ``j``, (K,).

        Where the set can only predict all experts at once, all of it is validated."""
        experts = self._set()
        if getattr(experts, "one_from_full", False):
            return self.predict(x)[j]
        return check_predictions(experts.predict_one(j, x), (self.n_actions,))

    def predict_played(self, X, A: np.ndarray) -> np.ndarray:
        """Validated predictions of the played actions, (n, N).

        Sets whose outputs are valid by construction (tables, logistic) and objects with their
        own ``predict_played`` answer directly; otherwise each round's full (N, K) prediction
        is validated, so an expert that is broken on any action is caught.
        """
        experts = self._set()
        shape = (len(A), self.n_experts)
        if type(experts).predict_played is not ExpertSet.predict_played:
            return check_predictions(experts.predict_played(X, A), shape)
        out = np.empty(shape)
        for t, (x, a) in enumerate(zip(X, A)):  # rounds: each one vectorised (N, K) pass
            out[t] = self.predict(x)[:, a]
        return out

    # weights ------------------------------------------------------------------
    def weights(self) -> np.ndarray:
        """Normalised weights, (N,) (they sum to 1; the log weights are kept normalised)."""
        return np.exp(self.log_weights)

    def _commit(self, log_weights: np.ndarray, n: int) -> None:
        """Store ``log_weights`` normalised (log-sum-exp 0)."""
        self.log_weights = log_weights - logsumexp(log_weights)
        self.n_updates += n
        self._cdf = None  # recomputed from the log weights alone: a reloaded model agrees

    def sample_expert(self, rng: np.random.Generator) -> int:
        """One expert j ~ weights (one uniform draw; O(N) after an update, then O(log N))."""
        if self._cdf is None:
            self._cdf = np.cumsum(self.weights())
        cdf = self._cdf
        j = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))
        if j >= self.n_experts:  # rounding at the top: the last expert with positive weight
            j = int(np.flatnonzero(np.diff(cdf, prepend=0.0) > 0)[-1])
        return j

    def leader(self, rng: np.random.Generator) -> int:
        """The expert of largest weight (ties broken uniformly)."""
        top = np.flatnonzero(self.log_weights == self.log_weights.max())
        return int(top[0] if len(top) == 1 else top[rng.integers(len(top))])

    # model protocol -------------------------------------------------------------
    def sample_scores(self, x, rng: np.random.Generator) -> np.ndarray:
        """Predictions of one expert drawn from the weights, (K,) (a posterior draw under the
        log loss with η = 1)."""
        return self.predict_one(self.sample_expert(rng), x)

    def leader_scores(self, x, rng: np.random.Generator) -> np.ndarray:
        return self.predict_one(self.leader(rng), x)

    def mean_scores(self, x) -> np.ndarray:
        """Weighted average prediction, (K,)."""
        return self.weights() @ self.predict(x)

    def score_std(self, x) -> np.ndarray:
        """Weighted standard deviation of the predictions, (K,)."""
        P = self.predict(x)
        w = self.weights()
        m = w @ P
        return np.sqrt(np.maximum(w @ (P - m) ** 2, 0.0))

    def posterior_mean(self) -> np.ndarray:
        """The posterior over which expert is right is Categorical(w): its mean, the weights
        (N,)."""
        return self.weights()

    def posterior_cov(self) -> np.ndarray:
        """Covariance of the one-hot expert indicator under Categorical(w), diag(w) − wwᵀ,
        (N, N)."""
        w = self.weights()
        return np.diag(w) - np.outer(w, w)

    def sample_parameters(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` one-hot draws of the expert indicator, (n, N) (j ~ Categorical(w))."""
        w = self.weights()
        picks = rng.choice(self.n_experts, size=n, p=w / w.sum())
        return np.eye(self.n_experts)[picks]

    def advice(self, x, active: np.ndarray) -> np.ndarray:
        """P(action) when an expert j ~ w plays its greedy action, (K,): Σ_j w_j π_j(x)."""
        return self.weights() @ greedy_advice(self.predict(x), active)

    def leader_advice(self, x, active: np.ndarray) -> np.ndarray:
        """P(action) when the leader (ties split evenly) plays its greedy action, (K,)."""
        leaders = self.log_weights == self.log_weights.max()
        return (leaders / leaders.sum()) @ greedy_advice(self.predict(x), active)

    # catalogue ------------------------------------------------------------------
    def add_action(self, *args) -> int:
        self._set().add_action(*args)
        self.n_actions += 1
        return self.n_actions - 1

    # persistence ------------------------------------------------------------------
    def _base_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        if self.n_actions is None:
            raise ValidationError(
                "n_actions is not known yet (the experts fix it at their first prediction): "
                "select or update once before saving"
            )
        state = None if self.experts is None else self.experts.get_state()
        if state is None:
            ecfg, earrays = {"kind": "external"}, {}
        else:
            ecfg, earrays = state
        cfg = {
            "n_actions": self.n_actions,
            "n_experts": self.n_experts,
            "eta": self.eta,
            "n_updates": self.n_updates,
            "experts": ecfg,
        }
        arrays = {"log_prior": self.log_prior, "log_weights": self.log_weights}
        arrays.update({f"experts.{k}": v for k, v in earrays.items()})
        return cfg, arrays

    @staticmethod
    def _experts_from_state(cfg, arrays) -> ExpertSet | None:
        kind = cfg["experts"]["kind"]
        if kind == "external":
            return None
        sub = {k[len("experts."):]: v for k, v in arrays.items() if k.startswith("experts.")}
        return EXPERT_SETS[kind].from_state(cfg["experts"], sub)

    def _restore(self, cfg, arrays) -> None:
        lw = np.asarray(arrays["log_weights"], dtype=np.float64)
        if lw.shape != (self.n_experts,) or np.any(np.isnan(lw)) or np.any(lw == np.inf):
            raise ValueError("log_weights must be (N,) without NaN or +inf")
        self.log_weights = lw.copy()
        self.n_updates = int(cfg["n_updates"])
        if self.experts is not None:
            if self.experts.n_experts != self.n_experts:
                raise ValueError("saved experts do not match the saved weights")

    def attach(self, experts: ExpertSet) -> None:
        """Attach (again) the expert set; it must have the same number of experts."""
        if experts.n_experts != self.n_experts:
            raise ValidationError(
                f"experts must hold {self.n_experts} experts (as saved), got {experts.n_experts}"
            )
        if experts.n_actions is not None and experts.n_actions != self.n_actions:
            raise ValidationError(
                f"experts must predict {self.n_actions} actions, got {experts.n_actions}"
            )
        self.experts = experts


@register_model
class ExpertModel(WeightedExperts):
    """GTS weights (Li 2013): w_j ← w_j exp(−η ℓ(f_j(x, a), r)) for every expert on the played
    pair (x, a, r).

    Parameters
    ----------
    experts, n_actions, log_prior, eta : as for :class:`WeightedExperts`
    loss : {"log", "square"} or callable
        ``"log"``: −r ln f − (1 − r) ln(1 − f) with f clipped into [clip, 1 − clip] (rewards
        must lie in [0, 1]); ``"square"``: (f − r)²; a callable ``loss(F, y)`` receives the
        predictions F (n, N) of the played actions and the rewards y (n, 1) and returns the
        (n, N) losses (finite).
    clip : float
        The log loss's clipping ε.
    """

    draws = SCORE_DRAWS | {Draw.LEADER}

    def __init__(self, experts, n_actions, log_prior, eta=1.0, loss="log", clip=1e-12) -> None:
        super().__init__(experts, n_actions, log_prior, eta)
        self.loss = loss
        self.clip = float(clip)

    @property
    def loss_name(self) -> str:
        return self.loss if isinstance(self.loss, str) else "callable"

    def check_rewards(self, Y: np.ndarray, name: str) -> np.ndarray:
        if self.loss == "log" and Y.size and (Y.min() < 0.0 or Y.max() > 1.0):
            raise ValidationError(f"{name} must lie in [0, 1] for the log loss")
        return Y

    def losses(self, F: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """Loss of every expert in every round, (n, N), from predictions F (n, N), rewards (n,)."""
        y = Y[:, None]
        if self.loss == "square":
            return (F - y) ** 2
        if self.loss == "log":
            f = np.clip(F, self.clip, 1.0 - self.clip)
            ones, zeros = Y == 1.0, Y == 0.0
            if np.all(ones | zeros):  # binary rewards: one logarithm per entry, same values
                out = np.empty_like(f)
                out[ones] = -np.log(f[ones])
                out[zeros] = -np.log1p(-f[zeros])
                return out
            return -(y * np.log(f) + (1.0 - y) * np.log1p(-f))
        if self.loss is None:
            raise ValidationError(
                "loss is not attached (a callable loss is code and was not saved): call "
                "policy.attach(loss=...)"
            )
        try:
            out = np.asarray(self.loss(F, y), dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ValidationError(f"loss must return numeric losses: {exc}") from None
        if out.shape != F.shape:
            raise ValidationError(f"loss must return losses of shape {F.shape}, got {out.shape}")
        if not np.all(np.isfinite(out)):
            raise ValidationError("loss returned NaN or infinite losses")
        return out

    def proposal(self, X, A: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """The log weights after conditioning on (X, A, Y), computed without committing."""
        L = self.losses(self.predict_played(X, A), Y)
        return self.log_weights - self.eta * L.sum(axis=0)

    def update(self, x, a, y, rng=None) -> None:
        self.update_batch([x], np.array([a]), np.array([y], dtype=np.float64))

    def update_batch(self, X, A, Y, rng=None) -> None:
        self._commit(self.proposal(X, A, Y), len(A))

    def get_state(self):
        cfg, arrays = self._base_state()
        cfg.update({"loss": self.loss_name, "clip": self.clip})
        return cfg, arrays

    @classmethod
    def from_state(cls, cfg, arrays) -> ExpertModel:
        loss = None if cfg["loss"] == "callable" else check_loss(cfg["loss"])
        model = cls(
            cls._experts_from_state(cfg, arrays),
            int(cfg["n_actions"]),
            np.asarray(arrays["log_prior"], dtype=np.float64),
            float(cfg["eta"]),
            loss,
            float(cfg["clip"]),
        )
        model._restore(cfg, arrays)
        return model


@register_model
class EXP4Model(WeightedExperts):
    """EXP4 weights (Auer et al. 2002): each expert's advice is its greedy policy ξ_j (ties
    split evenly); after reward r of action a played with probability p_a, w_j ← w_j
    exp(η ξ_j(a) r / p_a) (the importance-weighted reward estimate). Rewards in [0, 1].
    """

    draws = SCORE_DRAWS | {Draw.LEADER}

    def check_rewards(self, Y: np.ndarray, name: str) -> np.ndarray:
        if Y.size and (Y.min() < 0.0 or Y.max() > 1.0):
            raise ValidationError(f"{name} must lie in [0, 1] for EXP4")
        return Y

    def played_advice(self, X, A: np.ndarray, active: np.ndarray) -> np.ndarray:
        """ξ_j(a_t) for every round and expert, (n, N) (validated predictions)."""
        out = np.empty((len(A), self.n_experts))
        for t, (x, a) in enumerate(zip(X, A)):  # rounds: each a vectorised (N, K) pass
            out[t] = greedy_advice(self.predict(x), active)[:, a]
        return out

    def proposal(
        self,
        advice: np.ndarray,
        Y: np.ndarray,
        gamma: float,
        active: np.ndarray,
        propensities: np.ndarray | None,
    ) -> np.ndarray:
        """Log weights after the rounds' gains (sequentially, when propensities must be
        recomputed from the weights of each round)."""
        lw = self.log_weights
        floor = gamma / active.sum()
        if propensities is not None:
            gains = advice * (Y / propensities)[:, None]
            return lw + self.eta * gains.sum(axis=0)
        for t in range(len(Y)):  # rounds: p_t depends on the weights after round t - 1
            w = np.exp(lw - logsumexp(lw))
            p = (1.0 - gamma) * (w @ advice[t]) + floor
            lw = lw + self.eta * advice[t] * (Y[t] / p)
            lw = lw - logsumexp(lw)
        return lw

    def update(self, x, a, y, rng=None, *, gamma: float = 0.0, active=None,
               propensity: float | None = None) -> None:
        """Condition on reward ``y`` of action ``a`` played with probability ``propensity``
        (recomputed from the weights, γ and the ``active`` mask when None)."""
        p = None if propensity is None else np.array([propensity], dtype=np.float64)
        self.update_batch([x], np.array([a]), np.array([y], dtype=np.float64), rng,
                          gamma=gamma, active=active, propensities=p)

    def update_batch(self, X, A, Y, rng=None, *, gamma: float = 0.0, active=None,
                     propensities=None) -> None:
        """Condition on n rounds: the same as n ``update`` calls."""
        active = np.ones(self.n_actions, dtype=bool) if active is None else active
        advice = self.played_advice(X, A, active)
        self._commit(self.proposal(advice, Y, gamma, active, propensities), len(A))

    def get_state(self):
        return self._base_state()

    @classmethod
    def from_state(cls, cfg, arrays) -> EXP4Model:
        model = cls(
            cls._experts_from_state(cfg, arrays),
            int(cfg["n_actions"]),
            np.asarray(arrays["log_prior"], dtype=np.float64),
            float(cfg["eta"]),
        )
        model._restore(cfg, arrays)
        return model
