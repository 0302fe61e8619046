"""Context-free K-armed posteriors: Beta-Bernoulli and Gaussian arms, vectorised over arms.

These models hold per-arm sufficient statistics and answer posterior queries for all K arms at
once (and for ``n`` independent draws at once, which is what delayed, batched feedback needs).
They never choose an arm. Contexts do not exist here: ``dim`` is 0 and the ``x`` argument of
the :class:`~mixedts.models.base.Model` protocol is accepted and ignored.

Updates use ``numpy.add.at``, which adds in the order given: ``update_batch`` of n rewards
leaves bitwise the same statistics as n calls of ``update``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special

from .._validation import ValidationError, check_positive
from .base import SCORE_DRAWS, Draw, register_model


def _positive_vector(value, n: int, name: str) -> np.ndarray:
    """A scalar broadcast to (n,) or an (n,) array, finite and > 0."""
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValidationError(f"{name} must be a positive number or array, got {value!r}") from None
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise ValidationError(f"{name} must be a scalar or have shape ({n},), got {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValidationError(f"{name} must be positive and finite")
    return arr


def _finite_vector(value, n: int, name: str) -> np.ndarray:
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValidationError(f"{name} must be a number or an array, got {value!r}") from None
    if arr.ndim == 0:
        arr = np.full(n, float(arr))
    if arr.shape != (n,):
        raise ValidationError(f"{name} must be a scalar or have shape ({n},), got {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValidationError(f"{name} contains NaN or infinite values")
    return arr


def argmax_rows(scores: np.ndarray, active: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Row-wise argmax over the active columns of ``scores`` (n, K), ties broken uniformly.

    The generator is used only for rows that hold a tie (never, for continuous scores).
    """
    masked = np.where(active, scores, -np.inf)
    best = masked.argmax(axis=1)
    top = masked[np.arange(len(masked)), best]
    ties = masked == top[:, None]
    n_ties = ties.sum(axis=1)
    rows = np.flatnonzero(n_ties > 1)
    if len(rows):
        pick = rng.integers(0, n_ties[rows])  # one uniform position among each row's ties
        csum = np.cumsum(ties[rows], axis=1)
        best[rows] = (csum <= pick[:, None]).sum(axis=1)
    return best.astype(np.int64)


def _tail_positions(rng: np.random.Generator, total: int, eps: float) -> np.ndarray:
    """The positions of the successes among ``total`` i.i.d. Bernoulli(eps) trials.

    Drawn as cumulative geometric gaps: O(eps · total) work instead of ``total`` uniforms.
    """
    chunk = int(eps * total + 6.0 * np.sqrt(eps * total) + 16)
    pos = np.cumsum(rng.geometric(eps, size=chunk)) - 1
    parts = [pos]
    while parts[-1][-1] < total:
        parts.append(parts[-1][-1] + np.cumsum(rng.geometric(eps, size=chunk)))
    pos = np.concatenate(parts)
    return pos[pos < total]


