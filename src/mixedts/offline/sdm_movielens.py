"""The MovieLens experiment of sDM (Aouali, Brunel, Rohde & Korba, AISTATS 2025, §6.2, Fig. 2).

The paper factorises MovieLens 1M to d = 5; here the ratings are ML-100K (or any table of
``user_id, item_id, rating``). Once per call, from ``SeedSequence(seed)``'s first child:

* the truth: a rank-d ridge ALS of all the ratings
  (:func:`~mixedts.structure.factorize_ratings`, ``center=False``, so that x_uᵀθ_a is on the
  rating scale, the "proxy for ratings" of the paper; ridge ``factor_reg``). User vectors x_u
  are the contexts, movie vectors θ_a the true action parameters.

Each instance i, from the second child's child i (instance i is the same whatever
``n_instances``):

* K movies drawn without replacement; θ = their vectors.
* The priors, learned from those K movie vectors ("the same subset of size 1000" of the paper):
  ``sdm`` is :class:`~mixedts.MeTS` on a J-component diagonal Gaussian mixture fitted on them
  (:func:`~mixedts.structure.fit_mixed_effect_prior`: effect means = component means,
  memberships = mixing weights, Σ_Ψ = s·diag(v), Σ0 = (1 − s)·diag(v); the mixed-effect
  instance W_a = w_aᵀ ⊗ I_d, d′ = dJ); ``dm-bayes`` is :class:`~mixedts.LinTS` on the
  paper's standard prior θ_a ~ N(mean movie vector, diag(v)), v the per-dimension variance
  (:func:`~mixedts.structure.marginal_item_prior`); ``dm-freq`` is per-action ridge
  (:class:`~mixedts.LinUCB`, λ = ``regularization``).
* The logs: max(n_logs) rounds, a user drawn uniformly (its vector is the context), a movie
  uniformly (propensity 1/K), r ~ N(x_uᵀθ_a, σ²), σ = 1; smaller n are prefixes.
* The test contexts: **every user once** (``n_test=None``), so the context distribution
  (uniform over users) is integrated exactly; ``n_test`` users drawn with replacement instead.

Metrics, as in :func:`~mixedts.offline.sdm_synthetic.run_sdm_synthetic`: the greedy policy's
``opl_relative_reward`` and the squared error of the ε-greedy target's estimated value
(ε = 0.5 around the true optimum) with ``sdm``, ``dm-bayes``, ``dm-freq``, ``ips``,
``snips``, ``dr`` (sDM reward model), ``dr-freq`` (DM (Freq), the paper's DR) and ``mips``
(the mixture's hard clusters as embeddings: w = π(c_A | x) / π₀(c_A | x)).

``structure="shuffled"`` is a negative control: the same movies, logs, test users and mixture
means, but the memberships are permuted across the K movies, so they no longer say which movie
is like which (only sDM's and MIPS's rows change).

The IPS-family *learners* of the paper are run on request (``learners``), as in the synthetic
experiment: a linear-softmax policy fitted to maximise IPS, snIPS, DR (with the DM (Freq)
reward model, the paper's DR) or MIPS (the mixture's hard clusters) minus (λ/2)‖β‖²
(:func:`~mixedts.offline.softmax_learning.fit_softmax_policy`, from β = 0 at the smallest n,
then warm-started from the previous n's fit), scored by the relative value of the stochastic
policy (:func:`~mixedts.offline.softmax_learning.expected_relative_reward`). As in the
synthetic experiment, the OPL label ``dr`` is that learner (DM (Freq) model) while the OPE
label ``dr`` is DR with sDM's model. PC (policy convolution) is not run.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .._validation import ValidationError
from .learning import greedy_relative_rewards
from .sdm_ope import epsilon_greedy_estimates, mips_epsilon_greedy
from .sdm_synthetic import summarize

__all__ = ["OPE_METHODS", "OPL_METHODS", "PAPER_ML1M", "movielens_factors", "run_sdm_movielens",
           "summarize"]  # fmt: skip

OPL_METHODS = ("sdm", "dm-bayes", "dm-freq")
OPE_METHODS = ("sdm", "dm-bayes", "dm-freq", "ips", "snips", "dr", "dr-freq", "mips")

#: Readings of the paper's Fig. 2, MovieLens-1M panels, at n = 2000 (K = 1000, d = 5,
#: d′ = 25), by eye off the log-scale (OPE) and linear (OPL) plots, about ±5% of the axis.
#: The paper's DR uses DM (Freq): OPE label ``dr-freq``, OPL label ``dr`` (the learner).
#: ``pc`` (policy convolution) is not run.
PAPER_ML1M = {
    "ope_squared_error": {"sdm": 0.02, "dm-bayes": 0.075, "mips": 0.07, "dr-freq": 0.1,
                          "snips": 0.2, "pc": 0.45, "dm-freq": 2.8, "ips": 3.0},
    "opl_relative_reward": {"sdm": 0.87, "dm-bayes": 0.855, "dm-freq": 0.85, "mips": 0.78,
                            "dr": 0.78, "snips": 0.78, "pc": 0.765, "ips": 0.74},
}  # fmt: skip

STRUCTURES = ("learned", "shuffled")
LEARNERS = ("ips", "snips", "dr", "mips")


def _ratings_table(ratings: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(users, items, ratings) from a path, a MovieLens or a frame with the three columns."""
    from ..datasets.movielens import MovieLens, load_movielens

    if isinstance(ratings, (str, os.PathLike)):
        ratings = load_movielens(ratings)
    if isinstance(ratings, MovieLens):
        ratings = ratings.ratings
    columns = getattr(ratings, "columns", None)
    if columns is None:
        raise ValidationError("ratings must be a path, a MovieLens, a Factorization or a "
                              f"DataFrame, got {type(ratings).__name__}")  # fmt: skip
    missing = [c for c in ("user_id", "item_id", "rating") if c not in columns]
    if missing:
        raise ValidationError(f"ratings: missing column(s) {missing}")
    return tuple(ratings[c].to_numpy() for c in ("user_id", "item_id", "rating"))


