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

from ..policies._environment import (
    independent_prior,
    noise_of,
    prior_of,
    single_effect,
)
from ..policies.registry import (
    ConfigError,
    check_options,
    options_of,
    policy_class,
)
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
    if kind in REFERENCES:
        return ""
    return "\n".join(f"{k} = {d!r}" for k, (_, d) in options_of(policy_class(kind)).items())


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
_BATCH_MAX_EFFECT_DIM = 64
#: exact recompute cadence of the batched path
_BATCH_REFACTOR = 1000


@dataclass(frozen=True)
class PolicySpec:
    """A named policy kind with options: ``spec(environment, rng)`` builds a fresh policy.

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

    def __call__(self, environment, seed=None):
        if self.kind in REFERENCES:
            return REFERENCES[self.kind](environment, seed)
        cls = policy_class(self.kind)
        return cls.from_environment(environment, seed, self.horizon, **self.options)

    # -- many runs at once ---------------------------------------------------------------
    def batch(self, environments, rngs):
        """All ``environments`` (one per run) stepped in lockstep by one batched model.

        Returns a :class:`~mixedts.models.batched.BatchedLinearGaussianTS` for the kinds whose
        posterior it computes exactly — MeTS, FactoredMeTS, HierTS and JointTS with Gaussian
        rewards, LinTS, and LinUCB with a constant width — or ``None`` (the runs then go one
        at a time). With effects, its Thompson draws transform the same standard normals
        differently from the sequential policy (a Cholesky factor of the effect precision
        instead of a square root of the covariance), so a run's actions differ from the
        sequential policy's, with the same distribution; LinTS and LinUCB choose the same.
        """
        from ..models.batched import BatchedLinearGaussianTS
        from ..priors import MixedEffectPrior

        o = dict(self.options)
        envs = list(environments)
        if not envs or not self._batchable(envs[0], o):
            return None
        noise = [self._noise(env, o) for env in envs]
        if self.kind in ("MeTS", "JointTS"):
            priors = [prior_of(env, self.kind, o.get("structure")) for env in envs]
            return BatchedLinearGaussianTS.from_priors(
                priors, np.asarray(noise), rngs, refactor_every=_BATCH_REFACTOR)
        if self.kind == "FactoredMeTS":
            # eq. 43 uses the diagonal blocks of Σ_Ψ, whatever the off-diagonal ones
            priors = [prior_of(env, self.kind, o.get("structure")) for env in envs]
            L, d = priors[0].n_effects, priors[0].dim
            eye = np.eye(L)[:, None, :, None]
            return BatchedLinearGaussianTS.from_priors(
                [MixedEffectPrior(p.effect_mean,
                                  (eye * p.effect_cov_blocks()[:, :, None, :]).reshape(L * d,
                                                                                      L * d),
                                  p.mixing, p.action_cov) for p in priors],
                np.asarray(noise), rngs, refactor_every=_BATCH_REFACTOR, factored=True)
        if self.kind == "HierTS":
            priors = [prior_of(env, self.kind, o.get("structure")) for env in envs]
            means, covs, action_covs = zip(*(single_effect(p, o.get("effect_cov_scale", 1.0),
                                                          o.get("action_cov", "conditional"))
                                            for p in priors))
            K, d = priors[0].n_actions, priors[0].dim
            return BatchedLinearGaussianTS(
                np.stack([np.broadcast_to(c, (K, d, d)) for c in action_covs]),
                np.asarray(noise), rngs,
                mixing=np.ones((len(envs), priors[0].n_actions, 1)),
                effect_mean=np.stack(means)[:, None], effect_cov=np.stack(covs),
                refactor_every=_BATCH_REFACTOR)
        if self.kind == "LinTS":
            means, covs = zip(*(independent_prior(env, o.get("prior"), o.get("prior_var", 1.0))
                                for env in envs))
            K, d = envs[0].n_actions, envs[0].dim
            return BatchedLinearGaussianTS(
                np.stack([np.broadcast_to(c, (K, d, d)) for c in covs]), np.asarray(noise),
                rngs, action_mean=np.stack(means), refactor_every=_BATCH_REFACTOR)
        # LinUCB: the same prior and width as LinUCB.from_environment, deterministic scores
        built = [self(env, None) for env in envs]
        K, d = envs[0].n_actions, envs[0].dim
        return BatchedLinearGaussianTS(
            np.stack([np.broadcast_to(p.model.prior_cov, (K, d, d)) for p in built]),
            np.asarray(noise), rngs,
            action_mean=np.stack([p.model.prior_mean for p in built]), rule="ucb",
            alpha=np.array([p.rule.alpha for p in built]), refactor_every=_BATCH_REFACTOR)

    def _batchable(self, environment, o: dict) -> bool:
        if int(getattr(environment, "feedback_delay", 1)) != 1:
            return False
        if self.kind in ("MeTS", "FactoredMeTS", "HierTS"):
            if o.get("likelihood", "gaussian") != "gaussian":
                return False
            prior = prior_of(environment, self.kind, o.get("structure"))
            # dense per-run arrays: keep them small (the sequential path is O(nnz) in memory)
            return prior.n_actions * prior.dim**2 <= _BATCH_MAX_CELLS and \
                prior.n_effects * prior.dim <= _BATCH_MAX_EFFECT_DIM and \
                prior.n_actions * prior.n_effects <= _BATCH_MAX_CELLS
        if self.kind == "JointTS":
            prior = prior_of(environment, self.kind, o.get("structure"))
            return prior.n_actions * prior.dim**2 <= _BATCH_MAX_CELLS
        if self.kind == "LinTS":
            if o.get("likelihood", "gaussian") != "gaussian":
                return False
            return environment.n_actions * environment.dim**2 <= _BATCH_MAX_CELLS
        if self.kind == "LinUCB":
            return o.get("width", "constant") == "constant" and \
                environment.n_actions * environment.dim**2 <= _BATCH_MAX_CELLS
        return False

    @staticmethod
    def _noise(environment, o: dict) -> float:
        return noise_of(environment, o.get("noise_std"))
