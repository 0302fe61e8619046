"""Policies by name and options: the factories that experiment files and the CLI build.

A :class:`PolicySpec` is a picklable factory ``spec(environment, rng) -> policy`` (so it
travels to worker processes and Dask workers). Its ``kind`` is any policy registered in
:mod:`mixedts.policies.registry` (its class name) and its options are that class's
``from_environment`` keyword-only parameters; two references exist only here: ``Oracle``
(knows the truth: zero regret) and ``Uniform`` (a uniformly random action).

>>> print(describe("LinTS"))
likelihood = 'gaussian'
laplace = 'exact'
laplace_batch = 30
ridge = 0.001
laplace_at = 'posterior'
noise_std = None
prior = None
prior_var = 1.0
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..policies.registry import (
    ConfigError,
    check_options,
    policy_class,
)
from ..policies.registry import describe as describe_class
from .simulate import Oracle

__all__ = ["ConfigError", "PolicySpec", "Uniform", "describe", "kinds"]


class Uniform:
    """Plays a uniformly random action (a floor every policy should beat)."""

    def __init__(self, n_actions: int, seed=None) -> None:
        self.n_actions = int(n_actions)
        self.rng = np.random.default_rng(seed)

    def select(self, x) -> int:
        return int(self.rng.integers(self.n_actions))

    def update(self, x, a, y) -> None:
        pass

    def update_batch(self, X, A, Y) -> None:
        pass

    def __repr__(self) -> str:
        return f"Uniform(n_actions={self.n_actions})"


#: the experiment engine's own references (not policies a user holds)
REFERENCES: dict[str, Any] = {
    "Oracle": lambda environment, seed: Oracle(environment, seed),
    "Uniform": lambda environment, seed: Uniform(environment.n_actions, seed),
}


def kinds() -> list[str]:
    """Every kind an experiment file may name."""
    from ..policies.registry import POLICIES

    policy_class("MeTS")  # the built-in policies register on import
    return sorted([*POLICIES, *REFERENCES])


def describe(kind: str) -> str:
    """The experiment-file options of ``kind``, one ``name = default`` a line."""
    return "" if kind in REFERENCES else describe_class(policy_class(kind))


def check_kind_options(kind: str, options: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validate ``options`` of ``kind``; errors name ``where.type`` or ``where.key``."""
    if kind in REFERENCES:
        if options:
            raise ConfigError(f"{where}.{next(iter(options))}: unknown option for {kind}; "
                              "expected no options")
        return {}
    return check_options(policy_class(kind, where), options, where)


#: limits of the batched-over-runs path (per run): K·d² and K·L cells, L·d effect coordinates
_BATCH_MAX_CELLS = 50_000
_BATCH_MAX_EFFECT_DIM = 128


@dataclass(frozen=True)
class PolicySpec:
    """A named policy kind with options: ``spec(environment, rng)`` builds a fresh policy.

    Parameters
    ----------
    kind : str
        A registered policy's name (``"MeTS"``, ``"LinTS"``, …) or a reference (``"oracle"``).
    options : mapping of str to value
        The keyword-only options of the class's ``from_environment``, checked here.
    horizon : int, optional
        Passed to ``from_environment`` (policies tuned to the horizon read it).

    Raises
    ------
    ConfigError
        An unknown kind, an unknown option or a value out of its range; the message names the
        key.

    Examples
    --------
    >>> from mixedts.environments import MixedEffectEnvironment
    >>> env = MixedEffectEnvironment(10, 2, 2, seed=0)
    >>> spec = PolicySpec("HierTS", {"effect_cov_scale": 0.5})
    >>> policy = spec(env, np.random.default_rng(0))
    >>> type(policy).__name__, policy.n_actions
    ('HierTS', 10)
    """

    kind: str
    options: Mapping[str, Any] = field(default_factory=dict)
    horizon: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", check_kind_options(self.kind, self.options, "policy"))

    def with_horizon(self, horizon: int) -> PolicySpec:
        return dataclasses.replace(self, horizon=int(horizon))

    def relative_cost(self) -> float:
        """A rough cost per run and round, for scheduling only: 1 for a policy that steps runs
        together with the linear-Gaussian engine, 4 with the GLM one (Laplace refits), 20 for
        what goes one run at a time, 0.05 for the references."""
        if self.kind in REFERENCES:
            return 0.05
        if self.kind == "GLMTS" and self.options.get("diagonal", False):
            return 20.0
        glm = self.kind in ("GLMTS", "UCBGLM") or self.options.get("likelihood") == "logistic"
        return 4.0 if glm else 1.0

    def __call__(self, environment, seed=None):
        if self.kind in REFERENCES:
            return REFERENCES[self.kind](environment, seed)
        cls = policy_class(self.kind)
        return cls.from_environment(environment, seed, self.horizon, **self.options)

    # -- many runs at once ---------------------------------------------------------------
    def batch(self, environments, rngs):
        """All ``environments`` (one per run) stepped in lockstep, or ``None``.

        Builds run r's policy as the spec does (``self(environments[r], rngs[r])``, so from the
        registered class's ``from_environment``) and steps the R policies together with
        :meth:`LockstepPolicies.from_policies <mixedts.evaluation.lockstep.LockstepPolicies>`:
        one :class:`~mixedts.models.batched.BatchedLinearGaussianModel` built from the
        policies' models, their own rules and generators. ``None`` (the runs then go one at
        a time) when the models or rules cannot be batched (GLM rewards, experts, context-free
        arms, UCB widths that grow with the counts, …), with delayed feedback, or beyond the
        size limits. A run's draws are those of its one-run policy, transformed the same way,
        so it takes the same actions up to rounding (JointTS: the same posterior, drawn
        through the effects rather than jointly, so the same law).
        """
        from .lockstep import LockstepPolicies

        envs = list(environments)
        if not envs or not self._batchable(envs[0]):
            return None
        policies = [self(env, rng) for env, rng in zip(envs, rngs)]
        return LockstepPolicies.from_policies(policies, max_cells=_BATCH_MAX_CELLS,
                                              max_effect_dim=_BATCH_MAX_EFFECT_DIM)

    def _batchable(self, environment) -> bool:
        """What can be ruled out before any policy is built: the references, delayed
        feedback and environments whose per-run arrays would be too large."""
        if self.kind in REFERENCES or int(getattr(environment, "feedback_delay", 1)) != 1:
            return False
        return environment.n_actions * environment.dim**2 <= _BATCH_MAX_CELLS
