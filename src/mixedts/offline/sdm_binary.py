"""sDM with binary rewards (Aouali, Brunel, Rohde & Korba, AISTATS 2025, App. E.1 and F.4).

Each instance is the synthetic problem of :mod:`~mixedts.offline.sdm_synthetic` with Bernoulli
rewards, drawn from its own seeded :class:`numpy.random.SeedSequence` (``seed``'s
``n_instances`` children):

* the structure: μ ~ U[−1, 1]^{d′}, W_a ~ U[−1, 1]^{d×d′} (K of them), Σ = 3 I_{d′},
  Σ_a = I_d (a :class:`~mixedts.LinearEffectPrior`);
* the truth: ψ ~ N(μ, Σ), θ_a ~ N(W_a ψ, Σ_a);
* the logs: max(n_logs) rounds, x ~ U[−1, 1]^d, a uniform over the K actions,
  r ~ Bernoulli(g(xᵀθ_a)) with g the sigmoid; the logs for a smaller n are the first n rounds;
* ``n_test`` fresh contexts from U[−1, 1]^d.

Reward models (:func:`~mixedts.offline.sdm_reward_models` on the n logged rounds):

* binary (the right likelihood): ``sdm`` (:class:`~mixedts.MeTS` on the prior, logistic
  rewards: each action's Laplace pseudo-observation in the structured closed forms),
  ``dm-bayes`` (:class:`~mixedts.LinTS` on the marginal prior, logistic), ``dm-freq``
  (λ-penalised logistic MLE, :class:`~mixedts.UCBGLM`); the Bayesian ones predict
  r̂ = g(xᵀμ̂_a / √(1 + (π/8) xᵀΣ̂_a x)) (probit approximation) and the MLE g(xᵀθ̂_a);
* Gaussian (the misspecified likelihood of the paper's App. F.4, suffix ``-lin``):
  ``sdm-lin``, ``dm-bayes-lin``, ``dm-freq-lin``, fitted on the 0/1 rewards with noise σ
  and predicting xᵀμ̂_a.

Metrics (rows of the tidy result):

* ``opl_relative_reward``: the greedy policy â(x) = argmax_a r̂(x, a) on the test contexts,
  Σ_x g(xᵀθ_{â(x)}) / Σ_x max_a g(xᵀθ_a);
* ``ope_squared_error``: (V̂_DM − V)² for the ε-greedy target around the true optimum, V its
  value on the test contexts (probabilities: the true g), V̂_DM the direct method on the
  logged contexts.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.special import expit

from .._validation import ValidationError
from ..priors_linear import LinearEffectPrior
from .logs import LoggedFeedback
from .policy_rewards import predict_rewards_with_policy, sdm_reward_models

__all__ = ["BINARY_METHODS", "run_sdm_binary"]

#: the reward models of :func:`run_sdm_binary`, binary likelihood first
BINARY_METHODS = ("sdm", "dm-bayes", "dm-freq", "sdm-lin", "dm-bayes-lin", "dm-freq-lin")


def _binary_instance(rng: np.random.Generator, K: int, d: int, d_eff: int, n_max: int,
                     n_test: int) -> dict[str, np.ndarray]:  # fmt: skip
    """One instance, drawn in the order of the Gaussian experiment's (rewards aside)."""
    mu = rng.uniform(-1.0, 1.0, d_eff)
    W = rng.uniform(-1.0, 1.0, (K, d, d_eff))
    psi = mu + np.sqrt(3.0) * rng.standard_normal(d_eff)
    theta = W @ psi + rng.standard_normal((K, d))
    X = rng.uniform(-1.0, 1.0, (n_max, d))
    A = rng.integers(0, K, n_max)
    p = expit(np.einsum("nd,nd->n", X, theta[A]))
    R = (rng.uniform(size=n_max) < p).astype(np.float64)
    X_test = rng.uniform(-1.0, 1.0, (n_test, d))
    return {"mu": mu, "W": W, "theta": theta, "X": X, "A": A, "R": R, "X_test": X_test}


def _check_sizes(**sizes: Any) -> None:
    for name, v in sizes.items():
        if int(v) != v or v < 1:
            raise ValidationError(f"{name} must be a positive integer, got {v}")