def movielens_factors(ratings: Any, d: int = 5, seed: Any = 0, *, reg: float = 4.0,
                      n_iter: int = 20) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """The truth of the experiment: (user vectors (U, d), movie vectors (M, d)).

    ``ratings``: a folder or file path (:func:`~mixedts.load_movielens`), a
    :class:`~mixedts.datasets.MovieLens`, a DataFrame with ``user_id``, ``item_id`` and
    ``rating`` columns (uncentered rank-d ridge ALS of all ratings,
    :func:`~mixedts.structure.factorize_ratings`) or a :class:`~mixedts.structure.Factorization`
    (its vectors, as they are).

    >>> import pandas as pd
    >>> df = pd.DataFrame({"user_id": [1, 1, 2, 3], "item_id": [1, 2, 2, 3],
    ...                    "rating": [5.0, 3.0, 4.0, 1.0]})
    >>> U, V = movielens_factors(df, d=2)
    >>> U.shape, V.shape
    ((3, 2), (3, 2))
    """
    from ..structure import Factorization, factorize_ratings

    if isinstance(ratings, Factorization):
        if ratings.rank != d:
            raise ValidationError(f"d must equal the factorization's rank {ratings.rank}, got {d}")
        return np.asarray(ratings.user_vectors), np.asarray(ratings.item_vectors)
    users, items, values = _ratings_table(ratings)
    fit = factorize_ratings(users, items, values, rank=d, reg=reg, n_iter=n_iter,
                            test_fraction=0.0, center=False, seed=seed)  # fmt: skip
    return np.asarray(fit.user_vectors), np.asarray(fit.item_vectors)


def _check(n_logs: Any, n_instances: Any, K: Any, d: Any, n_components: Any, n_test: Any,
           epsilon: float, structure: str, learners: Any) -> list[int]:  # fmt: skip
    ns = sorted({int(n) for n in np.atleast_1d(n_logs)})
    if not ns or ns[0] < 1:
        raise ValidationError(f"n_logs must be positive sample sizes, got {n_logs}")
    named = [("n_instances", n_instances), ("K", K), ("d", d), ("n_components", n_components)]
    if n_test is not None:
        named.append(("n_test", n_test))
    for name, v in named:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValidationError(f"{name} must be a positive integer, got {v!r}")
    if n_components > K:
        raise ValidationError(f"n_components must be at most K = {K}, got {n_components}")
    if isinstance(epsilon, (bool, np.bool_)) or not (isinstance(epsilon, (int, float, np.number))
                                                     and 0.0 <= epsilon <= 1.0):
        raise ValidationError(f"epsilon must lie in [0, 1], got {epsilon!r}")
    if structure not in STRUCTURES:
        raise ValidationError(f"structure must be one of {STRUCTURES}, got {structure!r}")
    if isinstance(learners, str):
        raise ValidationError(f"learners must be a sequence of names, got {learners!r}")
    for name in learners:
        if name not in LEARNERS:
            raise ValidationError(f"learners: unknown learner {name!r}; the learners are "
                                  f"{', '.join(LEARNERS)}")  # fmt: skip
    return ns


