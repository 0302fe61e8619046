"""The sDM MovieLens experiment (mixedts.offline.sdm_movielens).

Small synthetic rating tables check the frame, the seeding and the refusals; the estimators
that fill the OPE rows are checked against the library's estimators, and the truth against a
per-user loop. The acceptance (sDM best in OPE MSE and OPL at n = 2000, with a negative
control) runs on the real ML-100K, and skips with a reason where it is absent.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mixedts import ValidationError
from mixedts.offline import LoggedFeedback, estimate_all
from mixedts.offline.estimators import MarginalizedIPW
from mixedts.offline.sdm_movielens import (
    OPE_METHODS,
    OPL_METHODS,
    movielens_factors,
    run_sdm_movielens,
)
from mixedts.offline.sdm_ope import epsilon_greedy_estimates, mips_epsilon_greedy
from mixedts.structure import factorize_ratings

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"
SMALL = {"K": 15, "d": 2, "n_components": 3}


def ratings_frame(n_users=60, n_items=40, seed=0) -> pd.DataFrame:
    """Ratings 1..5 of a rank-2 matrix plus noise, about half of the pairs observed."""
    rng = np.random.default_rng(seed)
    U, V = rng.normal(size=(n_users, 2)), rng.normal(size=(n_items, 2))
    mask = rng.random((n_users, n_items)) < 0.5
    mask[np.arange(n_users), np.arange(n_users) % n_items] = True  # everyone rated something
    mask[np.arange(n_items) % n_users, np.arange(n_items)] = True
    u, i = np.nonzero(mask)
    r = np.clip(np.rint(3.0 + 0.7 * np.einsum("nk,nk->n", U[u], V[i])
                        + 0.3 * rng.normal(size=len(u))), 1, 5)  # fmt: skip
    return pd.DataFrame({"user_id": u + 1, "item_id": i + 1, "rating": r})


@pytest.fixture(scope="module")
def ratings():
    return ratings_frame()


@pytest.fixture(autouse=True)
def one_thread():
    """One BLAS / OpenMP thread: on 2 busy cores the mixture's k-means start is 10x faster."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - installed with scikit-learn
        yield
        return
    with threadpool_limits(1):
        yield


def small(ratings, **kw):
    return run_sdm_movielens(ratings, **{"n_instances": 2, "n_logs": (40, 20), **SMALL, **kw})


def test_the_frame_holds_every_method_metric_and_size(ratings):
    df = small(ratings)
    assert list(df.columns) == ["instance", "n", "method", "metric", "value", "truth", "estimate"]
    assert sorted(df["n"].unique()) == [20, 40]
    for (_, _, metric), g in df.groupby(["instance", "n", "metric"]):
        want = OPL_METHODS if metric == "opl_relative_reward" else OPE_METHODS
        assert sorted(g["method"]) == sorted(want)
    assert len(df) == 2 * 2 * (len(OPL_METHODS) + len(OPE_METHODS))
    opl = df[df["metric"] == "opl_relative_reward"]
    assert opl["value"].between(0.0, 1.0 + 1e-12).all() and opl["truth"].isna().all()
    ope = df[df["metric"] == "ope_squared_error"]
    np.testing.assert_allclose(ope["value"], (ope["estimate"] - ope["truth"]) ** 2, rtol=1e-12)
    assert (ope.groupby("instance")["truth"].nunique() == 1).all()
    assert ope.groupby("instance")["truth"].first().nunique() == 2  # two different instances


def test_reproducible_by_seed_and_an_instance_does_not_depend_on_the_count(ratings):
    a, b = small(ratings, seed=3), small(ratings, seed=3)
    pd.testing.assert_frame_equal(a, b)
    one = small(ratings, seed=3, n_instances=1)
    pd.testing.assert_frame_equal(one, a[a["instance"] == 0].reset_index(drop=True))
    other = small(ratings, seed=4)
    assert not np.allclose(other["value"], a["value"])


