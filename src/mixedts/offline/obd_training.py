"""Open Bandit Dataset, the other way round: train mixedts policies on the earliest rows of the
uniform-random logs and estimate their click rates off-policy on the latest (issue #12).

* :func:`ranking_probabilities`: P(a policy shows item k at position p | x), (n, K, L): it
  ranks the items by one posterior draw of their scores (Thompson sampling; Monte Carlo) or by
  their posterior means (greedy) and shows the L best, the best at position 1, as
  :mod:`.obd_protocol` treats the production BTS policy, here with a context.
* :func:`train_obd_policies`: BernoulliTS, LinTS, GLM-TS and meTS-GLM conditioned on logs.
* :func:`run_obd_training`: the experiment, beside the random and production BTS policies'
  on-policy click rates over the test period.

Positions as in :mod:`.obd_protocol`: a row's action is its item, its target probability that
of the logged item at the logged position, π(a_t | x_t, p_t). The policies ignore positions
(one score per item and user, trained on the rows of all positions; under uniform logging a
position effect is shared by all items).

Policies (x̃ = [1, user features one-hot]; c = (clicks + 1) / (n + 2) on the train part):

``bernoulli-ts``
    :class:`~mixedts.BernoulliTS`, Beta(1, 1) per item, no context.
``lin-ts``
    :class:`~mixedts.LinTS`, θ_k ~ N(c e₁, c² I), noise σ² = c (1 − c).
``glm-ts``
    :class:`~mixedts.GLMTS` (logistic) on meTS-GLM's marginal prior: the same prior with the
    item structure ignored, θ_k ~ N(logit(c) e₁, (1 + 0.5²) I).
``mets-glm``
    :class:`~mixedts.MeTS` with ``likelihood="logistic"``: one effect ψ_g per category g of
    ``item_feature_1`` (7 categories of 2 to 8 items for the men campaign),
    ψ_g ~ N(logit(c) e₁, I) and θ_k | ψ ~ N(ψ_{g(k)}, 0.5² I) (b_k = one-hot of k's category).

pandas and scikit-learn (the logistic reward model) are imported by the functions using them.
"""

from __future__ import annotations

import numbers
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .._validation import ValidationError, as_generator, check_int
from . import _checks as C
from .inputs import EstimatorInputs
from .logs import LoggedFeedback
from .obd_models import base_model, fit_model, predict_model, progress_bar, spawn_seeds
from .policy_rewards import _check_policy, _context_free, fit_on_logs, predict_rewards_with_policy

__all__ = ["DEFAULT_TRAINING_ESTIMATORS", "DEFAULT_TRAINING_POLICIES", "MODES", "TrainingResult",
           "ranking_probabilities", "run_obd_training", "train_obd_policies", "with_intercept"]

#: policy label -> what the table calls it
POLICY_NAMES = {"bernoulli-ts": "BernoulliTS", "lin-ts": "LinTS", "glm-ts": "GLM-TS",
                "mets-glm": "meTS-GLM"}  # fmt: skip
DEFAULT_TRAINING_POLICIES = tuple(POLICY_NAMES)
DEFAULT_TRAINING_ESTIMATORS = ("ips", "snips", "dr", "sndr", "dm")
#: "ts": the policy as it runs (one posterior draw per impression); "greedy": posterior means
MODES = ("ts", "greedy")
EFFECT_SD, ITEM_SD = 1.0, 0.5  # meTS-GLM's prior: effect and item-given-effect s.d. (logits)
_BLOCK = 1 << 22  # entries of one (contexts, draws, K) block of scores


