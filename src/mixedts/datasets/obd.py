"""The Open Bandit Dataset (Saito et al. 2021) as :class:`~mixedts.offline.LoggedFeedback`.

ZOZOTOWN logged which item (the action) it showed at which of 3 positions, whether it was
clicked (the reward) and the logging policy's probability of that item at that position
(``propensity_score``), under a uniform-random policy (``behavior="random"``) and under
Bernoulli Thompson sampling (``behavior="bts"``). Files, as obp ships them:

``{campaign}.csv``
    An unnamed index column, then ``timestamp`` (ISO 8601 with a zone), ``item_id`` (0..K−1),
    ``position`` (1, 2, 3), ``click`` (0/1), ``propensity_score``, ``user_feature_0..3``
    (hashed categories) and ``user-item_affinity_0..K−1`` (numbers).
``item_context.csv``
    An unnamed index column, ``item_id``, ``item_feature_0`` (a number) and
    ``item_feature_1..3`` (hashed categories).

:func:`load_obd` follows obp's ``OpenBanditDataset`` default preprocessing: rows sorted by time;
contexts are the user features one-hot encoded with the first category of each dropped
(``pandas.get_dummies(..., drop_first=True)``, columns in sorted category order), plus the K
user-item affinities with ``context_set="affinity"``; action features are the categorical item
features label-encoded (codes of the sorted categories) followed by ``item_feature_0``, i.e.
obp's ``action_context`` without its ``item_id`` column. Positions are kept as published (1..3;
obp uses 0..2). For ``behavior="random"`` the logging policy is uniform over items, so
``logging_probabilities`` is 1/K everywhere (what MIPS needs); for ``"bts"`` it is left out.
The estimators treat the item as the action, marginally over positions; select one position
with ``logs[logs.positions == 1]``.

Licence: the data belong to ZOZO, Inc. (CC BY 4.0 for the full data set; the samples ship with
obp under Apache-2.0); cite Saito, Aihara, Matsutani and Narita, "Open Bandit Dataset and
Pipeline: Towards Realistic and Reproducible Off-Policy Evaluation", NeurIPS 2021 Datasets and
Benchmarks. Nothing is shipped here. ``pandas`` is needed (the ``experiments`` extra).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._validation import ValidationError
from .errors import DatasetError, DatasetNotFoundError

if TYPE_CHECKING:
    from ..offline.logs import LoggedFeedback

CAMPAIGNS = ("all", "men", "women")
BEHAVIORS = ("random", "bts")
CONTEXT_SETS = ("default", "affinity")
_COLUMNS = ("timestamp", "item_id", "position", "click", "propensity_score")


def _choice(value: Any, name: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ValidationError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value


def _folder(path: Any, campaign: str, behavior: str) -> Path:
    """The folder holding ``{campaign}.csv`` and ``item_context.csv``."""
    root = Path(path)
    tried = [root / f"{behavior}_{campaign}", root / behavior / campaign, root]
    for folder in tried:
        if (folder / f"{campaign}.csv").is_file():
            return folder
    raise DatasetNotFoundError(
        f"no {campaign}.csv of the Open Bandit Dataset ({behavior} policy) under {root}; looked "
        f"in {', '.join(str(t) for t in tried)}. Pass the folder holding random_men/ (the "
        "layout of shared/data/obd) or obp's obd/ folder (random/men/...)"
    )


def _read_csv(file: Path):
    import pandas as pd

    if not file.is_file():
        raise DatasetNotFoundError(f"{file} does not exist")
    try:
        return pd.read_csv(file, index_col=0)
    except (ValueError, UnicodeDecodeError) as exc:  # pandas' ParserError is a ValueError
        raise DatasetError(f"{file}: could not be parsed ({exc})") from None


def _times(df, file: Path) -> np.ndarray:
    import pandas as pd

    parsed = pd.to_datetime(df["timestamp"], utc=True, errors="coerce", format="ISO8601")
    bad = parsed.isna().to_numpy()
    if bad.any():
        i = int(np.argmax(bad))
        raise DatasetError(
            f"{file}: timestamp of row {i} is not an ISO 8601 time: {df['timestamp'].iloc[i]!r}"
        )
    return parsed.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[ns]")


def _action_features(items, file: Path) -> np.ndarray:
    """Label-encoded categorical item features, then item_feature_0; rows ordered by item id."""
    for column in ("item_id", "item_feature_0"):
        if column not in items.columns:
            raise DatasetError(f"{file}: column {column!r} is missing")
    ids = items["item_id"].to_numpy()
    if ids.dtype.kind not in "iu" or not np.array_equal(np.sort(ids), np.arange(len(ids))):
        raise DatasetError(f"{file}: item_id must be 0, 1, ..., K-1 (each once)")
    items = items.iloc[np.argsort(ids, kind="stable")]
    categorical = [
        c for c in items.columns if c.startswith("item_feature") and c != "item_feature_0"
    ]
    codes = [np.unique(items[c].astype(str).to_numpy(), return_inverse=True)[1]
             for c in categorical]  # fmt: skip
    try:
        numeric = items["item_feature_0"].to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise DatasetError(f"{file}: item_feature_0 must be numeric") from None
    return np.column_stack([*(np.asarray(c, dtype=np.float64) for c in codes), numeric])


def _contexts(df, context_set: str, n_actions: int, file: Path) -> np.ndarray:
    import pandas as pd

    users = [c for c in df.columns if c.startswith("user_feature")]
    if not users:
        raise DatasetError(f"{file}: no user_feature_* columns")
    X = pd.get_dummies(df[users].astype(str), drop_first=True, dtype=np.float64).to_numpy()
    if context_set == "affinity":
        names = [f"user-item_affinity_{a}" for a in range(n_actions)]
        missing = [c for c in names if c not in df.columns]
        if missing:
            raise DatasetError(f"{file}: column {missing[0]!r} is missing")
        affinity = df[names].to_numpy(dtype=np.float64)
        X = np.hstack([X, affinity])
    return X


def load_obd(
    path: Any,
    campaign: str = "men",
    behavior: str = "random",
    context_set: str = "default",
) -> LoggedFeedback:
    """Read one campaign of the Open Bandit Dataset logged by one policy.

    Parameters
    ----------
    path : str or Path
        A folder holding ``{behavior}_{campaign}/`` (as ``shared/data/obd``) or obp's
        ``{behavior}/{campaign}/`` layout, or the campaign folder itself.
    campaign : {"men", "women", "all"}
    behavior : {"random", "bts"}
    context_set : {"default", "affinity"}
        User features one-hot (obp's default), or those plus the K user-item affinities.

    Returns
    -------
    LoggedFeedback
        actions = item ids (K = the items of ``item_context.csv``, 34 for "men"), rewards =
        clicks, propensities = ``propensity_score``, positions 1..3, timestamps
        (``datetime64[ns]``, UTC), action_features (K, 4), shared contexts (n, d).

    Raises
    ------
    DatasetNotFoundError
        No campaign file under ``path``, or no ``item_context.csv`` beside it.
    DatasetError
        A file that cannot be parsed, a missing column, a bad timestamp or item id, or rows
        that fail the checks of :class:`~mixedts.offline.LoggedFeedback` (the message names
        the file and the row).
    ValidationError
        An unknown ``campaign``, ``behavior`` or ``context_set``.

    Examples
    --------
    Two logged rounds over two items, in obp's layout (rows are sorted by time on reading):

    >>> import tempfile
    >>> folder = Path(tempfile.mkdtemp()) / "random_men"
    >>> folder.mkdir()
    >>> _ = (folder / "item_context.csv").write_text(
    ...     ",item_id,item_feature_0,item_feature_1\\n0,0,-0.6,a\\n1,1,0.2,b\\n")
    >>> _ = (folder / "men.csv").write_text(
    ...     ",timestamp,item_id,position,click,propensity_score,user_feature_0\\n"
    ...     "0,2019-11-24 00:03:36+00:00,1,1,0,0.5,u\\n"
    ...     "1,2019-11-24 00:03:13+00:00,0,2,1,0.5,v\\n")
    >>> logs = load_obd(folder.parent, "men", "random")
    >>> len(logs), logs.n_actions, logs.actions.tolist(), logs.rewards.tolist()
    (2, 2, [0, 1], [1.0, 0.0])
    >>> logs.action_features
    array([[ 0. , -0.6],
           [ 1. ,  0.2]])
    """
    from ..offline.logs import LoggedFeedback  # here: mixedts.offline imports this module

    campaign = _choice(campaign, "campaign", CAMPAIGNS)
    behavior = _choice(behavior, "behavior", BEHAVIORS)
    context_set = _choice(context_set, "context_set", CONTEXT_SETS)
    folder = _folder(path, campaign, behavior)
    data_file, item_file = folder / f"{campaign}.csv", folder / "item_context.csv"
    df = _read_csv(data_file)
    for column in _COLUMNS:
        if column not in df.columns:
            raise DatasetError(f"{data_file}: column {column!r} is missing")
    action_features = _action_features(_read_csv(item_file), item_file)
    K = len(action_features)
    times = _times(df, data_file)
    order = np.argsort(times, kind="stable")
    df, times = df.iloc[order], times[order]
    propensities = df["propensity_score"].to_numpy()
    uniform = None
    if behavior == "random" and np.allclose(propensities, 1.0 / K, rtol=1e-9, atol=0.0):
        uniform = np.full((len(df), K), 1.0 / K)
    try:
        return LoggedFeedback(
            _contexts(df, context_set, K, data_file),
            df["item_id"].to_numpy(),
            df["click"].to_numpy(),
            propensities=propensities,
            action_features=action_features,
            positions=df["position"].to_numpy(),
            timestamps=times,
            n_actions=K,
            logging_probabilities=uniform,
        )
    except DatasetError:
        raise
    except ValidationError as exc:
        raise DatasetError(f"{data_file} (rows sorted by time): {exc}") from None
