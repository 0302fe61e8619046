"""Policies by name and options: the factories that experiment files and the CLI build.

A :class:`PolicySpec` is a picklable factory ``spec(environment, rng) -> policy`` (so it
travels to worker processes and Dask workers). The kinds and their options:

==============  ==========================================================================
kind            options (defaults)
==============  ==========================================================================
MeTS            likelihood ("gaussian"), laplace ("exact"), laplace_batch (30), ridge (1e-3),
                laplace_at ("posterior"), refactor_every (5000), noise_std (the environment's),
                structure (the environment's ``prior``; a name picks ``environment.priors[name]``,
                e.g. "genre" on MovieLens)
FactoredMeTS    as MeTS
HierTS          as MeTS, and effect_cov_scale (1.0): the single effect's prior covariance is
                this times the mean of the effects' blocks (the text: 1 → N(0, 3I); the
                authors' code: 1/L → N(0, I) for L = 3); action_cov ("conditional": each
                action's Σ0; "marginal": Σ0 + Γ_i Σ_Ψ Γ_iᵀ, the variance the one effect
                leaves unexplained, as in LinTS's marginal prior)
LinTS           as MeTS without refactor_every; prior ("marginal" with a mixed-effect
                environment, else "isotropic"), prior_var (1.0, isotropic); "marginal" is the
                environment's ``independent_prior()`` where it has one (MovieLens)
GLMTS           diagonal (false), laplace, laplace_batch, ridge, laplace_at, prior, prior_var
LinUCB          alpha ("auto": the authors' constant width, needs the horizon; or a number),
                prior ("marginal": the marginal Gaussian prior like the authors' code, or
                "ridge": λI), regularization (1.0, ridge), width ("constant" or
                "abbasi-yadkori", ridge only), noise_std
UCBGLM          alpha ("auto": the authors' width; or a number), regularization (1.0),
                score ("linear": x_iᵀθ̂_i + α‖x_i‖, or "probability": sigmoid(x_iᵀθ̂_i) + α‖x_i‖
                like the authors' code)
JointTS         noise_std
Oracle          (none) knows the truth: zero regret
Uniform         (none) a uniformly random action
==============  ==========================================================================
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import expit

from .simulate import Oracle


class ConfigError(ValueError):
    """An invalid experiment file or policy option; the message names the key."""


# option name -> (checker, description); checkers return the value or raise ValueError(why)
def _number(v):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ValueError(f"expected a number, got {v!r}")
    return float(v)


def _positive(v):
    v = _number(v)
    if v <= 0:
        raise ValueError(f"expected a positive number, got {v!r}")
    return v


def _integer(low):
    def check(v):
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"expected an integer, got {v!r}")
        if v < low:
            raise ValueError(f"expected an integer >= {low}, got {v}")
        return v

    return check


def _boolean(v):
    if not isinstance(v, bool):
        raise ValueError(f"expected true or false, got {v!r}")
    return v


def _string(v):
    if not isinstance(v, str) or not v:
        raise ValueError(f"expected a name, got {v!r}")
    return v


def _choice(*options):
    def check(v):
        if v not in options:
            raise ValueError(f"expected one of {list(options)}, got {v!r}")
        return v

    return check


def _alpha(v):
    if v == "auto":
        return v
    v = _number(v)
    if v < 0:
        raise ValueError(f"expected 'auto' or a non-negative number, got {v!r}")
    return v


_GLM = {
    "likelihood": _choice("gaussian", "logistic"),
    "laplace": _choice("exact", "minibatch", "online"),
    "laplace_batch": _integer(1),
    "ridge": _positive,
}
_PRIOR = {"prior": _choice("marginal", "isotropic"), "prior_var": _positive}
_AT = {"laplace_at": _choice("posterior", "likelihood")}
_STRUCTURE = {"structure": _string}
OPTIONS: dict[str, dict[str, Any]] = {
    "MeTS": {**_GLM, **_AT, **_STRUCTURE, "refactor_every": _integer(0), "noise_std": _positive},
    "FactoredMeTS": {
        **_GLM, **_AT, **_STRUCTURE, "refactor_every": _integer(0), "noise_std": _positive
    },
    "HierTS": {
        **_GLM,
        **_AT,
        **_STRUCTURE,
        "refactor_every": _integer(0),
        "noise_std": _positive,
        "effect_cov_scale": _positive,
        "action_cov": _choice("conditional", "marginal"),
    },
    "LinTS": {**_GLM, **_PRIOR, "noise_std": _positive},
    "GLMTS": {
        "diagonal": _boolean,
        "laplace": _GLM["laplace"],
        "laplace_batch": _GLM["laplace_batch"],
        "ridge": _positive,
        **_AT,
        **_PRIOR,
    },
    "LinUCB": {
        "alpha": _alpha,
        "prior": _choice("marginal", "ridge"),
        "regularization": _positive,
        "width": _choice("constant", "abbasi-yadkori"),
        "noise_std": _positive,
    },
    "UCBGLM": {
        "alpha": _alpha,
        "regularization": _positive,
        "score": _choice("linear", "probability"),
    },
    "JointTS": {"noise_std": _positive},
    "Oracle": {},
    "Uniform": {},
}


def check_options(kind: str, options: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validate ``options`` of a policy ``kind``; errors name ``where.key``."""
    if kind not in OPTIONS:
        raise ConfigError(f"{where}.type: unknown policy {kind!r}; expected one of "
                          f"{sorted(OPTIONS)}")
    allowed = OPTIONS[kind]
    out = {}
    for key, value in options.items():
        if key not in allowed:
            hint = f"one of {sorted(allowed)}" if allowed else "no options"
            raise ConfigError(f"{where}.{key}: unknown option for {kind}; expected {hint}")
        try:
            out[key] = allowed[key](value)
        except ValueError as exc:
            raise ConfigError(f"{where}.{key}: {exc}") from None
    return out


