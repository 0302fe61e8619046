"""The Open Bandit Dataset's test of off-policy estimators (obp's ``examples/obd`` protocol).

ZOZOTOWN ran a uniform-random policy and a Bernoulli Thompson sampling (BTS) policy side by side.
Estimate the BTS policy's click rate from the *random* logs with each estimator, and compare it
with the click rate BTS actually got in its *own* logs, V_on = mean(click). The score of an
estimator is its relative estimation error |V̂ − V_on| / V_on, with its mean and standard
deviation over bootstrap resamples of the random logs (Saito et al. 2021, Sec. 5; obp's
``examples/obd/evaluate_off_policy_estimators.py``).

* :func:`read_bts_prior`: the production policy's Beta(alpha, beta) prior per item, for one
  campaign of obp's ``prior_bts.yaml`` (read by a small reader here: PyYAML is not needed).
* :func:`bts_action_distribution`: the probability that BTS shows item k at position p, (K, L),
  by Monte Carlo: the policy draws θ_k ~ Beta(alpha_k, beta_k) independently and shows the L
  largest, the largest at position 1 (obp's ``BernoulliTS(is_zozotown_prior=True,
  len_list=3).compute_batch_action_dist``).
* :func:`obd_relative_error`: the protocol; a summary and a per-resample table (pandas).

How obp handles the positions, and so this module: an impression shows 3 items and each is
a row (item, position, click). The action of a row is its item; the target policy's
probability of a row is that of the logged item *at the logged position*,
π(a_t | p_t) = target_dist[a_t, p_t], a distribution over the K items for each position; the
random policy's propensity is 1/K. The reward model predicts the click probability
q̂(x, a, p) with one scikit-learn model per position, fitted on the features
[context x, item features of a] (obp's ``RegressionModel`` with ``action_context`` = the
item features of ``item_context.csv``), with 3-fold cross-fitting on each resample, and each
row is given q̂(x_t, ·, p_t). The estimators then see an ordinary K-armed problem per row
and are those of :mod:`.estimators`, unchanged.

Only numpy and scipy are imported at module level; pandas (the tables), scikit-learn (the
reward models) and rich (the progress bar) are imported by the functions that use them.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .._validation import ValidationError, as_float_array, as_generator, check_int
from .estimators import OffPolicyEstimator, make_estimator
from .inputs import EstimatorInputs
from .logs import LoggedFeedback
from .obd_models import (
    base_model,
    fit_model,
    predict_model,
    progress_bar,
    spawn_seeds,
)
from .slope import SwitchDoublyRobustSLOPE

#: The estimators of obp's reference table, by our names (``ips`` is obp's ``ipw``, ``snips``
#: its ``snipw``, ``switch-dr-slope`` its ``SwitchDoublyRobustTuning``).
DEFAULT_OBD_ESTIMATORS = ("dm", "ips", "snips", "dr", "sndr", "switch-dr-slope")

#: obp's relative estimation errors, mean and s.d. over 30 bootstrap resamples, as printed in
#: ``examples/obd/README.md`` (zr-obp master): BTS evaluated on the uniform-random logs of the
#: *"all"* campaign's 10,000-row sample, logistic-regression reward model. Keyed by our labels.
#: obp's DR-os (0.160 ± 0.110) has no counterpart here.
OBP_REFERENCE: dict[str, tuple[float, float]] = {
    "dm": (0.156876, 0.109898),
    "ips": (0.311082, 0.311170),
    "snips": (0.311795, 0.334736),
    "dr": (0.292464, 0.315485),
    "sndr": (0.302407, 0.328434),
    "switch-dr-slope": (0.258410, 0.160598),
}
#: our label -> obp's estimator name
OBP_NAMES = {"dm": "dm", "ips": "ipw", "snips": "snipw", "dr": "dr", "sndr": "sndr",
             "switch-dr-slope": "switch-dr"}  # fmt: skip

PRIOR_FILE = "prior_bts.yaml"
_DRAW_BLOCK = 1 << 22  # entries of one (draws, K) block of Beta draws


# ---------------------------------------------------------------------------------------- prior
def _parse_prior(text: str, file: Path) -> dict[str, dict[str, list[float]]]:
    """The ``campaign: {alpha: [...], beta: [...]}`` mapping of obp's prior_bts.yaml.

    Reads the one YAML shape that file has: a top-level key per campaign, indented keys
    ``alpha`` and ``beta``, and block lists of numbers (``- 47.0``); ``#`` comments.
    """
    from ..datasets.errors import DatasetError

    out: dict[str, dict[str, list[float]]] = {}
    campaign: str | None = None
    key: str | None = None
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        body = line.strip()
        head = re.fullmatch(r"([A-Za-z_][\w-]*)\s*:", body)
        if head and indent == 0:
            campaign, key = head.group(1), None
            out[campaign] = {}
        elif head and campaign is not None:
            key = head.group(1)
            out[campaign][key] = []
        elif body.startswith("- ") and campaign is not None and key is not None:
            try:
                out[campaign][key].append(float(body[2:]))
            except ValueError:
                raise DatasetError(
                    f"{file}: line {number}: {campaign}.{key} must list numbers, got {body[2:]!r}"
                ) from None
        else:
            raise DatasetError(
                f"{file}: line {number}: expected 'campaign:', 'alpha:' / 'beta:' or '- number', "
                f"got {raw.strip()!r}"
            )
    return out


def read_bts_prior(path: Any, campaign: str = "men") -> tuple[np.ndarray, np.ndarray]:
    """The production BTS policy's Beta prior of one campaign: (alpha, beta), each (K,).

    Parameters
    ----------
    path : str or Path
        obp's ``prior_bts.yaml``, or a folder holding it (e.g. ``shared/data/obd``).
    campaign : str
        A top-level section of the file: ``"all"`` (80 items), ``"men"`` (34) or ``"women"`` (46).

    Returns
    -------
    (ndarray, ndarray)
        alpha and beta, each (K,), positive.

    Raises
    ------
    DatasetNotFoundError
        No such file (or no ``prior_bts.yaml`` in the folder).
    DatasetError
        A file not in the format of obp's, or a campaign without one positive alpha and beta
        per item.
    ValidationError
        A campaign that is not a section of the file.

    Examples
    --------
    >>> import tempfile
    >>> file = Path(tempfile.mkdtemp()) / "prior_bts.yaml"  # obp's layout, two items
    >>> _ = file.write_text("men:\\n  alpha:\\n    - 47.0\\n    - 8.0\\n"
    ...                     "  beta:\\n    - 1000.0\\n    - 500.0\\n")
    >>> read_bts_prior(file, "men")
    (array([47.,  8.]), array([1000.,  500.]))
    """
    from ..datasets.errors import DatasetError, DatasetNotFoundError

    file = Path(path)
    if file.is_dir():
        file = file / PRIOR_FILE
    if not file.is_file():
        raise DatasetNotFoundError(f"{file} does not exist; pass obp's {PRIOR_FILE} or its folder")
    prior = _parse_prior(file.read_text(encoding="utf-8"), file)
    if campaign not in prior:
        raise ValidationError(
            f"campaign must be one of {', '.join(prior)} (the sections of {file}), got {campaign!r}"
        )
    section = prior[campaign]
    for key in ("alpha", "beta"):
        if key not in section:
            raise DatasetError(f"{file}: campaign {campaign!r} has no {key!r} list")
    alpha, beta = np.array(section["alpha"]), np.array(section["beta"])
    if len(alpha) != len(beta) or len(alpha) == 0:
        raise DatasetError(
            f"{file}: campaign {campaign!r} has {len(alpha)} alpha and {len(beta)} beta values; "
            "one of each per item is needed"
        )
    for key, values in (("alpha", alpha), ("beta", beta)):
        bad = ~(np.isfinite(values) & (values > 0))
        if bad.any():
            i = int(np.argmax(bad))
            raise DatasetError(f"{file}: {campaign}.{key}[{i}] must be positive, got {values[i]}")
    return alpha, beta


# ------------------------------------------------------------------------- action distribution
def bts_action_distribution(
    prior_alpha: Any,
    prior_beta: Any,
    n_positions: int = 3,
    n_draws: int = 1_000_000,
    rng: Any = 0,
    *,
    return_stderr: bool = False,
):
    """P(BTS shows item k at position p), (K, n_positions), by Monte Carlo.

    Each draw samples θ_k ~ Beta(alpha_k, beta_k) for all K items at once and ranks them: the
    largest goes to position 1, the next to position 2, ... (obp's
    ``BernoulliTS.select_action``). Draws come in blocks of (draws, K): one Beta block, an
    ``argpartition`` for the top ``n_positions``, a sort of those, and one ``bincount``.

    Each entry is a proportion of ``n_draws`` independent indicators, so its Monte Carlo
    standard error is sqrt(P (1 − P) / n_draws), at most 0.5 / sqrt(n_draws) (0.0005 for the
    default 10⁶ draws, the number obp's OBD example uses). Every column sums to 1 (each
    position shows one item) and every row to at most 1 (an item is shown at most once).

    Parameters
    ----------
    prior_alpha, prior_beta : array_like, shape (K,)
        Positive Beta parameters per item (:func:`read_bts_prior`).
    n_positions : int
        L, the positions filled (obp's ``len_list``; 3 for OBD), 1 <= L <= K.
    n_draws : int
        Monte Carlo draws of the K-vector θ.
    rng : int, SeedSequence, Generator or None
        The source of the draws.
    return_stderr : bool
        Also return the (K, L) Monte Carlo standard errors.

    Returns
    -------
    ndarray (K, L), or (ndarray, ndarray) with ``return_stderr``
        P(item k at position p), and its Monte Carlo standard errors.

    Examples
    --------
    >>> d = bts_action_distribution([1.0, 1.0], [1.0, 1.0], n_positions=2, n_draws=10_000)
    >>> d.sum(axis=0).tolist(), bool(np.all(np.abs(d - 0.5) < 0.02))
    ([1.0, 1.0], True)
    """
    a = as_float_array(prior_alpha, "prior_alpha", ndim=1)
    b = as_float_array(prior_beta, "prior_beta", ndim=1)
    for name, values in (("prior_alpha", a), ("prior_beta", b)):
        bad = values <= 0
        if bad.any():
            i = int(np.argmax(bad))
            raise ValidationError(f"{name}[{i}] must be positive, got {values[i]}")
    K = len(a)
    if K == 0 or len(b) != K:
        raise ValidationError(
            f"prior_alpha and prior_beta must have one entry per item (K >= 1), got {len(a)} "
            f"and {len(b)}"
        )
    L = check_int(n_positions, "n_positions", low=1)
    if L > K:
        raise ValidationError(f"n_positions must be at most the {K} items, got {L}")
    n = check_int(n_draws, "n_draws", low=1)
    gen = as_generator(rng)
    block = max(1, _DRAW_BLOCK // K)
    counts = np.zeros(K * L, dtype=np.int64)
    slot = np.arange(L)
    for start in range(0, n, block):  # blocks of draws, each (m, K) at once
        m = min(block, n - start)
        theta = gen.beta(a, b, size=(m, K))
        top = np.argpartition(-theta, L - 1, axis=1)[:, :L]  # the L largest, unordered
        order = np.argsort(-np.take_along_axis(theta, top, axis=1), axis=1, kind="stable")
        ranked = np.take_along_axis(top, order, axis=1)  # (m, L): the item at each position
        counts += np.bincount((ranked * L + slot).ravel(), minlength=K * L)
    dist = counts.reshape(K, L) / n
    if return_stderr:
        return dist, np.sqrt(dist * (1.0 - dist) / n)
    return dist


def _cross_fit_rewards(
    contexts: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    positions: np.ndarray,
    action_context: np.ndarray,
    base: Any,
    n_folds: int,
    rng: Any,
) -> np.ndarray:
    """q̂(x_t, a, p_t) for every row t and item a, (n, K), as obp's ``RegressionModel``.

    One model per position p (0-based ``positions``), fitted on the rows at p with features
    ``[contexts[t], action_context[actions[t]]]``; with ``n_folds`` > 1 each row is predicted by
    the models fitted on the other folds (folds drawn from ``rng``). Loops run over folds and
    positions only; the K predictions of a block of rows are made in one call.
    """
    gen = as_generator(rng)
    n, K = len(actions), len(action_context)
    L = int(positions.max()) + 1 if n else 0
    fold = gen.permutation(n) % n_folds if n_folds > 1 else np.zeros(n, dtype=np.int64)
    q = np.empty((n, K))
    for f in range(n_folds):
        for p in range(L):  # a handful of fits: folds x positions
            at_p = positions == p
            test = at_p & (fold == f)
            if not test.any():
                continue
            train = at_p & (fold != f) if n_folds > 1 else at_p
            if not train.any():
                raise ValidationError(
                    f"no rows at position {p + 1} outside fold {f} to fit the reward model on; "
                    "use fewer folds (n_folds) or more rows"
                )
            model = fit_model(base, np.hstack([contexts[train], action_context[actions[train]]]),
                              rewards[train], gen)  # fmt: skip
            X = contexts[test]
            m = len(X)
            features = np.hstack([np.repeat(X, K, axis=0), np.tile(action_context, (m, 1))])
            q[test] = predict_model(model, features).reshape(m, K)
    return q


# ---------------------------------------------------------------------------------- protocol
class RelativeErrorResult(NamedTuple):
    """What :func:`obd_relative_error` returns (unpack as ``summary, raw = ...``).

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per estimator: ``estimator``, ``mean``, ``std``, ``n_bootstrap``,
        ``mean_estimate``, ``v_on``, ``v_on_stderr``.
    raw : pandas.DataFrame
        One row per (resample, estimator): ``resample``, ``estimator``, ``estimate``,
        ``stderr``, ``v_on``, ``relative_error``.

    Examples
    --------
    >>> result = RelativeErrorResult(summary="per estimator", raw="per resample")
    >>> summary, raw = result
    >>> summary
    'per estimator'
    """

    #: one row per estimator: estimator, mean, std, n_bootstrap, mean_estimate, v_on,
    #: v_on_stderr
    summary: Any
    #: one row per (resample, estimator): resample, estimator, estimate, stderr, v_on,
    #: relative_error
    raw: Any


def _estimators(estimators: Any) -> dict[str, OffPolicyEstimator]:
    if estimators is None:
        estimators = DEFAULT_OBD_ESTIMATORS
    if isinstance(estimators, (str, OffPolicyEstimator)):
        estimators = (estimators,)
    if isinstance(estimators, Mapping):
        items = list(estimators.items())
    else:
        items = [(e if isinstance(e, str) else getattr(e, "name", None), e) for e in estimators]
    out: dict[str, OffPolicyEstimator] = {}
    for label, est in items:
        if isinstance(est, str):
            est = SwitchDoublyRobustSLOPE() if est == "switch-dr-slope" else make_estimator(est)
        if not isinstance(est, OffPolicyEstimator):
            raise ValidationError(f"estimators must hold estimator names or objects, got {est!r}")
        if label in out:
            raise ValidationError(f"estimators: {label!r} appears twice; pass a mapping "
                                  "{label: estimator}")  # fmt: skip
        out[str(label)] = est
    if not out:
        raise ValidationError("estimators must name at least one estimator")
    return out


def _target(target_dist: Any, K: int) -> np.ndarray:
    D = as_float_array(target_dist, "target_dist", ndim=2)
    if D.shape[0] != K:
        raise ValidationError(
            f"target_dist must have one row per item, ({K}, n_positions), got shape {D.shape}"
        )
    bad = (D < 0) | (D > 1)
    if bad.any():
        k, p = np.unravel_index(int(np.argmax(bad)), D.shape)
        raise ValidationError(f"target_dist[{k}, {p}] must be a probability, got {D[k, p]}")
    total = D.sum(axis=0)
    bad = np.abs(total - 1.0) > 1e-6
    if bad.any():
        p = int(np.argmax(bad))
        raise ValidationError(
            f"target_dist[:, {p}] must sum to 1 over the {K} items (one item per position), "
            f"got {total[p]!r}"
        )
    return D


def _positions(logs: LoggedFeedback, L: int) -> np.ndarray:
    if logs.positions is None:
        raise ValidationError("random_logs.positions is missing: each row needs its position 1..L")
    pos = logs.positions.astype(np.int64) - 1
    bad = (pos < 0) | (pos >= L)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValidationError(
            f"random_logs.positions[{i}] must be in 1..{L} (the columns of target_dist), got "
            f"{logs.positions[i]}"
        )
    return pos


def _on_policy(bts_logs: Any, K: int) -> tuple[float, float]:
    """V_on and its standard error (NaN for a value given as a number)."""
    if isinstance(bts_logs, LoggedFeedback):
        if len(bts_logs) < 2:
            raise ValidationError("bts_logs must hold at least two rows")
        if bts_logs.n_actions != K:
            raise ValidationError(
                f"bts_logs has {bts_logs.n_actions} items but random_logs has {K}: pass the "
                "same campaign"
            )
        r = bts_logs.rewards
        value, se = float(r.mean()), float(r.std(ddof=1) / np.sqrt(len(r)))
    elif isinstance(bts_logs, numbers.Real) and not isinstance(bts_logs, (bool, np.bool_)):
        value, se = float(bts_logs), float("nan")
    else:
        raise ValidationError(
            f"bts_logs must be a LoggedFeedback or the on-policy value (a number), got "
            f"{type(bts_logs).__name__}"
        )
    if not (np.isfinite(value) and value > 0):
        raise ValidationError(f"bts_logs: the on-policy value must be positive, got {value}")
    return value, se


def obd_relative_error(
    random_logs: LoggedFeedback,
    bts_logs: Any,
    target_dist: Any,
    estimators: Any = None,
    reward_model: Any = "logistic",
    n_bootstrap: int = 30,
    seed: Any = 0,
    *,
    n_folds: int = 3,
    action_context: Any = None,
    progress: bool = False,
) -> RelativeErrorResult:
    """Relative error of off-policy estimates of the BTS policy's click rate (obp's protocol).

    Parameters
    ----------
    random_logs : LoggedFeedback
        The uniform-random policy's logs (``load_obd(path, campaign, "random")``), with
        positions 1..L, propensities and shared contexts.
    bts_logs : LoggedFeedback or float
        The evaluation policy's own logs (V_on = the mean of their rewards), or V_on itself.
    target_dist : array_like, shape (K, L)
        The evaluation policy's probability of item k at position p, each column summing to 1
        (:func:`bts_action_distribution`). Row t of the random logs is given the target
        distribution of its position, ``target_dist[:, positions[t] - 1]``.
    estimators : sequence or mapping, optional
        Names (those of :data:`~mixedts.offline.estimators.ESTIMATORS`, plus
        ``"switch-dr-slope"``), estimator objects, or ``{label: name or estimator}``. Default:
        :data:`DEFAULT_OBD_ESTIMATORS`, the six of obp's reference table.
    reward_model : "logistic", "gbm", scikit-learn estimator or None
        The base model of q̂(x, a, p) (one per position, 3-fold cross-fitted on each resample,
        see the module docstring). ``"logistic"`` is obp's reference choice,
        ``LogisticRegression(C=100, max_iter=10000)``; ``"gbm"`` obp's
        ``GradientBoostingClassifier(n_estimators=30, learning_rate=0.01, max_depth=5,
        min_samples_leaf=10)``. None: no model (only estimators that need none).
    n_bootstrap : int
        Resamples of the random logs (n rows drawn with replacement each).
    seed : int, SeedSequence or Generator
        Source of the resamples, the cross-fitting folds and the models' ``random_state``;
        resample b is the same whatever ``n_bootstrap`` is.
    n_folds : int
        Cross-fitting folds of the reward model (1: fit and predict on the same rows).
    action_context : array_like (K, p), optional
        The item features of the reward model. Default: ``random_logs.action_features`` (obp's
        ``action_context``), or one-hot items when the log has none.
    progress : bool
        Show a progress bar (rich) on stderr.

    Returns
    -------
    RelativeErrorResult
        ``(summary, raw)`` pandas DataFrames. ``summary``: one row per estimator with the mean
        and s.d. (ddof 1, as obp's ``describe()``) of the relative error over the resamples,
        ``n_bootstrap``, the mean estimate, V_on and its standard error. ``raw``: every
        resample's estimate, its standard error and relative error.

    Raises
    ------
    ValidationError
        Logs that are not a LoggedFeedback of at least two rows with shared contexts and
        positions 1..L, a ``target_dist`` that is not (K, L) with columns summing to 1, a
        ``bts_logs`` of fewer than two rows or a non-positive V_on, an unknown estimator or
        reward model, or an estimator that needs a reward model when ``reward_model`` is
        None.

    Examples
    --------
    Uniform logs of 3 items at one position, V_on given as a number, no reward model:

    >>> rng = np.random.default_rng(0)
    >>> n = 300
    >>> random_logs = LoggedFeedback(np.ones((n, 1)), rng.integers(0, 3, n),
    ...                              rng.binomial(1, 0.1, n), propensities=np.full(n, 1 / 3),
    ...                              positions=np.ones(n, dtype=int))
    >>> summary, raw = obd_relative_error(random_logs, 0.1, [[0.5], [0.3], [0.2]],
    ...                                   ["ips", "snips"], reward_model=None, n_bootstrap=5)
    >>> summary[["estimator", "n_bootstrap", "v_on"]].values.tolist()
    [['ips', 5, 0.1], ['snips', 5, 0.1]]
    >>> len(raw)
    10
    """
    import pandas as pd

    if not isinstance(random_logs, LoggedFeedback):
        raise ValidationError(
            f"random_logs must be a LoggedFeedback, got {type(random_logs).__name__}"
        )
    if len(random_logs) < 2:
        raise ValidationError("random_logs must hold at least two rows")
    if not random_logs.shared_context:
        raise ValidationError("random_logs.contexts must be shared by all items, shape (n, d)")
    K = random_logs.n_actions
    D = _target(target_dist, K)
    pos = _positions(random_logs, D.shape[1])
    v_on, v_on_se = _on_policy(bts_logs, K)
    chosen = _estimators(estimators)
    B = check_int(n_bootstrap, "n_bootstrap", low=1)
    folds = check_int(n_folds, "n_folds", low=1)
    base = None if reward_model is None else base_model(reward_model)
    for label, est in chosen.items():  # refuse before any work
        for field in est.needs:
            if field == "estimated_rewards" and base is None:
                raise ValidationError(f"reward_model is None, but estimator {label!r} needs one")
            if field != "estimated_rewards" and getattr(random_logs, field) is None:
                raise ValidationError(f"random_logs.{field} is missing: estimator {label!r} "
                                      "needs it")  # fmt: skip
    if action_context is None:
        E = random_logs.action_features if random_logs.action_features is not None else np.eye(K)
    else:
        E = as_float_array(action_context, "action_context", ndim=2)
        if E.shape[0] != K:
            raise ValidationError(f"action_context must have {K} rows (one per item), got "
                                  f"shape {E.shape}")  # fmt: skip

    X, A, R, P = random_logs.contexts, random_logs.actions, random_logs.rewards, pos
    pi_rows = D.T[P]  # (n, K): the target's distribution over items at each row's position
    n = len(A)
    records: list[tuple[int, str, float, float]] = []
    bar = progress_bar(progress, B)
    try:
        for b, child in enumerate(spawn_seeds(seed, B)):  # resamples: the unit of the experiment
            gen = np.random.default_rng(child)
            idx = gen.integers(0, n, size=n)
            q = None
            if base is not None:
                q = _cross_fit_rewards(X[idx], A[idx], R[idx], P[idx], E, base, folds, gen)
            data = EstimatorInputs(
                rewards=R[idx],
                actions=A[idx],
                action_dist=pi_rows[idx],
                propensities=None if random_logs.propensities is None
                else random_logs.propensities[idx],
                estimated_rewards=q,
                action_features=random_logs.action_features,
                logging_probabilities=None if random_logs.logging_probabilities is None
                else random_logs.logging_probabilities[idx],
            )  # fmt: skip
            for label, est in chosen.items():
                e = est.estimate(data)
                records.append((b, label, e.value, e.stderr))
            if bar is not None:
                bar[0].advance(bar[1])
    finally:
        if bar is not None:
            bar[0].stop()

    raw = pd.DataFrame(records, columns=["resample", "estimator", "estimate", "stderr"])
    raw["v_on"] = v_on
    raw["relative_error"] = (raw["estimate"] - v_on).abs() / v_on
    grouped = raw.groupby("estimator", sort=False)
    summary = pd.DataFrame({
        "estimator": list(chosen),
        "mean": grouped["relative_error"].mean().reindex(list(chosen)).to_numpy(),
        "std": grouped["relative_error"].std(ddof=1).reindex(list(chosen)).to_numpy(),
        "n_bootstrap": B,
        "mean_estimate": grouped["estimate"].mean().reindex(list(chosen)).to_numpy(),
        "v_on": v_on,
        "v_on_stderr": v_on_se,
    })  # fmt: skip
    return RelativeErrorResult(summary, raw)