def _instance(rng: np.random.Generator, U: np.ndarray, V: np.ndarray, K: int,
              n_components: int, n_max: int, n_test: int | None, noise_std: float,
              covariance: str, effect_share: float, structure: str) -> dict[str, Any]:  # fmt: skip
    from ..structure import fit_mixed_effect_prior, marginal_item_prior

    theta = V[rng.choice(len(V), K, replace=False)]
    prior = fit_mixed_effect_prior(theta, n_components, covariance=covariance,
                                   effect_share=effect_share, seed=rng)  # fmt: skip
    users = rng.integers(0, len(U), n_max)
    X, A = U[users], rng.integers(0, K, n_max)
    R = np.einsum("nd,nd->n", X, theta[A]) + noise_std * rng.standard_normal(n_max)
    X_test = U if n_test is None else U[rng.integers(0, len(U), n_test)]
    if structure == "shuffled":  # drawn last: the movies, logs and tests are the same
        from ..priors import MixedEffectPrior

        mixing = prior.mixing[rng.permutation(K)]
        prior = MixedEffectPrior(prior.effect_mean, prior.effect_cov, mixing, prior.action_cov)
    clusters = np.asarray(prior.mixing.argmax(axis=1)).ravel()
    return {"theta": theta, "prior": prior, "bayes": marginal_item_prior(theta), "X": X,
            "A": A, "R": R, "X_test": X_test, "clusters": clusters}  # fmt: skip


def _fit(inst: dict, n: int, noise_std: float, regularization: float) -> dict[str, np.ndarray]:
    """Posterior means (K, d) of the three reward models fitted on the first n rounds."""
    from ..policies import LinTS, LinUCB, MeTS

    K, d = inst["theta"].shape
    mean, cov = inst["bayes"]
    models = {
        "sdm": MeTS(inst["prior"], noise_std=noise_std),
        "dm-bayes": LinTS(np.broadcast_to(mean, (K, d)), cov, noise_std=noise_std),
        "dm-freq": LinUCB(K, d, regularization=regularization, noise_std=noise_std),
    }
    X, A, R = inst["X"][:n], inst["A"][:n], inst["R"][:n]
    out = {}
    for label, policy in models.items():
        policy.update_batch(X, A, R)
        out[label] = np.asarray(policy.posterior_mean(), dtype=np.float64)
    return out


def _learned(inst: dict, n: int, learners: Any, q_freq: np.ndarray, l2: float, maxiter: int,
             fitted: dict[str, Any]) -> dict[str, float]:  # fmt: skip
    """Relative values of the softmax policies that maximise IPS-family estimators on the
    first n rounds, each warm-started from ``fitted`` (updated in place)."""
    from .softmax_learning import expected_relative_reward, fit_softmax_policy

    K = len(inst["theta"])
    X, A, R = inst["X"][:n], inst["A"][:n], inst["R"][:n]
    out = {}
    for name in learners:
        kw: dict[str, Any] = {}
        if name == "dr":
            kw["reward_model"] = q_freq
        elif name == "mips":
            kw.update(clusters=inst["clusters"], logging_probabilities=np.full((n, K), 1.0 / K))
        fitted[name] = fit_softmax_policy(X, A, R, np.full(n, 1.0 / K), K, name, l2=l2,
                                          maxiter=maxiter, init=fitted.get(name), **kw)  # fmt: skip
        out[name] = expected_relative_reward(inst["theta"], inst["X_test"], fitted[name])
    return out


