"""LoggedFeedback: validation (field and row named), slicing, time splits, bootstrap, Parquet,
DataFrames, and simulated logs with their true propensities."""

from __future__ import annotations

import numpy as np
import pytest

from mixedts._validation import ValidationError
from mixedts.environments import MixedEffectEnvironment
from mixedts.offline import LoggedFeedback, simulate_logs, true_policy_value


def small(**changes):
    fields = dict(
        contexts=np.arange(10.0).reshape(5, 2),
        actions=[0, 2, 1, 2, 0],
        rewards=[1.0, 0.0, 0.5, 1.0, 0.0],
        propensities=[0.5, 0.25, 0.25, 0.25, 0.5],
        timestamps=[10, 11, 11, 12, 15],
        positions=[1, 2, 3, 1, 2],
    )
    fields.update(changes)
    return LoggedFeedback(**fields)


def test_construction_stores_read_only_copies():
    X = np.arange(10.0).reshape(5, 2)
    logs = small(contexts=X)
    assert (len(logs), logs.n_actions, logs.dim, logs.shared_context) == (5, 3, 2, True)
    assert logs.actions.dtype == np.int64 and logs.rewards.dtype == np.float64
    X[0, 0] = 99.0  # the caller's array is copied
    assert logs.contexts[0, 0] == 0.0
    with pytest.raises(ValueError):
        logs.rewards[0] = 5.0
    with pytest.raises(AttributeError):
        logs.rewards = np.zeros(5)
    assert "n=5" in repr(logs)


def test_n_actions_inferred_or_checked():
    assert small(n_actions=7).n_actions == 7
    assert small(action_features=np.zeros((4, 3))).n_actions == 4
    per_action = small(contexts=np.zeros((5, 3, 2)))
    assert per_action.n_actions == 3 and not per_action.shared_context
    assert np.array_equal(per_action.logged_action_contexts, np.zeros((5, 2)))
    with pytest.raises(ValidationError, match=r"action_features has 4 actions, but n_actions"):
        small(n_actions=3, action_features=np.zeros((4, 1)))
    with pytest.raises(ValidationError, match=r"actions\[1\] must be an action index in \[0, 2\)"):
        small(n_actions=2)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"rewards": [1.0, 0.0, np.nan, 1.0, 0.0]}, r"rewards\[2\] must be finite, got nan"),
        ({"propensities": [0.5, 0.0, 0.25, 0.25, 0.5]},
         r"propensities\[1\] must be in \(0, 1\], got 0.0"),
        ({"propensities": [0.5, 0.5, 0.5, 1.5, 0.5]},
         r"propensities\[3\] must be in \(0, 1\], got 1.5"),
        ({"propensities": [0.5, 0.5, 0.5, 0.5, np.nan]}, r"propensities\[4\] must be finite"),
        ({"actions": [0, 2, 1, -1, 0]}, r"actions\[3\] must be an action index non-negative"),
        ({"actions": [0, 2, 1, 2, 5], "n_actions": 3},
         r"actions\[4\] must be an action index in \[0, 3\), got 5"),
        ({"actions": [0, 2, 1.5, 2, 0]}, r"actions\[2\] must be an integer action index"),
        ({"rewards": [1.0, 0.0, 0.5, 1.0]}, r"rewards must have 5 rows.*row 4 is missing"),
        ({"propensities": [0.5] * 6}, r"propensities must have 5 rows.*row 5 is extra"),
        ({"contexts": [[0.0, 1.0]] * 3 + [[np.inf, 0.0]] + [[0.0, 1.0]]},
         r"contexts\[3, 0\] must be finite, got inf"),
        ({"rewards": ["a", "b", "c", "d", "e"]}, r"rewards must be numeric"),
        ({"positions": [1, 2, 3.5, 1, 2]}, r"positions\[2\] must be an integer"),
        ({"timestamps": [1.0, 2.0, np.nan, 3.0, 4.0]}, r"timestamps\[2\] must be finite"),
        ({"contexts": np.zeros(5)}, r"contexts must have shape \(n, d\) or \(n, K, d\)"),
    ],
)
def test_bad_logs_name_the_field_and_the_row(change, message):
    with pytest.raises(ValidationError, match=message):
        small(**change)


def test_logging_probabilities_give_or_check_propensities():
    P = np.array([[0.5, 0.25, 0.25]] * 5)
    logs = small(propensities=None, logging_probabilities=P)
    assert logs.propensities.tolist() == [0.5, 0.25, 0.25, 0.25, 0.5]
    with pytest.raises(ValidationError, match=r"propensities\[0\] = 0.25 differs from "
                                              r"logging_probabilities\[0, 0\] = 0.5"):
        small(propensities=[0.25] * 5, logging_probabilities=P)
    P0 = P.copy()
    P0[2] = [0.5, 0.0, 0.5]
    with pytest.raises(ValidationError, match=r"logging_probabilities\[2, 1\] must be positive"):
        small(propensities=None, logging_probabilities=P0)
    with pytest.raises(ValidationError, match=r"logging_probabilities\[1\] must sum to 1"):
        small(logging_probabilities=[[0.5, 0.25, 0.25]] + [[0.5, 0.5, 0.5]] * 4)


