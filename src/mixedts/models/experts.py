"""Log-space weights over a set of experts (reward predictors f_j(x) ∈ [0, 1]^K): GTS and EXP4.

The expert sets (``predict(x) -> (N, K)``: :class:`LogisticExperts`, :class:`TableExperts`,
:class:`CallableExperts`, :class:`VectorisedExperts`) are in :mod:`mixedts.models.expert_sets`
and importable from here too.

:class:`ExpertModel` holds the log weights of GTS (exponentiated loss updates, Li 2013) and
:class:`EXP4Model` those of EXP4 (importance-weighted gains, Auer et al. 2002). Weights are kept
normalised in log space (log-sum-exp = 0 after every update), so 10⁶ updates neither overflow
nor underflow. Models validate every prediction they read (shape (N, K), finite, in [0, 1]) and
compute an update completely before committing it, so a bad prediction leaves them unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._validation import ValidationError
from .base import SCORE_DRAWS, Draw, register_model
from .expert_sets import (
    EXPERT_SETS,
    CallableExperts,
    ExpertSet,
    LogisticExperts,
    TableExperts,
    VectorisedExperts,
    as_expert_set,
    check_predictions,
    greedy_advice,
    logsumexp,
)

#: the expert sets are re-exported: ``from mixedts.models.experts import LogisticExperts`` works
__all__ = [
    "EXPERT_SETS",
    "LOSSES",
    "CallableExperts",
    "EXP4Model",
    "ExpertModel",
    "ExpertSet",
    "LogisticExperts",
    "TableExperts",
    "VectorisedExperts",
    "WeightedExperts",
    "as_expert_set",
    "check_loss",
    "check_predictions",
    "greedy_advice",
    "logsumexp",
]

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