class TrainingResult(NamedTuple):
    """What :func:`run_obd_training` returns: tables, the fitted policies and the two parts.

    Examples
    --------
    >>> TrainingResult._fields
    ('summary', 'raw', 'reference', 'policies', 'action_dist', 'train', 'test')
    """

    #: one row per (policy, mode, estimator) (see :func:`run_obd_training`)
    summary: Any
    #: one row per (resample, policy, mode, estimator); resample -1 is the whole test part
    raw: Any
    #: the on-policy click rates: random (test part) and production BTS (test period)
    reference: Any
    #: label -> the fitted policy
    policies: dict
    #: (label, mode) -> π(· | x_t, p_t) at every test row, (n_test, K)
    action_dist: dict
    train: LoggedFeedback
    test: LoggedFeedback


# ------------------------------------------------------------------------- ranking
def _top(scores: np.ndarray, L: int) -> np.ndarray:
    """The L highest scores' indices along the last axis, best first (for draws: ties have
    probability 0; :func:`ranking_probabilities` sorts greedy scores fully instead)."""
    top = np.argpartition(-scores, L - 1, axis=-1)[..., :L]  # the L largest, unordered
    order = np.argsort(-np.take_along_axis(scores, top, axis=-1), axis=-1, kind="stable")
    return np.take_along_axis(top, order, axis=-1)


