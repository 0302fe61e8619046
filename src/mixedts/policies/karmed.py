"""Context-free K-armed bandits: Bernoulli and Gaussian Thompson sampling, UCB1 and KL-UCB.

Each is a :class:`~mixedts.policies.base.ContextFreeBandit`: it wraps a contextual bandit
whose model has no context, and its calls drop the context: ``select()``,
``select_batch(n)``, ``update(a, y)`` and ``update_batch(A, Y)``. Delayed and batched
feedback is the normal case: draw a batch with ``select_batch(n)`` (n independent decisions
from the current posterior) and deliver its rewards later, in any grouping, with
``update_batch``; ``update_batch`` of n rewards leaves bitwise the same posterior as n calls
of ``update``.

Everything is vectorised over arms and over the rounds of a batch. Thompson sampling over Beta
posteriors uses an exact lazy sampler for batches (``Draw.ARGMAX``), so 10⁶ rounds with
K = 100 delivered in batches take seconds.

Like every policy, a rejected call raises :class:`~mixedts.ValidationError` naming the argument
and leaves the posterior, the catalogue and the random generator exactly as they were.
"""

from __future__ import annotations

import numpy as np

from .. import _validation as V
from ..models.beta import (
    BetaBernoulliModel,
    GaussianArmsModel,
    _finite_vector,
    _positive_vector,
)
from ..rules import KArmedThompson, KLUCBIndex, UCB1Index
from .base import ContextFreeBandit, ContextualBandit
from .registry import NonNegative, Positive, register

__all__ = ["KLUCB", "UCB1", "ArmsBandit", "BernoulliTS", "GaussianTS"]


class ArmsBandit(ContextualBandit):
    """The contextual form of a K-armed policy: its model has no context (``x`` is None)."""

    def _rewards(self, Y: np.ndarray, name: str) -> np.ndarray:
        Y = self.model.check_rewards(Y, name)
        if getattr(self.model, "binarize", False):
            Y = self.rng.binomial(1, Y).astype(np.float64)
        return Y


class _KArmed(ContextFreeBandit):
    contextual_class = ArmsBandit


@register
class BernoulliTS(_KArmed):
    """Beta-Bernoulli Thompson sampling (Thompson 1933; Chapelle & Li 2011).

    Parameters
    ----------
    n_actions : int
        K.
    alpha, beta : float or (K,)
        Beta prior pseudo-counts (> 0); also the prior of arms added later (scalars only).
    seed : int, SeedSequence or numpy Generator, optional
    variance_scale : float
        Posterior reshaping: sample from Beta(a/v, b/v), about v times the posterior variance.
    optimistic : bool
        Optimistic TS: score max(draw, posterior mean).
    binarize : bool
        Replace a reward y ∈ [0, 1] by a Bernoulli(y) draw from the policy's generator (the
        Agrawal–Goyal trick); otherwise y adds y successes and 1 − y failures.

    Examples
    --------
    >>> from mixedts import BernoulliTS
    >>> policy = BernoulliTS(3, seed=0)
    >>> arms = policy.select_batch(4)          # four decisions, feedback arrives later
    >>> policy.update_batch(arms, [1, 0, 1, 1])
    >>> policy.counts().sum()
    np.float64(4.0)
    >>> policy.add_action()
    3
    """

    def __init__(
        self,
        n_actions: int,
        alpha=1.0,
        beta=1.0,
        seed=None,
        variance_scale: float = 1.0,
        optimistic: bool = False,
        binarize: bool = False,
    ) -> None:
        K = V.check_int(n_actions, "n_actions", low=1)
        a = _positive_vector(alpha, K, "alpha")
        b = _positive_vector(beta, K, "beta")
        scale = V.check_positive(variance_scale, "variance_scale")
        default_a = float(alpha) if np.ndim(alpha) == 0 else 1.0
        default_b = float(beta) if np.ndim(beta) == 0 else 1.0
        model = BetaBernoulliModel(a, b, scale, default_a, default_b, binarize=bool(binarize))
        super().__init__(ArmsBandit(model, KArmedThompson(optimistic), seed))

    @classmethod
    def from_environment(cls, environment, seed=None, horizon=None, *, alpha: Positive = 1.0,
                         beta: Positive = 1.0, variance_scale: Positive = 1.0,
                         optimistic: bool = False, binarize: bool = False):
        """One Beta(alpha, beta) arm per action; contexts are ignored (rewards in [0, 1])."""
        return cls(environment.n_actions, alpha, beta, seed, variance_scale, optimistic,
                   binarize)

    def add_action(self, alpha=None, beta=None) -> int:
        """Append an arm with prior Beta(alpha, beta) (the constructor's scalars by default).

        Returns its index; its posterior is its prior."""
        return self._add(alpha, beta)

    def posterior_params(self) -> tuple[np.ndarray, np.ndarray]:
        """Posterior Beta parameters (a, b), each (K,)."""
        return self.model.posterior_params()


