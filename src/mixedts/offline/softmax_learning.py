"""Off-policy learning over linear-softmax policies: maximise IPS, snIPS, DR or MIPS.

The policy class is π_β(a | x) = exp(φ(x)ᵀβ_a) / Σ_b exp(φ(x)ᵀβ_b), with one coefficient
vector β_a per action (β is (K, d); φ(x) = x, or (x, 1) with ``fit_intercept``). A learner
maximises an off-policy estimator V̂(π_β) of the policy's value on logged rounds
(x_i, a_i, r_i, p_i = π₀(a_i | x_i)) minus an L2 penalty,

    β̂ = argmax_β  V̂(π_β) − (λ/2) ‖β‖²_F,

by L-BFGS-B (:func:`scipy.optimize.minimize`) from β = 0 (the uniform policy) or a warm start,
with the exact gradient. With S = Φβᵀ (n, K), P = softmax(S) row-wise, π_i = P[i, a_i], the
propensity floor τ (``clip``: p ← max(p, τ), the paper's App. F.1 clipping) and the
gradient in the scores G_ib = ∂V̂/∂S_ib:

* ``ips``: V̂ = (1/n) Σ_i π_i r_i / p_i;  G_ib = c_i π_i (1{b = a_i} − P_ib), c_i = r_i / (n p_i).
* ``snips``: V̂ = Σ_i w_i r_i / Σ_i w_i with w_i = π_i / p_i;  G as for ``ips`` with
  c_i = (r_i − V̂) / (p_i Σ_j w_j).
* ``dr``: V̂ = (1/n) Σ_i [q̂_π,i + π_i (r_i − q̂_{i,a_i}) / p_i], q̂_π,i = Σ_a P_ia q̂_ia;
  G_ib = P_ib (q̂_ib − q̂_π,i) / n + (``ips``'s G with r_i − q̂_{i,a_i} in place of r_i).
* ``mips``: V̂ = (1/n) Σ_i π(c_i | x_i) r_i / π₀(c_i | x_i);
  G_ib = r_i P_ib (1{g_b = c_i} − π(c_i | x_i)) / (n π₀(c_i | x_i)).

Here q̂ is a reward model (n, K) on the logged contexts; for MIPS g_b is the cluster of action
b, c_i = g_{a_i}, π(c | x) = Σ_{b: g_b = c} π(b | x), and π₀(c_i | x_i) is summed from
``logging_probabilities``. The gradient in β is Gᵀ Φ − λβ: (n, K) arrays, no loop over rows or
actions. These are the OPL baselines of Aouali, Brunel, Rohde & Korba (AISTATS 2025, App. F.1,
Eqs. 64, 66, 68, 75), which "optimize [the estimator] to learn the optimal policy"; the paper
does not give its policy class, penalty or optimiser.

Without the penalty the objectives are unbounded (the policy concentrates on the logged actions
with large rewards), and snIPS is blind to probability moved onto actions that were not logged
(it reweights the logged rounds only), so its maximiser can put its mass anywhere else. A MIPS
learner started at β = 0 keeps β_a equal within a cluster (their gradients are equal): it learns
a distribution over clusters, uniform within each.

The value of a stochastic policy is V(π) = E_x Σ_a π(a | x) r(x, a) (the paper's Sec. 2);
:func:`expected_relative_reward` divides it by the optimal policy's value on fresh contexts.
"""

from __future__ import annotations

import contextlib
import numbers
from typing import Any

import numpy as np

from .._validation import ValidationError
from . import _checks as C

__all__ = ["LEARNERS", "SoftmaxPolicy", "expected_relative_reward", "fit_softmax_policy",
           "softmax_objective"]

#: the estimators a linear-softmax policy can be fitted to
LEARNERS = ("ips", "snips", "dr", "mips")


def _features(X: np.ndarray, intercept: bool) -> np.ndarray:
    return np.hstack([X, np.ones((len(X), 1))]) if intercept else X


def _dtype(dtype: Any) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValidationError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    return dt


