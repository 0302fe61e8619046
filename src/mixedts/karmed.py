"""Context-free K-armed bandits: Bernoulli and Gaussian Thompson sampling, UCB1 and KL-UCB.

The calls drop the context: ``select()``, ``select_batch(n)``, ``update(a, y)`` and
``update_batch(A, Y)``. Delayed and batched feedback is the normal case: draw a batch with
``select_batch(n)`` (n independent decisions from the current posterior) and deliver its rewards
later, in any grouping, with ``update_batch``; ``update_batch`` of n rewards leaves bitwise the
same posterior as n calls of ``update``.

Everything is vectorised over arms and over the rounds of a batch. Thompson sampling over Beta
posteriors uses an exact lazy sampler for batches (:meth:`BetaBernoulliModel.sample_argmax`), so
10⁶ rounds with K = 100 delivered in batches take seconds.

Like every policy, a rejected call raises :class:`~mixedts.ValidationError` naming the argument
and leaves the posterior, the catalogue and the random generator exactly as they were.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _validation as V
from .algorithms import ContextualBandit
from .models.beta import (
    BetaBernoulliModel,
    GaussianArmsModel,
    _finite_vector,
    _positive_vector,
    argmax_rows,
)
from .policies import DecisionRule

__all__ = [
    "KLUCB",
    "UCB1",
    "BernoulliTS",
    "GaussianTS",
    "KArmedBandit",
    "KArmedThompson",
    "KLUCBIndex",
    "UCB1Index",
]


def _bernoulli_kl(p: np.ndarray, q: np.ndarray) -> np.ndarray:
    eps = 1e-15
    p = np.clip(p, eps, 1 - eps)
    q = np.clip(q, eps, 1 - eps)
    return p * np.log(p / q) + (1 - p) * np.log((1 - p) / (1 - q))


# ---------------------------------------------------------------------------- decision rules
class KArmedRule(DecisionRule):
    """A rule for context-free arms: ``choose(model, n, active, rng)`` returns n arms.

    The default draws ``batch_scores`` (n, K) — in chunks of rounds, to bound memory — and
    takes a row-wise argmax over active arms, breaking ties uniformly at random.
    """

    deterministic = True
    #: entries (rounds × arms) scored at once by ``choose``
    chunk_entries = 1 << 20

    def batch_scores(self, model, n: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def scores(self, model, x, rng):
        return self.batch_scores(model, 1, rng)[0]

    def choose(self, model, n: int, active: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        step = max(1, self.chunk_entries // max(1, model.n_actions))
        if n <= step:
            return argmax_rows(self.batch_scores(model, n, rng), active, rng)
        return np.concatenate([
            argmax_rows(self.batch_scores(model, min(step, n - s), rng), active, rng)
            for s in range(0, n, step)
        ])


class KArmedThompson(KArmedRule):
    """Thompson sampling over arms: argmax of one posterior draw per round.

    ``optimistic=True`` is optimistic Thompson sampling (May et al. 2012; Chapelle & Li 2011):
    the score of an arm is max(draw, posterior mean), so no arm is scored below its mean.
    """

    name = "karmed-thompson"

    def __init__(self, optimistic: bool = False) -> None:
        self.optimistic = bool(optimistic)

    def batch_scores(self, model, n, rng):
        draws = model.sample_scores_batch(n, rng)
        if self.optimistic:
            draws = np.maximum(draws, model.mean_scores())
        return draws

    def choose(self, model, n, active, rng):
        if not self.optimistic and hasattr(model, "sample_argmax"):
            return model.sample_argmax(n, active, rng)
        return super().choose(model, n, active, rng)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "optimistic": self.optimistic}


class UCB1Index(KArmedRule):
    """UCB1 (Auer, Cesa-Bianchi & Fischer 2002): μ̂_i + √(c ln t / n_i), unplayed arms first.

    t is the total number of observations, c = ``exploration`` (2 in the paper).
    """

    name = "ucb1"

    def __init__(self, exploration: float = 2.0) -> None:
        self.exploration = V.check_positive(exploration, "exploration")

    def index(self, model) -> np.ndarray:
        n = model.counts()
        t = max(float(n.sum()), 1.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            bonus = np.sqrt(self.exploration * np.log(t) / n)
        return np.where(n > 0, model.empirical_means() + bonus, np.inf)

    def batch_scores(self, model, n, rng):
        return np.broadcast_to(self.index(model), (n, model.n_actions))

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "exploration": self.exploration}


class KLUCBIndex(KArmedRule):
    """KL-UCB for rewards in [0, 1] (Garivier & Cappé 2011).

    Index of arm i: max{q ∈ [μ̂_i, 1] : n_i kl(μ̂_i, q) ≤ ln t + c ln ln t}, with the Bernoulli
    KL divergence, found by vectorised bisection (``iterations`` halvings, 2⁻⁵⁰ by default);
    unplayed arms first. c = 0 is the variant recommended in practice, c = 3 the one analysed.
    """

    name = "kl-ucb"

    def __init__(self, c: float = 0.0, iterations: int = 50) -> None:
        c = float(c)
        if not np.isfinite(c) or c < 0:
            raise V.ValidationError(f"c must be a non-negative number, got {c!r}")
        self.c = c
        self.iterations = V.check_int(iterations, "iterations", low=1)

    def index(self, model) -> np.ndarray:
        n = model.counts()
        t = max(float(n.sum()), 1.0)
        budget = np.log(t) + (self.c * np.log(np.log(t)) if t > np.e else 0.0)
        played = n > 0
        mean = np.clip(model.empirical_means(), 0.0, 1.0)
        lo, hi = mean.copy(), np.ones_like(mean)
        nn = np.where(played, n, 1.0)
        for _ in range(self.iterations):  # bisection steps, vectorised over arms
            mid = 0.5 * (lo + hi)
            ok = nn * _bernoulli_kl(mean, mid) <= budget
            lo = np.where(ok, mid, lo)
            hi = np.where(ok, hi, mid)
        return np.where(played, lo, np.inf)

    def batch_scores(self, model, n, rng):
        return np.broadcast_to(self.index(model), (n, model.n_actions))

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "c": self.c, "iterations": self.iterations}


#: the K-armed rules by name (for persistence: ``policies.RULES.update(KARMED_RULES)``)
KARMED_RULES: dict[str, type] = {
    cls.name: cls for cls in (KArmedThompson, UCB1Index, KLUCBIndex)
}


# ---------------------------------------------------------------------------- policies
class KArmedBandit(ContextualBandit):
    """A context-free arm model, a rule and a random generator.

    ``select()``/``select_batch(n)`` choose arms from the current posterior (no update in
    between), ``update(a, y)``/``update_batch(A, Y)`` condition on rewards, possibly late.
    ``add_action()`` appends an arm at its prior and returns its index; ``retire_action(i)``
    stops choosing arm ``i`` (its late rewards are still accepted).
    """

    def __init__(self, model, rule: KArmedRule, seed=None) -> None:
        super().__init__(model, rule, seed)

    # ------------------------------------------------------------------ decisions
    def select(self) -> int:  # type: ignore[override]
        """Choose one arm."""
        self._check_any_active()
        return int(self.rule.choose(self.model, 1, self.active, self.rng)[0])

    def select_batch(self, n) -> np.ndarray:  # type: ignore[override]
        """Choose ``n`` arms independently from the current posterior, (n,) int64."""
        n = V.check_int(n, "n", low=0)
        self._check_any_active()
        if n == 0:
            return np.empty(0, dtype=np.int64)
        return self.rule.choose(self.model, n, self.active, self.rng)

    # ------------------------------------------------------------------ feedback
    def _rewards(self, Y: np.ndarray, name: str) -> np.ndarray:
        Y = self.model.check_rewards(Y, name)
        if getattr(self.model, "binarize", False):
            Y = self.rng.binomial(1, Y).astype(np.float64)
        return Y

    def update(self, a, y) -> None:  # type: ignore[override]
        """Condition on reward ``y`` of arm ``a``."""
        a = V.check_action(a, self.n_actions)
        y = self._rewards(np.array([V.check_reward(y)]), "y")
        self.model.update(None, a, float(y[0]))

    def update_batch(self, A, Y) -> None:  # type: ignore[override]
        """Condition on rewards ``Y`` (n,) of arms ``A`` (n,): the same as n ``update`` calls."""
        A = V.check_actions(A, self.n_actions)
        Y = V.as_float_array(Y, "Y", ndim=1)
        if len(A) != len(Y):
            raise V.ValidationError(f"A and Y must have the same length, got {len(A)}, {len(Y)}")
        Y = self._rewards(Y, "Y")
        self.model.update_batch(None, A, Y)

    # ------------------------------------------------------------------ inspection
    def counts(self) -> np.ndarray:
        """Observations per arm, (K,)."""
        return self.model.counts()

    def posterior_mean(self) -> np.ndarray:
        """Posterior mean reward of each arm, (K,)."""
        return self.model.posterior_mean()

    def posterior_cov(self) -> np.ndarray:
        """Posterior variance of each arm's mean reward, (K,)."""
        return self.model.posterior_cov()

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n_actions={self.n_actions}, rule={self.rule!r}, "
            f"retired={int((~self.active).sum())})"
        )


