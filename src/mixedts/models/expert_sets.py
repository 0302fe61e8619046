"""Expert sets: reward predictors f_j(x) ∈ [0, 1]^K for N experts at once.

An *expert set* predicts every action's mean reward for N experts at once:
``predict(x) -> (N, K)``. The fast path is :class:`LogisticExperts`, N logistic models stacked
as an (N, d) or (N, K, d) array, where one round costs one matrix product; the experts of
Generalized Thompson sampling are often such a grid or particle set. :class:`TableExperts` are
context-free mean vectors (a discrete prior over K-armed bandit instances), and
:class:`CallableExperts` wraps a list of user functions ``f(x) -> (K,)`` (one Python call per
expert: the slow path). Any object with ``n_experts`` and a vectorised ``predict(x) -> (N, K)``
is wrapped by :class:`VectorisedExperts`. The weights over a set are
:mod:`mixedts.models.experts`.
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
