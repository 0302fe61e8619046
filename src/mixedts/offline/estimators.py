"""Off-policy estimators of a target policy's value from logged feedback, each vectorised.

Notation: logged rounds (x_t, a_t, r_t), t = 1..n; the target policy π(a | x) (``action_dist``,
(n, K)); the logging policy's propensity p_t = π₀(a_t | x_t); importance weights
w_t = π(a_t | x_t) / p_t; a reward model q̂(x, a) (``estimated_rewards``, (n, K)), its value
under π, q̂_π(x_t) = Σ_a π(a | x_t) q̂(x_t, a), and residuals e_t = r_t − q̂(x_t, a_t).

=============  ==========================================================================
name           value
=============  ==========================================================================
``ips``        (1/n) Σ_t min(w_t, M) r_t                        (M = ``max_weight``, ∞)
``snips``      Σ_t w_t r_t / Σ_t w_t
``dm``         (1/n) Σ_t q̂_π(x_t)
``dr``         (1/n) Σ_t [q̂_π(x_t) + min(w_t, M) e_t]
``sndr``       (1/n) Σ_t q̂_π(x_t) + Σ_t w_t e_t / Σ_t w_t
``switch-dr``  (1/n) Σ_t [q̂_π(x_t) + 1{w_t ≤ τ} w_t e_t]       (obp's form; τ = ∞ is DR)
``mips``       (1/n) Σ_t w(x_t, e_t) r_t,  w(x, e) = Σ_{a: e_a = e} π(a|x) / Σ_{a: e_a = e} π₀(a|x)
``replay``     Σ_t m_t r_t / Σ_t m_t,  m_t = 1{ã_t = a_t},  ã_t ~ π(· | x_t) (or its argmax)
=============  ==========================================================================

Every estimator returns an :class:`~mixedts.offline.Estimate`: the value, a standard error from
the per-row influence terms (the terms themselves for the linear estimators; for a ratio
Σ u_t / Σ v_t the delta-method terms v_t (u_t/v_t − V̂) / v̄), and the normal 95% interval.
The standard errors treat q̂ and π as fixed. Estimators are frozen dataclasses (as in obp) with
one method, ``estimate_policy_value(rewards, actions, action_dist, propensities=None,
estimated_rewards=None, action_features=None, logging_probabilities=None)``;
:data:`ESTIMATORS` maps the names above to the classes.

Examples
--------
>>> ips = InverseProbabilityWeighting()
>>> est = ips.estimate_policy_value(rewards=[1.0, 0.0], actions=[0, 1],
...                                 action_dist=[[1.0, 0.0], [1.0, 0.0]],
...                                 propensities=[0.5, 0.5])
>>> est.value
1.0
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from .._validation import ValidationError, as_generator
from .estimate import Estimate
from .inputs import EstimatorInputs
from .simulate import sample_actions

#: name -> estimator class
ESTIMATORS: dict[str, type[OffPolicyEstimator]] = {}

_ROW_BLOCK = 1 << 22  # entries of an (rows, K) temporary in MIPS


def _register(name: str):
    def wrap(cls):
        cls.name = name
        ESTIMATORS[name] = cls
        return cls

    return wrap


def make_estimator(name: str, **params: Any) -> OffPolicyEstimator:
    """An estimator by its registered name, e.g. ``make_estimator("ips", max_weight=50)``.

    Parameters
    ----------
    name : str
        A key of :data:`ESTIMATORS`: ``"ips"``, ``"snips"``, ``"dm"``, ``"dr"``, ``"sndr"``,
        ``"switch-dr"``, ``"mips"`` or ``"replay"``.
    **params
        The estimator's fields (``max_weight``, ``tau``, ``columns``, ...).

    Returns
    -------
    OffPolicyEstimator

    Raises
    ------
    ValidationError
        An unknown name, an unknown field or a field out of its range.

    Examples
    --------
    >>> make_estimator("ips", max_weight=50)
    InverseProbabilityWeighting(max_weight=50)
    >>> make_estimator("switch-dr", tau=5.0).name
    'switch-dr'
    """
    if name not in ESTIMATORS:
        raise ValidationError(f"unknown estimator {name!r}; known: {', '.join(ESTIMATORS)}")
    try:
        return ESTIMATORS[name](**params)
    except TypeError as exc:
        raise ValidationError(f"estimator {name!r}: {exc}") from None


def _positive(value: Any, name: str, allow_inf: bool = True) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValidationError(f"{name} must be a positive number, got {value!r}")
    v = float(value)
    if not v > 0 or (np.isinf(v) and not allow_inf) or np.isnan(v):
        raise ValidationError(f"{name} must be a positive number, got {value!r}")
    return v


def _ratio(u: np.ndarray, v: np.ndarray) -> Estimate:
    """Σ u / Σ v with delta-method influence v (u/v − V̂) / v̄ = (u − V̂ v) / v̄."""
    total = v.sum()
    if total <= 0:
        nan = float("nan")
        return Estimate(nan, nan, nan, nan)
    value = u.sum() / total
    return Estimate.from_influence(value, (u - value * v) / v.mean())


@dataclass(frozen=True)
class OffPolicyEstimator:
    """Base class: validate the inputs, then :meth:`estimate` on an :class:`EstimatorInputs`.

    A subclass is a frozen dataclass (its fields are its options) that names the inputs it
    reads in ``needs`` and registers under a name in :data:`ESTIMATORS`.

    Examples
    --------
    >>> logs = dict(rewards=[1.0, 0.0, 1.0, 0.0], actions=[0, 1, 1, 0],
    ...             action_dist=np.tile([1.0, 0.0], (4, 1)),  # the target always plays 0
    ...             propensities=np.full(4, 0.5))             # uniform logging
    >>> for name in ("ips", "snips", "replay"):
    ...     print(name, ESTIMATORS[name]().estimate_policy_value(**logs).value)
    ips 0.5
    snips 0.5
    replay 0.5
    """

    name: ClassVar[str] = ""
    #: the EstimatorInputs fields this estimator reads beyond rewards, actions and action_dist
    needs: ClassVar[tuple[str, ...]] = ()

    def estimate_policy_value(
        self,
        rewards: Any,
        actions: Any,
        action_dist: Any,
        propensities: Any = None,
        estimated_rewards: Any = None,
        action_features: Any = None,
        logging_probabilities: Any = None,
    ) -> Estimate:
        """The estimated value of the target policy ``action_dist`` (n, K) on the logged rounds.

        Parameters
        ----------
        rewards : array_like, shape (n,)
            r_t.
        actions : array_like of int, shape (n,)
            a_t, in [0, K).
        action_dist : array_like, shape (n, K)
            π(a | x_t), the target policy's probabilities (rows sum to 1).
        propensities : array_like, shape (n,), optional
            p_t = π₀(a_t | x_t), in (0, 1].
        estimated_rewards : array_like, shape (n, K), optional
            q̂(x_t, a), a reward model's predictions.
        action_features : array_like, shape (K, p), optional
            One embedding per action (MIPS).
        logging_probabilities : array_like, shape (n, K), optional
            π₀(· | x_t), the logging policy's full distribution (MIPS).

        Returns
        -------
        Estimate
            The value, its standard error and normal 95% interval.

        Raises
        ------
        ValidationError
            A malformed input (naming it and its first bad row), or a missing input this
            estimator needs (see the module docstring for which reads which).
        """
        data = EstimatorInputs.check(rewards, actions, action_dist, propensities,
                                     estimated_rewards, action_features, logging_probabilities)
        return self.estimate(data)

    def estimate(self, data: EstimatorInputs) -> Estimate:
        """The estimate from inputs that are already validated."""
        for field in self.needs:
            data.require(field)
        return self._estimate(data)

    def _estimate(self, data: EstimatorInputs) -> Estimate:  # pragma: no cover - abstract
        raise NotImplementedError


@_register("ips")
@dataclass(frozen=True)
class InverseProbabilityWeighting(OffPolicyEstimator):
    """IPS: (1/n) Σ min(w_t, max_weight) r_t (unbiased when ``max_weight`` is infinite).

    Parameters
    ----------
    max_weight : float
        M > 0, where the weights w_t are clipped (∞: no clipping).

    Raises
    ------
    ValidationError
        ``max_weight`` is not a positive number.

    Examples
    --------
    >>> InverseProbabilityWeighting(max_weight=1.5).estimate_policy_value(
    ...     [1.0, 1.0], [0, 1], [[1.0, 0.0], [0.0, 1.0]], propensities=[0.5, 0.25]).value
    1.5
    """

    max_weight: float = np.inf
    needs: ClassVar[tuple[str, ...]] = ("propensities",)

    def __post_init__(self) -> None:
        _positive(self.max_weight, "max_weight")

    def _estimate(self, data: EstimatorInputs) -> Estimate:
        return Estimate.from_terms(np.minimum(data.weights, self.max_weight) * data.rewards)


@_register("snips")
@dataclass(frozen=True)
class SelfNormalizedIPW(OffPolicyEstimator):
    """SNIPS: Σ w_t r_t / Σ w_t (NaN when every weight is 0).

    Examples
    --------
    >>> logs = dict(rewards=[1.0, 0.0, 1.0, 0.0], actions=[0, 1, 1, 0],
    ...             action_dist=np.tile([1.0, 0.0], (4, 1)),  # the target always plays 0
    ...             propensities=np.full(4, 0.5))             # uniform logging
    >>> est = SelfNormalizedIPW().estimate_policy_value(**logs)
    >>> est.value, round(est.stderr, 3)
    (0.5, 0.408)
    """

    needs: ClassVar[tuple[str, ...]] = ("propensities",)

    def _estimate(self, data: EstimatorInputs) -> Estimate:
        w = data.weights
        return _ratio(w * data.rewards, w)


@_register("dm")
@dataclass(frozen=True)
class DirectMethod(OffPolicyEstimator):
    """DM: (1/n) Σ_t Σ_a π(a | x_t) q̂(x_t, a); needs no propensities.

    Examples
    --------
    >>> logs = dict(rewards=[1.0, 0.0, 1.0, 0.0], actions=[0, 1, 1, 0],
    ...             action_dist=np.tile([1.0, 0.0], (4, 1)),  # the target always plays 0
    ...             propensities=np.full(4, 0.5))             # uniform logging
    >>> q_hat = np.tile([0.8, 0.4], (4, 1))  # a reward model's q̂(x_t, a)
    >>> DirectMethod().estimate_policy_value(**logs, estimated_rewards=q_hat).value
    0.8
    """

    needs: ClassVar[tuple[str, ...]] = ("estimated_rewards",)

    def _estimate(self, data: EstimatorInputs) -> Estimate:
        return Estimate.from_terms(data.q_policy)


@_register("dr")
@dataclass(frozen=True)
class DoublyRobust(OffPolicyEstimator):
    """DR: (1/n) Σ_t [q̂_π(x_t) + min(w_t, max_weight) (r_t − q̂(x_t, a_t))].

    Parameters
    ----------
    max_weight : float
        M > 0, where the weights w_t are clipped (∞: no clipping).

    Raises
    ------
    ValidationError
        ``max_weight`` is not a positive number.

    Examples
    --------
    The reward model's bias (0.8 for a value of 0.5) is corrected by the weighted residuals:

    >>> logs = dict(rewards=[1.0, 0.0, 1.0, 0.0], actions=[0, 1, 1, 0],
    ...             action_dist=np.tile([1.0, 0.0], (4, 1)),  # the target always plays 0
    ...             propensities=np.full(4, 0.5))             # uniform logging
    >>> q_hat = np.tile([0.8, 0.4], (4, 1))  # a reward model's q̂(x_t, a)
    >>> round(DoublyRobust().estimate_policy_value(**logs, estimated_rewards=q_hat).value, 6)
    0.5
    """

    max_weight: float = np.inf
    needs: ClassVar[tuple[str, ...]] = ("propensities", "estimated_rewards")

    def __post_init__(self) -> None:
        _positive(self.max_weight, "max_weight")

    def _estimate(self, data: EstimatorInputs) -> Estimate:
        w = np.minimum(data.weights, self.max_weight)
        return Estimate.from_terms(data.q_policy + w * (data.rewards - data.q_logged))


@_register("sndr")
@dataclass(frozen=True)
class SelfNormalizedDoublyRobust(OffPolicyEstimator):
    """SNDR: (1/n) Σ_t q̂_π(x_t) + Σ_t w_t e_t / Σ_t w_t (obp's form).

    Examples
    --------
    >>> logs = dict(rewards=[1.0, 0.0, 1.0, 0.0], actions=[0, 1, 1, 0],
    ...             action_dist=np.tile([1.0, 0.0], (4, 1)),  # the target always plays 0
    ...             propensities=np.full(4, 0.5))             # uniform logging
    >>> q_hat = np.tile([0.8, 0.4], (4, 1))  # a reward model's q̂(x_t, a)
    >>> est = SelfNormalizedDoublyRobust().estimate_policy_value(**logs, estimated_rewards=q_hat)
    >>> round(est.value, 6)
    0.5
    """

    needs: ClassVar[tuple[str, ...]] = ("propensities", "estimated_rewards")

    def _estimate(self, data: EstimatorInputs) -> Estimate:
        w, e, d = data.weights, data.rewards - data.q_logged, data.q_policy
        correction = _ratio(w * e, w)
        if np.isnan(correction.value):
            return correction
        ratio = correction.value
        influence = (d - d.mean()) + w * (e - ratio) / w.mean()
        return Estimate.from_influence(d.mean() + ratio, influence)


@_register("switch-dr")
@dataclass(frozen=True)
class SwitchDoublyRobust(OffPolicyEstimator):
    """Switch-DR: DR's correction kept only where w_t ≤ tau (Wang et al. 2017, as obp has it).

    (1/n) Σ_t [q̂_π(x_t) + 1{w_t ≤ τ} w_t (r_t − q̂(x_t, a_t))]; τ = ∞ (the default) is DR,
    τ → 0 is DM.

    Parameters
    ----------
    tau : float
        τ > 0, the largest weight whose correction is kept.

    Raises
    ------
    ValidationError
        ``tau`` is not a positive number.

    Examples
    --------
    >>> logs = dict(rewards=[1.0, 0.0, 1.0, 0.0], actions=[0, 1, 1, 0],
    ...             action_dist=np.tile([1.0, 0.0], (4, 1)),  # the target always plays 0
    ...             propensities=np.full(4, 0.5))             # uniform logging
    >>> q_hat = np.tile([0.8, 0.4], (4, 1))  # a reward model's q̂(x_t, a)
    >>> for tau in (1.0, 2.0):  # the weights are 0 and 2: τ = 1 drops every correction
    ...     est = SwitchDoublyRobust(tau).estimate_policy_value(**logs, estimated_rewards=q_hat)
    ...     print(tau, round(est.value, 6))
    1.0 0.8
    2.0 0.5
    """

    tau: float = np.inf
    needs: ClassVar[tuple[str, ...]] = ("propensities", "estimated_rewards")

    def __post_init__(self) -> None:
        _positive(self.tau, "tau")

    def _estimate(self, data: EstimatorInputs) -> Estimate:
        w = data.weights
        kept = np.where(w <= self.tau, w, 0.0)
        return Estimate.from_terms(data.q_policy + kept * (data.rewards - data.q_logged))


@_register("mips")
@dataclass(frozen=True)
class MarginalizedIPW(OffPolicyEstimator):
    """MIPS (Saito & Joachims 2022) with one deterministic embedding e_a per action.

    (1/n) Σ_t w(x_t, e_{a_t}) r_t with the marginal weight
    w(x, e) = Σ_{a: e_a = e} π(a | x) / Σ_{a: e_a = e} π₀(a | x): actions whose rows of
    ``action_features`` (restricted to ``columns``, when given) are equal share an embedding.
    Needs ``action_features`` (K, p) and ``logging_probabilities`` (n, K). With one embedding
    per action it is IPS; it is unbiased when the reward depends on the action only through
    its embedding.

    Parameters
    ----------
    columns : tuple of int, optional
        The columns of ``action_features`` that make the embedding (all by default).

    Raises
    ------
    ValidationError
        ``columns`` that are not non-negative indices (at construction) or out of range,
        or logging probabilities that give an observed embedding probability 0 (when
        estimating).

    Examples
    --------
    Two actions with one embedding: every round counts, with weight 1.

    >>> logs = dict(rewards=[1.0, 0.0, 1.0, 0.0], actions=[0, 1, 1, 0],
    ...             action_dist=np.tile([1.0, 0.0], (4, 1)),  # the target always plays 0
    ...             propensities=np.full(4, 0.5))             # uniform logging
    >>> mips = MarginalizedIPW()
    >>> est = mips.estimate_policy_value(**logs, action_features=[[1.0], [1.0]],
    ...                                  logging_probabilities=np.full((4, 2), 0.5))
    >>> est.value, round(est.stderr, 3)
    (0.5, 0.289)
    """

    columns: tuple[int, ...] | None = None
    needs: ClassVar[tuple[str, ...]] = ("action_features", "logging_probabilities")

    def __post_init__(self) -> None:
        if self.columns is not None:
            cols = tuple(self.columns)
            if not cols or not all(isinstance(c, numbers.Integral) and c >= 0 for c in cols):
                raise ValidationError(f"columns must be non-negative column indices, got {cols}")
            object.__setattr__(self, "columns", tuple(int(c) for c in cols))

    def embedding_groups(self, action_features: np.ndarray) -> np.ndarray:
        """The embedding class of each action, (K,) int64 (equal rows share a class)."""
        E = action_features
        if self.columns is not None:
            if max(self.columns) >= E.shape[1]:
                raise ValidationError(
                    f"columns {self.columns} out of range for action_features with "
                    f"{E.shape[1]} columns"
                )
            E = E[:, list(self.columns)]
        return np.unique(E, axis=0, return_inverse=True)[1].reshape(-1).astype(np.int64)

    def marginal_weights(self, data: EstimatorInputs) -> np.ndarray:
        """w(x_t, e_{a_t}), (n,), in blocks of rows so the (rows, K) mask stays small."""
        groups = self.embedding_groups(data.require("action_features"))
        P = data.require("logging_probabilities")
        logged = groups[data.actions]
        n, K = P.shape
        num, den = np.empty(n), np.empty(n)
        step = max(1, _ROW_BLOCK // K)
        for start in range(0, n, step):  # blocks of rows, not single rows
            block = slice(start, start + step)
            same = logged[block, None] == groups[None, :]
            num[block] = np.einsum("nk,nk->n", data.action_dist[block], same)
            den[block] = np.einsum("nk,nk->n", P[block], same)
        bad = den <= 0
        if bad.any():
            i = int(np.argmax(bad))
            raise ValidationError(
                f"logging_probabilities[{i}] gives probability 0 to the embedding of the "
                f"logged action {data.actions[i]}"
            )
        return num / den

    def _estimate(self, data: EstimatorInputs) -> Estimate:
        return Estimate.from_terms(self.marginal_weights(data) * data.rewards)


@_register("replay")
@dataclass(frozen=True)
class ReplayMethod(OffPolicyEstimator):
    """The replay method (Li et al. 2011) for a fixed target policy under uniform logging.

    Keeps the rounds where the target's action equals the logged one and averages their
    rewards: Σ_t m_t r_t / Σ_t m_t. The target's action is drawn from π(· | x_t) with a
    Generator seeded by ``seed`` (``selection="sample"``; a deterministic π gives its action) or
    is its argmax (``selection="argmax"``, ties to the lowest index). Unbiased only when the
    logging policy is uniform: with ``check_uniform`` every given propensity must be 1/K.
    NaN when no round matches. For a policy that learns as it goes, see
    :func:`mixedts.offline.replay`.

    Parameters
    ----------
    selection : {"sample", "argmax"}
        Draw the target's action from π(· | x_t), or take its argmax.
    seed : int, SeedSequence or numpy Generator
        The draws of ``selection="sample"``.
    check_uniform : bool
        Refuse propensities other than 1/K.

    Raises
    ------
    ValidationError
        An unknown ``selection``, or (with ``check_uniform``) a propensity other than 1/K.

    Examples
    --------
    >>> logs = dict(rewards=[1.0, 0.0, 1.0, 0.0], actions=[0, 1, 1, 0],
    ...             action_dist=np.tile([1.0, 0.0], (4, 1)),  # the target always plays 0
    ...             propensities=np.full(4, 0.5))             # uniform logging
    >>> ReplayMethod(selection="argmax").estimate_policy_value(**logs).value  # rows 0 and 3
    0.5
    """

    selection: str = "sample"
    seed: Any = 0
    check_uniform: bool = True

    def __post_init__(self) -> None:
        if self.selection not in ("sample", "argmax"):
            raise ValidationError(f"selection must be 'sample' or 'argmax', got {self.selection!r}")

    def _estimate(self, data: EstimatorInputs) -> Estimate:
        if self.check_uniform and data.propensities is not None:
            check_uniform(data.propensities, data.n_actions)
        if self.selection == "argmax":
            chosen = np.argmax(data.action_dist, axis=1)
        else:
            chosen = sample_actions(data.action_dist, as_generator(self.seed))
        matched = (chosen == data.actions).astype(np.float64)
        return _ratio(matched * data.rewards, matched)


def check_uniform(propensities: np.ndarray, n_actions: int, rtol: float = 1e-6) -> None:
    """Every propensity equals 1/K (the replay method's assumption), else name the first row."""
    bad = np.abs(propensities - 1.0 / n_actions) > rtol / n_actions
    if bad.any():
        i = int(np.argmax(bad))
        raise ValidationError(
            f"propensities[{i}] must be 1/K = {1.0 / n_actions!r} for replay (it assumes "
            f"uniform logging over the {n_actions} actions), got {propensities[i]!r}"
        )