# ---------------------------------------------------------------------- widths
def linucb_auto_alpha(environment, horizon: int, prior_precision_trace: float,
                      noise_std: float) -> float:
    """The authors' LinUCB width (constant over rounds), divided by σ for our score_std.

    √Λ·√d + σ √(d log((1 + n κ² / Λ) / δ)) with δ = 1/n, κ the largest context norm and Λ the
    largest prior precision trace over d.
    """
    d, n = environment.dim, horizon
    lam = prior_precision_trace / d
    kappa = environment.context_bound
    width = math.sqrt(lam) * math.sqrt(d) + noise_std * math.sqrt(
        d * math.log((1 + n * kappa**2 / lam) * n)
    )
    return width / noise_std


def ucbglm_auto_alpha(dim: int, horizon: int) -> float:
    """The authors' UCB-GLM width: (σ/κ) √((d/2) log(1 + 2n/d) + log(1/δ)), σ = 0.5,
    κ = 0.25, δ = 1/n."""
    n = horizon
    return (0.5 / 0.25) * math.sqrt((dim / 2) * math.log(1 + 2 * n / dim) + math.log(n))


# ---------------------------------------------------------------------- policies
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


class ProbabilityUCB:
    """UCB on the probability scale, the authors' UCB-GLM: sigmoid(mean) + α · std.

    A decision rule (``scores(model, x, rng)``) for a model with ``mean_scores`` on the
    linear-predictor scale and ``score_std``.
    """

    name = "ucb-probability"
    deterministic = True

    def __init__(self, alpha: float) -> None:
        self.alpha = float(alpha)

    def scores(self, model, x, rng):
        return expit(model.mean_scores(x)) + self.alpha * model.score_std(x)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "alpha": self.alpha}

    def __repr__(self) -> str:
        return f"ProbabilityUCB(alpha={self.alpha})"


#: limits of the batched-over-runs path (per run): K·d² and K·L cells, L·d effect coordinates
_BATCH_MAX_CELLS = 50_000
_BATCH_MAX_EFFECT_DIM = 64
#: exact recompute cadence of the batched path
_BATCH_REFACTOR = 1000


def _prior_of(environment, kind: str, o: Mapping[str, Any] | None = None):
    structure = (o or {}).get("structure")
    if structure is not None:
        priors = getattr(environment, "priors", None) or {}
        if structure not in priors:
            raise ConfigError(f"{kind}: structure {structure!r} is not offered by "
                              f"{type(environment).__name__} (it has {sorted(priors)})")
        return priors[structure]
    prior = getattr(environment, "prior", None)
    if prior is None:
        raise ConfigError(f"{kind} needs an environment with a mixed-effect prior "
                          f"(mixed-effect or slates), not {type(environment).__name__}")
    return prior