def run_sdm_binary(n_instances: int = 10, n_logs: Any = (250, 500, 1000, 2000), K: int = 100,
                   d: int = 5, d_eff: int = 5, seed: int = 0, progress: bool = False, *,
                   n_test: int = 10_000, epsilon: float = 0.5, noise_std: float = 1.0,
                   regularization: float = 1.0, laplace_at: str = "posterior"):  # fmt: skip
    """sDM-binary against DM (Bayes), DM (Freq) and the Gaussian (misspecified) models.

    Parameters
    ----------
    n_instances : int
        Problem instances drawn from the prior.
    n_logs : sequence of int
        Logged sample sizes, each ≥ 1 (nested prefixes of one log).
    K, d, d_eff : int
        Actions, context dimension d and latent dimension d′.
    seed : int
        Root of the instances' SeedSequences.
    progress : bool
        Print one line per instance.
    n_test : int
        Fresh contexts for the relative rewards and the true values.
    epsilon : float
        The OPE target's exploration rate.
    noise_std : float
        σ of the misspecified Gaussian models.
    regularization : float
        λ of DM (Freq) (ridge, or the logistic MLE's penalty).
    laplace_at : {"posterior", "likelihood"}
        Where sDM-binary and DM (Bayes)-binary expand each action's log-likelihood: at its
        MAP under the conditional prior (default), or at its penalised MLE (the paper).

    Returns
    -------
    pandas.DataFrame
        Columns ``instance``, ``n``, ``method`` (:data:`BINARY_METHODS`), ``metric``
        (``"opl_relative_reward"``, ``"ope_squared_error"``), ``value``;
        :func:`~mixedts.offline.sdm_synthetic.summarize` gives means and standard errors.

    >>> df = run_sdm_binary(1, (30,), K=4, d=2, d_eff=2, n_test=50)
    >>> sorted(df["method"].unique()) == sorted(BINARY_METHODS)
    True
    """
    import pandas as pd

    ns = sorted({int(n) for n in np.atleast_1d(n_logs)})
    if not ns or ns[0] < 1:
        raise ValidationError(f"n_logs must be positive sample sizes, got {n_logs}")
    _check_sizes(n_instances=n_instances, K=K, d=d, d_eff=d_eff, n_test=n_test)
    if not 0.0 <= epsilon <= 1.0:
        raise ValidationError(f"epsilon must lie in [0, 1], got {epsilon}")
    rows: list[tuple] = []
    for i, child in enumerate(np.random.SeedSequence(seed).spawn(int(n_instances))):
        inst = _binary_instance(np.random.default_rng(child), K, d, d_eff, ns[-1], n_test)
        prior = LinearEffectPrior(inst["mu"], 3.0 * np.eye(d_eff), inst["W"], np.eye(d))
        P_test = expit(inst["X_test"] @ inst["theta"].T)  # true reward probabilities
        best = P_test.max(axis=1)
        truth = float(epsilon * P_test.mean() + (1.0 - epsilon) * best.mean())
        a_star = np.argmax(inst["X"] @ inst["theta"].T, axis=1)
        for n in ns:
            logs = LoggedFeedback(inst["X"][:n], inst["A"][:n], inst["R"][:n], n_actions=K)
            models = {}
            for lik, suffix in (("logistic", ""), ("gaussian", "-lin")):
                fitted = sdm_reward_models(logs, prior, noise_std, regularization=regularization,
                                           likelihood=lik, laplace_at=laplace_at)
                models.update({label + suffix: m for label, m in fitted.items()})
            rows_n = np.arange(n)
            for label in BINARY_METHODS:
                policy = models[label]
                chosen = np.argmax(predict_rewards_with_policy(policy, inst["X_test"]), axis=1)
                rr = float(P_test[np.arange(n_test), chosen].sum() / best.sum())
                rows.append((i, n, label, "opl_relative_reward", rr))
                q = predict_rewards_with_policy(policy, logs.contexts)
                dm = float(np.mean(epsilon * q.mean(axis=1)
                                   + (1.0 - epsilon) * q[rows_n, a_star[:n]]))
                rows.append((i, n, label, "ope_squared_error", (dm - truth) ** 2))
        if progress:
            print(f"instance {i + 1}/{n_instances} done", flush=True)
    return pd.DataFrame(rows, columns=["instance", "n", "method", "metric", "value"])