def ranking_probabilities(policy: Any, contexts: Any, n_positions: int = 3, *,
                          greedy: bool = False, n_draws: int = 1000,
                          rng: Any = None) -> np.ndarray:  # fmt: skip
    """P(the policy shows item k at position p | x_t) for every context, (n, K, L).

    Thompson sampling: an impression draws θ from the posterior and shows the L items with
    the highest x_tᵀθ_k (θ_k without context), the highest at position 1; estimated from
    ``n_draws`` joint draws (``policy.sample_parameters``, from ``rng``) shared by all contexts,
    so each entry has Monte Carlo s.e. √(P (1 − P) / n_draws) ≤ 0.5 / √n_draws. A GLM's link
    is increasing: ranking by x_tᵀθ_k is ranking by the mean reward. Greedy: the L highest
    x_tᵀE[θ_k], exactly; ties go to the lowest item index. Identical contexts are computed
    once, draws in blocks of at most 2²² (contexts, draws, K) scores. ``policy``: linear,
    GLM, mixed-effect or K-armed; ``contexts`` (n, d) shared by all items (a context-free
    policy reads only n). Every [t, :, p] sums to 1, every [t, k, :] to at most 1.

    >>> from mixedts import BernoulliTS
    >>> policy = BernoulliTS(3, alpha=[50.0, 1.0, 1.0], beta=[1.0, 50.0, 50.0])
    >>> ranking_probabilities(policy, np.zeros((2, 1)), 1, greedy=True)[:, :, 0].tolist()
    [[1.0, 0.0, 0.0], [1.0, 0.0, 0.0]]
    """
    _check_policy(policy, "policy")
    K = int(policy.n_actions)
    L = check_int(n_positions, "n_positions", low=1)
    if L > K:
        raise ValidationError(f"n_positions must be at most the {K} items, got {L}")
    S = check_int(n_draws, "n_draws", low=1)
    free = _context_free(policy)
    X = C.float_rows(contexts, "contexts", None, "(n, d)", ndims=(2,))
    n = len(X)
    if free:
        U, inverse = np.zeros((1, 0)), np.zeros(n, dtype=np.int64)
    else:
        d = int(np.asarray(policy.posterior_mean()).shape[-1])
        if X.shape[1] != d:
            raise ValidationError(f"contexts must have shape (n, {d}) for this policy, got "
                                  f"{X.shape}")  # fmt: skip
        U, inverse = np.unique(X, axis=0, return_inverse=True)
        inverse = inverse.reshape(-1)
    u = len(U)
    slot = np.arange(L)
    if greedy:
        M = np.asarray(policy.posterior_mean(), dtype=np.float64)
        scores = np.broadcast_to(M.reshape(1, K), (u, K)) if free else U @ M.T
        ranked = np.argsort(-scores, axis=1, kind="stable")[:, :L]  # ties: lowest index
        dist = np.zeros((u, K, L))
        dist[np.arange(u)[:, None], ranked, slot] = 1.0
        return dist[inverse]
    gen = as_generator(rng)
    counts = np.zeros(u * K * L, dtype=np.int64)
    block = max(1, _BLOCK // (u * K))
    base = (np.arange(u) * (K * L))[:, None, None]
    for start in range(0, S, block):  # blocks of draws, each (u, m, K) scores at once
        m = min(block, S - start)
        theta = np.asarray(policy.sample_parameters(m, seed=gen), dtype=np.float64)
        scores = theta[None, :, :, 0] if free else np.einsum("ud,mkd->umk", U, theta)
        ranked = _top(scores, L)  # (u or 1, m, L)
        index = np.broadcast_to(base + ranked * L + slot, (u, m, L))
        counts += np.bincount(index.ravel(), minlength=u * K * L)
    return (counts.reshape(u, K, L) / S)[inverse]


# ------------------------------------------------------------------------- policies
def with_intercept(contexts: np.ndarray) -> np.ndarray:
    """[1, x]: the policies' features (OBD's one-hot user features drop a category)."""
    return np.hstack([np.ones((len(contexts), 1)), contexts])


def _groups(item_groups: Any, logs: LoggedFeedback) -> np.ndarray:
    K = logs.n_actions
    if item_groups is None:
        if logs.action_features is None:
            raise ValidationError("item_groups is needed: the logs have no action_features "
                                  "(OBD's item_feature_1 is their first column)")  # fmt: skip
        raw = logs.action_features[:, 0]
    else:
        raw = np.asarray(item_groups)
        if raw.shape != (K,):
            raise ValidationError(f"item_groups must hold one label per item, ({K},), got "
                                  f"shape {raw.shape}")  # fmt: skip
    return np.unique(raw, return_inverse=True)[1].reshape(-1)


def train_obd_policies(train: LoggedFeedback, policies: Any = DEFAULT_TRAINING_POLICIES,
                       item_groups: Any = None, seed: Any = None) -> dict:  # fmt: skip
    """The policies of the module docstring, fitted on ``train`` (one ``update_batch`` each).

    ``policies``: labels from :data:`DEFAULT_TRAINING_POLICIES`. ``item_groups`` (K,):
    meTS-GLM's effect of each item (default: the codes of ``train.action_features[:, 0]``,
    OBD's ``item_feature_1``). Contextual policies see ``with_intercept(train.contexts)``.

    >>> logs = LoggedFeedback(np.eye(2)[[0, 1, 0, 1]], [0, 1, 1, 0], [1, 0, 0, 0])
    >>> fitted = train_obd_policies(logs, ["bernoulli-ts"])
    >>> fitted["bernoulli-ts"].counts().tolist()
    [2.0, 2.0]
    """
    from ..policies import GLMTS, BernoulliTS, LinTS, MeTS
    from ..priors import MixedEffectPrior

    labels = _labels(policies)
    K = train.n_actions
    c = (float(train.rewards.sum()) + 1.0) / (len(train) + 2.0)
    features = train.replace(contexts=with_intercept(train.contexts))
    d = features.dim
    seeds = spawn_seeds(seed, len(labels))
    out = {}
    for label, child in zip(labels, seeds):  # a handful of policies
        if label == "bernoulli-ts":
            policy = BernoulliTS(K, seed=child)
        elif label == "lin-ts":
            mean = np.zeros((K, d))
            mean[:, 0] = c
            policy = LinTS(mean, c * c * np.eye(d), noise_std=np.sqrt(c * (1.0 - c)), seed=child)
        else:
            g = _groups(item_groups, train)
            n_groups = int(g.max()) + 1
            mean = np.zeros((n_groups, d))
            mean[:, 0] = np.log(c / (1.0 - c))
            prior = MixedEffectPrior(mean, EFFECT_SD**2 * np.stack([np.eye(d)] * n_groups),
                                     np.eye(n_groups)[g], ITEM_SD**2 * np.eye(d))  # fmt: skip
            policy = (GLMTS.from_prior(prior, seed=child) if label == "glm-ts"
                      else MeTS(prior, likelihood="logistic", seed=child))  # fmt: skip
        out[label] = fit_on_logs(policy, train if label == "bernoulli-ts" else features)
    return out


def _labels(policies: Any) -> list[str]:
    if isinstance(policies, str):
        policies = (policies,)
    labels = list(policies)
    bad = [p for p in labels if p not in POLICY_NAMES]
    if bad or not labels or len(set(labels)) != len(labels):
        raise ValidationError(f"policies must name distinct policies among "
                              f"{', '.join(POLICY_NAMES)}, got {policies!r}")  # fmt: skip
    return labels


# ------------------------------------------------------------------------- experiment
def _positions(logs: LoggedFeedback) -> np.ndarray:
    if logs.positions is None:
        return np.zeros(len(logs), dtype=np.int64)
    pos = logs.positions.astype(np.int64) - 1
    if len(pos) and pos.min() < 0:
        i = int(np.argmax(pos < 0))
        raise ValidationError(f"random_logs.positions[{i}] must be 1, 2, ..., got "
                              f"{logs.positions[i]}")  # fmt: skip
    return pos


def _inputs(random_logs: Any, bts_logs: Any, campaign: str) -> tuple[LoggedFeedback, Any]:
    """The random logs and the BTS logs (or value, or None), loading paths with load_obd."""
    from ..datasets.obd import load_obd

    if isinstance(random_logs, (str, Path)):
        if bts_logs is None:
            bts_logs = random_logs
        random_logs = load_obd(random_logs, campaign, "random")
    if isinstance(bts_logs, (str, Path)):
        bts_logs = load_obd(bts_logs, campaign, "bts")
    if not isinstance(random_logs, LoggedFeedback):
        raise ValidationError("random_logs must be a LoggedFeedback or the path of the OBD "
                              f"folder, got {type(random_logs).__name__}")  # fmt: skip
    if not random_logs.shared_context:
        raise ValidationError("random_logs.contexts must be shared by all items, shape (n, d)")
    if random_logs.propensities is None:
        raise ValidationError("random_logs.propensities is missing: the estimators need the "
                              "logging policy's propensities")  # fmt: skip
    number = isinstance(bts_logs, numbers.Real) and not isinstance(bts_logs, (bool, np.bool_))
    if not (bts_logs is None or number or isinstance(bts_logs, LoggedFeedback)):
        raise ValidationError(f"bts_logs must be a LoggedFeedback, a path, a number or None, "
                              f"got {type(bts_logs).__name__}")  # fmt: skip
    if isinstance(bts_logs, LoggedFeedback) and bts_logs.timestamps is None:
        raise ValidationError("bts_logs.timestamps are needed to take the test period")
    return random_logs, bts_logs


def _reward_model(reward_model: Any, train: LoggedFeedback, test: LoggedFeedback,
                  fitted: dict, seed: Any) -> np.ndarray | None:  # fmt: skip
    """q̂(x_t, ·, p_t) at the test rows, (n_test, K), fitted on the train part only.

    A fitted policy's label: its posterior-mean rewards (positions ignored). "logistic" or
    "gbm": obp's RegressionModel as :mod:`.obd_protocol` builds it, one classifier per
    position on [context, item features of the item], here fitted on the train rows.
    """
    if reward_model is None:
        return None
    if isinstance(reward_model, str) and reward_model in fitted:
        return predict_rewards_with_policy(fitted[reward_model], with_intercept(test.contexts),
                                           name="reward_model")  # fmt: skip
    if isinstance(reward_model, str) and reward_model not in ("logistic", "gbm"):
        raise ValidationError(f"reward_model must be 'logistic', 'gbm', a trained policy's "
                              f"label ({', '.join(fitted)}) or None, got {reward_model!r}")
    base = base_model(reward_model)
    gen = as_generator(seed)
    K = test.n_actions
    E = test.action_features if test.action_features is not None else np.eye(K)
    p_train, p_test = _positions(train), _positions(test)
    q = np.empty((len(test), K))
    for p in np.unique(p_test):  # one fit per position (3 for OBD)
        rows, at = p_train == p, p_test == p
        if not rows.any():
            raise ValidationError(f"no train rows at position {p + 1} to fit the reward model on")
        model = fit_model(base, np.hstack([train.contexts[rows], E[train.actions[rows]]]),
                     train.rewards[rows], gen)  # fmt: skip
        X = test.contexts[at]
        features = np.hstack([np.repeat(X, K, axis=0), np.tile(E, (len(X), 1))])
        q[at] = predict_model(model, features).reshape(len(X), K)
    return q


def _on_policy(rewards: np.ndarray) -> tuple[float, float]:
    return float(rewards.mean()), float(rewards.std(ddof=1) / np.sqrt(len(rewards)))


def _bts_reference(bts_logs: Any, test: LoggedFeedback) -> dict | None:
    """Production BTS's click rate over the test period (its rows from the first test time)."""
    if bts_logs is None:
        return None
    if not isinstance(bts_logs, LoggedFeedback):  # the value itself
        return dict(policy="production-bts", value=float(bts_logs), stderr=float("nan"))
    later = bts_logs.time_split(at=test.timestamps[0])[1]
    if len(later) < 2:
        raise ValidationError("bts_logs holds fewer than two rows in the test period")
    value, se = _on_policy(later.rewards)
    return dict(policy="production-bts", value=value, stderr=se, n_rows=len(later),
                clicks=int(later.rewards.sum()), start=later.timestamps[0],
                end=later.timestamps[-1])  # fmt: skip


def run_obd_training(
    random_logs: Any,
    bts_logs: Any = None,
    *,
    campaign: str = "men",
    test_size: float = 0.3,
    policies: Any = DEFAULT_TRAINING_POLICIES,
    modes: Any = MODES,
    estimators: Any = DEFAULT_TRAINING_ESTIMATORS,
    reward_model: Any = "logistic",
    item_groups: Any = None,
    n_draws: int = 1000,
    n_bootstrap: int = 200,
    seed: Any = 0,
    progress: bool = False,
) -> TrainingResult:
    """Train mixedts policies on the first part of the random logs; evaluate them on the rest.

    Parameters
    ----------
    random_logs : LoggedFeedback or path
        The uniform-random logs (or the OBD folder: ``load_obd(path, campaign, "random")``),
        with timestamps, propensities and positions 1..L.
    bts_logs : LoggedFeedback, path, float or None
        Production BTS's logs: their click rate from the first test row's time on is the
        reference. Default: from ``random_logs``'s folder when that is a path, else none.
    test_size : float
        Train on the first ``floor(n (1 − test_size))`` rows (:meth:`~LoggedFeedback.time_split`),
        evaluate on the rest.
    policies : labels of :data:`DEFAULT_TRAINING_POLICIES` (see the module docstring)
    modes : sequence of {"ts", "greedy"}
        The policy as it runs and/or its greedy version (:func:`ranking_probabilities`, with
        ``n_draws`` Monte Carlo draws for "ts").
    estimators : as for :func:`~mixedts.offline.evaluate`
    reward_model : "logistic", "gbm", a policy label or None
        q̂ for DM and DR, fitted on the train part: obp's per-position classifier on [context,
        item features] (as :func:`~mixedts.offline.obd_relative_error`), or a trained
        policy's posterior-mean rewards. None: IPS and SNIPS only.
    item_groups : array_like (K,), optional
        meTS-GLM's effect per item; default ``item_feature_1``.
    n_bootstrap : int
        Resamples of the test rows, each from its own ``SeedSequence`` child of ``seed`` (which
        also seeds the policies, the Monte Carlo draws and the reward model).
    progress : bool
        A progress bar (rich) over the resamples, on stderr.

    Returns
    -------
    TrainingResult
        ``summary`` (pandas): per (policy, mode, estimator), ``value`` and ``stderr`` (the
        estimate and its influence-function s.e. on the whole test part), ``boot_se``,
        ``ci_low``/``ci_high`` (2.5% and 97.5% bootstrap quantiles), ``lift`` (value − the
        random policy's test click rate) with ``lift_se`` and ``p_beats_random`` (paired over
        resamples: the share with a positive lift), ``vs_bts`` (value − production BTS's click
        rate) with ``vs_bts_se`` = √(boot_se² + its s.e.²) (independent logs), the sizes and
        ``ess`` = (Σ w_t)² / Σ w_t², the importance weights' effective number of test rows.
        ``reference``: the on-policy click rates. ``raw``, ``policies``, ``action_dist``,
        ``train`` and ``test``: see :class:`TrainingResult`.

    >>> rng = np.random.default_rng(0)
    >>> logs = LoggedFeedback(np.zeros((300, 1)), rng.integers(0, 4, 300),
    ...                       rng.binomial(1, 0.2, 300), propensities=np.full(300, 0.25),
    ...                       positions=rng.integers(1, 4, 300), timestamps=np.arange(300))
    >>> result = run_obd_training(logs, policies=["bernoulli-ts"], estimators=["ips"],
    ...                           reward_model=None, n_draws=100, n_bootstrap=10)
    >>> result.summary[["mode", "estimator", "n_train", "n_test"]].values.tolist()
    [['ts', 'ips', 210, 90], ['greedy', 'ips', 210, 90]]
    """
    import pandas as pd

    from .evaluate import _estimators

    random_logs, bts_logs = _inputs(random_logs, bts_logs, campaign)
    if (isinstance(test_size, (bool, np.bool_)) or not isinstance(test_size, numbers.Real)
            or not 0.0 < test_size < 1.0):  # fmt: skip
        raise ValidationError(f"test_size must be a number in (0, 1), got {test_size!r}")
    modes = [modes] if isinstance(modes, str) else list(modes)
    if not modes or any(m not in MODES for m in modes) or len(set(modes)) != len(modes):
        raise ValidationError(f"modes must name distinct modes among {MODES}, got {modes!r}")
    S = check_int(n_draws, "n_draws", low=1)
    B = check_int(n_bootstrap, "n_bootstrap", low=2)
    labels = _labels(policies)
    train, test = random_logs.time_split(1.0 - float(test_size))
    if len(train) < 1 or len(test) < 2:
        raise ValidationError(f"test_size {test_size} leaves {len(train)} train and {len(test)} "
                              "test rows; at least 1 and 2 are needed")  # fmt: skip
    chosen = _estimators(estimators, reward_model is not None)
    for name, est in chosen.items():
        if "estimated_rewards" in est.needs and reward_model is None:
            raise ValidationError(f"reward_model is None, but estimator {name!r} needs one")
    bts = _bts_reference(bts_logs, test)
    pos = _positions(test)
    L = int(_positions(random_logs).max()) + 1
    fit_seed, mc_seed, boot_seed, model_seed = spawn_seeds(seed, 4)
    fitted = train_obd_policies(train, labels, item_groups, fit_seed)
    q = _reward_model(reward_model, train, test, fitted, np.random.default_rng(model_seed))
    X, rows = with_intercept(test.contexts), np.arange(len(test))
    dist = {}
    for label, child in zip(labels, mc_seed.spawn(len(labels))):  # a handful of policies
        for mode in modes:
            D = ranking_probabilities(fitted[label], X, L, greedy=mode == "greedy", n_draws=S,
                                      rng=np.random.default_rng(child))  # fmt: skip
            dist[(label, mode)] = D[rows, :, pos]  # π(· | x_t, p_t), (n_test, K)

    R, A, P, n = test.rewards, test.actions, test.propensities, len(test)
    Q, E = test.logging_probabilities, test.action_features  # for MIPS
    records = []
    bar = progress_bar(progress, B)
    try:
        for b, child in enumerate([None, *boot_seed.spawn(B)]):  # b = 0: the whole test part
            idx = rows if child is None else np.random.default_rng(child).integers(0, n, n)
            ctr = R[idx].mean()
            for (label, mode), pi in dist.items():
                data = EstimatorInputs(R[idx], A[idx], pi[idx], P[idx],
                                       None if q is None else q[idx], E,
                                       None if Q is None else Q[idx])  # fmt: skip
                records += [(b - 1, label, mode, name, *_pair(est.estimate(data)), ctr)
                            for name, est in chosen.items()]  # fmt: skip
            if bar is not None and child is not None:
                bar[0].advance(bar[1])
    finally:
        if bar is not None:
            bar[0].stop()
    raw = pd.DataFrame(records, columns=["resample", "policy", "mode", "estimator", "estimate",
                                         "stderr", "random_ctr"])  # fmt: skip
    value, se = _on_policy(R)
    boot_ctr = raw.loc[raw["resample"] >= 0].groupby("resample")["random_ctr"].first()
    reference = pd.DataFrame([dict(policy="random", value=value, stderr=se,
                                   boot_se=boot_ctr.std(ddof=1), n_rows=n, clicks=int(R.sum()),
                                   start=test.timestamps[0], end=test.timestamps[-1]),
                              *([bts] if bts else [])])  # fmt: skip
    weights = {key: pi[rows, A] / P for key, pi in dist.items()}
    ess = {key: float(w.sum() ** 2 / max(float(w @ w), 1e-300)) for key, w in weights.items()}
    label = reward_model if reward_model is None or isinstance(reward_model, str) else type(
        reward_model).__name__  # fmt: skip
    summary = _summarise(raw, value, bts).assign(reward_model=label, n_train=len(train),
                                                 n_test=n, n_bootstrap=B)  # fmt: skip
    summary["n_draws"] = np.where(summary["mode"] == "ts", S, 0)
    summary["ess"] = [ess[key] for key in zip(summary["policy"], summary["mode"])]
    return TrainingResult(summary, raw, reference, fitted, dist, train, test)


def _pair(e: Any) -> tuple[float, float]:
    return e.value, e.stderr


def _summarise(raw: Any, ctr: float, bts: dict | None) -> Any:
    """The summary table of :func:`run_obd_training` from its raw estimates."""
    import pandas as pd

    keys = ["policy", "mode", "estimator"]
    full = raw[raw["resample"] == -1].set_index(keys)
    boot = raw[raw["resample"] >= 0].assign(lift=lambda f: f["estimate"] - f["random_ctr"],
                                            beats=lambda f: f["lift"] > 0)  # fmt: skip
    g = boot.groupby(keys, sort=False)
    bts_value, bts_se = (np.nan, np.nan) if bts is None else (bts["value"], bts["stderr"])
    out = pd.DataFrame({
        "name": full.index.get_level_values("policy").map(POLICY_NAMES),
        "value": full["estimate"], "stderr": full["stderr"],
        "boot_se": g["estimate"].std(ddof=1), "ci_low": g["estimate"].quantile(0.025),
        "ci_high": g["estimate"].quantile(0.975), "lift": full["estimate"] - ctr,
        "lift_se": g["lift"].std(ddof=1), "p_beats_random": g["beats"].mean(),
    })  # fmt: skip
    out["vs_bts"] = out["value"] - bts_value
    out["vs_bts_se"] = np.sqrt(out["boot_se"] ** 2 + bts_se**2)
    return out.reset_index()
