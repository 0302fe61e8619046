"""Off-policy learning (OPL) with a reward model: the greedy policy and its relative reward.

* :func:`greedy_policy_from_posterior`: the greedy policy of sDM (Aouali, Brunel, Rohde &
  Korba, AISTATS 2025, Eq. 8), π̂_g(a | x) = 1{a = argmax_b q̂(x, b)}, with q̂ the posterior
  mean reward of a fitted mixedts policy (:func:`~mixedts.offline.fit_on_logs`) or
  x_aᵀ M_a for posterior means M (K, d). No pessimism: greedy is what minimises the Bayesian
  suboptimality (their App. E.5).
* :func:`relative_reward`: the paper's OPL metric, V(π̂; θ*) / V(π*; θ*), the value of the
  learned actions divided by the value of the optimal ones on the same contexts (a fresh
  sample from the context distribution, not the logs).
* :func:`greedy_relative_rewards`: the same for the greedy policies of several posterior
  means at once, in chunks of contexts so that no (n, K) array over all contexts is formed
  (the sDM experiment with K = 10⁵ actions, their Fig. 3).

Only numpy is imported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .._validation import ValidationError
from . import _checks as C
from .policy_rewards import is_policy, predict_rewards_with_policy

__all__ = ["GreedyPolicy", "greedy_policy_from_posterior", "greedy_relative_rewards",
           "relative_reward"]


def _linear_rewards(means: np.ndarray, contexts: Any, name: str) -> np.ndarray:
    """x_aᵀ M_a for every context and action: (n, K), contexts (n, d) or (n, K, d)."""
    K, d = means.shape
    X = C.float_rows(contexts, "contexts", None, "(n, d) or (n, K, d)", ndims=(2, 3))
    if X.shape[-1] != d or (X.ndim == 3 and X.shape[1] != K):
        raise ValidationError(f"{name}: expected contexts (n, {d}) or (n, {K}, {d}), "
                              f"got {X.shape}")  # fmt: skip
    return X @ means.T if X.ndim == 2 else np.einsum("nkd,kd->nk", X, means)


class GreedyPolicy:
    """The greedy policy of a reward model: ``policy(contexts)`` gives argmax_a q̂(x, a).

    Build it with :func:`greedy_policy_from_posterior`. ``action_probabilities(contexts)``
    gives the one-hot (n, K) distribution, so it can be the target of
    :func:`~mixedts.offline.evaluate`. Ties go to the lowest action index.

    Examples
    --------
    >>> policy = greedy_policy_from_posterior(np.array([[1.0, 0.0], [0.0, 1.0]]))
    >>> policy(np.array([[2.0, 1.0], [0.0, 3.0]])).tolist()
    [0, 1]
    >>> policy.action_probabilities(np.array([[2.0, 1.0]])).tolist()
    [[1.0, 0.0]]
    """

    def __init__(self, scores: Callable[[Any], np.ndarray]) -> None:
        self._scores = scores

    def rewards(self, contexts: Any) -> np.ndarray:
        """q̂(x, a) for every context and action, (n, K)."""
        return self._scores(contexts)

    def __call__(self, contexts: Any) -> np.ndarray:
        """The chosen action at every context, (n,) int64."""
        return np.argmax(self._scores(contexts), axis=1).astype(np.int64)

    def action_probabilities(self, contexts: Any) -> np.ndarray:
        """One-hot (n, K) action distribution of the greedy policy."""
        q = self._scores(contexts)
        out = np.zeros(q.shape, dtype=np.float64)
        out[np.arange(len(q)), np.argmax(q, axis=1)] = 1.0
        return out


def greedy_policy_from_posterior(policy_or_means: Any) -> GreedyPolicy:
    """The greedy OPL policy contexts → actions of a reward model's posterior mean.

    Parameters
    ----------
    policy_or_means : mixedts policy or array_like (K, d)
        A fitted mixedts policy (MeTS for sDM, LinTS for DM (Bayes), LinUCB for DM (Freq),
        GLM and context-free policies too): its rewards are
        :func:`~mixedts.offline.predict_rewards_with_policy`, read from the policy's
        posterior *when the greedy policy is called* (update the policy and the greedy
        policy follows). Or posterior means M (K, d), copied now: q̂(x, a) = x_aᵀ M_a.

    Returns
    -------
    GreedyPolicy
        ``greedy(contexts)`` → (n,) actions for contexts (n, d) or (n, K, d).

    >>> greedy = greedy_policy_from_posterior(np.array([[1.0, 0.0], [0.0, 1.0]]))
    >>> greedy(np.array([[2.0, 1.0], [0.0, 3.0]])).tolist()
    [0, 1]
    """
    if is_policy(policy_or_means):
        policy = policy_or_means
        return GreedyPolicy(lambda X: predict_rewards_with_policy(policy, X, name="policy"))
    M = C.finite(np.array(policy_or_means, dtype=np.float64), "posterior means")
    if M.ndim != 2 or min(M.shape) < 1:
        raise ValidationError(f"posterior means must have shape (K, d), got {M.shape}")
    return GreedyPolicy(lambda X: _linear_rewards(M, X, "greedy policy"))


def relative_reward(true_theta: Any, contexts: Any, chosen_actions: Any) -> float:
    """V(π̂) / V(π*): the mean true reward of the chosen actions over that of the best ones.

    With θ* the true parameters (K, d) and contexts x_1..x_n (a fresh sample from the context
    distribution):

        relative reward = Σ_i x_iᵀ θ*_{â_i}  /  Σ_i max_a x_iᵀ θ*_a

    (the paper's "avg. relative reward" of a learned policy; per-action contexts (n, K, d)
    use x_{i,a}). 1 for the optimal policy; it is only defined when the optimal value is
    positive (else :class:`~mixedts.ValidationError`).

    Parameters
    ----------
    true_theta : array_like (K, d)
    contexts : array_like (n, d) or (n, K, d)
    chosen_actions : array_like (n,) of ints, or a callable contexts → actions
        (e.g. a :class:`GreedyPolicy`).

    Examples
    --------
    >>> theta = np.array([[1.0, 0.0], [0.0, 2.0]])
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0]])  # best rewards 1 and 2
    >>> relative_reward(theta, X, [0, 0])  # gets 1 + 0
    0.3333333333333333
    """
    theta = C.finite(np.array(true_theta, dtype=np.float64), "true_theta")
    if theta.ndim != 2 or min(theta.shape) < 1:
        raise ValidationError(f"true_theta must have shape (K, d), got {theta.shape}")
    R = _linear_rewards(theta, contexts, "relative_reward")
    if callable(chosen_actions):
        chosen_actions = chosen_actions(contexts)
    A = np.asarray(chosen_actions)
    if A.shape != (len(R),) or not np.issubdtype(A.dtype, np.integer):
        raise ValidationError(f"chosen_actions must be {len(R)} integers, got shape {A.shape}"
                              f" and dtype {A.dtype}")  # fmt: skip
    if len(A) and (A.min() < 0 or A.max() >= R.shape[1]):
        raise ValidationError(f"chosen_actions must lie in [0, {R.shape[1]})")
    best = float(R.max(axis=1).sum())
    if not best > 0:
        raise ValidationError(f"the optimal policy's value is {best / max(len(R), 1):.3g} "
                              "(not positive): the relative reward is undefined")  # fmt: skip
    return float(R[np.arange(len(R)), A].sum() / best)


def greedy_relative_rewards(true_theta: Any, contexts: Any, posterior_means: Any, *,
                            max_entries: int = 2**22) -> Any:  # fmt: skip
    """Relative rewards of greedy policies on shared contexts (n, d), memory-bounded.

    For each posterior mean M (K, d), the greedy action â_i = argmax_a x_iᵀ M_a (ties to the
    lowest index, as :class:`GreedyPolicy`) and

        Σ_i x_iᵀ θ*_{â_i}  /  Σ_i max_a x_iᵀ θ*_a,

    which equals :func:`relative_reward` of ``greedy_policy_from_posterior(M)`` (up to
    rounding in the sums). The contexts are processed in chunks of
    max(1, ``max_entries`` // K) rows, so the largest temporaries are two (chunk, K) arrays;
    no (n, K) or (n, K, d) array is formed.

    Parameters
    ----------
    true_theta : array_like (K, d)
    contexts : array_like (n, d)
    posterior_means : array_like (K, d), or a mapping name → (K, d)
    max_entries : int
        Bound on chunk × K.

    Returns
    -------
    float, or dict name → float for a mapping.

    >>> theta = np.array([[1.0, 0.0], [0.0, 2.0]])
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0]])
    >>> greedy_relative_rewards(theta, X, {"best": theta, "first": [[1.0, 0.0], [0.0, 0.0]]})
    {'best': 1.0, 'first': 0.3333333333333333}
    """
    theta = C.finite(np.array(true_theta, dtype=np.float64), "true_theta")
    if theta.ndim != 2 or min(theta.shape) < 1:
        raise ValidationError(f"true_theta must have shape (K, d), got {theta.shape}")
    K, d = theta.shape
    X = C.float_rows(contexts, "contexts", None, "(n, d)", ndims=(2,))
    if X.shape[1] != d:
        raise ValidationError(f"contexts must have shape (n, {d}), got {X.shape}")
    single = not isinstance(posterior_means, dict)
    named = {"": posterior_means} if single else dict(posterior_means)
    means = {}
    for name, M in named.items():
        M = C.finite(np.array(M, dtype=np.float64), f"posterior means {name!r}")
        if M.shape != (K, d):
            raise ValidationError(f"posterior means {name!r} must have shape ({K}, {d}), "
                                  f"got {M.shape}")  # fmt: skip
        means[name] = M
    if int(max_entries) != max_entries or max_entries < 1:
        raise ValidationError(f"max_entries must be a positive integer, got {max_entries}")
    chunk = max(1, int(max_entries) // K)
    best = 0.0
    got = dict.fromkeys(means, 0.0)
    for start in range(0, len(X), chunk):
        Xc = X[start:start + chunk]
        R = Xc @ theta.T
        best += float(R.max(axis=1).sum())
        rows = np.arange(len(Xc))
        for name, M in means.items():
            got[name] += float(R[rows, np.argmax(Xc @ M.T, axis=1)].sum())
    if not best > 0:
        raise ValidationError(f"the optimal policy's value is {best / max(len(X), 1):.3g} "
                              "(not positive): the relative reward is undefined")  # fmt: skip
    out = {name: g / best for name, g in got.items()}
    return out[""] if single else out
