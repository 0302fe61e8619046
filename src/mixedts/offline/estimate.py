"""The one result shape of every estimator: a value, its standard error and a 95% interval."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The 0.975 quantile of the standard normal: a two-sided 95% interval.
Z95 = 1.959963984540054


@dataclass(frozen=True)
class Estimate:
    """An estimated policy value with a normal-approximation 95% confidence interval.

    Attributes
    ----------
    value : float
    stderr : float
        sqrt(Σ_t (ψ_t − ψ̄)² / (n (n − 1))) for the per-row influence terms ψ_t of the estimator
        (its rows' contributions, linearised by the delta method for the self-normalised ones);
        NaN with fewer than two rows. It treats the reward model and the target policy as fixed.
    ci_low, ci_high : float
        value ∓ 1.96 · stderr.

    Examples
    --------
    >>> e = Estimate.from_influence(2.0, np.array([-1.0, 1.0, -1.0, 1.0]))
    >>> round(e.stderr, 6), round(e.ci_low, 4), round(e.ci_high, 4)
    (0.57735, 0.8684, 3.1316)
    """

    value: float
    stderr: float
    ci_low: float
    ci_high: float

    @classmethod
    def from_influence(cls, value: float, influence: np.ndarray) -> Estimate:
        """The estimate ``value`` with the spread of its influence terms ψ (n,)."""
        n = len(influence)
        if n < 2:
            se = float("nan")
        else:
            centred = influence - influence.mean()
            se = float(np.sqrt(np.dot(centred, centred) / (n * (n - 1.0))))
        value = float(value)
        return cls(value, se, value - Z95 * se, value + Z95 * se)

    @classmethod
    def from_terms(cls, terms: np.ndarray) -> Estimate:
        """The mean of per-row terms (n,) (a linear estimator: the terms are its influence)."""
        if len(terms) == 0:
            nan = float("nan")
            return cls(nan, nan, nan, nan)
        return cls.from_influence(float(terms.mean()), terms)