def test_slicing_by_slice_integer_mask_and_indices():
    logs = small()
    assert logs[1:3].rewards.tolist() == [0.0, 0.5]
    assert logs[-1].actions.tolist() == [0] and len(logs[4]) == 1
    mask = np.array([True, False, True, False, True])
    assert logs[mask].timestamps.tolist() == [10, 11, 15]
    picked = logs[np.array([4, 0, 0])]
    assert picked.rewards.tolist() == [0.0, 1.0, 1.0] and picked.positions.tolist() == [2, 1, 1]
    assert picked.n_actions == logs.n_actions
    with pytest.raises(ValueError):
        picked.rewards[0] = 1.0  # fancy indexing copies, still read-only
    with pytest.raises(ValidationError, match=r"index\[1\] = 5 is out of range"):
        logs[np.array([0, 5])]
    with pytest.raises(ValidationError, match="boolean index must have 5 entries"):
        logs[np.array([True, False])]
    with pytest.raises(ValidationError, match="index 9 is out of range"):
        logs[9]


def test_time_split_by_fraction_and_time():
    logs = small()
    train, test = logs.time_split(0.6)
    assert (len(train), len(test)) == (3, 2) and test.timestamps.tolist() == [12, 15]
    train, test = logs.time_split(at=11.5)
    assert train.timestamps.tolist() == [10, 11, 11] and len(test) == 2
    with pytest.raises(ValidationError, match="exactly one of fraction and at"):
        logs.time_split()
    with pytest.raises(ValidationError, match=r"fraction must be in \(0, 1\)"):
        logs.time_split(1.5)
    with pytest.raises(ValidationError, match="timestamps are needed"):
        small(timestamps=None).time_split(0.5)


def test_time_split_refuses_unsorted_timestamps_naming_the_row():
    logs = small(timestamps=[10, 11, 13, 12, 15])
    with pytest.raises(ValidationError, match=r"timestamps\[3\] = 12 is earlier than "
                                              r"timestamps\[2\] = 13"):
        logs.time_split(0.5)
    assert logs.timestamps.tolist() == [10, 11, 13, 12, 15]  # unchanged


def test_time_split_at_a_datetime():
    times = np.array(["2019-11-24T00:00", "2019-11-24T06:00", "2019-11-25T00:00",
                      "2019-11-25T01:00", "2019-11-26T00:00"], dtype="datetime64[s]")
    logs = small(timestamps=times)
    assert logs.timestamps.dtype == np.dtype("datetime64[ns]")
    train, test = logs.time_split(at="2019-11-25")
    assert (len(train), len(test)) == (2, 3)
    import datetime

    tokyo = datetime.timezone(datetime.timedelta(hours=9))
    aware = datetime.datetime(2019, 11, 25, 9, tzinfo=tokyo)
    assert len(logs.time_split(at=aware)[0]) == 2  # 09:00 at UTC+9 is midnight UTC


def test_bootstrap_is_seeded_and_keeps_log_order():
    logs = small()
    a, b = logs.bootstrap(3), logs.bootstrap(np.random.default_rng(3))
    assert a.equals(b) and len(a) == len(logs)
    assert np.all(np.diff(a.timestamps) >= 0)
    assert set(a.rewards.tolist()) <= set(logs.rewards.tolist())


def test_replace_and_equals():
    logs = small()
    assert logs.equals(small()) and not logs.equals(small(rewards=[0.0] * 5))
    assert logs.replace(rewards=[2.0] * 5).rewards.tolist() == [2.0] * 5
    with pytest.raises(ValidationError, match=r"propensities\[0\]"):
        logs.replace(propensities=[0.0] * 5)
    with pytest.raises(ValidationError, match="unknown LoggedFeedback field"):
        logs.replace(reward=[1.0] * 5)


# ---------------------------------------------------------------------------- simulation


@pytest.fixture(scope="module")
def env():
    return MixedEffectEnvironment(n_actions=4, n_effects=2, dim=3, seed=0)


def test_simulate_logs_store_the_true_propensities(env):
    W = np.random.default_rng(0).normal(size=(3, 4))

    def logging(X):
        z = np.exp(X @ W)
        return z / z.sum(axis=1, keepdims=True)

    logs = simulate_logs(env, logging, 500, seed=1)
    rows = np.arange(500)
    assert logs.expected_rewards.shape == (500, 4)
    assert np.array_equal(logs.logging_probabilities, logging(logs.contexts))
    assert np.array_equal(logs.propensities, logs.logging_probabilities[rows, logs.actions])
    assert logs.timestamps.tolist() == list(range(500))
    assert simulate_logs(env, logging, 500, seed=1).equals(logs)
    # an array logging policy gives the same log as the callable that produced it
    rounds = env.sample(500, np.random.default_rng(1))
    again = simulate_logs(env, logging(rounds.contexts), 500, seed=1)
    assert again.equals(logs)
    uniform = simulate_logs(env, "uniform", 2000, seed=2)
    assert np.all(uniform.propensities == 0.25)
    assert np.allclose(np.bincount(uniform.actions, minlength=4) / 2000, 0.25, atol=0.04)