def _single_effect(prior, o: Mapping[str, Any]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """HierTS's prior: the one effect's mean (d,) and covariance (d, d), and the actions'
    covariances, (d, d) or (K, d, d).

    The effect has the mean of the effects' means and effect_cov_scale times the mean of their
    covariance blocks. ``action_cov = "marginal"`` gives each action Σ0 + Γ_i Σ_Ψ Γ_iᵀ instead of
    Σ0: the one effect, shared with weight 1 by every action, cannot explain the per-action mix
    of L effects, so that variance stays with the action (LinTS's marginal prior, plus a
    shared mean).
    """
    cov = o.get("effect_cov_scale", 1.0) * prior.effect_cov_blocks().mean(axis=0)
    if o.get("action_cov", "conditional") == "marginal":
        action_cov = prior.marginal_action_prior()[1]
    else:
        action_cov = prior.action_cov
    return np.asarray(prior.effect_mean).mean(axis=0), cov, np.asarray(action_cov)


def _independent_prior(environment, o: dict):
    prior = getattr(environment, "prior", None)
    choice = o.get("prior", "marginal" if prior is not None else "isotropic")
    if choice == "marginal":
        # an environment may name the independent prior its paper used (MovieLens: every movie
        # ~ N(mean movie, diag(v))); otherwise the mixed-effect prior's marginal
        own = getattr(environment, "independent_prior", None)
        if own is not None:
            return own()
        return _prior_of(environment, "prior = 'marginal'").marginal_action_prior()
    K, d = environment.n_actions, environment.dim
    return np.zeros((K, d)), o.get("prior_var", 1.0) * np.eye(d)


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
        object.__setattr__(self, "options", check_options(self.kind, self.options, "policy"))

    def with_horizon(self, horizon: int) -> PolicySpec:
        return dataclasses.replace(self, horizon=int(horizon))

    def __call__(self, environment, seed=None):
        return getattr(self, "_build_" + self.kind)(environment, seed, dict(self.options))

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
            priors = [_prior_of(env, self.kind, o) for env in envs]
            return BatchedLinearGaussianTS.from_priors(
                priors, np.asarray(noise), rngs, refactor_every=_BATCH_REFACTOR)
        if self.kind == "FactoredMeTS":
            # eq. 43 uses the diagonal blocks of Σ_Ψ, whatever the off-diagonal ones
            priors = [_prior_of(env, self.kind, o) for env in envs]
            L, d = priors[0].n_effects, priors[0].dim
            eye = np.eye(L)[:, None, :, None]
            return BatchedLinearGaussianTS.from_priors(
                [MixedEffectPrior(p.effect_mean,
                                  (eye * p.effect_cov_blocks()[:, :, None, :]).reshape(L * d,
                                                                                      L * d),
                                  p.mixing, p.action_cov) for p in priors],
                np.asarray(noise), rngs, refactor_every=_BATCH_REFACTOR, factored=True)
        if self.kind == "HierTS":
            priors = [_prior_of(env, self.kind, o) for env in envs]
            means, covs, action_covs = zip(*(_single_effect(p, o) for p in priors))
            K, d = priors[0].n_actions, priors[0].dim
            return BatchedLinearGaussianTS(
                np.stack([np.broadcast_to(c, (K, d, d)) for c in action_covs]),
                np.asarray(noise), rngs,
                mixing=np.ones((len(envs), priors[0].n_actions, 1)),
                effect_mean=np.stack(means)[:, None], effect_cov=np.stack(covs),
                refactor_every=_BATCH_REFACTOR)
        if self.kind == "LinTS":
            means, covs = zip(*(_independent_prior(env, o) for env in envs))
            K, d = envs[0].n_actions, envs[0].dim
            return BatchedLinearGaussianTS(
                np.stack([np.broadcast_to(c, (K, d, d)) for c in covs]), np.asarray(noise),
                rngs, action_mean=np.stack(means), refactor_every=_BATCH_REFACTOR)
        # LinUCB: the same prior and width as _build_LinUCB, deterministic scores
        built = [self._build_LinUCB(env, None, dict(o)) for env in envs]
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
            prior = _prior_of(environment, self.kind, o)
            # dense per-run arrays: keep them small (the sequential path is O(nnz) in memory)
            return prior.n_actions * prior.dim**2 <= _BATCH_MAX_CELLS and \
                prior.n_effects * prior.dim <= _BATCH_MAX_EFFECT_DIM and \
                prior.n_actions * prior.n_effects <= _BATCH_MAX_CELLS
        if self.kind == "JointTS":
            prior = _prior_of(environment, self.kind, o)
            return prior.n_actions * prior.dim**2 <= _BATCH_MAX_CELLS
        if self.kind == "LinTS":
            if o.get("likelihood", "gaussian") != "gaussian":
                return False
            return environment.n_actions * environment.dim**2 <= _BATCH_MAX_CELLS
        if self.kind == "LinUCB":
            return o.get("width", "constant") == "constant" and \
                environment.n_actions * environment.dim**2 <= _BATCH_MAX_CELLS
        return False

    # -- builders ---------------------------------------------------------------------
    @staticmethod
    def _glm(o: dict) -> dict:
        keys = ("likelihood", "laplace", "laplace_batch", "ridge", "laplace_at")
        return {k: o[k] for k in keys if k in o}

    @staticmethod
    def _noise(environment, o: dict) -> float:
        return o.get("noise_std", float(getattr(environment, "noise_std", 1.0)))

    def _mets(self, cls, environment, seed, o):
        kwargs = self._glm(o)
        if "refactor_every" in o:
            kwargs["refactor_every"] = o["refactor_every"]
        return cls(_prior_of(environment, self.kind, o),
                   noise_std=self._noise(environment, o), seed=seed, **kwargs)

    def _build_MeTS(self, environment, seed, o):
        from ..algorithms import MeTS

        return self._mets(MeTS, environment, seed, o)

    def _build_FactoredMeTS(self, environment, seed, o):
        from ..algorithms import FactoredMeTS

        return self._mets(FactoredMeTS, environment, seed, o)

    def _build_HierTS(self, environment, seed, o):
        from ..algorithms import HierTS

        prior = _prior_of(environment, self.kind, o)
        kwargs = self._glm(o)
        if "refactor_every" in o:
            kwargs["refactor_every"] = o["refactor_every"]
        mean, cov, action_cov = _single_effect(prior, o)
        return HierTS(prior.n_actions, mean, cov, action_cov,
                      noise_std=self._noise(environment, o), seed=seed, **kwargs)

    def _build_LinTS(self, environment, seed, o):
        from ..algorithms import LinTS

        mean, cov = _independent_prior(environment, o)
        return LinTS(mean, cov, noise_std=self._noise(environment, o), seed=seed,
                     **self._glm(o))

    def _build_GLMTS(self, environment, seed, o):
        from ..algorithms import GLMTS

        mean, cov = _independent_prior(environment, o)
        keys = ("diagonal", "laplace", "laplace_batch", "ridge", "laplace_at")
        kwargs = {k: o[k] for k in keys if k in o}
        return GLMTS(mean, cov, seed=seed, **kwargs)

    def _need_horizon(self) -> int:
        if self.horizon is None:
            raise ConfigError(f"{self.kind} with alpha = 'auto' needs the horizon "
                              "(simulate passes it; or call spec.with_horizon(n))")
        return self.horizon

    def _build_LinUCB(self, environment, seed, o):
        from ..algorithms import ContextualBandit, LinTS, LinUCB
        from ..policies import UCB

        noise = self._noise(environment, o)
        prior = o.get("prior", "marginal" if getattr(environment, "prior", None) else "ridge")
        alpha = o.get("alpha", "auto")
        K, d = environment.n_actions, environment.dim
        if prior == "marginal":
            if o.get("width", "constant") != "constant":
                raise ConfigError("LinUCB: width = 'abbasi-yadkori' needs prior = 'ridge'")
            mean, cov = _prior_of(environment, "LinUCB prior = 'marginal'").marginal_action_prior()
            if alpha == "auto":
                trace = float(np.trace(np.linalg.inv(cov), axis1=-2, axis2=-1).max())
                alpha = linucb_auto_alpha(environment, self._need_horizon(), trace, noise)
            model = LinTS(mean, cov, noise_std=noise).model
            return ContextualBandit(model, UCB(alpha), seed)
        lam = o.get("regularization", 1.0)
        if alpha == "auto":
            # prior covariance σ²/λ I: precision trace / d = λ/σ²
            alpha = linucb_auto_alpha(environment, self._need_horizon(), d * lam / noise**2,
                                      noise)
        return LinUCB(K, d, alpha=alpha, regularization=lam, noise_std=noise,
                      width=o.get("width", "constant"), seed=seed)

    def _build_UCBGLM(self, environment, seed, o):
        from ..algorithms import UCBGLM

        alpha = o.get("alpha", "auto")
        if alpha == "auto":
            alpha = ucbglm_auto_alpha(environment.dim, self._need_horizon())
        policy = UCBGLM(environment.n_actions, environment.dim, alpha=alpha,
                        regularization=o.get("regularization", 1.0), seed=seed)
        if o.get("score", "linear") == "probability":
            policy.rule = ProbabilityUCB(alpha)
        return policy

    def _build_JointTS(self, environment, seed, o):
        from ..algorithms import JointTS

        return JointTS(_prior_of(environment, self.kind), noise_std=self._noise(environment, o),
                       seed=seed)

    def _build_Oracle(self, environment, seed, o):
        return Oracle(environment, seed)

    def _build_Uniform(self, environment, seed, o):
        return Uniform(environment.n_actions, seed)