def test_the_truth_is_the_targets_value_over_every_user(ratings):
    """The ε-greedy target's value, by a loop over users and actions (the slow reference)."""
    fit = factorize_ratings(ratings["user_id"], ratings["item_id"], ratings["rating"], rank=2,
                            reg=4.0, n_iter=20, test_fraction=0.0, center=False, seed=0)
    df = run_sdm_movielens(fit, 1, (30,), seed=7, epsilon=0.3, **SMALL)
    # the documented seeding: instance 0 is the second child's first child; its first draw
    # is the K-movie subset
    child = np.random.SeedSequence(7).spawn(2)[1].spawn(1)[0]
    movies = np.random.default_rng(child).choice(fit.n_items, SMALL["K"], replace=False)
    theta, K = fit.item_vectors[movies], SMALL["K"]
    total = 0.0
    for x in fit.user_vectors:
        rewards = [float(x @ theta[a]) for a in range(K)]
        best = int(np.argmax(rewards))
        total += sum((0.3 / K + 0.7 * (a == best)) * rewards[a] for a in range(K))
    truth = df.loc[df["metric"] == "ope_squared_error", "truth"].unique()
    np.testing.assert_allclose(truth, [total / fit.n_users], rtol=1e-12)


def test_the_truth_is_on_the_rating_scale(ratings):
    """Uncentered ALS: x_uᵀθ_i predicts the rating itself (a centred fit would predict ~0)."""
    U, V = movielens_factors(ratings, d=2, seed=0)
    pred = np.einsum("nk,nk->n", U[ratings["user_id"] - 1], V[ratings["item_id"] - 1])
    assert abs(pred.mean() - ratings["rating"].mean()) < 0.3
    assert np.sqrt(np.mean((pred - ratings["rating"]) ** 2)) < 0.9


def test_with_many_logs_every_estimate_reaches_the_truth(ratings):
    """K = 5 and n = 4000 (800 rounds an action): the DMs and DRs are within 0.06 of the
    ε-greedy target's value, IPS within 0.2; the uniform policy's value (ε = 1, the same
    instance) is more than 0.18 away, so a wrong target or truth would fail."""
    kw = {"n_instances": 1, "n_logs": (4000,), "K": 5, "d": 2, "n_components": 2, "seed": 0}
    ope = run_sdm_movielens(ratings, **kw)
    ope = ope[ope["metric"] == "ope_squared_error"].set_index("method")
    err = ope["estimate"] - ope["truth"]
    for method in ("sdm", "dm-bayes", "dm-freq", "snips", "dr", "dr-freq"):
        assert abs(err[method]) < 0.06, err
    assert abs(err["ips"]) < 0.2
    uniform = run_sdm_movielens(ratings, epsilon=1.0, **kw)
    assert abs(uniform["truth"].dropna().iloc[0] - ope["truth"].iloc[0]) > 0.18


def test_the_shuffled_control_changes_only_the_structure(ratings):
    learned, shuffled = small(ratings), small(ratings, structure="shuffled")
    same = ~learned["method"].isin(["sdm", "dr", "mips"])
    pd.testing.assert_frame_equal(learned[same], shuffled[same])
    sdm = learned["method"] == "sdm"
    assert not np.allclose(learned.loc[sdm, "value"], shuffled.loc[sdm, "value"])


def test_the_ope_rows_match_the_librarys_estimators():
    """IPS, snIPS, DR and MIPS of the ε-greedy target under uniform logging (the oracle:
    mixedts.offline.estimate_all on the explicit (n, K) target and logging distributions)."""
    rng = np.random.default_rng(5)
    n, K, d, eps = 300, 12, 3, 0.4
    X = rng.normal(size=(n, d))
    A = rng.integers(0, K, n)
    R = rng.normal(2.0, 1.0, n)
    a_star = rng.integers(0, K, n)
    clusters = np.array([0, 0, 0, 0, 0, 1, 1, 2, 2, 2, 3, 0])
    q = rng.normal(2.0, 0.5, (n, K))
    pi = np.full((n, K), eps / K)
    pi[np.arange(n), a_star] += 1.0 - eps
    logs = LoggedFeedback(X, A, R, propensities=np.full(n, 1.0 / K),
                          logging_probabilities=np.full((n, K), 1.0 / K),
                          action_features=clusters[:, None].astype(float))  # fmt: skip
    ref = estimate_all(logs, pi, {"ips": "ips", "snips": "snips", "dr": "dr",
                                  "mips": MarginalizedIPW()}, reward_model=q)  # fmt: skip
    got = epsilon_greedy_estimates(A, R, a_star, K, eps, {"sdm": q})
    for label in ("ips", "snips", "dr"):
        assert got[label] == pytest.approx(ref[label].value, rel=1e-12)
    assert mips_epsilon_greedy(A, R, a_star, clusters, K, eps) == pytest.approx(ref["mips"].value,
                                                                      rel=1e-12)
    # a planted bug: π₀(c) taken as 1/K, as for a single action (IPS on the cluster match)
    wrong = np.mean((eps + (1 - eps) * (clusters[A] == clusters[a_star]) * K) * R)
    assert abs(wrong - ref["mips"].value) > 1e-3


