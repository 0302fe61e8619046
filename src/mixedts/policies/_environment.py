"""What a policy reads from an environment to build itself for an experiment.

Environments are duck-typed here (``prior``, ``priors``, ``n_actions``, ``dim``, ``noise_std``,
``independent_prior()``, ``context_bound``): policies never import the environments layer.
"""

from __future__ import annotations

import math

import numpy as np

from .registry import ConfigError


def prior_of(environment, kind: str, structure: str | None = None):
    """The environment's mixed-effect prior (``structure`` picks ``environment.priors[...]``)."""
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


def noise_of(environment, noise_std: float | None) -> float:
    """``noise_std`` if given, else the environment's reward noise (1 if it has none)."""
    if noise_std is not None:
        return float(noise_std)
    return float(getattr(environment, "noise_std", 1.0))


def single_effect(prior, effect_cov_scale: float = 1.0, action_cov: str = "conditional"):
    """HierTS's prior: the one effect's mean (d,) and covariance (d, d), and the actions'
    covariances, (d, d) or (K, d, d).

    The effect has the mean of the effects' means and ``effect_cov_scale`` times the mean of
    their covariance blocks. ``action_cov = "marginal"`` gives each action Σ0 + Γ_i Σ_Ψ Γ_iᵀ
    instead of Σ0: the one effect, shared with weight 1 by every action, cannot explain the
    per-action mix of L effects, so that variance stays with the action (LinTS's marginal
    prior, plus a shared mean).
    """
    cov = effect_cov_scale * prior.effect_cov_blocks().mean(axis=0)
    if action_cov == "marginal":
        covs = prior.marginal_action_prior()[1]
    else:
        covs = prior.action_cov
    return np.asarray(prior.effect_mean).mean(axis=0), cov, np.asarray(covs)


def independent_prior(environment, prior: str | None, prior_var: float = 1.0):
    """Per-action Gaussian prior (mean (K, d), covariance (d, d) or (K, d, d)).

    ``"marginal"`` (the default with a mixed-effect environment): the environment's own
    independent prior where it names one (MovieLens), else its mixed-effect prior's marginal;
    ``"isotropic"``: N(0, prior_var · I).
    """
    has_prior = getattr(environment, "prior", None) is not None
    choice = prior or ("marginal" if has_prior else "isotropic")
    if choice == "marginal":
        own = getattr(environment, "independent_prior", None)
        if own is not None:
            return own()
        return prior_of(environment, "prior = 'marginal'").marginal_action_prior()
    K, d = environment.n_actions, environment.dim
    return np.zeros((K, d)), prior_var * np.eye(d)


def need_horizon(kind: str, horizon: int | None) -> int:
    if horizon is None:
        raise ConfigError(f"{kind} with alpha = 'auto' needs the horizon "
                          "(simulate passes it; or call spec.with_horizon(n))")
    return int(horizon)


def linucb_auto_alpha(environment, horizon: int, prior_precision_trace: float,
                      noise_std: float) -> float:
    """The meTS authors' LinUCB width (constant over rounds), divided by σ for our std.

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
    """The meTS authors' UCB-GLM width: (σ/κ) √((d/2) log(1 + 2n/d) + log(1/δ)), σ = 0.5,
    κ = 0.25, δ = 1/n."""
    n = horizon
    return (0.5 / 0.25) * math.sqrt((dim / 2) * math.log(1 + 2 * n / dim) + math.log(n))

