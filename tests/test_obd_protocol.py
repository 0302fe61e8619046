"""obp's OBD protocol: the production BTS policy's action distribution (Monte Carlo, checked
against closed forms), its prior file, the relative-error protocol on synthetic logs whose
target value is known (with a wrong target as the negative control), and a smoke run on the
obp samples in ../shared/data/obd (skipped without them)."""

from __future__ import annotations

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("sklearn")

from scipy import integrate, stats  # noqa: E402

from mixedts._validation import ValidationError  # noqa: E402
from mixedts.datasets import DatasetError  # noqa: E402
from mixedts.offline import DirectMethod, DoublyRobust, LoggedFeedback  # noqa: E402
from mixedts.offline.inputs import EstimatorInputs  # noqa: E402
from mixedts.offline.obd_protocol import (  # noqa: E402
    DEFAULT_OBD_ESTIMATORS,
    OBP_REFERENCE,
    bts_action_distribution,
    obd_relative_error,
    read_bts_prior,
)
from mixedts.offline.slope import SwitchDoublyRobustSLOPE  # noqa: E402
from shared_data import OBD, needs_obd  # noqa: E402


# ------------------------------------------------------------------ BTS action distribution
def _p_first_beats_second(a1, b1, a2, b2):
    """P(θ1 > θ2) for independent θ_i ~ Beta(a_i, b_i): ∫ f1(x) F2(x) dx."""
    value, _ = integrate.quad(lambda x: stats.beta.pdf(x, a1, b1) * stats.beta.cdf(x, a2, b2),
                              0.0, 1.0, epsabs=1e-12)  # fmt: skip
    return value


def test_two_items_match_the_closed_form_and_not_its_mirror():
    p = _p_first_beats_second(6.0, 4.0, 5.0, 5.0)  # about 0.68
    n = 400_000
    dist, se = bts_action_distribution([6.0, 5.0], [4.0, 5.0], n_positions=2, n_draws=n,
                                       rng=1, return_stderr=True)  # fmt: skip
    exact = np.array([[p, 1 - p], [1 - p, p]])
    assert np.all(np.abs(dist - exact) <= 4 * se)
    np.testing.assert_allclose(se, np.sqrt(dist * (1 - dist) / n))
    # negative control: ranking the smallest draw first would give the mirror image
    assert np.all(np.abs(dist - exact[:, ::-1]) > 50 * se)
    one = bts_action_distribution([6.0, 5.0], [4.0, 5.0], n_positions=1, n_draws=n, rng=1)
    np.testing.assert_allclose(one[:, 0], dist[:, 0])  # the top item does not depend on L


def test_equal_priors_are_uniform_and_the_table_is_a_ranking():
    dist, se = bts_action_distribution(np.full(5, 2.0), np.full(5, 30.0), n_positions=3,
                                       n_draws=200_000, rng=2, return_stderr=True)  # fmt: skip
    assert dist.shape == (5, 3)
    assert np.all(np.abs(dist - 0.2) <= 4 * se)
    np.testing.assert_allclose(dist.sum(axis=0), 1.0)  # one item per position
    assert np.all(dist.sum(axis=1) <= 1.0 + 1e-12)  # an item is shown at most once


