"""Run policies against environments, measure regret, write tables and plots."""

from .config import Experiment, load_experiment
from .registry import ConfigError, PolicySpec
from .results import Results
from .simulate import Oracle, oracle, run_policy, run_rounds, simulate

__all__ = [
    "ConfigError",
    "Experiment",
    "Oracle",
    "PolicySpec",
    "Results",
    "load_experiment",
    "oracle",
    "run_policy",
    "run_rounds",
    "simulate",
]