def test_the_ips_family_learners_add_opl_rows(ratings):
    pytest.importorskip("mixedts.offline.softmax_learning")
    df = small(ratings, n_instances=1, n_logs=(40,), learners=("ips", "snips", "dr", "mips"))
    opl = df[df["metric"] == "opl_relative_reward"]
    assert sorted(opl["method"]) == sorted([*OPL_METHODS, "ips", "snips", "dr", "mips"])
    assert opl["value"].between(0.0, 1.0 + 1e-12).all()


@pytest.mark.parametrize("kw, match", [
    ({"K": 41}, "K must be at most the number of movies 40"),
    ({"n_logs": (0, 10)}, "n_logs"),
    ({"n_instances": 0}, "n_instances"),
    ({"n_instances": 1.5}, "n_instances"),
    ({"n_components": 16}, "n_components"),
    ({"n_test": 0}, "n_test"),
    ({"epsilon": 1.5}, "epsilon"),
    ({"epsilon": "0.5"}, "epsilon"),
    ({"structure": "genre"}, "structure"),
    ({"learners": "ips"}, "learners"),
    ({"learners": ("ips", "pc")}, "learners: unknown learner 'pc'"),
])  # fmt: skip
def test_bad_arguments_are_refused_naming_them(ratings, kw, match):
    with pytest.raises(ValidationError, match=match):
        small(ratings, **kw)


def test_bad_ratings_are_refused(ratings):
    with pytest.raises(ValidationError, match=r"missing column\(s\) \['rating'\]"):
        small(ratings.drop(columns="rating"))
    with pytest.raises(ValidationError, match="ratings must be a path"):
        small(np.zeros((3, 3)))
    fit = factorize_ratings(ratings["user_id"], ratings["item_id"], ratings["rating"], rank=3)
    with pytest.raises(ValidationError, match="d must equal the factorization's rank 3"):
        movielens_factors(fit, d=2)


@pytest.mark.skipif(not (REAL / "u.data").is_file(), reason=f"MovieLens 100K not at {REAL}")
def test_sdm_is_best_on_movielens_100k_and_a_shuffled_structure_loses_it():
    """The acceptance at the paper's size (K = 1000, d = 5, J = 5, n = 2000), 30 instances,
    and the negative control on the same instances: memberships shuffled across the movies."""
    kw = {"n_instances": 30, "n_logs": (2000,), "seed": 0}
    learned = run_sdm_movielens(REAL, **kw)
    shuffled = run_sdm_movielens(REAL, structure="shuffled", **kw)

    def table(df, metric):
        return df[df["metric"] == metric].pivot(index="instance", columns="method",
                                                values="value")  # fmt: skip

    ope, opl = table(learned, "ope_squared_error"), table(learned, "opl_relative_reward")
    paper_ope = ["dm-bayes", "dm-freq", "ips", "snips", "dr-freq", "mips"]  # "dr" is not
    assert ope["sdm"].mean() < ope[paper_ope].mean().min(), ope.mean()
    for other in ("dm-bayes", "dm-freq"):
        diff = opl["sdm"] - opl[other]
        assert diff.mean() > 3 * diff.std() / np.sqrt(len(diff)), (other, diff.describe())
    gap = ope["dm-bayes"] - ope["sdm"]
    assert gap.mean() > 3 * gap.std() / np.sqrt(len(gap))
    # the control: same instances, logs and mixture means; the structure's advantage is gone
    ope_s, opl_s = table(shuffled, "ope_squared_error"), table(shuffled, "opl_relative_reward")
    assert ope_s["sdm"].mean() > ope_s["dm-bayes"].mean()
    lost = opl["sdm"] - opl_s["sdm"]
    assert lost.mean() > 3 * lost.std() / np.sqrt(len(lost))
    assert opl_s["sdm"].mean() < opl_s["dm-bayes"].mean() + 0.01
    np.testing.assert_allclose(opl_s["dm-bayes"], opl["dm-bayes"])  # only sDM changed
