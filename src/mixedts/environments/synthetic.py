"""Synthetic mixed-effect bandits (the meTS paper's §5 setting, math.md §6)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.special import expit

from .._validation import ValidationError, as_generator, check_int, check_positive
from ..priors import MixedEffectPrior


@dataclass
class MixedEffectEnvironment:
    """A linear mixed-effect bandit whose parameters are drawn from its own prior.

    Ψ ~ N(0, σ_Ψ² I), θ_i | Ψ ~ N(Σ_l b_il ψ_l, σ0² I), b_il ~ U[low, high],
    x ~ U[−1, 1]^d (one context shared by all actions each round), y = xᵀθ_a + N(0, σ²).

    Parameters
    ----------
    n_actions, n_effects, dim : int
        K, L and d.
    effect_std, action_std, noise_std : float
        σ_Ψ, σ0 and σ (the paper: √3, 1, 1).
    mixing_range : (float, float)
        Bounds of the uniform mixing weights (the paper's text: (−1, 1)).
    reward : {"linear", "logistic"}
        Gaussian rewards xᵀθ + N(0, σ²), or Bernoulli(sigmoid(xᵀθ)) rewards.
    seed : int or Generator
        Draws the mixing weights and the true parameters.

    Examples
    --------
    >>> env = MixedEffectEnvironment(n_actions=5, n_effects=2, dim=3, seed=0)
    >>> rng = np.random.default_rng(1)
    >>> x = env.context(rng)
    >>> env.expected_rewards(x).shape
    (5,)
    """

    n_actions: int = 100
    n_effects: int = 3
    dim: int = 2
    effect_std: float = float(np.sqrt(3.0))
    action_std: float = 1.0
    noise_std: float = 1.0
    mixing_range: tuple[float, float] = (-1.0, 1.0)
    reward: str = "linear"
    seed: int | np.random.Generator | None = None
    prior: MixedEffectPrior = field(init=False, repr=False)
    theta: np.ndarray = field(init=False, repr=False)
    effects: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        K = check_int(self.n_actions, "n_actions", 1)
        L = check_int(self.n_effects, "n_effects", 1)
        d = check_int(self.dim, "dim", 1)
        check_positive(self.effect_std, "effect_std")
        check_positive(self.action_std, "action_std")
        check_positive(self.noise_std, "noise_std")
        if self.reward not in ("linear", "logistic"):
            raise ValidationError(f"reward must be 'linear' or 'logistic', got {self.reward!r}")
        rng = as_generator(self.seed)
        low, high = self.mixing_range
        B = rng.uniform(low, high, (K, L))
        self.prior = MixedEffectPrior(
            np.zeros((L, d)),
            np.broadcast_to(self.effect_std**2 * np.eye(d), (L, d, d)).copy(),
            B,
            self.action_std**2 * np.eye(d),
        )
        self.effects = self.effect_std * rng.standard_normal((L, d))
        self.theta = B @ self.effects + self.action_std * rng.standard_normal((K, d))

    def context(self, rng: np.random.Generator) -> np.ndarray:
        """One context x ~ U[−1, 1]^d, shape (d,)."""
        return rng.uniform(-1.0, 1.0, self.dim)

    def expected_rewards(self, x: np.ndarray) -> np.ndarray:
        """E[y | x, i] for every action: xᵀθ_i, or sigmoid(xᵀθ_i) for logistic rewards, (K,)."""
        u = self.theta @ x
        return expit(u) if self.reward == "logistic" else u

    def draw_reward(self, x: np.ndarray, a: int, rng: np.random.Generator) -> float:
        """A random reward of action ``a`` in context ``x``."""
        u = float(self.theta[a] @ x)
        if self.reward == "logistic":
            return float(rng.uniform() < expit(u))
        return u + self.noise_std * float(rng.standard_normal())
