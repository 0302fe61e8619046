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

    def update(self, x, a: int, y: float, rng=None) -> None:
        """Condition on reward ``y`` of arm ``a`` (``x`` is ignored)."""
        self.update_batch(None, np.array([a], dtype=np.int64), np.array([y], dtype=np.float64))

    def sample_scores(self, x, rng: np.random.Generator) -> np.ndarray:
        """One posterior draw of every arm's mean reward, (K,)."""
        return self.sample_scores_batch(1, rng)[0]

    def sample_scores_batch(self, n: int, rng: np.random.Generator) -> np.ndarray:
        raise NotImplementedError

    def sample_parameters(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` posterior draws of every arm's mean reward, (n, K, 1) (the protocol's shape)."""
        return self.sample_scores_batch(n, rng)[:, :, None]


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
    """

    reward_range = (0.0, 1.0)

    def __init__(
        self,
        alpha: np.ndarray,
        beta: np.ndarray,
        variance_scale: float = 1.0,
        default_alpha: float = 1.0,
        default_beta: float = 1.0,
    ) -> None:
        self.alpha = np.array(alpha, dtype=np.float64)
        self.beta = np.array(beta, dtype=np.float64)
        self.n_actions = len(self.alpha)
        self.successes = np.zeros(self.n_actions)
        self.failures = np.zeros(self.n_actions)
        self.variance_scale = float(variance_scale)
        self.default_alpha = float(default_alpha)
        self.default_beta = float(default_beta)
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
        )
        model.successes = succ.copy()
        model.failures = fail.copy()
        model.n_updates = int(cfg["n_updates"])
        return model


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