def test_seeded_and_blocked_draws_are_reproducible():
    a, b = [3.0, 8.0, 62.0], [2000.0, 3000.0, 16000.0]
    first = bts_action_distribution(a, b, 2, 50_000, rng=7)
    assert np.array_equal(first, bts_action_distribution(a, b, 2, 50_000, rng=7))
    assert not np.array_equal(first, bts_action_distribution(a, b, 2, 50_000, rng=8))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(prior_alpha=[1.0, -1.0], prior_beta=[1.0, 1.0]), r"prior_alpha\[1\]"),
        (dict(prior_alpha=[1.0, 1.0], prior_beta=[1.0]), "prior_alpha and prior_beta"),
        (dict(prior_alpha=[1.0, 1.0], prior_beta=[1.0, 1.0], n_positions=3), "n_positions"),
        (dict(prior_alpha=[1.0], prior_beta=[1.0], n_draws=0), "n_draws"),
        (dict(prior_alpha=[1.0], prior_beta=[1.0], rng="x"), "seed"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    kwargs.setdefault("n_positions", 1)
    with pytest.raises(ValidationError, match=match):
        bts_action_distribution(**kwargs)


# ------------------------------------------------------------------------------ prior file
PRIOR = """\
all:
  alpha:
    - 1.0
    - 2.0
  beta:  # a comment
    - 10.0
    - 20.0
men:
  alpha:
    - 3.0
  beta:
    - 30.0
"""


def test_prior_reader(tmp_path):
    (tmp_path / "prior_bts.yaml").write_text(PRIOR)
    alpha, beta = read_bts_prior(tmp_path, "all")  # a folder holding the file
    assert alpha.tolist() == [1.0, 2.0] and beta.tolist() == [10.0, 20.0]
    alpha, beta = read_bts_prior(tmp_path / "prior_bts.yaml", "men")
    assert (alpha.tolist(), beta.tolist()) == ([3.0], [30.0])
    with pytest.raises(ValidationError, match="campaign must be one of all, men"):
        read_bts_prior(tmp_path, "women")
    (tmp_path / "prior_bts.yaml").write_text(PRIOR.replace("- 20.0", "- twenty"))
    with pytest.raises(DatasetError, match=r"line 7: all\.beta must list numbers"):
        read_bts_prior(tmp_path, "all")
    (tmp_path / "prior_bts.yaml").write_text(PRIOR.replace("- 30.0", "- -1.0"))
    with pytest.raises(DatasetError, match=r"men\.beta\[0\] must be positive"):
        read_bts_prior(tmp_path, "men")


@needs_obd
def test_prior_reader_agrees_with_pyyaml():
    yaml = pytest.importorskip("yaml")
    with open(OBD / "prior_bts.yaml", "rb") as f:
        reference = yaml.safe_load(f)
    assert set(reference) == {"all", "men", "women"}
    for campaign, section in reference.items():
        alpha, beta = read_bts_prior(OBD, campaign)
        assert alpha.tolist() == section["alpha"] and beta.tolist() == section["beta"]


# ------------------------------------------------------------------------------ protocol
K, L = 4, 3
ITEM = np.array([1.5, 0.5, -0.5, -1.5])
POSITION = np.array([0.3, 0.0, -0.3])
WEIGHT = np.array([0.8, -0.6])
GOOD = np.tile([[0.6], [0.25], [0.1], [0.05]], (1, L))  # mostly the best item
WRONG = GOOD[::-1]  # mostly the worst


def _ctr(x, a, p):
    return 1.0 / (1.0 + np.exp(-(-1.2 + ITEM[a] + POSITION[p] + x @ WEIGHT)))


def _true_value(D):
    """(1/L) Σ_p E_x Σ_a D[a, p] q(x, a, p), x uniform on {0, 1}²: what BTS logs would average."""
    xs = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    a, p = np.meshgrid(np.arange(K), np.arange(L), indexing="ij")
    return float(np.mean([np.sum(D * _ctr(x, a, p)) for x in xs]) / L)


def _random_logs(n, seed):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 2, size=(n, 2)).astype(float)
    A, P = rng.integers(0, K, n), rng.integers(0, L, n)
    R = (rng.random(n) < _ctr(X, A, P)).astype(float)
    return LoggedFeedback(X, A, R, propensities=np.full(n, 1 / K), positions=P + 1,
                          n_actions=K)  # fmt: skip


@pytest.fixture(scope="module")
def synthetic():
    logs = _random_logs(4000, 0)
    kw = dict(estimators=["ips", "dm", "dr"], n_bootstrap=20, seed=3, action_context=np.eye(K))
    good = obd_relative_error(logs, _true_value(GOOD), GOOD, **kw)
    wrong = obd_relative_error(logs, _true_value(GOOD), WRONG, **kw)
    return logs, good, wrong


def test_exact_target_gives_small_errors(synthetic):
    _, (summary, raw), _ = synthetic
    v = _true_value(GOOD)
    assert list(summary["estimator"]) == ["ips", "dm", "dr"]
    assert list(summary.columns) == ["estimator", "mean", "std", "n_bootstrap", "mean_estimate",
                                     "v_on", "v_on_stderr"]  # fmt: skip
    assert len(raw) == 60 and set(raw["resample"]) == set(range(20))
    assert np.isnan(summary["v_on_stderr"]).all()  # V_on was given, not estimated
    # one full-sample IPS standard error: each resample is within a few of the truth
    se = raw.loc[raw["estimator"] == "ips", "stderr"].mean()
    for label in ("ips", "dm", "dr"):
        row = summary.set_index("estimator").loc[label]
        assert abs(row["mean_estimate"] - v) <= 4 * se, label
        assert row["mean"] <= 4 * se / v, label