def lazy_beta_argmax(
    a: np.ndarray,
    b: np.ndarray,
    n: int,
    rng: np.random.Generator,
    eps: float,
    q: np.ndarray | None = None,
) -> np.ndarray | None:
    """``n`` exact draws of argmax_i θ_i with independent θ_i ~ Beta(a_i, b_i), (n,).

    Every arm has a cut-off q_i with P(θ_i > q_i) = eps. Each (round, arm) pair is first told
    whether θ_i lands above q_i (an i.i.d. Bernoulli(eps) event, drawn by geometric skipping);
    those rare upper-tail values are drawn exactly by the inverse incomplete beta function.
    The other arms are visited in decreasing q_i (in blocks of doubling width), and an arm is
    drawn (from Beta truncated to [0, q_i], by rejection) only in the rounds whose current
    maximum is below q_i: an arm that is not drawn has θ_i ≤ q_i ≤ the maximum, so it cannot be
    the argmax. Each θ_i therefore
    keeps its exact distribution as far as the argmax is concerned, while arms that are clearly
    worse than the leaders cost one comparison instead of a Beta draw.

    ``q`` may pass the cut-offs ``betainccinv(a, b, eps)`` when the caller caches them.
    Returns None where the cut-offs are not usable numerically (the caller then draws every arm).
    """
    K = len(a)
    if q is None:
        q = special.betainccinv(a, b, eps)
    if not (np.all(np.isfinite(q)) and np.all(q > 0) and np.all(q < 1)):
        return None
    order = np.argsort(-q, kind="stable")
    pos = _tail_positions(rng, n * K, eps)
    rows, cols = np.divmod(pos, K)
    tail_vals = special.betainccinv(a[cols], b[cols], eps * rng.random(len(pos)))
    best = np.full(n, -1, dtype=np.int64)
    top = np.full(n, -np.inf)
    np.maximum.at(top, rows, tail_vals)
    winner = tail_vals == top[rows]
    best[rows[winner]] = cols[winner]
    start, width = 0, 2
    while start < K:  # blocks of arms, most competitive first, doubling in width
        ks = order[start : start + width]
        if q[ks[0]] <= top.min():
            break  # q only decreases and the maxima only grow: no round can change its argmax
        # Draw arm k in round r iff r's maximum so far is below q_k. That decision never looks
        # at θ_k itself, so every drawn value keeps its (truncated) distribution.
        # (A round whose θ_k fell in the upper tail already has top >= θ_k > q_k: never redrawn.)
        r, c = np.nonzero(top[:, None] < q[ks][None, :])
        if len(r):
            kk = ks[c]
            vals = rng.beta(a[kk], b[kk])
            over = np.flatnonzero(vals > q[kk])
            while len(over):  # truncation to [0, q_k] by rejection: acceptance 1 - eps
                vals[over] = rng.beta(a[kk[over]], b[kk[over]])
                over = over[vals[over] > q[kk[over]]]
            block = np.full((n, len(ks)), -np.inf)
            block[r, c] = vals
            j = block.argmax(axis=1)
            bv = block[np.arange(n), j]
            better = bv > top
            top[better] = bv[better]
            best[better] = ks[j[better]]
        start += width
        width *= 2
    return best


