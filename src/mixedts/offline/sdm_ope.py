"""Off-policy estimates of an ε-greedy target from uniformly logged rounds, as the sDM
experiments compute them (Aouali et al. 2025, Sec. 5 and Eq. 67): IPS, snIPS, the direct
method of each reward model, doubly robust, and MIPS over action clusters."""

from __future__ import annotations

import numpy as np

from .._validation import ValidationError
from . import _checks as C

__all__ = ["epsilon_greedy_estimates", "mips_epsilon_greedy"]


def epsilon_greedy_estimates(A: np.ndarray, R: np.ndarray, a_star: np.ndarray, K: int,
                             epsilon: float, q_hat: dict[str, np.ndarray]) -> dict[str, float]:
    """Estimates of the value of the target "a_star[i] with probability 1 − ε, else uniform"
    on n rounds logged uniformly over K actions (propensity 1/K).

    Parameters
    ----------
    A, R, a_star : ndarray (n,)
        Logged actions, rewards, and the target's greedy action in each logged context.
    K : int
    epsilon : float
    q_hat : dict of label → ndarray (n, K)
        Reward models' predictions in the logged contexts. Each gives a direct-method
        estimate under its label; ``"sdm"`` also gives ``"dr"`` and ``"dm-freq"`` gives
        ``"dr-freq"`` (doubly robust with that model).

    Returns
    -------
    dict of label → float: ``"ips"``, ``"snips"`` and the model-based estimates.

    Examples
    --------
    >>> A, R, a_star = np.array([0, 1, 1, 0]), np.array([1.0, 0.0, 1.0, 0.0]), np.ones(4, int)
    >>> est = epsilon_greedy_estimates(A, R, a_star, 2, 0.0, {"sdm": np.full((4, 2), 0.5)})
    >>> est["ips"], est["snips"], est["sdm"], est["dr"]
    (0.5, 0.5, 0.5, 0.5)
    """
    A, R, a_star, K, epsilon = _checked(A, R, a_star, K, epsilon)
    n = len(A)
    models = {}
    for label, q in q_hat.items():
        q = models[label] = C.float_rows(q, f"q_hat[{label!r}]", n, "(n, K)", ndims=(2,))
        if q.shape[1] != K:
            raise ValidationError(f"q_hat[{label!r}] must have K = {K} columns, got "
                                  f"{q.shape[1]}")
    w = K * (epsilon / K + (1.0 - epsilon) * (A == a_star))  # π(a_i|x_i) / (1/K)
    out = {"ips": float(np.mean(w * R)), "snips": float(np.sum(w * R) / np.sum(w))}
    rows = np.arange(n)
    for label, q in models.items():
        dm = epsilon * q.mean(axis=1) + (1.0 - epsilon) * q[rows, a_star]
        out[label] = float(dm.mean())
        if label == "sdm":
            out["dr"] = float(np.mean(dm + w * (R - q[rows, A])))
        if label == "dm-freq":
            out["dr-freq"] = float(np.mean(dm + w * (R - q[rows, A])))
    return out


def mips_epsilon_greedy(A: np.ndarray, R: np.ndarray, a_star: np.ndarray, clusters: np.ndarray,
                        K: int, epsilon: float) -> float:
    """MIPS (Eq. 67) for the ε-greedy target under uniform logging, with the action clusters
    as the embedding: π₀(c | x) = |c| / K.

    Examples
    --------
    >>> clusters = np.array([0, 0, 1])  # actions 0 and 1 share a cluster
    >>> mips_epsilon_greedy(np.array([0, 2]), np.array([1.0, 0.0]), np.array([1, 1]), clusters,
    ...                     3, 0.0)
    0.75
    """
    A, R, a_star, K, epsilon = _checked(A, R, a_star, K, epsilon)
    clusters = C.integers(clusters, "clusters", K, "a cluster label")
    if clusters.size and clusters.min() < 0:
        i = int(np.argmax(clusters < 0))
        raise ValidationError(f"clusters[{i}] must be a non-negative label, got {clusters[i]}")
    size = np.bincount(clusters, minlength=clusters.max() + 1)[clusters[A]]
    hit = clusters[A] == clusters[a_star]
    w = (epsilon * size / K + (1.0 - epsilon) * hit) / (size / K)
    return float(np.mean(w * R))


def _checked(A, R, a_star, K, epsilon):
    """The shared arguments, checked: n logged actions and rewards, n target actions, K, ε."""
    K = C.count(K, "K")
    if not (isinstance(epsilon, (int, float, np.floating)) and 0.0 <= float(epsilon) <= 1.0):
        raise ValidationError(f"epsilon must be a number in [0, 1], got {epsilon!r}")
    A = C.actions(A, "A", None, K)
    R = C.float_rows(R, "R", len(A), "(n,)")
    a_star = C.actions(a_star, "a_star", len(A), K)
    return A, R, a_star, K, float(epsilon)