def test_wrong_target_is_clearly_worse(synthetic):
    _, (good, _), (wrong, _) = synthetic
    g, w = good.set_index("estimator")["mean"], wrong.set_index("estimator")["mean"]
    v_good, v_wrong = _true_value(GOOD), _true_value(WRONG)
    assert v_wrong < 0.5 * v_good
    for label in ("ips", "dm", "dr"):
        assert w[label] > 0.4 and w[label] > 5 * g[label], label


def test_resamples_are_reproducible_and_independent_of_their_number(synthetic):
    logs = synthetic[0]
    kw = dict(estimators=("ips", "switch-dr-slope"), seed=11)
    two = obd_relative_error(logs, 0.3, GOOD, n_bootstrap=2, **kw).raw
    three = obd_relative_error(logs, 0.3, GOOD, n_bootstrap=3, **kw).raw
    pd.testing.assert_frame_equal(two, three[three["resample"] < 2].reset_index(drop=True))


def test_slope_switch_dr_spans_dm_to_dr():
    rng = np.random.default_rng(5)
    n = 500
    data = EstimatorInputs.check(
        rewards=rng.random(n), actions=rng.integers(0, K, n),
        action_dist=np.tile(GOOD[:, 0], (n, 1)), propensities=np.full(n, 1 / K),
        estimated_rewards=rng.random((n, K)))  # fmt: skip
    dr, dm = DoublyRobust().estimate(data), DirectMethod().estimate(data)
    assert SwitchDoublyRobustSLOPE(taus=(np.inf,)).estimate(data) == dr
    assert SwitchDoublyRobustSLOPE(taus=(1e-9,)).estimate(data).value == pytest.approx(dm.value)
    est = SwitchDoublyRobustSLOPE()
    assert est.select_tau(data) in est.taus
    with pytest.raises(ValidationError, match=r"taus\[1\] must be a positive number"):
        SwitchDoublyRobustSLOPE(taus=(1.0, 0.0))
    with pytest.raises(ValidationError, match="delta"):
        SwitchDoublyRobustSLOPE(delta=1.5)


def test_protocol_refuses_bad_input(synthetic):
    logs = synthetic[0]
    with pytest.raises(ValidationError, match=r"target_dist\[:, 1\] must sum to 1"):
        obd_relative_error(logs, 0.3, np.c_[GOOD[:, :1], GOOD[:, 1:] * 0.5])
    with pytest.raises(ValidationError, match="target_dist must have one row per item"):
        obd_relative_error(logs, 0.3, GOOD[:3])
    with pytest.raises(ValidationError, match=r"random_logs.positions\[\d+\] must be in 1..2"):
        obd_relative_error(logs, 0.3, GOOD[:, :2])
    with pytest.raises(ValidationError, match="reward_model is None, but estimator 'dm'"):
        obd_relative_error(logs, 0.3, GOOD, estimators=["ips", "dm"], reward_model=None)
    with pytest.raises(ValidationError, match="reward_model must be one of logistic, gbm"):
        obd_relative_error(logs, 0.3, GOOD, reward_model="lightgbm")
    with pytest.raises(ValidationError, match="n_bootstrap"):
        obd_relative_error(logs, 0.3, GOOD, n_bootstrap=0)
    with pytest.raises(ValidationError, match="bts_logs"):
        obd_relative_error(logs, "0.3", GOOD)
    with pytest.raises(ValidationError, match=r"random_logs\.positions is missing"):
        obd_relative_error(logs.replace(positions=None), 0.3, GOOD)


# ------------------------------------------------------------------------------ real data
@needs_obd
def test_obd_men_smoke():
    from mixedts.datasets.obd import load_obd

    random_logs, bts_logs = load_obd(OBD, "men", "random"), load_obd(OBD, "men", "bts")
    alpha, beta = read_bts_prior(OBD, "men")
    dist = bts_action_distribution(alpha, beta, 3, n_draws=100_000, rng=0)
    assert dist.shape == (34, 3)
    summary, raw = obd_relative_error(random_logs, bts_logs, dist, n_bootstrap=2, seed=0)
    assert list(summary["estimator"]) == list(DEFAULT_OBD_ESTIMATORS) == list(OBP_REFERENCE)
    assert summary["v_on"].iloc[0] == pytest.approx(bts_logs.rewards.mean()) == 0.0069
    assert np.isfinite(summary[["mean", "std", "mean_estimate"]].to_numpy()).all()
    assert (raw["estimate"] > 0).all() and (raw["estimate"] < 0.05).all()  # click rates