@register
class GaussianTS(_KArmed):
    """Gaussian Thompson sampling: N(μ0, s0²) priors, Gaussian rewards of known noise σ.

    Parameters
    ----------
    n_actions : int
        K.
    prior_mean, prior_std : float or (K,)
        μ0 and s0 (> 0) of each arm; the scalars are also the prior of arms added later.
    noise_std : float
        σ.
    seed, variance_scale, optimistic
        As for :class:`BernoulliTS`.

    Examples
    --------
    >>> from mixedts import GaussianTS
    >>> policy = GaussianTS(2, prior_std=2.0, seed=1)
    >>> policy.update_batch([0, 0, 1], [0.3, 0.5, -1.0])
    >>> policy.counts()
    array([2., 1.])
    """

    def __init__(
        self,
        n_actions: int,
        prior_mean=0.0,
        prior_std=1.0,
        noise_std: float = 1.0,
        seed=None,
        variance_scale: float = 1.0,
        optimistic: bool = False,
    ) -> None:
        K = V.check_int(n_actions, "n_actions", low=1)
        mean = _finite_vector(prior_mean, K, "prior_mean")
        std = _positive_vector(prior_std, K, "prior_std")
        noise = V.check_positive(noise_std, "noise_std")
        scale = V.check_positive(variance_scale, "variance_scale")
        dm = float(prior_mean) if np.ndim(prior_mean) == 0 else 0.0
        ds = float(prior_std) if np.ndim(prior_std) == 0 else 1.0
        model = GaussianArmsModel(mean, std, noise, scale, dm, ds)
        super().__init__(ArmsBandit(model, KArmedThompson(optimistic), seed))

    @classmethod
    def from_environment(cls, environment, seed=None, horizon=None, *, prior_mean: float = 0.0,
                         prior_std: Positive = 1.0, noise_std: Positive | None = None,
                         variance_scale: Positive = 1.0, optimistic: bool = False):
        """One N(prior_mean, prior_std²) arm per action, σ the environment's unless given;
        contexts are ignored."""
        noise = noise_std if noise_std is not None else getattr(environment, "noise_std", 1.0)
        return cls(environment.n_actions, prior_mean, prior_std, noise, seed, variance_scale,
                   optimistic)

    def add_action(self, prior_mean=None, prior_std=None) -> int:
        """Append an arm with prior N(prior_mean, prior_std²); returns its index."""
        return self._add(prior_mean, prior_std)


@register
class UCB1(_KArmed):
    """UCB1 for rewards in [0, 1]: μ̂_i + √(exploration · ln t / n_i), unplayed arms first.

    Parameters
    ----------
    n_actions : int
        K.
    exploration : float
        c > 0 (2 in Auer, Cesa-Bianchi & Fischer 2002); t is the number of observations.
    seed : int, SeedSequence or numpy Generator, optional
        Breaks ties.

    Examples
    --------
    >>> from mixedts import UCB1
    >>> policy = UCB1(3, seed=0)
    >>> policy.select() in (0, 1, 2)
    True
    """

    def __init__(self, n_actions: int, exploration: float = 2.0, seed=None) -> None:
        K = V.check_int(n_actions, "n_actions", low=1)
        model = BetaBernoulliModel(np.ones(K), np.ones(K))
        super().__init__(ArmsBandit(model, UCB1Index(exploration), seed))

    @classmethod
    def from_environment(cls, environment, seed=None, horizon=None, *,
                         exploration: Positive = 2.0):
        """UCB1 over the environment's actions; contexts are ignored (rewards in [0, 1])."""
        return cls(environment.n_actions, exploration, seed)

    def add_action(self) -> int:
        """Append an unplayed arm; returns its index."""
        return self._add()

    def empirical_means(self) -> np.ndarray:
        """Mean observed reward per arm (0 where unplayed), (K,)."""
        return self.model.empirical_means()


@register
class KLUCB(UCB1):
    """KL-UCB for rewards in [0, 1] (Garivier & Cappé 2011).

    Parameters
    ----------
    n_actions : int
        K.
    c : float
        ≥ 0, as in :class:`~mixedts.rules.KLUCBIndex` (0: the variant recommended in
        practice; 3: the one analysed).
    seed : int, SeedSequence or numpy Generator, optional
        Breaks ties.

    Examples
    --------
    >>> from mixedts import KLUCB
    >>> policy = KLUCB(3, seed=0)
    >>> policy.update_batch([0, 1, 2, 2], [0.0, 1.0, 1.0, 1.0])
    >>> policy.empirical_means()
    array([0., 1., 1.])
    >>> policy.select()
    2
    """

    def __init__(self, n_actions: int, c: float = 0.0, seed=None) -> None:
        K = V.check_int(n_actions, "n_actions", low=1)
        model = BetaBernoulliModel(np.ones(K), np.ones(K))
        _KArmed.__init__(self, ArmsBandit(model, KLUCBIndex(c), seed))

    @classmethod
    def from_environment(cls, environment, seed=None, horizon=None, *,  # type: ignore[override]
                         c: NonNegative = 0.0):
        """KL-UCB over the environment's actions; contexts are ignored (rewards in [0, 1])."""
        return cls(environment.n_actions, c, seed)
