"""Open Bandit Dataset loader: the obp samples, read in place from ../shared/data/obd (skipped
without them), and malformed copies written into tmp_path."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

pd = pytest.importorskip("pandas")

from mixedts._validation import ValidationError  # noqa: E402
from mixedts.datasets import DatasetError, DatasetNotFoundError  # noqa: E402
from mixedts.datasets.obd import load_obd  # noqa: E402
from mixedts.offline import estimate_all  # noqa: E402
from shared_data import OBD, needs_obd  # noqa: E402


@pytest.fixture(scope="module")
def random_men():
    return load_obd(OBD, "men", "random")


@needs_obd
def test_random_men(random_men):
    logs = random_men
    raw = pd.read_csv(OBD / "random_men" / "men.csv", index_col=0)
    assert (len(logs), logs.n_actions) == (10_000, 34)
    # obp's default context: user features one-hot, first category of each dropped
    n_categories = [raw[f"user_feature_{i}"].nunique() for i in range(4)]
    assert logs.contexts.shape == (10_000, sum(n_categories) - 4)
    assert set(np.unique(logs.contexts)) <= {0.0, 1.0}
    assert np.all(logs.propensities == 1 / 34)
    assert np.all(logs.logging_probabilities == 1 / 34)
    assert set(logs.positions.tolist()) == {1, 2, 3}
    assert logs.rewards.sum() == raw["click"].sum() == 46
    assert np.all(np.diff(logs.timestamps) >= np.timedelta64(0, "ns"))
    assert logs.timestamps[0] == np.datetime64("2019-11-24T00:03:13.442536", "ns")
    items = pd.read_csv(OBD / "random_men" / "item_context.csv", index_col=0)
    assert logs.action_features.shape == (34, 4)
    assert np.array_equal(logs.action_features[:, 3], items["item_feature_0"].to_numpy())
    assert logs.action_features[:, 0].max() == items["item_feature_1"].nunique() - 1


@needs_obd
def test_bts_men_and_affinity_contexts():
    logs = load_obd(OBD, "men", "bts", context_set="affinity")
    assert len(logs) == 10_000 and logs.logging_probabilities is None
    assert logs.propensities.min() > 0 and logs.propensities.std() > 0
    raw = pd.read_csv(OBD / "bts_men" / "men.csv", index_col=0)
    affinity = raw[[f"user-item_affinity_{a}" for a in range(34)]].to_numpy()
    assert np.array_equal(logs.contexts[:, -34:], affinity)


@needs_obd
def test_uniform_target_on_random_logs_is_the_click_rate(random_men):
    logs = random_men
    uniform = np.full((len(logs), 34), 1 / 34)
    est = estimate_all(logs, uniform, ["ips", "snips", "mips"])
    for e in est.values():
        assert e.value == pytest.approx(logs.rewards.mean())
    train, test = logs.time_split(0.7)
    assert (len(train), len(test)) == (7000, 3000)


@needs_obd
def test_obp_folder_layout_and_errors(tmp_path):
    nested = tmp_path / "random" / "men"
    nested.mkdir(parents=True)
    for name in ("men.csv", "item_context.csv"):
        shutil.copy(OBD / "random_men" / name, nested / name)
    assert len(load_obd(tmp_path, "men", "random")) == 10_000
    raw = pd.read_csv(nested / "men.csv", index_col=0)
    raw.loc[raw.index[17], "propensity_score"] = 0.0
    raw.to_csv(nested / "men.csv")
    with pytest.raises(DatasetError, match=r"propensities\[17\] must be in \(0, 1\], got 0.0"):
        load_obd(tmp_path, "men", "random")
    raw.drop(columns="click").to_csv(nested / "men.csv")
    with pytest.raises(DatasetError, match="column 'click' is missing"):
        load_obd(tmp_path, "men", "random")


def test_missing_folder_and_bad_arguments(tmp_path):
    with pytest.raises(DatasetNotFoundError, match=r"no men\.csv of the Open Bandit Dataset"):
        load_obd(tmp_path, "men", "random")
    with pytest.raises(ValidationError, match="behavior must be one of random, bts"):
        load_obd(tmp_path, "men", "greedy")
    with pytest.raises(ValidationError, match="campaign must be one of"):
        load_obd(tmp_path, "kids")
