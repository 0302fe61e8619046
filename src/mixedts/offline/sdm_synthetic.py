"""The synthetic experiment of sDM (Aouali, Brunel, Rohde & Korba, AISTATS 2025, Fig. 2).

Each instance draws, from its own seeded :class:`numpy.random.SeedSequence` (``seed``'s
``n_instances`` children, so instance i is the same whatever ``n_instances``):

* the structure: μ ~ U[−1, 1]^{d′}, W_a ~ U[−1, 1]^{d×d′} (K of them), Σ = 3 I_{d′},
  Σ_a = I_d (a :class:`~mixedts.LinearEffectPrior`);
* the truth: ψ ~ N(μ, Σ), θ_a ~ N(W_a ψ, Σ_a);
* the logs: max(n_logs) rounds, x ~ U[−1, 1]^d, a uniform over the K actions (propensity
  1/K), r ~ N(xᵀθ_a, σ²) with σ = 1; the logs for a smaller n are the first n rounds
  (nested, so the curves over n share their noise);
* a fresh test sample of ``n_test`` contexts from U[−1, 1]^d.

Reward models, each fitted on the n logged rounds: ``sdm`` (:class:`~mixedts.MeTS` on the
prior: the exact structured posterior), ``dm-bayes`` (:class:`~mixedts.LinTS` on the
marginal prior θ_a ~ N(W_a μ, Σ_a + W_a Σ W_aᵀ)), ``dm-freq`` (per-action ridge,
:class:`~mixedts.LinUCB` with λ = ``regularization``).

Metrics (rows of the tidy result):

* ``opl_relative_reward``: for ``sdm``, ``dm-bayes`` and ``dm-freq`` the greedy policy of the
  reward model's posterior mean, :func:`~mixedts.offline.relative_reward` on the test
  contexts. For the IPS-family learners ``dr``, ``snips``, ``mips`` and ``ips`` (the paper's
  App. F.1, Eqs. 64, 66, 68, 75: "optimize [the estimator] to learn the optimal policy"), the
  linear-softmax policy π_β(a | x) ∝ exp(xᵀβ_a) that maximises the estimator minus
  (λ/2)‖β‖² (:func:`~mixedts.offline.softmax_learning.fit_softmax_policy`, λ = ``l2``, at
  most ``maxiter`` L-BFGS-B iterations from β = 0, the uniform policy, at every n; float32
  objective), scored by
  :func:`~mixedts.offline.softmax_learning.expected_relative_reward`: its value
  E_x Σ_a π_β(a | x) xᵀθ_a (the paper's V(π; θ*) = E_X E_{A∼π(·|X)} r(X, A), Sec. 2) over
  the optimal one, on the test contexts. ``dr`` uses DM (Freq) as reward model (App. F.1);
  the propensities are not clipped (with uniform logging a floor τ ≤ 1/K changes nothing and
  τ > 1/K only rescales the objective, i.e. λ).
* ``ope_squared_error``: (V̂ − V)² for the ε-greedy target (ε = 0.5 around the true
  optimum: π(a|x) = ε/K + (1 − ε)·1{a = argmax_b xᵀθ_b}). **V is the target's value under
  the context distribution**, E_x[Σ_a π(a|x) xᵀθ_a], estimated on the test contexts.
  Estimators on the n logged rounds: ``sdm`` / ``dm-bayes`` / ``dm-freq`` (the direct
  method with that reward model), ``ips``, ``snips`` (no clipping; uniform logging bounds
  the weights by K(ε/K + 1 − ε)), ``dr`` (sDM reward model), ``dr-freq`` (DM (Freq) reward
  model, the paper's DR), ``mips`` (cluster-level weights π(c_i|x_i) / π₀(c_i|x_i), Eq. 67).

MIPS's clusters. The paper "cluster[s] actions into L groups" (App. F.1) without saying, for
the synthetic problems, on what or how many. Here: k-means (:func:`action_clusters`, best of
3 runs with k-means++ seeding, from each instance's own stream ``child.spawn(1)``, so the
other draws do not move) into ``n_clusters`` groups (default K // 10 = 100, clusters of
about 10 actions) of ``clusters="theta"``, the true action parameters θ_a (an oracle
embedding: the setting in which MIPS's assumption, that the reward depends on the action
through its cluster, holds best), or of ``clusters="prior"``, what the prior says about
them: the rows of W_a L with L Lᵀ = Σ + μμᵀ (under the prior
E‖θ_a − θ_b‖² = ‖(W_a − W_b) L‖²_F + 2d). With the prior's clusters the rewards spread
widely within a cluster and MIPS's bias dominates (docs/offline.md). A MIPS learner started
at β = 0 keeps β_a equal within a cluster (equal gradients): it learns a distribution over
clusters, uniform within each.

Instances are independent: ``jobs`` worker processes share them out, with the same result.
PC is not run.

:func:`run_sdm_actions` is the paper's Fig. 3 (the number of actions K from 10 to 10⁵,
n = 1000, d = 10, d′ = 5, the rest as above): OPL relative rewards only, computed by
:func:`~mixedts.offline.learning.greedy_relative_rewards` in chunks of test contexts, so that
memory stays bounded at K = 10⁵.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import ValidationError
from .learning import greedy_policy_from_posterior, greedy_relative_rewards, relative_reward
from .sdm_ope import epsilon_greedy_estimates, mips_epsilon_greedy
from .softmax_learning import LEARNERS, expected_relative_reward, fit_softmax_policy

__all__ = ["GREEDY_METHODS", "OPE_METHODS", "OPL_METHODS", "PAPER_FIG2", "PAPER_FIG3",
           "action_clusters", "run_sdm_actions", "run_sdm_synthetic", "summarize"]

GREEDY_METHODS = ("sdm", "dm-bayes", "dm-freq")
OPL_METHODS = (*GREEDY_METHODS, "dr", "snips", "mips", "ips")
OPE_METHODS = ("sdm", "dm-bayes", "dm-freq", "ips", "snips", "dr", "dr-freq", "mips")

#: Readings of the paper's Fig. 2 at n = 2000 (K = 1000, d = d′ = 10), by eye from the
#: log-scale (OPE) and linear (OPL) plots: docs/offline.md and the papers' notes.
PAPER_FIG2 = {
    "opl_relative_reward": {"sdm": 0.95, "dm-bayes": 0.75, "dm-freq": 0.74, "dr": 0.55,
                            "snips": 0.43, "mips": 0.40, "ips": 0.39},
    "ope_squared_error": {"sdm": 0.15, "mips": 9.0, "ips": 28.0},
}  # fmt: skip

#: Readings of the paper's Fig. 3 (OPL relative reward against K, n = 1000, d = 10, d′ = 5):
#: only the end points are read (docs/offline.md and the papers' notes).
PAPER_FIG3 = {"sdm": {10: 1.0, 100_000: 0.87}, "dm-bayes": {10: 1.0, 100_000: 0.49}}


def _instance(rng: np.random.Generator, K: int, d: int, d_eff: int, n_max: int, n_test: int,
              noise_std: float) -> dict[str, np.ndarray]:  # fmt: skip
    mu = rng.uniform(-1.0, 1.0, d_eff)
    W = rng.uniform(-1.0, 1.0, (K, d, d_eff))
    psi = mu + np.sqrt(3.0) * rng.standard_normal(d_eff)
    theta = W @ psi + rng.standard_normal((K, d))
    X = rng.uniform(-1.0, 1.0, (n_max, d))
    A = rng.integers(0, K, n_max)
    R = np.einsum("nd,nd->n", X, theta[A]) + noise_std * rng.standard_normal(n_max)
    X_test = rng.uniform(-1.0, 1.0, (n_test, d))
    return {"mu": mu, "W": W, "theta": theta, "X": X, "A": A, "R": R, "X_test": X_test}


def _fit(inst: dict, n: int, K: int, d: int, noise_std: float, regularization: float,
         loadings: np.ndarray | None = None) -> dict[str, Any]:  # fmt: skip
    from ..policies import LinTS, LinUCB, MeTS
    from ..priors_linear import LinearEffectPrior

    e = len(inst["mu"])
    W = inst["W"] if loadings is None else loadings
    prior = LinearEffectPrior(inst["mu"], 3.0 * np.eye(e), W, np.eye(d))
    mean, cov = prior.marginal_action_prior()
    models = {
        "sdm": MeTS(prior, noise_std=noise_std),
        "dm-bayes": LinTS(mean, cov, noise_std=noise_std),
        "dm-freq": LinUCB(K, d, regularization=regularization, noise_std=noise_std),
    }
    X, A, R = inst["X"][:n], inst["A"][:n], inst["R"][:n]
    for policy in models.values():
        policy.update_batch(X, A, R)
    return models


def _kmeans(F: np.ndarray, L: int, rng: np.random.Generator, iters: int) -> tuple:
    """One k-means run: k-means++ seeding, then Lloyd; (labels, within-cluster sum of squares)."""
    K = len(F)
    sq = np.einsum("kp,kp->k", F, F)
    centres = np.empty((L, F.shape[1]))
    centres[0] = F[rng.integers(K)]
    d2 = np.einsum("kp,kp->k", F - centres[0], F - centres[0])
    for j in range(1, L):  # seeding: one centre at a time (a loop over clusters)
        total = d2.sum()
        centres[j] = F[rng.choice(K, p=d2 / total) if total > 0 else rng.integers(K)]
        d2 = np.minimum(d2, np.einsum("kp,kp->k", F - centres[j], F - centres[j]))
    labels = np.full(K, -1)
    for _ in range(iters):
        D = sq[:, None] - 2.0 * F @ centres.T + np.einsum("lp,lp->l", centres, centres)
        new = np.argmin(D, axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
        onehot = np.zeros((K, L))
        onehot[np.arange(K), labels] = 1.0
        counts = onehot.sum(axis=0)
        filled = counts > 0  # an empty cluster keeps its centre
        centres[filled] = (onehot.T @ F)[filled] / counts[filled, None]
    D = sq[:, None] - 2.0 * F @ centres.T + np.einsum("lp,lp->l", centres, centres)
    labels = np.argmin(D, axis=1)
    return labels, float(np.maximum(D[np.arange(K), labels], 0.0).sum())


def action_clusters(features: Any, n_clusters: int, rng: np.random.Generator, *,
                    n_init: int = 3, iters: int = 50) -> np.ndarray:  # fmt: skip
    """k-means labels (K,) int64 of the rows of ``features`` (K, p), relabelled 0..L′−1.

    The best (least within-cluster sum of squares) of ``n_init`` runs of k-means (k-means++
    seeding drawn from ``rng``, then at most ``iters`` Lloyd iterations); a cluster left
    empty is dropped (so L′ ≤ ``n_clusters``).

    >>> g = action_clusters([[0.0], [0.1], [5.0], [5.2]], 2, np.random.default_rng(0))
    >>> bool(g[0] == g[1] != g[2] == g[3])
    True
    """
    F = np.asarray(features, dtype=np.float64)
    if F.ndim != 2 or not 1 <= int(n_clusters) <= len(F):
        raise ValidationError(f"n_clusters must lie in [1, {len(F)}] for features of shape "
                              f"{F.shape}, got {n_clusters}")  # fmt: skip
    runs = [_kmeans(F, int(n_clusters), rng, int(iters)) for _ in range(int(n_init))]
    labels = min(runs, key=lambda run: run[1])[0]
    return np.unique(labels, return_inverse=True)[1].reshape(-1).astype(np.int64)


def _cluster_features(inst: dict, how: str) -> np.ndarray:
    if how == "theta":
        return inst["theta"]
    mu, W = inst["mu"], inst["W"]
    root = np.linalg.cholesky(3.0 * np.eye(len(mu)) + np.outer(mu, mu))
    return (W @ root).reshape(len(W), -1)


def run_sdm_synthetic(n_instances: int = 20, n_logs: Any = (250, 500, 1000, 2000), K: int = 1000,
                      d: int = 10, d_eff: int = 10, seed: int = 0, progress: bool = False, *,
                      n_test: int = 10_000, epsilon: float = 0.5, noise_std: float = 1.0,
                      regularization: float = 1.0, loadings_noise: float | None = None,
                      learners: Any = ("dr", "snips", "mips", "ips"), l2: float = 1e-3,
                      maxiter: int = 10, n_clusters: int | None = None,
                      clusters: str = "theta", jobs: int = 1):  # fmt: skip
    """Run the Fig. 2 experiment; a tidy DataFrame (instance, n, method, metric, value).

    Parameters
    ----------
    n_instances : int
        Problem instances drawn from the prior (the paper: 50).
    n_logs : sequence of int
        Logged sample sizes, each ≥ 1 (nested prefixes of one log).
    K, d, d_eff : int
        Actions, context dimension d and latent dimension d′.
    seed : int
        Root of the instances' SeedSequences.
    progress : bool
        Print one line per instance.
    n_test : int
        Fresh contexts for the true values and the relative rewards.
    epsilon : float
        The target policy's exploration rate.
    noise_std, regularization : float
        σ (known to the Bayesian models) and DM (Freq)'s ridge λ.
    loadings_noise : float, optional
        A negative control: fit sDM and DM (Bayes) with loadings W_a + N(0, s²) noise
        (misspecified structure) in place of the true W_a.
    learners : sequence of {"dr", "snips", "mips", "ips"}
        The IPS-family OPL learners to run (``()`` for none; they are the slow part).
    l2, maxiter : float, int
        Their penalty λ (reward units) and L-BFGS-B iteration budget per n.
    n_clusters : int, optional
        MIPS's number of k-means clusters L (default K // 10, clusters of about 10 actions).
    clusters : {"theta", "prior"}
        What MIPS's clusters are fitted on (module docstring).
    jobs : int
        Worker processes over the instances (results do not depend on it).

    Returns
    -------
    pandas.DataFrame
        Columns ``instance``, ``n``, ``method``, ``metric`` (``"opl_relative_reward"`` or
        ``"ope_squared_error"``), ``value``; also ``truth`` (the target's true value, for
        the OPE rows). See the module docstring for the definitions.

    >>> df = run_sdm_synthetic(1, (20,), K=5, d=2, d_eff=2, n_test=100)
    >>> sorted(df["metric"].unique())
    ['ope_squared_error', 'opl_relative_reward']
    """
    import pandas as pd

    ns = sorted({int(n) for n in np.atleast_1d(n_logs)})
    if not ns or ns[0] < 1:
        raise ValidationError(f"n_logs must be positive sample sizes, got {n_logs}")
    if n_clusters is None:
        n_clusters = max(1, int(K) // 10)
    for name, v in (("n_instances", n_instances), ("K", K), ("d", d), ("d_eff", d_eff),
                    ("n_test", n_test), ("n_clusters", n_clusters),
                    ("maxiter", maxiter)):  # fmt: skip
        if int(v) != v or v < 1:
            raise ValidationError(f"{name} must be a positive integer, got {v}")
    if not 0.0 <= epsilon <= 1.0:
        raise ValidationError(f"epsilon must lie in [0, 1], got {epsilon}")
    learners = tuple(learners)
    unknown = [m for m in learners if m not in LEARNERS]
    if unknown:
        raise ValidationError(f"learners must be among {LEARNERS}, got {unknown[0]!r}")
    if isinstance(l2, bool) or not isinstance(l2, (int, float)) or not 0.0 <= l2 < np.inf:
        raise ValidationError(f"l2 must be a non-negative number, got {l2!r}")
    if clusters not in ("theta", "prior"):
        raise ValidationError(f"clusters must be 'theta' or 'prior', got {clusters!r}")
    if n_clusters > K:
        raise ValidationError(f"n_clusters must be at most K = {K}, got {n_clusters}")
    if isinstance(jobs, bool) or int(jobs) != jobs or jobs < 1:
        raise ValidationError(f"jobs must be a positive number of processes, got {jobs!r}")
    jobs = int(jobs)
    cfg = {"ns": ns, "K": int(K), "d": int(d), "d_eff": int(d_eff), "n_test": int(n_test),
           "epsilon": epsilon, "noise_std": noise_std, "regularization": regularization,
           "loadings_noise": loadings_noise, "learners": learners, "l2": l2,
           "maxiter": int(maxiter), "n_clusters": int(n_clusters), "clusters": clusters}
    children = np.random.SeedSequence(seed).spawn(int(n_instances))
    rows: list[tuple] = []
    if jobs == 1:
        done = (_instance_rows(i, child, cfg) for i, child in enumerate(children))
    else:  # instances in worker processes: each depends only on its own SeedSequence
        from concurrent.futures import ProcessPoolExecutor

        pool = ProcessPoolExecutor(max_workers=jobs)
        done = pool.map(_instance_rows, range(len(children)), children, [cfg] * len(children))
    try:
        for i, got in enumerate(done):
            rows.extend(got)
            if progress:
                print(f"instance {i + 1}/{n_instances} done", flush=True)
    finally:
        if jobs > 1:
            pool.shutdown(cancel_futures=True)
    return pd.DataFrame(rows, columns=["instance", "n", "method", "metric", "value", "truth"])


def _instance_rows(i: int, child: np.random.SeedSequence, cfg: dict) -> list[tuple]:
    """The result rows of instance i, drawn from ``child`` (a worker process can run it)."""
    ns, K, d, epsilon = cfg["ns"], cfg["K"], cfg["d"], cfg["epsilon"]
    rows: list[tuple] = []
    rng = np.random.default_rng(child)
    inst = _instance(rng, K, d, cfg["d_eff"], ns[-1], cfg["n_test"], cfg["noise_std"])
    loadings = None
    if cfg["loadings_noise"] is not None:
        loadings = inst["W"] + cfg["loadings_noise"] * rng.standard_normal(inst["W"].shape)
    # MIPS's clusters from a stream of their own: the draws above do not move
    groups = action_clusters(_cluster_features(inst, cfg["clusters"]), cfg["n_clusters"],
                             np.random.default_rng(child.spawn(1)[0]))  # fmt: skip
    theta, X_test = inst["theta"], inst["X_test"]
    R_test = X_test @ theta.T
    truth = float(epsilon * R_test.mean() + (1.0 - epsilon) * R_test.max(axis=1).mean())
    a_star_logs = np.argmax(inst["X"] @ theta.T, axis=1)
    for n in ns:
        models = _fit(inst, n, K, d, cfg["noise_std"], cfg["regularization"], loadings)
        for label, policy in models.items():
            greedy = greedy_policy_from_posterior(policy.posterior_mean())
            rr = relative_reward(theta, X_test, greedy(X_test))
            rows.append((i, n, label, "opl_relative_reward", rr, np.nan))
        X, A, R = inst["X"][:n], inst["A"][:n], inst["R"][:n]
        q_hat = {label: X @ np.asarray(p.posterior_mean()).T for label, p in models.items()}
        for label in cfg["learners"]:
            extra: dict[str, Any] = {}
            if label == "dr":
                extra["reward_model"] = q_hat["dm-freq"]
            elif label == "mips":
                extra.update(clusters=groups, logging_probabilities=np.full((n, K), 1.0 / K))
            learned = fit_softmax_policy(X, A, R, np.full(n, 1.0 / K), K, label, l2=cfg["l2"],
                                         maxiter=cfg["maxiter"], dtype="float32", **extra)
            rr = expected_relative_reward(theta, X_test, learned)
            rows.append((i, n, label, "opl_relative_reward", rr, np.nan))
        est = epsilon_greedy_estimates(A, R, a_star_logs[:n], K, epsilon, q_hat)
        est["mips"] = mips_epsilon_greedy(A, R, a_star_logs[:n], groups, K, epsilon)
        for label in OPE_METHODS:
            rows.append((i, n, label, "ope_squared_error", (est[label] - truth) ** 2, truth))
    return rows


def summarize(df):
    """Mean and standard error over instances, by (metric, method, n)."""
    g = df.groupby(["metric", "method", "n"])["value"]
    out = g.agg(["mean", "std", "count"]).reset_index()
    out["se"] = out["std"] / np.sqrt(out["count"])
    return out.drop(columns="std")


def run_sdm_actions(Ks: Any = (10, 100, 1000, 10_000, 100_000), n: int = 1000,
                    n_instances: Any = 5, d: int = 10, d_eff: int = 5, seed: int = 0,
                    progress: bool = False, *, n_test: int = 10_000, noise_std: float = 1.0,
                    regularization: float = 1.0, max_entries: int = 2**22):  # fmt: skip
    """Run the Fig. 3 experiment (OPL against K); a tidy DataFrame (K, instance, method, value).

    Each (K, instance i) is drawn as in :func:`run_sdm_synthetic` from child i of
    ``SeedSequence([seed, K])``: reproducible whatever ``n_instances`` and whichever other Ks
    are run, and independent across K. The three reward models (``sdm``, ``dm-bayes``,
    ``dm-freq``) are fitted on the n uniformly logged rounds and their greedy policies'
    relative rewards computed on ``n_test`` fresh contexts in chunks of at most
    ``max_entries`` (chunk × K) entries (no (n_test, K) array).

    Parameters
    ----------
    Ks : sequence of int
        Numbers of actions (the paper: 10, 100, 10³, 10⁴, 10⁵).
    n : int
        Logged rounds (the paper: 1000).
    n_instances : int or mapping K → int
        Instances per K (a mapping gives each K its own count).
    d, d_eff : int
        Context dimension d and latent dimension d′ (the paper: 10 and 5).
    seed : int
        Root of the SeedSequences.
    progress : bool
        Print one line per instance.
    n_test : int
        Fresh contexts for the relative rewards.
    noise_std, regularization : float
        σ and DM (Freq)'s ridge λ.
    max_entries : int
        Bound on the (chunk, K) temporaries of the relative reward.

    Returns
    -------
    pandas.DataFrame
        Columns ``K``, ``instance``, ``method``, ``metric`` (always
        ``"opl_relative_reward"``), ``value``.

    >>> df = run_sdm_actions((5, 20), n=30, n_instances=2, d=3, d_eff=2, n_test=100)
    >>> df.groupby("K").size().tolist()
    [6, 6]
    """
    import pandas as pd

    Ks = [int(K) for K in np.atleast_1d(Ks)]
    counts = {K: (n_instances[K] if isinstance(n_instances, dict) else n_instances) for K in Ks}
    for name, v in [("n", n), ("d", d), ("d_eff", d_eff), ("n_test", n_test)] + [
            (f"K={K}", K) for K in Ks] + [(f"n_instances[{K}]", c) for K, c in counts.items()]:
        if int(v) != v or v < 1:
            raise ValidationError(f"{name} must be a positive integer, got {v}")
    if not Ks:
        raise ValidationError("Ks must not be empty")
    rows: list[tuple] = []
    for K in Ks:
        children = np.random.SeedSequence([int(seed), K]).spawn(int(counts[K]))
        for i, child in enumerate(children):
            rng = np.random.default_rng(child)
            inst = _instance(rng, K, d, d_eff, int(n), int(n_test), noise_std)
            models = _fit(inst, int(n), K, d, noise_std, regularization)
            means = {label: np.asarray(p.posterior_mean()) for label, p in models.items()}
            del models, inst["W"]
            rr = greedy_relative_rewards(inst["theta"], inst["X_test"], means,
                                         max_entries=max_entries)  # fmt: skip
            rows.extend((K, i, label, "opl_relative_reward", rr[label]) for label in GREEDY_METHODS)
            if progress:
                print(f"K = {K}: instance {i + 1}/{counts[K]} done", flush=True)
    return pd.DataFrame(rows, columns=["K", "instance", "method", "metric", "value"])