class _ArmsModel:
    """Shared bookkeeping: K arms, no context, an observation count per arm."""

    dim = 0
    n_actions: int
    n_updates: int
    #: rewards this model accepts: (low, high) inclusive
    reward_range: tuple[float, float] = (-np.inf, np.inf)

    def check_rewards(self, Y: np.ndarray, name: str) -> np.ndarray:
        low, high = self.reward_range
        if Y.size and (Y.min() < low or Y.max() > high):
            raise ValidationError(f"{name} must lie in [{low:g}, {high:g}] for this model")
        return Y

    def sample_scores(self, x, rng: np.random.Generator) -> np.ndarray:
        """One posterior draw of every arm's mean reward, (K,)."""
        return self.sample_scores_batch(1, rng)[0]

    def sample_scores_batch(self, n: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def sample_scores_many(self, x, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` independent posterior draws of every arm's mean, (n, K) (``x`` is ignored)."""
        return self.sample_scores_batch(n, rng)

    def sample_parameters(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` posterior draws of every arm's mean reward, (n, K, 1) (the protocol's shape)."""
        return self.sample_scores_batch(n, rng)[:, :, None]


@register_model
class BetaBernoulliModel(_ArmsModel):
    """K independent arms with Bernoulli rewards and Beta(α_i, β_i) priors.

    A reward y ∈ [0, 1] adds y to the arm's successes and 1 − y to its failures (exact Bayes for
    y ∈ {0, 1}; for fractional y the usual pseudo-count generalisation). The posterior of arm i
    is Beta(α_i + s_i, β_i + f_i).

    Parameters
    ----------
    alpha, beta : ndarray, shape (K,)
        Prior pseudo-counts (> 0).
    variance_scale : float
        Posterior reshaping (Chapelle & Li 2011, §4): draws come from Beta(a/v, b/v), whose
        variance is about v times the posterior's (v < 1 exploits more, v > 1 explores more);
        the mean is unchanged. 1 is exact Thompson sampling.
    default_alpha, default_beta : float
        Prior of arms added later with ``add_action()``.
    binarize : bool
        Read by the policy: replace each reward y by a Bernoulli(y) draw before updating.
    """

    draws = SCORE_DRAWS | {Draw.SAMPLES, Draw.SAMPLES_MEAN, Draw.ARGMAX, Draw.INDEX}

    reward_range = (0.0, 1.0)
    #: below this many draws ``sample_argmax`` draws every arm (the lazy sampler's set-up costs
    #: K inverse incomplete-beta evaluations)
    lazy_min_rounds = 64
    #: tail probability of the lazy sampler's per-arm cut-off
    lazy_eps = 1e-3
    #: rounds handled at once by the lazy sampler (bounds the memory of its (rounds, arms) blocks)
    lazy_chunk = 8192

    def __init__(
        self,
        alpha: np.ndarray,
        beta: np.ndarray,
        variance_scale: float = 1.0,
        default_alpha: float = 1.0,
        default_beta: float = 1.0,
        binarize: bool = False,
    ) -> None:
        self.alpha = np.array(alpha, dtype=np.float64)
        self.beta = np.array(beta, dtype=np.float64)
        self.n_actions = len(self.alpha)
        self.successes = np.zeros(self.n_actions)
        self.failures = np.zeros(self.n_actions)
        self.variance_scale = float(variance_scale)
        self.default_alpha = float(default_alpha)
        self.default_beta = float(default_beta)
        self.binarize = bool(binarize)
        self.n_updates = 0

    # ------------------------------------------------------------------ posterior
    def posterior_params(self) -> tuple[np.ndarray, np.ndarray]:
        """Posterior Beta parameters (a, b), each (K,)."""
        return self.alpha + self.successes, self.beta + self.failures

    def counts(self) -> np.ndarray:
        """Observations per arm (successes + failures), (K,)."""
        return self.successes + self.failures

    def empirical_means(self) -> np.ndarray:
        """Mean observed reward per arm (0 where an arm has no data), (K,)."""
        n = self.counts()
        return np.divide(self.successes, n, out=np.zeros(self.n_actions), where=n > 0)

    def sample_scores_batch(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` independent posterior draws of every arm's mean, (n, K)."""
        a, b = self.posterior_params()
        if self.variance_scale != 1.0:
            a, b = a / self.variance_scale, b / self.variance_scale
        return rng.beta(a, b, size=(n, self.n_actions))

    def sample_argmax(self, n: int, active: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """``n`` independent draws of the active arm with the largest posterior sample, (n,).

        Thompson sampling's decisions for n rounds with the posterior held fixed. The same
        distribution as drawing every arm (:meth:`sample_scores_batch`) and taking the argmax,
        computed lazily for large batches (see :func:`lazy_beta_argmax`).
        """
        a, b = self.posterior_params()
        if self.variance_scale != 1.0:
            a, b = a / self.variance_scale, b / self.variance_scale
        idx = None
        if not active.all():
            idx = np.flatnonzero(active)
            a, b = a[idx], b[idx]
        if n < self.lazy_min_rounds or len(a) < 4:
            draws = rng.beta(a, b, size=(n, len(a)))
            if n == 1:  # one round (sequential select): skip the batch machinery
                j = int(draws[0].argmax())
                if np.count_nonzero(draws[0] == draws[0, j]) == 1:
                    return np.array([j if idx is None else idx[j]], dtype=np.int64)
            got = argmax_rows(draws, True, rng)
            return got if idx is None else idx[got]
        q = self._cutoffs(a, b)
        out = np.empty(n, dtype=np.int64)
        for start in range(0, n, self.lazy_chunk):  # memory: one (chunk, K) mask at a time
            m = min(self.lazy_chunk, n - start)
            got = lazy_beta_argmax(a, b, m, rng, self.lazy_eps, q)
            if got is None:
                got = argmax_rows(rng.beta(a, b, size=(m, len(a))), True, rng)
            out[start : start + m] = got if idx is None else idx[got]
        return out

    def _cutoffs(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """betainccinv(a, b, eps), recomputed only for arms whose parameters changed.

        A cache of a pure function of (a, b): it is not part of the state, and a copy or a
        reloaded model recomputes exactly the same values.
        """
        cache = getattr(self, "_cutoff_cache", None)
        if cache is not None and cache[0].shape == a.shape and cache[2] == self.lazy_eps:
            ca, cb, _, cq = cache
            changed = np.flatnonzero((ca != a) | (cb != b))
            if len(changed):
                cq = cq.copy()
                cq[changed] = special.betainccinv(a[changed], b[changed], self.lazy_eps)
        else:
            cq = special.betainccinv(a, b, self.lazy_eps)
        self._cutoff_cache = (a.copy(), b.copy(), self.lazy_eps, cq)
        return cq

    def mean_scores(self, x=None) -> np.ndarray:
        a, b = self.posterior_params()
        return a / (a + b)

    def score_std(self, x=None) -> np.ndarray:
        a, b = self.posterior_params()
        s = a + b
        return np.sqrt(a * b / (s * s * (s + 1.0)))

    def posterior_mean(self) -> np.ndarray:
        """Posterior mean of each arm's success probability, (K,)."""
        return self.mean_scores()

    def posterior_cov(self) -> np.ndarray:
        """Posterior variance of each arm's success probability, (K,)."""
        return self.score_std() ** 2

    def upper_quantile(self, eps: float) -> np.ndarray:
        """The (1 − eps) quantile of each arm's (reshaped) sampling distribution, (K,)."""
        a, b = self.posterior_params()
        v = self.variance_scale
        return special.betaincinv(a / v, b / v, 1.0 - eps)

    # ------------------------------------------------------------------ updates
    def update(self, x, a: int, y: float, rng=None) -> None:
        """Condition on reward ``y`` ∈ [0, 1] of arm ``a`` (``x`` is ignored)."""
        self.successes[a] += y
        self.failures[a] += 1.0 - y
        self.n_updates += 1

    def update_batch(self, X, A: np.ndarray, Y: np.ndarray, rng=None) -> None:
        """Condition on rewards ``Y`` (n,) in [0, 1] of arms ``A`` (n,) (``X`` is ignored)."""
        np.add.at(self.successes, A, Y)
        np.add.at(self.failures, A, 1.0 - Y)
        self.n_updates += len(A)

    # ------------------------------------------------------------------ catalogue
    def add_action(self, alpha=None, beta=None) -> int:
        """Append an arm with prior Beta(alpha, beta) (the defaults when omitted)."""
        a = self.default_alpha if alpha is None else check_positive(alpha, "alpha")
        b = self.default_beta if beta is None else check_positive(beta, "beta")
        self.alpha = np.append(self.alpha, a)
        self.beta = np.append(self.beta, b)
        self.successes = np.append(self.successes, 0.0)
        self.failures = np.append(self.failures, 0.0)
        self.n_actions += 1
        return self.n_actions - 1

    # ------------------------------------------------------------------ persistence
    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        cfg = {
            "variance_scale": self.variance_scale,
            "default_alpha": self.default_alpha,
            "default_beta": self.default_beta,
            "binarize": self.binarize,
            "n_updates": self.n_updates,
        }
        arrays = {
            "alpha": self.alpha,
            "beta": self.beta,
            "successes": self.successes,
            "failures": self.failures,
        }
        return cfg, arrays

    @classmethod
    def from_state(cls, cfg: dict[str, Any], arrays: dict[str, np.ndarray]) -> BetaBernoulliModel:
        alpha = np.asarray(arrays["alpha"], dtype=np.float64)
        beta = np.asarray(arrays["beta"], dtype=np.float64)
        succ = np.asarray(arrays["successes"], dtype=np.float64)
        fail = np.asarray(arrays["failures"], dtype=np.float64)
        if not (alpha.ndim == 1 and alpha.shape == beta.shape == succ.shape == fail.shape):
            raise ValueError("inconsistent Beta-Bernoulli arrays")
        model = cls(
            _positive_vector(alpha, len(alpha), "alpha"),
            _positive_vector(beta, len(alpha), "beta"),
            check_positive(cfg["variance_scale"], "variance_scale"),
            check_positive(cfg["default_alpha"], "default_alpha"),
            check_positive(cfg["default_beta"], "default_beta"),
            bool(cfg["binarize"]),
        )
        model.successes = succ.copy()
        model.failures = fail.copy()
        model.n_updates = int(cfg["n_updates"])
        return model


@register_model
class GaussianArmsModel(_ArmsModel):
    """K independent arms with Gaussian rewards of known noise σ and N(μ0_i, s0_i²) priors.

    Posterior of arm i after n_i rewards summing to S_i: precision p_i = 1/s0_i² + n_i/σ²,
    mean (μ0_i/s0_i² + S_i/σ²) / p_i.

    Parameters
    ----------
    prior_mean, prior_std : ndarray, shape (K,)
    noise_std : float
    variance_scale : float
        Draws use v times the posterior variance (posterior reshaping; 1 is exact TS).
    default_mean, default_std : float
        Prior of arms added later with ``add_action()``.
    """

    draws = SCORE_DRAWS | {Draw.SAMPLES, Draw.SAMPLES_MEAN, Draw.INDEX}

    def __init__(
        self,
        prior_mean: np.ndarray,
        prior_std: np.ndarray,
        noise_std: float = 1.0,
        variance_scale: float = 1.0,
        default_mean: float = 0.0,
        default_std: float = 1.0,
    ) -> None:
        self.prior_mean = np.array(prior_mean, dtype=np.float64)
        self.prior_std = np.array(prior_std, dtype=np.float64)
        self.n_actions = len(self.prior_mean)
        self.noise_std = float(noise_std)
        self.variance_scale = float(variance_scale)
        self.default_mean = float(default_mean)
        self.default_std = float(default_std)
        self.n = np.zeros(self.n_actions)
        self.sums = np.zeros(self.n_actions)
        self.n_updates = 0

    def _posterior(self) -> tuple[np.ndarray, np.ndarray]:
        prior_prec = 1.0 / self.prior_std**2
        noise_prec = 1.0 / self.noise_std**2
        prec = prior_prec + self.n * noise_prec
        mean = (self.prior_mean * prior_prec + self.sums * noise_prec) / prec
        return mean, 1.0 / prec

    def counts(self) -> np.ndarray:
        """Observations per arm, (K,)."""
        return self.n.copy()

    def empirical_means(self) -> np.ndarray:
        """Mean observed reward per arm (0 where an arm has no data), (K,)."""
        return np.divide(self.sums, self.n, out=np.zeros(self.n_actions), where=self.n > 0)

    def sample_scores_batch(self, n: int, rng: np.random.Generator) -> np.ndarray:
        mean, var = self._posterior()
        std = np.sqrt(var * self.variance_scale)
        return mean + std * rng.standard_normal((n, self.n_actions))

    def mean_scores(self, x=None) -> np.ndarray:
        return self._posterior()[0]

    def score_std(self, x=None) -> np.ndarray:
        return np.sqrt(self._posterior()[1])

    def posterior_mean(self) -> np.ndarray:
        """Posterior mean of each arm's mean reward, (K,)."""
        return self._posterior()[0]

    def posterior_cov(self) -> np.ndarray:
        """Posterior variance of each arm's mean reward, (K,)."""
        return self._posterior()[1]

    def update(self, x, a: int, y: float, rng=None) -> None:
        """Condition on reward ``y`` of arm ``a`` (``x`` is ignored)."""
        self.n[a] += 1.0
        self.sums[a] += y
        self.n_updates += 1

    def update_batch(self, X, A: np.ndarray, Y: np.ndarray, rng=None) -> None:
        """Condition on rewards ``Y`` (n,) of arms ``A`` (n,) (``X`` is ignored)."""
        np.add.at(self.n, A, 1.0)
        np.add.at(self.sums, A, Y)
        self.n_updates += len(A)

    def add_action(self, prior_mean=None, prior_std=None) -> int:
        """Append an arm with prior N(prior_mean, prior_std²) (the defaults when omitted)."""
        mean = self.default_mean if prior_mean is None else _finite_vector(
            prior_mean, 1, "prior_mean")[0]
        std = self.default_std if prior_std is None else check_positive(prior_std, "prior_std")
        self.prior_mean = np.append(self.prior_mean, mean)
        self.prior_std = np.append(self.prior_std, std)
        self.n = np.append(self.n, 0.0)
        self.sums = np.append(self.sums, 0.0)
        self.n_actions += 1
        return self.n_actions - 1

    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        cfg = {
            "noise_std": self.noise_std,
            "variance_scale": self.variance_scale,
            "default_mean": self.default_mean,
            "default_std": self.default_std,
            "n_updates": self.n_updates,
        }
        arrays = {
            "prior_mean": self.prior_mean,
            "prior_std": self.prior_std,
            "n": self.n,
            "sums": self.sums,
        }
        return cfg, arrays

    @classmethod
    def from_state(cls, cfg: dict[str, Any], arrays: dict[str, np.ndarray]) -> GaussianArmsModel:
        mean = np.asarray(arrays["prior_mean"], dtype=np.float64)
        K = len(mean)
        model = cls(
            _finite_vector(mean, K, "prior_mean"),
            _positive_vector(arrays["prior_std"], K, "prior_std"),
            check_positive(cfg["noise_std"], "noise_std"),
            check_positive(cfg["variance_scale"], "variance_scale"),
            float(cfg["default_mean"]),
            check_positive(cfg["default_std"], "default_std"),
        )
        n = np.asarray(arrays["n"], dtype=np.float64)
        sums = np.asarray(arrays["sums"], dtype=np.float64)
        if n.shape != (K,) or sums.shape != (K,):
            raise ValueError("inconsistent Gaussian-arm arrays")
        model.n, model.sums = n.copy(), sums.copy()
        model.n_updates = int(cfg["n_updates"])
        return model
