"""mixedts policies as reward models: warm-start them from logs, read q̂(x, a) off them.

* :func:`fit_on_logs`: condition any mixedts policy on logged (context, action, reward)
  triples (one ``update_batch`` call): a warm start, or the fit of a reward model.
* :func:`predict_rewards_with_policy`: the posterior mean expected reward of every action at
  every context, (n, K), vectorised (for logistic rewards, the probit approximation of
  E[sigmoid(xᵀθ)] under the posterior).
* :func:`sdm_reward_models`: the structured direct method (sDM) of issue #12: a structured
  posterior (:class:`~mixedts.MeTS` on a :class:`~mixedts.MixedEffectPrior` or a
  :class:`~mixedts.LinearEffectPrior`) fitted on the logs, with its unstructured Bayesian
  (:class:`~mixedts.LinTS` on the marginal prior: ψ marginalised out) and frequentist
  (per-action ridge, :class:`~mixedts.LinUCB`; penalised logistic MLE,
  :class:`~mixedts.UCBGLM`, for binary rewards) counterparts.

A fitted policy is a reward model for :func:`~mixedts.offline.evaluate` (``reward_model=``)
and :func:`~mixedts.offline.predict_rewards`. Predictions use the policy's current posterior:
fit it first (:func:`fit_on_logs`); evaluating on the logs it was fitted on is what the direct
method does.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit

from .._validation import ValidationError
from . import _checks as C
from .logs import LoggedFeedback

__all__ = ["PREDICTIVES", "fit_on_logs", "is_policy", "predict_rewards_with_policy",
           "probit_sigmoid_mean", "sdm_reward_models"]

#: how GLM predictions treat the posterior's spread (:func:`predict_rewards_with_policy`)
PREDICTIVES = ("probit", "plug-in")


def is_policy(obj: Any) -> bool:
    """True for a mixedts policy (contextual or context-free), or anything shaped like one:
    ``posterior_mean``, ``update_batch`` and ``model`` attributes."""
    from ..policies.base import ContextFreeBandit, ContextualBandit

    if isinstance(obj, (ContextualBandit, ContextFreeBandit)):
        return True
    return all(hasattr(obj, name) for name in ("posterior_mean", "update_batch", "model"))


def _is_experts(policy: Any) -> bool:
    from ..models.experts import WeightedExperts

    return isinstance(getattr(policy, "model", None), WeightedExperts)


def _context_free(policy: Any) -> bool:
    from ..policies.base import ContextFreeBandit

    return isinstance(policy, ContextFreeBandit) or getattr(policy.model, "dim", None) == 0


def _check_policy(policy: Any, name: str) -> None:
    if not is_policy(policy):
        raise ValidationError(f"{name} must be a mixedts policy, got {type(policy).__name__}")
    if _is_experts(policy):
        raise ValidationError(
            f"{name}: an expert policy ({type(policy).__name__}) has no per-action reward "
            "parameters, so it cannot predict rewards; use a linear, GLM, mixed-effect or "
            "K-armed policy"
        )


def _check_actions(policy: Any, n_actions: int, name: str) -> None:
    K = int(policy.n_actions) if hasattr(policy, "n_actions") else None
    if K is not None and K != n_actions:
        raise ValidationError(f"{name} has {K} actions, but the logs have {n_actions}")


def fit_on_logs(policy: Any, logs: LoggedFeedback) -> Any:
    """Condition ``policy`` on every logged round at once and return it (a warm start).

    One ``policy.update_batch(contexts, actions, rewards)`` call: contexts (n, d) shared or
    (n, K, d) per action (the policy conditions on the logged action's row); context-free
    policies get ``update_batch(actions, rewards)``. The policy validates everything first
    (a GLM policy needs rewards 0 or 1 unless built with ``binarize=True``) and is left
    unchanged when it refuses. The policy is updated in place.

    >>> from mixedts import LinTS
    >>> logs = LoggedFeedback(np.array([[1.0], [1.0]]), [0, 1], [1.0, 0.0])
    >>> policy = fit_on_logs(LinTS(np.zeros((2, 1)), np.eye(1)), logs)
    >>> policy.posterior_mean().ravel().tolist()
    [0.5, 0.0]
    """
    if not isinstance(logs, LoggedFeedback):
        raise ValidationError(f"logs must be a LoggedFeedback, got {type(logs).__name__}")
    if not is_policy(policy):
        raise ValidationError(f"policy must be a mixedts policy, got {type(policy).__name__}")
    if _is_experts(policy):  # experts learn from (context, action, reward) too
        policy.update_batch(logs.contexts, logs.actions, logs.rewards)
        return policy
    _check_actions(policy, logs.n_actions, "policy")
    from ..policies.base import ContextFreeBandit

    if isinstance(policy, ContextFreeBandit):
        policy.update_batch(logs.actions, logs.rewards)
    elif _context_free(policy):
        policy.update_batch(None, logs.actions, logs.rewards)
    else:
        policy.update_batch(logs.contexts, logs.actions, logs.rewards)
    return policy


def probit_sigmoid_mean(mean: Any, var: Any) -> np.ndarray:
    """E[sigmoid(u)] for u ~ N(mean, var), by the probit approximation
    sigmoid(mean / √(1 + π var / 8)) (Spiegelhalter & Lauritzen 1990; sDM's App. E.1 reward
    estimate r̂ = g(φᵀμ̂_a / √(1 + (π/8) ‖φ‖²_{Σ̂_a}))). Elementwise; its error is at most
    about 0.013 (at mean 6, standard deviation 3.2).

    >>> probit_sigmoid_mean(np.array([0.0, 2.0, 2.0]), np.array([4.0, 0.0, 4.0])).round(3).tolist()
    [0.5, 0.881, 0.777]
    """
    mean = np.asarray(mean, dtype=np.float64)
    return expit(mean / np.sqrt(1.0 + (np.pi / 8.0) * np.asarray(var, dtype=np.float64)))


def _score_variances(cov: np.ndarray, X: np.ndarray) -> np.ndarray:
    """x_{t,a}ᵀ Σ̂_a x_{t,a} for every context and action, (n, K), from Σ̂ (K, d, d).

    Shared contexts (n, d): one (n, d²) @ (d², K) product (no (n, K, d) temporary)."""
    K, d, _ = cov.shape
    if X.ndim == 2:
        XX = (X[:, :, None] * X[:, None, :]).reshape(len(X), d * d)
        return XX @ cov.reshape(K, d * d).T
    return np.einsum("nkd,kde,nke->nk", X, cov, X)


def _has_posterior(policy: Any) -> bool:
    """The policy's model is a posterior one can sample (not UCB-GLM's MLE and ellipsoid)."""
    from ..models.base import Draw

    return Draw.SAMPLE in getattr(policy.model, "draws", frozenset())


def predict_rewards_with_policy(policy: Any, contexts: Any, *, name: str = "reward_model",
                                predictive: str = "probit") -> np.ndarray:  # fmt: skip
    """The policy's estimate of E[r | x_t, a] for every context and action, (n, K).

    Linear-Gaussian policies (LinTS, LinUCB, MeTS, HierTS, JointTS, ...): the posterior mean
    E[x_{t,a}ᵀ θ_a] = x_{t,a}ᵀ E[θ_a] exactly, from ``policy.posterior_mean()`` (K, d):
    ``X @ Mᵀ`` for shared contexts (n, d), ``einsum("nkd,kd->nk")`` for per-action contexts
    (n, K, d). GLM policies (logistic likelihood) with a posterior (MeTS, LinTS and GLMTS with
    ``likelihood="logistic"``): ``predictive="probit"`` (default) gives the posterior mean
    reward E[sigmoid(xᵀθ_a)] under N(μ̂_a, Σ̂_a) (``posterior_mean``, ``posterior_cov``) by
    the probit approximation, sigmoid(xᵀμ̂_a / √(1 + (π/8) xᵀΣ̂_a x)) (sDM's App. E.1,
    :func:`probit_sigmoid_mean`); ``predictive="plug-in"`` the link at the posterior mean,
    sigmoid(xᵀμ̂_a) (further from 1/2). UCB-GLM (no posterior) always gives the plug-in.
    Context-free policies: the posterior mean reward of each arm (K,), the same in every
    round; ``contexts`` then only gives n (any array with n rows). Expert policies have no
    reward parameters: :class:`ValidationError` naming ``name``.

    >>> from mixedts import LinTS
    >>> policy = LinTS(np.array([[1.0, 0.0], [0.0, 2.0]]), np.eye(2))
    >>> predict_rewards_with_policy(policy, np.array([[1.0, 1.0], [2.0, 0.0]])).tolist()
    [[1.0, 2.0], [2.0, 0.0]]
    """
    _check_policy(policy, name)
    if predictive not in PREDICTIVES:
        raise ValidationError(f"predictive must be one of {PREDICTIVES}, got {predictive!r}")
    M = np.asarray(policy.posterior_mean(), dtype=np.float64)
    if _context_free(policy):
        X = np.asarray(contexts)
        if X.ndim < 1:
            raise ValidationError(f"contexts must have one row per round, got shape {X.shape}")
        return np.broadcast_to(M.reshape(1, -1), (len(X), M.shape[0])).copy()
    K, d = M.shape
    X = C.float_rows(contexts, "contexts", None, "(n, d) or (n, K, d)", ndims=(2, 3))
    if X.shape[-1] != d or (X.ndim == 3 and X.shape[1] != K):
        want = f"(n, {d}) or (n, {K}, {d})"
        raise ValidationError(
            f"{name}: the policy expects contexts {want}, got {X.shape}"
        )
    u = X @ M.T if X.ndim == 2 else np.einsum("nkd,kd->nk", X, M)
    likelihood = getattr(policy, "likelihood", None)
    if likelihood is None:
        likelihood = getattr(policy.model, "likelihood", None)
    if likelihood is None or likelihood.name == "gaussian":
        q = u
    elif likelihood.name == "logistic" and predictive == "probit" and _has_posterior(policy):
        cov = np.asarray(policy.posterior_cov(), dtype=np.float64)
        q = probit_sigmoid_mean(u, _score_variances(cov, X))
    else:
        q = np.asarray(likelihood.mean(u), dtype=np.float64)
    return C.finite(q, f"{name} predictions")


def sdm_reward_models(logs: LoggedFeedback, prior: Any, noise_std: float = 1.0, *,
                      regularization: float = 1.0, seed: Any = None,
                      likelihood: str = "gaussian",
                      laplace_at: str = "posterior") -> dict[str, Any]:  # fmt: skip
    """Three reward models fitted on the logs, for the direct method and DR (issue #12).

    * ``"sdm"``: the structured DM, ``MeTS(prior)``: the exact structured posterior
      (a :class:`~mixedts.MixedEffectPrior` or a :class:`~mixedts.LinearEffectPrior`, sDM's
      θ_a | ψ ~ N(W_a ψ, Σ_a)), which pools what every action's rows say about ψ.
    * ``"dm-bayes"``: :class:`~mixedts.LinTS` on ``prior.marginal_action_prior()``: the same
      prior with ψ marginalised out, each action's posterior on its own rows (the structure
      ignored).
    * ``"dm-freq"``: per-action ridge regression with ridge ``regularization`` λ
      (``LinUCB(K, d, regularization=λ)``, whose posterior mean is the ridge estimate).

    ``likelihood="logistic"`` (binary rewards, sDM's App. E.1): sDM and DM (Bayes) replace
    each action's likelihood by its Laplace pseudo-observation (expanded where
    ``laplace_at`` says: ``"likelihood"`` is the paper's MLE, ``"posterior"`` the MAP under
    the action's conditional prior, which stays informative on separable data), and predict
    with the probit approximation of E[sigmoid(xᵀθ_a)]; DM (Freq) is the λ-penalised
    logistic MLE (``UCBGLM(K, d, regularization=λ)``, predictions sigmoid(xᵀθ̂_a)).

    Each is a fitted policy: pass it as ``reward_model=`` to
    :func:`~mixedts.offline.evaluate`. ``noise_std`` is the reward noise σ of the Gaussian
    Bayesian models (and the scale of LinUCB's prior, which leaves the ridge estimate
    unchanged).

    >>> from mixedts.environments import MixedEffectEnvironment
    >>> from mixedts.offline import simulate_logs
    >>> env = MixedEffectEnvironment(n_actions=4, n_effects=2, dim=3, seed=0)
    >>> models = sdm_reward_models(simulate_logs(env, "uniform", 50, seed=1), env.prior)
    >>> sorted(models)
    ['dm-bayes', 'dm-freq', 'sdm']
    """
    from ..policies import UCBGLM, LinTS, LinUCB, MeTS
    from ..priors import MixedEffectPrior
    from ..priors_linear import LinearEffectPrior

    if not isinstance(logs, LoggedFeedback):
        raise ValidationError(f"logs must be a LoggedFeedback, got {type(logs).__name__}")
    if not isinstance(prior, (MixedEffectPrior, LinearEffectPrior)):
        raise ValidationError("prior must be a MixedEffectPrior or a LinearEffectPrior, got "
                              f"{type(prior).__name__}")  # fmt: skip
    if likelihood not in ("gaussian", "logistic"):
        raise ValidationError(f"likelihood must be 'gaussian' or 'logistic', got {likelihood!r}")
    K, d = prior.n_actions, prior.dim
    if K != logs.n_actions or d != logs.dim:
        raise ValidationError(
            f"prior has {K} actions of dimension {d}, but the logs have {logs.n_actions} "
            f"actions of dimension {logs.dim}"
        )
    mean, cov = prior.marginal_action_prior()
    if likelihood == "gaussian":
        models = {
            "sdm": MeTS(prior, noise_std=noise_std, seed=seed),
            "dm-bayes": LinTS(mean, cov, noise_std=noise_std, seed=seed),
            "dm-freq": LinUCB(K, d, regularization=regularization, noise_std=noise_std,
                              seed=seed),
        }
    else:
        glm = {"likelihood": "logistic", "laplace_at": laplace_at, "seed": seed}
        models = {
            "sdm": MeTS(prior, **glm),
            "dm-bayes": LinTS(mean, cov, **glm),
            "dm-freq": UCBGLM(K, d, regularization=regularization, seed=seed),
        }
    return {label: fit_on_logs(policy, logs) for label, policy in models.items()}
