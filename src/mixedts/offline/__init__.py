"""Logged data: off-policy evaluation of bandit policies.

* :class:`LoggedFeedback`: validated logs (contexts, actions, rewards, propensities, ...), with
  slicing, time splits, bootstrap resampling, Parquet and DataFrame I/O.
* :func:`simulate_logs`: logs of any mixedts environment under a known logging policy.
* Estimators (:mod:`.estimators`): IPS, SNIPS, DM, DR, SNDR, Switch-DR, MIPS and the replay
  method, one :class:`Estimate` (value, stderr, 95% interval) each; :func:`replay` runs a
  learning policy over a uniformly logged stream.
* :func:`evaluate`: several estimators at once, as a DataFrame.
* :func:`load_obd`: the Open Bandit Dataset (from :mod:`mixedts.datasets.obd`).

Only numpy and scipy are imported here; pandas and pyarrow are imported by the functions that
need them.
"""

from ..datasets.obd import load_obd
from .estimate import Estimate
from .estimators import (
    ESTIMATORS,
    DirectMethod,
    DoublyRobust,
    InverseProbabilityWeighting,
    MarginalizedIPW,
    OffPolicyEstimator,
    ReplayMethod,
    SelfNormalizedDoublyRobust,
    SelfNormalizedIPW,
    SwitchDoublyRobust,
    make_estimator,
)
from .evaluate import DEFAULT_ESTIMATORS, estimate_all, evaluate, target_probabilities
from .inputs import EstimatorInputs
from .logs import LoggedFeedback
from .replay import replay
from .reward_model import predict_rewards, reward_features
from .simulate import simulate_logs, true_policy_value

__all__ = [
    "DEFAULT_ESTIMATORS",
    "ESTIMATORS",
    "DirectMethod",
    "DoublyRobust",
    "Estimate",
    "EstimatorInputs",
    "InverseProbabilityWeighting",
    "LoggedFeedback",
    "MarginalizedIPW",
    "OffPolicyEstimator",
    "ReplayMethod",
    "SelfNormalizedDoublyRobust",
    "SelfNormalizedIPW",
    "SwitchDoublyRobust",
    "estimate_all",
    "evaluate",
    "load_obd",
    "make_estimator",
    "predict_rewards",
    "replay",
    "reward_features",
    "simulate_logs",
    "target_probabilities",
    "true_policy_value",
]