def test_simulate_logs_rejects_bad_logging_policies(env):
    with pytest.raises(ValidationError, match=r"logging_policy\[0\] must sum to 1"):
        simulate_logs(env, np.full((10, 4), 0.3), 10, seed=0)
    with pytest.raises(ValidationError, match="logging_policy must be 'uniform'"):
        simulate_logs(env, "greedy", 10, seed=0)
    with pytest.raises(ValidationError, match=r"logging_policy must have 10 rows"):
        simulate_logs(env, np.full((9, 4), 0.25), 10, seed=0)


def test_true_policy_value(env):
    logs = simulate_logs(env, "uniform", 50, seed=0)
    best = np.eye(4)[logs.expected_rewards.argmax(axis=1)]
    assert true_policy_value(logs, best) == pytest.approx(logs.expected_rewards.max(1).mean())
    with pytest.raises(ValidationError, match="expected_rewards are needed"):
        true_policy_value(small(), np.full((5, 3), 1 / 3))


# ---------------------------------------------------------------------------- Parquet, frames


def test_parquet_round_trip_is_exact(tmp_path, env):
    pytest.importorskip("pyarrow")
    times = np.array([1, 2, 3, 4, 5], dtype="datetime64[us]") + np.timedelta64(7, "ns")
    shared = small(timestamps=times, action_features=np.array([[0.1, -0.0], [1 / 3, 2.0],
                                                               [np.pi, 1e-300]]))
    sim = simulate_logs(MixedEffectEnvironment(4, 2, 3, contexts="pool", seed=0), "uniform", 30,
                        seed=1)
    for i, logs in enumerate((shared, sim, sim[:0])):
        file = tmp_path / f"logs{i}.parquet"
        logs.to_parquet(file)
        back = LoggedFeedback.from_parquet(file)
        assert back.equals(logs), i
    assert sim.contexts.ndim == 3


def test_parquet_refuses_foreign_files(tmp_path):
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    file = tmp_path / "plain.parquet"
    pd.DataFrame({"a": [1, 2]}).to_parquet(file)
    with pytest.raises(ValidationError, match="not a LoggedFeedback file"):
        LoggedFeedback.from_parquet(file)
    with pytest.raises(FileNotFoundError):
        LoggedFeedback.from_parquet(tmp_path / "missing.parquet")
    (tmp_path / "junk.parquet").write_bytes(b"not parquet")
    with pytest.raises(ValidationError, match="not a readable Parquet file"):
        LoggedFeedback.from_parquet(tmp_path / "junk.parquet")


def test_from_dataframe():
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame({
        "x_0": [0.5, 1.0, 1.5], "x_1": [True, False, True], "item": [1, 0, 1],
        "click": [1, 0, 0], "p": [0.5, 0.5, 0.5], "slot": [1, 2, 3],
        "when": pd.to_datetime(["2019-11-24 00:00", "2019-11-24 01:00", "2019-11-24 02:00"],
                               utc=True).tz_convert("Asia/Tokyo"),
    })  # fmt: skip
    logs = LoggedFeedback.from_dataframe(df, "x_", action="item", reward="click",
                                         propensity="p", position="slot", timestamp="when")
    assert logs.contexts.tolist() == [[0.5, 1.0], [1.0, 0.0], [1.5, 1.0]]
    assert logs.timestamps[0] == np.datetime64("2019-11-24T00:00", "ns")
    assert logs.positions.tolist() == [1, 2, 3] and logs.n_actions == 2
    same = LoggedFeedback.from_dataframe(df, ["x_0", "x_1"], "item", "click", propensity="p",
                                         position="slot", timestamp="when")
    assert same.equals(logs)
    bad = df.assign(p=[0.5, 0.0, 0.5])
    with pytest.raises(ValidationError, match=r"propensities\[1\] .*\(column 'p'\)"):
        LoggedFeedback.from_dataframe(bad, "x_", "item", "click", propensity="p")
    with pytest.raises(ValidationError, match="propensity: column 'q' is not in the DataFrame"):
        LoggedFeedback.from_dataframe(df, "x_", "item", "click", propensity="q")
    with pytest.raises(ValidationError, match="context column 'u' is not numeric"):
        LoggedFeedback.from_dataframe(df.assign(u=["a", "b", "c"]), ["u"], "item", "click")
    with pytest.raises(ValidationError, match=r"contexts\[2, 0\] \(column 'x_0'\) must be finite"):
        LoggedFeedback.from_dataframe(df.assign(x_0=[0.0, 1.0, None]), "x_", "item", "click")