def run_sdm_movielens(ratings: Any, n_instances: int = 50,
                      n_logs: Any = (100, 250, 500, 1000, 2000), K: int = 1000, d: int = 5,
                      n_components: int = 5, seed: int = 0, progress: bool = False, *,
                      n_test: int | None = None, epsilon: float = 0.5, noise_std: float = 1.0,
                      regularization: float = 1.0, factor_reg: float = 4.0,
                      covariance: str = "split", effect_share: float = 0.75,
                      structure: str = "learned", learners: Any = (),
                      learner_l2: float = 1e-3, learner_maxiter: int = 20):  # fmt: skip
    """Run the MovieLens experiment of sDM; a tidy DataFrame (instance, n, method, metric, value).

    Parameters
    ----------
    ratings : path, MovieLens, DataFrame or Factorization
        The ratings (see :func:`movielens_factors`); the factorisation is the truth.
    n_instances : int
        Instances: K-movie subsets, logs and learned priors (the paper: 50).
    n_logs : sequence of int
        Logged sample sizes, each ≥ 1 (nested prefixes of one log).
    K, d, n_components : int
        Movies per instance, the factorisation's rank d and the mixture's J (d′ = dJ).
    seed : int
        Root of the SeedSequences (factorisation, then instances).
    progress : bool
        Print one line per instance.
    n_test : int, optional
        None: every user once as the test contexts (the exact context distribution); else
        that many users drawn with replacement.
    epsilon : float
        The target policy's exploration rate.
    noise_std, regularization : float
        σ (of the rewards and of the Bayesian models) and DM (Freq)'s ridge λ.
    factor_reg : float
        The ALS ridge of the factorisation: 4, the value with the lowest held-out RMSE of the
        uncentered rank-5 ALS on ML-100K (0.932 over five random 10% splits; 1: 0.944).
    covariance, effect_share
        Passed to :func:`~mixedts.structure.fit_mixed_effect_prior` ("split" and 0.75: the
        meTS paper's split of the movie vectors' variance).
    structure : {"learned", "shuffled"}
        "shuffled" permutes the memberships across the movies (a negative control).
    learners : sequence of {"ips", "snips", "dr", "mips"}
        IPS-family OPL learners to run as well (slower: one L-BFGS-B fit of K·d coefficients
        each, about 1 s at K = 1000, n = 2000).
    learner_l2, learner_maxiter
        Their penalty λ and L-BFGS-B iterations, the synthetic experiment's (the paper gives
        neither; with λ ≥ 0.1 the fitted policies stay close to uniform here).

    Returns
    -------
    pandas.DataFrame
        Columns ``instance``, ``n``, ``method``, ``metric`` (``"opl_relative_reward"`` or
        ``"ope_squared_error"``), ``value``, and for the OPE rows ``truth`` (the target's
        true value) and ``estimate`` (its estimate; value = (estimate − truth)²).

    >>> import pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"user_id": rng.integers(1, 30, 400), "item_id": rng.integers(1, 25, 400),
    ...                    "rating": rng.integers(1, 6, 400).astype(float)})
    >>> out = run_sdm_movielens(df, 1, (50,), K=10, d=2, n_components=2)
    >>> sorted(out["metric"].unique())
    ['ope_squared_error', 'opl_relative_reward']
    """
    import pandas as pd

    learners = learners if isinstance(learners, str) else tuple(learners)
    ns = _check(n_logs, n_instances, K, d, n_components, n_test, epsilon, structure, learners)
    fac_seq, inst_seq = np.random.SeedSequence(seed).spawn(2)
    U, V = movielens_factors(ratings, d, np.random.default_rng(fac_seq), reg=factor_reg)
    if K > len(V):
        raise ValidationError(f"K must be at most the number of movies {len(V)}, got {K}")
    rows: list[tuple] = []
    for i, child in enumerate(inst_seq.spawn(int(n_instances))):
        rng = np.random.default_rng(child)
        inst = _instance(rng, U, V, K, n_components, ns[-1], n_test, noise_std, covariance,
                         effect_share, structure)  # fmt: skip
        theta, X_test = inst["theta"], inst["X_test"]
        R_test = X_test @ theta.T
        truth = float(epsilon * R_test.mean() + (1.0 - epsilon) * R_test.max(axis=1).mean())
        a_star = np.argmax(inst["X"] @ theta.T, axis=1)
        fitted: dict[str, Any] = {}
        for n in ns:
            means = _fit(inst, n, noise_std, regularization)
            rr = greedy_relative_rewards(theta, X_test, means)
            rows.extend((i, n, label, "opl_relative_reward", rr[label], np.nan, np.nan)
                        for label in OPL_METHODS)  # fmt: skip
            X, A, R = inst["X"][:n], inst["A"][:n], inst["R"][:n]
            q_hat = {label: X @ M.T for label, M in means.items()}
            est = epsilon_greedy_estimates(A, R, a_star[:n], K, epsilon, q_hat)
            est["mips"] = mips_epsilon_greedy(A, R, a_star[:n], inst["clusters"], K, epsilon)
            if learners:
                got = _learned(inst, n, learners, q_hat["dm-freq"], learner_l2, learner_maxiter,
                               fitted)  # fmt: skip
                rows.extend((i, n, label, "opl_relative_reward", v, np.nan, np.nan)
                            for label, v in got.items())  # fmt: skip
            rows.extend((i, n, label, "ope_squared_error", (est[label] - truth) ** 2, truth,
                         est[label]) for label in OPE_METHODS)  # fmt: skip
        if progress:
            print(f"instance {i + 1}/{n_instances} done", flush=True)
    return pd.DataFrame(rows, columns=["instance", "n", "method", "metric", "value", "truth",
                                       "estimate"])  # fmt: skip
