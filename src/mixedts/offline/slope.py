"""Switch-DR with its threshold chosen from the data by SLOPE (obp's ``SwitchDoublyRobustTuning``).

Switch-DR keeps DR's correction only where the importance weight is at most τ:
V̂_τ = (1/n) Σ_t [q̂_π(x_t) + 1{w_t ≤ τ} w_t (r_t − q̂(x_t, a_t))]. A small τ trades variance
for bias. SLOPE (Su, Srinath & Krishnamurthy 2020, in the SLOPE++ form of Tucker & Lee 2021
that obp implements) picks τ without knowing the truth:

1. for every candidate τ, the estimate θ_τ and a confidence width
   c_τ = t_{1−δ, n−1} · sqrt(var(terms_τ) / (n − 1)) (Student t, ``var`` with ddof 0, as obp's
   ``estimate_student_t_lower_bound``);
2. walk the candidates from the widest interval to the narrowest, keeping each while
   |θ_j − θ_i| ≤ c_i + (√6 − 1) c_j for every kept j; at the first that fails, return the
   previous one (else the last).

All candidates are evaluated at once: one (n_taus, n) array of per-row terms.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .._validation import ValidationError
from .estimate import Estimate
from .estimators import OffPolicyEstimator
from .inputs import EstimatorInputs

#: obp's candidate grid in ``examples/obd/evaluate_off_policy_estimators.py``
OBP_TAUS = (10.0, 50.0, 100.0, 500.0, 1000.0, 5000.0, 10000.0, np.inf)
_SLOPE_C = np.sqrt(6.0) - 1.0


def _taus(values: Any) -> tuple[float, ...]:
    try:
        items = tuple(values)
    except TypeError:
        raise ValidationError(
            f"taus must be a sequence of positive numbers, got {values!r}"
        ) from None
    if not items:
        raise ValidationError("taus must hold at least one candidate threshold")
    out = []
    for i, v in enumerate(items):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Real) or not v > 0:
            raise ValidationError(f"taus[{i}] must be a positive number (inf allowed), got {v!r}")
        out.append(float(v))
    return tuple(out)


@dataclass(frozen=True)
class SwitchDoublyRobustSLOPE(OffPolicyEstimator):
    """Switch-DR whose threshold τ is chosen among ``taus`` by SLOPE (see the module docstring).

    ``delta`` is the one-sided level of the Student-t widths (obp's default 0.1). The
    :class:`Estimate` is that of the chosen τ (its stderr treats τ as fixed);
    :meth:`select_tau` says which τ was chosen.

    >>> data = EstimatorInputs.check(rewards=[1.0, 0.0, 1.0, 0.0], actions=[0, 1, 0, 1],
    ...     action_dist=[[0.9, 0.1]] * 4, propensities=[0.5] * 4,
    ...     estimated_rewards=[[0.5, 0.5]] * 4)
    >>> est = SwitchDoublyRobustSLOPE(taus=(1.0, np.inf))
    >>> est.select_tau(data), round(est.estimate(data).value, 6)
    (1.0, 0.45)
    """

    taus: tuple[float, ...] = OBP_TAUS
    delta: float = 0.1
    name: ClassVar[str] = "switch-dr-slope"
    needs: ClassVar[tuple[str, ...]] = ("propensities", "estimated_rewards")

    def __post_init__(self) -> None:
        object.__setattr__(self, "taus", _taus(self.taus))
        d = self.delta
        if isinstance(d, (bool, np.bool_)) or not isinstance(d, numbers.Real) or not 0 < d < 1:
            raise ValidationError(f"delta must be in (0, 1), got {d!r}")

    def _terms(self, data: EstimatorInputs) -> np.ndarray:
        """Per-row Switch-DR terms of every candidate, (n_taus, n)."""
        w = data.weights
        residual = w * (data.rewards - data.q_logged)
        kept = w[None, :] <= np.asarray(self.taus)[:, None]
        return data.q_policy[None, :] + np.where(kept, residual[None, :], 0.0)

    def _choose(self, terms: np.ndarray) -> int:
        """The index of the τ that SLOPE selects from the per-row terms (n_taus, n)."""
        from scipy import stats

        n = terms.shape[1]
        theta = terms.mean(axis=1)
        if n < 2:
            return len(self.taus) - 1
        width = stats.t(n - 1).ppf(1.0 - self.delta) * np.sqrt(terms.var(axis=1) / (n - 1))
        order = np.argsort(-width, kind="stable")  # widest (least biased) first
        kept: list[int] = []
        for i in order:  # at most len(taus) candidates, never rows
            if kept:
                j = np.asarray(kept)
                if not np.all(np.abs(theta[j] - theta[i]) <= width[i] + _SLOPE_C * width[j]):
                    return int(kept[-1])
            kept.append(int(i))
        return int(kept[-1])

    def select_tau(self, data: EstimatorInputs) -> float:
        """The threshold SLOPE chooses on these inputs."""
        for field in self.needs:
            data.require(field)
        return self.taus[self._choose(self._terms(data))]

    def _estimate(self, data: EstimatorInputs) -> Estimate:
        terms = self._terms(data)
        return Estimate.from_terms(terms[self._choose(terms)])
