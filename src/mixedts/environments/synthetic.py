"""Synthetic mixed-effect bandits (the meTS paper's §5 setting, docs/math.md §6)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from .._validation import (
    ValidationError,
    as_generator,
    check_int,
    check_mixing,
    check_positive,
)
from ..priors import MixedEffectPrior
from .base import BanditEnvironment, Rounds

MIXINGS = ("dense", "sparse", "onehot", "dirichlet")
REWARDS = ("linear", "logistic")
CONTEXTS = ("shared", "pool")


def _check_range(value: Any, name: str) -> tuple[float, float]:
    try:
        low, high = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValidationError(f"{name} must be a pair (low, high), got {value!r}") from None
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValidationError(f"{name} must be finite with low < high, got {value!r}")
    return low, high


def draw_mixing(
    kind: str,
    n_actions: int,
    n_effects: int,
    rng: np.random.Generator,
    mixing_range: tuple[float, float] = (-1.0, 1.0),
    nnz: int = 2,
    alpha: float = 1.0,
) -> np.ndarray | sp.csr_matrix:
    """Random mixing weights B, shape (K, L).

    Parameters
    ----------
    kind : {"dense", "sparse", "onehot", "dirichlet"}
        ``"dense"``: b_il ~ U[low, high]; ``"sparse"``: ``nnz`` entries per row at random
        effects, each U[low, high]; ``"onehot"``: each action in one uniformly drawn effect;
        ``"dirichlet"``: each row ~ Dirichlet(alpha · 1_L) (membership probabilities, as a GMM
        gives).
    n_actions, n_effects : int
        K and L.
    rng : numpy.random.Generator
        Every draw comes from it.
    mixing_range : (float, float)
        (low, high) of ``"dense"`` and ``"sparse"``.
    nnz : int
        Non-zero weights per row of ``"sparse"`` (at most L).
    alpha : float
        Concentration of ``"dirichlet"``.

    Returns
    -------
    ndarray or scipy.sparse.csr_matrix
        (K, L): dense for ``"dense"`` and ``"dirichlet"``, CSR for ``"sparse"`` and
        ``"onehot"``.

    Raises
    ------
    ValidationError
        An unknown ``kind``.

    Examples
    --------
    >>> B = draw_mixing("onehot", 5, 3, np.random.default_rng(0))
    >>> B.toarray().sum(axis=1)
    array([1., 1., 1., 1., 1.])
    """
    K, L = n_actions, n_effects
    low, high = mixing_range
    if kind == "dense":
        return rng.uniform(low, high, (K, L))
    if kind == "sparse":
        nnz = min(nnz, L)
        cols = np.argsort(rng.random((K, L)), axis=1)[:, :nnz]
        vals = rng.uniform(low, high, (K, nnz))
        rows = np.repeat(np.arange(K), nnz)
        return sp.csr_matrix((vals.ravel(), (rows, cols.ravel())), shape=(K, L))
    if kind == "onehot":
        cols = rng.integers(L, size=K)
        return sp.csr_matrix((np.ones(K), (np.arange(K), cols)), shape=(K, L))
    if kind == "dirichlet":
        return rng.dirichlet(np.full(L, alpha), size=K)
    raise ValidationError(f"mixing must be one of {MIXINGS} or a (K, L) array, got {kind!r}")


@dataclass(repr=False)
class MixedEffectEnvironment(BanditEnvironment):
    """A mixed-effect bandit whose true parameters are drawn from its own prior.

    Ψ ~ N(0, σ_Ψ² I), θ_i | Ψ ~ N(Σ_l b_il ψ_l, σ0² I) and rewards
    y = xᵀθ_a + N(0, σ²) (``reward="linear"``) or y ~ Bernoulli(sigmoid(xᵀθ_a))
    (``reward="logistic"``).

    Two ways of drawing contexts, because the paper's text and its authors' code differ
    (docs/math.md §6):

    * ``contexts="shared"`` (the text): each round one x ~ U[low, high]^d shared by every
      action; contexts are (d,).
    * ``contexts="pool"`` (the code): a fixed pool of ``pool_size`` contexts U[low, high]^d is
      drawn with the instance; each round every action draws its own context from the pool;
      contexts are (K, d).

    Parameters
    ----------
    n_actions, n_effects, dim : int
        K, L and d.
    effect_std, action_std, noise_std : float
        σ_Ψ, σ0 and σ (the paper: √3, 1, 1).
    mixing : {"dense", "sparse", "onehot", "dirichlet"} or array_like (K, L)
        How the mixing weights are drawn (see :func:`draw_mixing`), or the weights themselves.
    mixing_range : (float, float)
        Bounds of the uniform weights of ``"dense"`` and ``"sparse"`` (the text: (−1, 1); the
        code's logistic runs: (−1, 2)).
    mixing_nnz : int
        Non-zero weights per action for ``"sparse"``.
    dirichlet_alpha : float
        Concentration of ``"dirichlet"`` rows.
    reward : {"linear", "logistic"}
    contexts : {"shared", "pool"}
    pool_size : int
        Contexts in the pool (``contexts="pool"``; the code: 100).
    context_range : (float, float)
        Bounds of the uniform contexts.
    seed : int, SeedSequence or Generator
        Draws the problem instance: mixing weights, effects, action parameters and the pool.

    Attributes
    ----------
    prior : MixedEffectPrior
        The prior the instance was drawn from (what meTS is given).
    effects : ndarray (L, d)
    theta : ndarray (K, d)
    pool : ndarray (pool_size, d) or None

    Examples
    --------
    >>> env = MixedEffectEnvironment(n_actions=5, n_effects=2, dim=3, seed=0)
    >>> rng = np.random.default_rng(1)
    >>> x = env.context(rng)
    >>> env.expected_rewards(x).shape
    (5,)
    >>> rounds = MixedEffectEnvironment(5, 2, 3, contexts="pool", seed=0).sample(10, rng)
    >>> rounds.contexts.shape, rounds.rewards.shape
    ((10, 5, 3), (10, 5))
    """

    n_actions: int = 100
    n_effects: int = 3
    dim: int = 2
    effect_std: float = float(np.sqrt(3.0))
    action_std: float = 1.0
    noise_std: float = 1.0
    mixing: Any = "dense"
    mixing_range: tuple[float, float] = (-1.0, 1.0)
    mixing_nnz: int = 2
    dirichlet_alpha: float = 1.0
    reward: str = "linear"
    contexts: str = "shared"
    pool_size: int = 100
    context_range: tuple[float, float] = (-1.0, 1.0)
    seed: Any = None
    prior: MixedEffectPrior = field(init=False, repr=False)
    theta: np.ndarray = field(init=False, repr=False)
    effects: np.ndarray = field(init=False, repr=False)
    pool: np.ndarray | None = field(init=False, repr=False)

    def __post_init__(self) -> None:
        K = check_int(self.n_actions, "n_actions", 1)
        L = check_int(self.n_effects, "n_effects", 1)
        d = check_int(self.dim, "dim", 1)
        check_positive(self.effect_std, "effect_std")
        check_positive(self.action_std, "action_std")
        check_positive(self.noise_std, "noise_std")
        if self.reward not in REWARDS:
            raise ValidationError(f"reward must be one of {REWARDS}, got {self.reward!r}")
        if self.contexts not in CONTEXTS:
            raise ValidationError(f"contexts must be one of {CONTEXTS}, got {self.contexts!r}")
        self.mixing_range = _check_range(self.mixing_range, "mixing_range")
        self.context_range = _check_range(self.context_range, "context_range")
        check_int(self.mixing_nnz, "mixing_nnz", 1)
        check_positive(self.dirichlet_alpha, "dirichlet_alpha")
        check_int(self.pool_size, "pool_size", 1)
        rng = as_generator(self.seed)
        if isinstance(self.mixing, str):
            B = draw_mixing(
                self.mixing, K, L, rng, self.mixing_range, self.mixing_nnz, self.dirichlet_alpha
            )
        else:
            B = check_mixing(self.mixing, n_effects=L, name="mixing")
            if B.shape[0] != K:
                raise ValidationError(f"mixing must have shape ({K}, {L}), got {B.shape}")
        eye = np.eye(d)
        self.prior = MixedEffectPrior(
            np.zeros((L, d)),
            np.broadcast_to(self.effect_std**2 * eye, (L, d, d)).copy(),
            B,
            self.action_std**2 * eye,
        )
        self.effects = self.effect_std * rng.standard_normal((L, d))
        mean = np.asarray(self.prior.mixing @ self.effects)
        self.theta = mean + self.action_std * rng.standard_normal((K, d))
        low, high = self.context_range
        self.pool = rng.uniform(low, high, (self.pool_size, d)) if self.contexts == "pool" else None

    def __repr__(self) -> str:
        mixing = self.mixing if isinstance(self.mixing, str) else "array"
        parts = [
            f"n_actions={self.n_actions}",
            f"n_effects={self.n_effects}",
            f"dim={self.dim}",
            f"reward={self.reward!r}",
            f"contexts={self.contexts!r}",
            f"mixing={mixing!r}",
            f"mixing_range={self.mixing_range}",
            f"effect_std={self.effect_std:.4g}",
            f"action_std={self.action_std:.4g}",
        ]
        if self.reward == "linear":
            parts.append(f"noise_std={self.noise_std:.4g}")
        if self.contexts == "pool":
            parts.append(f"pool_size={self.pool_size}")
        return f"{type(self).__name__}({', '.join(parts)})"

    # ---------------------------------------------------------------- truth
    @property
    def shared_context(self) -> bool:
        return self.contexts == "shared"

    @property
    def context_bound(self) -> float:
        if self.pool is not None:
            return float(np.linalg.norm(self.pool, axis=1).max())
        low, high = self.context_range
        return float(np.sqrt(self.dim) * max(abs(low), abs(high)))

    def _link(self, u: np.ndarray) -> np.ndarray:
        return expit(u) if self.reward == "logistic" else u

    def expected_rewards(self, x: np.ndarray) -> np.ndarray:
        """E[y | x, i] for every action: x_iᵀθ_i, or sigmoid(x_iᵀθ_i), shape (K,).

        ``x`` is (d,) shared or (K, d) one row per action.
        """
        x = np.asarray(x, dtype=np.float64)
        u = self.theta @ x if x.ndim == 1 else np.einsum("kd,kd->k", x, self.theta)
        return self._link(u)

    # ---------------------------------------------------------------- rounds
    def context(self, rng: np.random.Generator) -> np.ndarray:
        """One context: x ~ U[low, high]^d (d,), or K pool rows (K, d)."""
        if self.pool is not None:
            return self.pool[rng.integers(len(self.pool), size=self.n_actions)]
        low, high = self.context_range
        return rng.uniform(low, high, self.dim)

    def draw_reward(self, x: np.ndarray, a: int, rng: np.random.Generator) -> float:
        """A random reward of action ``a`` in context ``x``."""
        x = np.asarray(x, dtype=np.float64)
        u = float(self.theta[a] @ (x if x.ndim == 1 else x[a]))
        if self.reward == "logistic":
            return float(rng.uniform() < expit(u))
        return u + self.noise_std * float(rng.standard_normal())

    def sample(self, n: int, rng: np.random.Generator) -> Rounds:
        """Draw ``n`` rounds at once (contexts, expected rewards, every action's reward)."""
        n = check_int(n, "n", 0)
        K = self.n_actions
        if self.pool is not None:
            X = self.pool[rng.integers(len(self.pool), size=(n, K))]
            U = np.einsum("nkd,kd->nk", X, self.theta)
        else:
            low, high = self.context_range
            X = rng.uniform(low, high, (n, self.dim))
            U = X @ self.theta.T
        means = self._link(U)
        if self.reward == "logistic":
            rewards = (rng.random((n, K)) < means).astype(np.float64)
        else:
            rewards = means + self.noise_std * rng.standard_normal((n, K))
        return Rounds(X, means, rewards)

