"""Decision rules: turn scores into an action; a rule never touches posterior internals."""

from __future__ import annotations

from typing import Any

import numpy as np

from ._validation import ValidationError, check_positive


class DecisionRule:
    """Base class: ``scores(model, x, rng)`` returns one score per action, (K,)."""

    name = "rule"
    #: whether ties between equal scores need random breaking (deterministic scores)
    deterministic = True

    def scores(self, model, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        return {"name": self.name}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items() if k != "name")
        return f"{type(self).__name__}({args})"


class ThompsonSampling(DecisionRule):
    """Argmax of one posterior draw of every action's expected reward."""

    name = "thompson"
    deterministic = False

    def scores(self, model, x, rng):
        return model.sample_scores(x, rng)


class Greedy(DecisionRule):
    """Argmax of the posterior mean."""

    name = "greedy"

    def scores(self, model, x, rng):
        return model.mean_scores(x)


class UCB(DecisionRule):
    """Posterior mean plus ``alpha`` posterior standard deviations.

    With ``width="abbasi-yadkori"`` the multiplier of action a is the self-normalised bound of
    Abbasi-Yadkori et al. (2011): ``σ √(d log((1 + n_a / (λ d)) / δ)) + √λ · theta_norm``,
    with ``n_a`` the action's number of observations (needs a model with ``counts()``).
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

    def multiplier(self, model) -> np.ndarray | float:
        if self.width == "constant":
            return self.alpha
        n = model.counts()
        d, lam = model.dim, self.regularization
        return self.noise_std * np.sqrt(
            d * np.log((1.0 + n / (lam * d)) / self.delta)
        ) + np.sqrt(lam) * self.theta_norm

    def scores(self, model, x, rng):
        return model.mean_scores(x) + self.multiplier(model) * model.score_std(x)

    def config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "alpha": self.alpha,
            "width": self.width,
            "delta": self.delta,
            "regularization": self.regularization,
            "noise_std": self.noise_std,
            "theta_norm": self.theta_norm,
        }


RULES = {cls.name: cls for cls in (ThompsonSampling, Greedy, UCB)}


def rule_from_config(cfg: dict[str, Any]) -> DecisionRule:
    cfg = dict(cfg)
    name = cfg.pop("name")
    return RULES[name](**cfg)


def argmax_active(
    scores: np.ndarray, active: np.ndarray, rng: np.random.Generator, break_ties: bool
) -> int:
    """Index of the best active action; ties broken uniformly with ``rng`` when asked."""
    masked = scores if active.all() else np.where(active, scores, -np.inf)
    best = int(np.argmax(masked))
    if break_ties:
        ties = np.flatnonzero(masked == masked[best])
        if len(ties) > 1:
            best = int(ties[rng.integers(len(ties))])
    return best