def _one_blas_thread() -> contextlib.AbstractContextManager:
    """BLAS on one thread, when threadpoolctl is installed (an optional dependency).

    The products here are thin ((n, d) by (d, K)) and L-BFGS-B calls BLAS on vectors of K·d
    entries: with OpenBLAS's threads contending for a few busy cores, a fit runs several
    times slower than on one thread (6.5 s against 1.0 s for six IPS fits, n ≤ 2000,
    K = 1000, on 2 shared cores).
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def _softmax(S: np.ndarray) -> np.ndarray:
    S = S - S.max(axis=1, keepdims=True)
    np.exp(S, out=S)
    S /= S.sum(axis=1, keepdims=True)
    return S


class SoftmaxPolicy:
    """The linear-softmax policy π_β(a | x) ∝ exp(φ(x)ᵀβ_a); made by :func:`fit_softmax_policy`.

    ``coef`` is β (K, d), or (K, d + 1) with ``fit_intercept`` (the last column multiplies a
    constant 1). ``info`` holds what the fit reports: ``estimator``, ``estimate`` (V̂ at β̂),
    ``objective`` (V̂ − λ‖β̂‖²/2), ``n_iter``, ``converged``, ``message``. ``dtype``
    (``"float64"`` or ``"float32"``) is the precision of the scores and probabilities.

    >>> policy = SoftmaxPolicy(np.array([[1.0, 0.0], [0.0, 1.0]]))
    >>> policy.action_probabilities(np.array([[np.log(3.0), 0.0]])).round(3).tolist()
    [[0.75, 0.25]]
    >>> policy(np.array([[2.0, 1.0], [0.0, 3.0]])).tolist()
    [0, 1]
    """

    def __init__(self, coef: Any, fit_intercept: bool = False, info: dict | None = None,
                 dtype: str = "float64") -> None:  # fmt: skip
        beta = C.finite(C.numeric(coef, "coef"), "coef")
        self.dtype = _dtype(dtype)
        if beta.ndim != 2 or beta.shape[0] < 1 or beta.shape[1] < 1 + bool(fit_intercept):
            raise ValidationError(f"coef must have shape (K, d{' + 1' * bool(fit_intercept)}), "
                                  f"got {beta.shape}")  # fmt: skip
        self.coef = beta
        self.fit_intercept = bool(fit_intercept)
        self.info = dict(info or {})

    @property
    def n_actions(self) -> int:
        return self.coef.shape[0]

    @property
    def dim(self) -> int:
        """The context dimension d (without the intercept column)."""
        return self.coef.shape[1] - self.fit_intercept

    def _phi(self, contexts: Any) -> np.ndarray:
        X = C.float_rows(contexts, "contexts", None, "(n, d)", ndims=(2,))
        if X.shape[1] != self.dim:
            raise ValidationError(f"contexts must have shape (n, {self.dim}), got {X.shape}")
        return _features(X, self.fit_intercept).astype(self.dtype, copy=False)

    def scores(self, contexts: Any) -> np.ndarray:
        """φ(x)ᵀβ_a for every context and action, (n, K)."""
        return self._phi(contexts) @ self.coef.T.astype(self.dtype, copy=False)

    def action_probabilities(self, contexts: Any) -> np.ndarray:
        """π_β(a | x) for every context and action, (n, K); rows sum to 1."""
        return _softmax(self.scores(contexts))

    def __call__(self, contexts: Any, rng: np.random.Generator | None = None) -> np.ndarray:
        """Actions (n,) int64: the mode argmax_a π_β(a | x), or draws from π_β with ``rng``."""
        if rng is None:
            return np.argmax(self.scores(contexts), axis=1).astype(np.int64)
        P = self.action_probabilities(contexts)
        u = rng.random(len(P))[:, None]
        return np.minimum((np.cumsum(P, axis=1) < u).sum(axis=1), P.shape[1] - 1).astype(np.int64)


def softmax_objective(beta: np.ndarray, Phi: np.ndarray, actions: np.ndarray,
                      rewards: np.ndarray, inv_prop: np.ndarray, estimator: str,
                      reward_model: np.ndarray | None = None,
                      same_cluster: np.ndarray | None = None,
                      ) -> tuple[float, np.ndarray]:  # fmt: skip
    """V̂(π_β) and its gradient in β (K, p), for validated inputs (see the module docstring).

    ``inv_prop`` is 1 / max(p_i, τ) (for ``mips``, 1 / max(π₀(c_i | x_i), τ)); ``same_cluster``
    (n, K) bool is 1{g_b = c_i} (``mips`` only).

    >>> Phi = np.array([[1.0], [1.0]])
    >>> v, g = softmax_objective(np.zeros((2, 1)), Phi, np.array([0, 1]), np.array([1.0, 0.0]),
    ...                          np.array([2.0, 2.0]), "ips")
    >>> v, g.ravel().tolist()
    (0.5, [0.25, -0.25])
    """
    n = len(actions)
    rows = np.arange(n)
    dtype = Phi.dtype  # float32 inputs run in float32 (the value is summed in float64)
    rewards, inv_prop = rewards.astype(dtype, copy=False), inv_prop.astype(dtype, copy=False)
    P = _softmax(Phi @ beta.astype(dtype, copy=False).T)
    if estimator == "mips":
        pi = np.einsum("nk,nk->n", P, same_cluster)
        c = rewards * inv_prop / n
        value = float(np.sum(c * pi, dtype=np.float64))
        P *= same_cluster - pi[:, None]  # P becomes ∂V̂/∂S, in place
        P *= c[:, None]
        return value, (P.T @ Phi).astype(np.float64, copy=False)
    pi = P[rows, actions]
    if estimator == "ips":
        c = rewards * inv_prop / n
        value = float(np.sum(c * pi, dtype=np.float64))
    elif estimator == "snips":
        w = pi * inv_prop
        total = w.sum(dtype=np.float64)
        value = float(np.sum(w * rewards, dtype=np.float64) / total)
        c = (rewards - value) * inv_prop / total
    elif estimator == "dr":
        q_pi = np.einsum("nk,nk->n", P, reward_model)
        c = (rewards - reward_model[rows, actions]) * inv_prop / n
        value = float(np.mean(q_pi, dtype=np.float64) + np.sum(c * pi, dtype=np.float64))
    else:  # pragma: no cover - validated by the caller
        raise ValidationError(f"estimator must be one of {LEARNERS}, got {estimator!r}")
    cpi = (c * pi).astype(dtype, copy=False)
    if estimator == "dr":  # P ∘ ((q̂ − q̂_π)/n − cπ), in place
        P *= (reward_model - q_pi[:, None]) / n - cpi[:, None]
    else:
        P *= -cpi[:, None]
    P[rows, actions] += cpi
    return value, (P.T @ Phi).astype(np.float64, copy=False)


def _check_float(value: Any, name: str, low: float, high: float = np.inf) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValidationError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not low <= v <= high:
        raise ValidationError(f"{name} must lie in [{low}, {high}], got {value!r}")
    return v


def fit_softmax_policy(contexts: Any, actions: Any, rewards: Any, propensities: Any,
                       n_actions: int, estimator: str = "ips", *, reward_model: Any = None,
                       clusters: Any = None, logging_probabilities: Any = None,
                       l2: float = 1e-3, clip: float = 0.0, fit_intercept: bool = False,
                       init: Any = None, maxiter: int = 100, tol: float = 1e-6,
                       dtype: str = "float64") -> SoftmaxPolicy:  # fmt: skip
    """The linear-softmax policy that maximises an off-policy estimator on logged rounds.

    Parameters
    ----------
    contexts : array_like (n, d)
    actions : array_like (n,) of ints in [0, n_actions)
    rewards : array_like (n,)
    propensities : array_like (n,)
        π₀(a_i | x_i), in (0, 1] (read by ``ips``, ``snips`` and ``dr``).
    n_actions : int
        K.
    estimator : {"ips", "snips", "dr", "mips"}
        The objective (module docstring; the paper's App. F.1).
    reward_model : array_like (n, K), optional
        q̂(x_i, a) on the logged contexts; required by ``dr`` and refused by the others.
    clusters : array_like (K,) of non-negative ints, optional
        The cluster of every action; required by ``mips``.
    logging_probabilities : array_like (n, K), optional
        π₀(· | x_i), the whole logging distribution; required by ``mips`` (π₀(c_i | x_i) is
        summed from it).
    l2 : float
        λ ≥ 0 of the penalty (λ/2)‖β‖²_F, in units of reward (the penalty on the intercept
        too). The unpenalised objectives are unbounded as the policy concentrates, so use
        λ > 0 unless ``maxiter`` is small. At β = 0 the gradient for β_a is of order
        |r|·‖x‖ / K, so λ should scale like it: the default 10⁻³ suits K ≈ 10³ actions and
        rewards of a few units (the sDM synthetic problem).
    clip : float
        τ ∈ [0, 1]: every propensity (the cluster's, for ``mips``) is replaced by max(p, τ).
    fit_intercept : bool
        φ(x) = (x, 1) in place of x.
    init : array_like (K, d[+1]) or SoftmaxPolicy, optional
        The starting β (default 0, the uniform policy), e.g. the fit at a smaller n.
    maxiter : int
        L-BFGS-B iterations at most.
    tol : float
        L-BFGS-B's ``gtol`` (and ``ftol``).
    dtype : {"float64", "float32"}
        The precision of the (n, K) arrays of the objective (float32: about 2-3× faster; the
        optimiser and the returned β stay float64). The policy keeps it.

    Returns
    -------
    SoftmaxPolicy
        With ``info`` (estimate at β̂, iterations, convergence).

    >>> rng = np.random.default_rng(0)
    >>> X = rng.uniform(-1, 1, (400, 2))
    >>> A = rng.integers(0, 2, 400)
    >>> R = np.where(A == (X[:, 0] > 0), 1.0, 0.0)  # action 1 pays when x_0 > 0
    >>> policy = fit_softmax_policy(X, A, R, np.full(400, 0.5), 2, "ips", l2=0.01)
    >>> policy(np.array([[0.8, 0.0], [-0.8, 0.0]])).tolist()
    [1, 0]
    """
    from scipy.optimize import minimize

    if estimator not in LEARNERS:
        raise ValidationError(f"estimator must be one of {', '.join(LEARNERS)}, got {estimator!r}")
    K = C.count(n_actions, "n_actions")
    X = C.float_rows(contexts, "contexts", None, "(n, d)", ndims=(2,))
    n = len(X)
    if n == 0 or X.shape[1] == 0:
        raise ValidationError(f"contexts must have at least one row and column, got {X.shape}")
    A = C.actions(actions, "actions", n, K)
    R = C.float_rows(rewards, "rewards", n, "(n,)")
    p = C.propensities(propensities, "propensities", n)
    lam = _check_float(l2, "l2", 0.0)
    tau = _check_float(clip, "clip", 0.0, 1.0)
    iters = C.count(maxiter, "maxiter")
    gtol = _check_float(tol, "tol", 0.0)
    dt = _dtype(dtype)
    q = same = None
    if estimator == "dr":
        if reward_model is None:
            raise ValidationError("reward_model is missing: estimator='dr' needs q̂ (n, K)")
        q = C.float_rows(reward_model, "reward_model", n, "(n, K)", ndims=(2,))
        if q.shape[1] != K:
            raise ValidationError(f"reward_model must have shape ({n}, {K}), got {q.shape}")
    elif reward_model is not None:
        raise ValidationError(f"reward_model is only read by estimator='dr', not {estimator!r}")
    if estimator == "mips":
        if clusters is None or logging_probabilities is None:
            missing = "clusters" if clusters is None else "logging_probabilities"
            raise ValidationError(f"{missing} is missing: estimator='mips' needs clusters (K,) "
                                  "and logging_probabilities (n, K)")  # fmt: skip
        g = C.integers(clusters, "clusters", K, "a cluster index")
        if (g < 0).any():
            i = int(np.argmax(g < 0))
            raise ValidationError(f"clusters[{i}] must be a non-negative cluster index, got {g[i]}")
        P0 = C.distributions(logging_probabilities, "logging_probabilities", n, K)
        same = g[None, :] == g[A][:, None]
        p = np.einsum("nk,nk->n", P0, same)
        bad = p <= 0
        if bad.any():
            i = int(np.argmax(bad))
            raise ValidationError(f"logging_probabilities[{i}] gives probability 0 to the "
                                  f"cluster of the logged action {A[i]}")  # fmt: skip
    elif clusters is not None or logging_probabilities is not None:
        raise ValidationError(f"clusters and logging_probabilities are only read by "
                              f"estimator='mips', not {estimator!r}")  # fmt: skip
    Phi = _features(X, bool(fit_intercept)).astype(dt)
    if q is not None:
        q = q.astype(dt)
    shape = (K, Phi.shape[1])
    if init is None:
        beta0 = np.zeros(shape)
    else:
        beta0 = C.finite(C.numeric(init.coef if isinstance(init, SoftmaxPolicy) else init,
                                   "init"), "init")  # fmt: skip
        if beta0.shape != shape:
            raise ValidationError(f"init must have shape {shape}, got {beta0.shape}")
    inv_prop = 1.0 / np.maximum(p, tau)

    def loss(flat: np.ndarray) -> tuple[float, np.ndarray]:
        beta = flat.reshape(shape)
        v, grad = softmax_objective(beta, Phi, A, R, inv_prop, estimator, q, same)
        return -v + 0.5 * lam * float(flat @ flat), (lam * beta - grad).ravel()

    with _one_blas_thread():
        res = minimize(loss, beta0.ravel(), jac=True, method="L-BFGS-B",
                       options={"maxiter": iters, "gtol": gtol, "ftol": gtol})  # fmt: skip
        beta = res.x.reshape(shape)
        estimate = softmax_objective(beta, Phi, A, R, inv_prop, estimator, q, same)[0]
    info = {"estimator": estimator, "estimate": estimate, "objective": -float(res.fun),
            "n_iter": int(res.nit), "converged": bool(res.success), "message": str(res.message)}
    return SoftmaxPolicy(beta, bool(fit_intercept), info, dt.name)


def expected_relative_reward(true_theta: Any, contexts: Any, policy: Any, *,
                             max_entries: int = 2**22) -> float:  # fmt: skip
    """V(π) / V(π*) on fresh contexts, V(π) = Σ_i Σ_a π(a | x_i) x_iᵀθ*_a (a stochastic π).

    ``policy`` has ``action_probabilities(contexts)`` → (n, K) (a :class:`SoftmaxPolicy`, a
    :class:`~mixedts.offline.learning.GreedyPolicy`, ...); the contexts are taken in chunks
    of max(1, ``max_entries`` // K) rows, in float32 when the policy's probabilities are
    (relative error about 1e-6). For a deterministic policy it equals
    :func:`~mixedts.offline.relative_reward` of its actions.

    >>> theta = np.array([[1.0, 0.0], [0.0, 2.0]])
    >>> X = np.array([[1.0, 0.0], [0.0, 1.0]])  # best rewards 1 and 2
    >>> expected_relative_reward(theta, X, SoftmaxPolicy(np.zeros((2, 2))))  # uniform: 0.5 + 1
    0.5
    """
    theta = C.finite(C.numeric(true_theta, "true_theta"), "true_theta")
    if theta.ndim != 2 or min(theta.shape) < 1:
        raise ValidationError(f"true_theta must have shape (K, d), got {theta.shape}")
    X = C.float_rows(contexts, "contexts", None, "(n, d)", ndims=(2,))
    if X.shape[1] != theta.shape[1]:
        raise ValidationError(f"contexts must have shape (n, {theta.shape[1]}), got {X.shape}")
    step = max(1, C.count(max_entries, "max_entries") // theta.shape[0])
    got = best = 0.0
    with _one_blas_thread():
        for start in range(0, len(X), step):  # chunks of contexts, not single rows
            g, b = _chunk_values(theta, X[start:start + step], policy)
            got, best = got + g, best + b
    if not best > 0:
        raise ValidationError(f"the optimal policy's value is {best / max(len(X), 1):.3g} "
                              "(not positive): the relative reward is undefined")  # fmt: skip
    return got / best


def _chunk_values(theta: np.ndarray, Xc: np.ndarray, policy: Any) -> tuple[float, float]:
    """Σ_i Σ_a π(a | x_i) x_iᵀθ_a and Σ_i max_a x_iᵀθ_a over a chunk of contexts."""
    P = np.asarray(policy.action_probabilities(Xc))
    dt = P.dtype if P.dtype == np.float32 else np.float64  # float32 policies: in float32
    R = Xc.astype(dt) @ theta.T.astype(dt)
    if P.shape != R.shape:
        raise ValidationError(f"policy.action_probabilities must return shape {R.shape}, "
                              f"got {P.shape}")  # fmt: skip
    return float(np.sum(P * R, dtype=np.float64)), float(R.max(axis=1).sum(dtype=np.float64))