class BernoulliTS(KArmedBandit):
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
    >>> from mixedts.karmed import BernoulliTS
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
        super().__init__(model, KArmedThompson(optimistic), seed)

    def add_action(self, alpha=None, beta=None) -> int:
        """Append an arm with prior Beta(alpha, beta) (the constructor's scalars by default).

        Returns its index; its posterior is its prior."""
        return self._add(alpha, beta)

    def posterior_params(self) -> tuple[np.ndarray, np.ndarray]:
        """Posterior Beta parameters (a, b), each (K,)."""
        return self.model.posterior_params()


class GaussianTS(KArmedBandit):
    """Gaussian Thompson sampling: N(μ0, s0²) priors, Gaussian rewards of known noise σ.

    Parameters
    ----------
    n_actions : int
    prior_mean, prior_std : float or (K,)
    noise_std : float
        σ.
    seed, variance_scale, optimistic : as for :class:`BernoulliTS`.

    Examples
    --------
    >>> from mixedts.karmed import GaussianTS
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
        super().__init__(model, KArmedThompson(optimistic), seed)

    def add_action(self, prior_mean=None, prior_std=None) -> int:
        """Append an arm with prior N(prior_mean, prior_std²); returns its index."""
        return self._add(prior_mean, prior_std)


class UCB1(KArmedBandit):
    """UCB1 for rewards in [0, 1]: μ̂_i + √(exploration · ln t / n_i), unplayed arms first.

    Examples
    --------
    >>> from mixedts.karmed import UCB1
    >>> policy = UCB1(3, seed=0)
    >>> sorted(int(policy.select()) for _ in range(1))[0] in (0, 1, 2)
    True
    """

    def __init__(self, n_actions: int, exploration: float = 2.0, seed=None) -> None:
        K = V.check_int(n_actions, "n_actions", low=1)
        model = BetaBernoulliModel(np.ones(K), np.ones(K))
        super().__init__(model, UCB1Index(exploration), seed)

    def add_action(self) -> int:
        """Append an unplayed arm; returns its index."""
        return self._add()

    def empirical_means(self) -> np.ndarray:
        """Mean observed reward per arm (0 where unplayed), (K,)."""
        return self.model.empirical_means()


class KLUCB(UCB1):
    """KL-UCB for rewards in [0, 1] (Garivier & Cappé 2011); ``c`` as in :class:`KLUCBIndex`."""

    def __init__(self, n_actions: int, c: float = 0.0, seed=None) -> None:
        K = V.check_int(n_actions, "n_actions", low=1)
        model = BetaBernoulliModel(np.ones(K), np.ones(K))
        KArmedBandit.__init__(self, model, KLUCBIndex(c), seed)


#: user-facing classes by name (for ``POLICY_CLASSES``) and their models (``MODEL_CLASSES``)
KARMED_POLICIES: dict[str, type] = {
    cls.__name__: cls for cls in (BernoulliTS, GaussianTS, UCB1, KLUCB)
}
KARMED_MODELS: dict[str, type] = {
    cls.__name__: cls for cls in (BetaBernoulliModel, GaussianArmsModel)
}
