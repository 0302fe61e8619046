"""Slates (ad placement, meTS §1): K = L^M slates share L item effects through positions."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from .._validation import ValidationError, as_float_array, check_int
from .base import BanditEnvironment, Rounds
from .synthetic import MixedEffectEnvironment


@dataclass(repr=False)
class SlateEnvironment(BanditEnvironment):
    """Slates of ``n_positions`` items from a catalogue of ``n_items``; one action per slate.

    Slate i places item s_im at position m. Its parameter mixes the item effects through
    position weights w_m (position bias): θ_i = Σ_m w_m ψ_{s_im} + ε_i, so the mixing row
    b_i has b_il = Σ_m w_m [s_im = l] — zero for items not in the slate, high for items ranked
    high. The reward is a click, Bernoulli(sigmoid(xᵀθ_i)) by default.

    Parameters
    ----------
    n_items, n_positions : int
        L and M. With ``distinct=False`` there are K = L^M slates (every ordered M-tuple),
        with ``distinct=True`` K = L!/(L − M)! (no item twice).
    dim : int
    position_weights : array_like (M,), optional
        w_m; default 1/log2(m + 2) (1, 0.63, 0.5, …).
    effect_std, action_std, noise_std, reward, contexts, pool_size, context_range, seed
        As for :class:`MixedEffectEnvironment` (``action_std`` is the slate's own deviation
        ε_i from its items: small when position bias explains slates well).

    Examples
    --------
    >>> env = SlateEnvironment(n_items=3, n_positions=2, dim=2, seed=0)
    >>> env.n_actions, env.slates[5].tolist()
    (9, [1, 2])
    >>> env.prior.mixing.toarray()[5].round(2)
    array([0.  , 1.  , 0.63])
    """

    n_items: int = 4
    n_positions: int = 2
    dim: int = 3
    position_weights: Any = None
    distinct: bool = False
    effect_std: float = float(np.sqrt(3.0))
    action_std: float = 0.5
    noise_std: float = 1.0
    reward: str = "logistic"
    contexts: str = "shared"
    pool_size: int = 100
    context_range: tuple[float, float] = (-1.0, 1.0)
    seed: Any = None
    slates: np.ndarray = field(init=False, repr=False)
    inner: MixedEffectEnvironment = field(init=False, repr=False)

    def __post_init__(self) -> None:
        L = check_int(self.n_items, "n_items", 1)
        M = check_int(self.n_positions, "n_positions", 1)
        if self.distinct and M > L:
            raise ValidationError(f"n_positions ({M}) exceeds n_items ({L}) with distinct=True")
        if self.position_weights is None:
            w = 1.0 / np.log2(np.arange(M) + 2.0)
        else:
            w = as_float_array(self.position_weights, "position_weights", ndim=1)
            if w.shape != (M,):
                raise ValidationError(f"position_weights must have shape ({M},), got {w.shape}")
        gen = itertools.permutations(range(L), M) if self.distinct else itertools.product(
            range(L), repeat=M
        )
        self.slates = np.array(list(gen), dtype=np.int64).reshape(-1, M)
        K = len(self.slates)
        rows = np.repeat(np.arange(K), M)
        B = sp.csr_matrix((np.tile(w, K), (rows, self.slates.ravel())), shape=(K, L))
        B.sum_duplicates()
        self.inner = MixedEffectEnvironment(
            n_actions=K,
            n_effects=L,
            dim=self.dim,
            effect_std=self.effect_std,
            action_std=self.action_std,
            noise_std=self.noise_std,
            mixing=B,
            reward=self.reward,
            contexts=self.contexts,
            pool_size=self.pool_size,
            context_range=self.context_range,
            seed=self.seed,
        )

    def __repr__(self) -> str:
        return (
            f"SlateEnvironment(n_items={self.n_items}, n_positions={self.n_positions}, "
            f"n_actions={self.n_actions}, dim={self.dim}, reward={self.reward!r}, "
            f"contexts={self.contexts!r}, distinct={self.distinct})"
        )

    # everything else is the inner mixed-effect environment's
    @property
    def n_actions(self) -> int:  # type: ignore[override]
        return len(self.slates)

    @property
    def n_effects(self) -> int:
        return self.n_items

    @property
    def prior(self):
        return self.inner.prior

    @property
    def theta(self) -> np.ndarray:
        return self.inner.theta

    @property
    def effects(self) -> np.ndarray:
        return self.inner.effects

    @property
    def shared_context(self) -> bool:
        return self.inner.shared_context

    @property
    def context_bound(self) -> float:
        return self.inner.context_bound

    def expected_rewards(self, x: np.ndarray) -> np.ndarray:
        return self.inner.expected_rewards(x)

    def context(self, rng: np.random.Generator) -> np.ndarray:
        return self.inner.context(rng)

    def draw_reward(self, x: np.ndarray, a: int, rng: np.random.Generator) -> float:
        return self.inner.draw_reward(x, a, rng)

    def sample(self, n: int, rng: np.random.Generator) -> Rounds:
        return self.inner.sample(n, rng)
