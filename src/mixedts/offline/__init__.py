"""Logged data: off-policy evaluation of bandit policies.

* :class:`LoggedFeedback`: validated logs (contexts, actions, rewards, propensities, ...), with
  slicing, time splits, bootstrap resampling, Parquet and DataFrame I/O.
* :func:`simulate_logs`: logs of any mixedts environment under a known logging policy.
* Estimators (:mod:`.estimators`): IPS, SNIPS, DM, DR, SNDR, Switch-DR, MIPS and the replay
  method, one :class:`Estimate` (value, stderr, 95% interval) each; :func:`replay` runs a
  learning policy over a uniformly logged stream.
* :func:`evaluate`: several estimators at once, as a DataFrame.
* :func:`load_obd`: the Open Bandit Dataset (from :mod:`mixedts.datasets.obd`);
  :func:`obd_relative_error` runs obp's protocol on it (:mod:`.obd_protocol`);
  :func:`run_obd_training` trains mixedts policies on a time split of its random logs and
  evaluates them off-policy on the rest (:mod:`.obd_training`).
* sDM (Aouali et al. 2025): :func:`sdm_reward_models` fits the structured posterior on logs;
  :func:`run_sdm_synthetic`, :func:`run_sdm_binary` and :func:`run_sdm_movielens` are the
  paper's experiments; :func:`fit_softmax_policy` is the IPS-family learners' linear-softmax
  policy class (:mod:`.softmax_learning`).

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
from .learning import GreedyPolicy, greedy_policy_from_posterior, relative_reward
from .logs import LoggedFeedback
from .obd_protocol import (
    DEFAULT_OBD_ESTIMATORS,
    OBP_REFERENCE,
    RelativeErrorResult,
    bts_action_distribution,
    obd_relative_error,
    read_bts_prior,
)
from .obd_training import (
    DEFAULT_TRAINING_ESTIMATORS,
    DEFAULT_TRAINING_POLICIES,
    TrainingResult,
    ranking_probabilities,
    run_obd_training,
    train_obd_policies,
)
from .policy_rewards import (
    fit_on_logs,
    predict_rewards_with_policy,
    probit_sigmoid_mean,
    sdm_reward_models,
)
from .replay import replay
from .reward_model import predict_rewards, reward_features
from .sdm_binary import BINARY_METHODS, run_sdm_binary
from .sdm_movielens import run_sdm_movielens
from .sdm_synthetic import run_sdm_synthetic
from .simulate import simulate_logs, true_policy_value
from .slope import SwitchDoublyRobustSLOPE
from .softmax_learning import SoftmaxPolicy, expected_relative_reward, fit_softmax_policy

__all__ = [
    "BINARY_METHODS",
    "DEFAULT_ESTIMATORS",
    "DEFAULT_OBD_ESTIMATORS",
    "DEFAULT_TRAINING_ESTIMATORS",
    "DEFAULT_TRAINING_POLICIES",
    "ESTIMATORS",
    "OBP_REFERENCE",
    "DirectMethod",
    "DoublyRobust",
    "Estimate",
    "EstimatorInputs",
    "GreedyPolicy",
    "InverseProbabilityWeighting",
    "LoggedFeedback",
    "MarginalizedIPW",
    "OffPolicyEstimator",
    "RelativeErrorResult",
    "ReplayMethod",
    "SelfNormalizedDoublyRobust",
    "SelfNormalizedIPW",
    "SoftmaxPolicy",
    "SwitchDoublyRobust",
    "SwitchDoublyRobustSLOPE",
    "TrainingResult",
    "bts_action_distribution",
    "estimate_all",
    "evaluate",
    "expected_relative_reward",
    "fit_on_logs",
    "fit_softmax_policy",
    "greedy_policy_from_posterior",
    "load_obd",
    "make_estimator",
    "obd_relative_error",
    "predict_rewards",
    "predict_rewards_with_policy",
    "probit_sigmoid_mean",
    "ranking_probabilities",
    "read_bts_prior",
    "relative_reward",
    "replay",
    "reward_features",
    "run_obd_training",
    "run_sdm_binary",
    "run_sdm_movielens",
    "run_sdm_synthetic",
    "sdm_reward_models",
    "simulate_logs",
    "target_probabilities",
    "train_obd_policies",
    "true_policy_value",
]
