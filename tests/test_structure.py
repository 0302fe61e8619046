"""Offline structure learning: ridge ALS, the Gaussian-mixture prior and label-based priors."""

from __future__ import annotations

import re
import time
from itertools import permutations
from pathlib import Path

import numpy as np
import pytest

from mixedts import MixedEffectPrior, ValidationError
from mixedts.structure import (
    Factorization,
    _als_half_step,
    factorize_ratings,
    fit_mixed_effect_prior,
    marginal_item_prior,
    mixing_from_labels,
    prior_from_labels,
    subset_prior,
)

ML100K = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"
NOISE = 0.1


def low_rank_ratings(seed=1, n_users=300, n_items=200, rank=3, density=0.3, noise=NOISE):
    """Ratings 3 + u·v + N(0, noise²) on a random 30% of a rank-3 matrix, with odd ids."""
    rng = np.random.default_rng(seed)
    U = rng.normal(size=(n_users, rank))
    V = rng.normal(size=(n_items, rank))
    u, i = np.nonzero(rng.random((n_users, n_items)) < density)
    r = 3.0 + np.einsum("nk,nk->n", U[u], V[i]) + noise * rng.normal(size=u.size)
    return 7 * u + 11, i + 1000, r  # non-contiguous ids: the id mapping is exercised


@pytest.fixture(scope="module")
def synthetic():
    return low_rank_ratings()


@pytest.fixture(scope="module")
def synthetic_fit(synthetic):
    users, items, r = synthetic
    return factorize_ratings(users, items, r, rank=3, reg=1.0, n_iter=20, seed=0)


def clusters(seed=0, sizes=(60, 80, 100), d=3, sep=10.0):
    """Well separated Gaussian clusters with distinct per-dimension spreads."""
    rng = np.random.default_rng(seed)
    centres = sep * rng.normal(size=(len(sizes), d))
    X = np.concatenate([c + rng.normal(size=(n, d)) for c, n in zip(centres, sizes)])
    labels = np.repeat(np.arange(len(sizes)), sizes)
    return X, labels


def assert_rejected(call, name):
    with pytest.raises(ValidationError, match=rf"^{re.escape(name)}"):
        call()


# ------------------------------------------------------------------------------ ALS
def test_als_recovers_low_rank_matrix(synthetic, synthetic_fit):
    users, items, r = synthetic
    fit = synthetic_fit
    assert isinstance(fit, Factorization)
    assert fit.user_vectors.shape == (300, 3) and fit.item_vectors.shape == (200, 3)
    assert fit.test_rmse < 1.3 * NOISE
    assert fit.train_rmse < 1.3 * NOISE
    # negative controls: the training mean, and a rank too small for the matrix
    mean_rmse = np.sqrt(np.mean((r - fit.mean) ** 2))
    assert mean_rmse > 10 * fit.test_rmse
    rank1 = factorize_ratings(users, items, r, rank=1, seed=0)
    assert rank1.test_rmse > 5 * fit.test_rmse
    assert np.isclose(fit.mean, np.mean(r), atol=0.05)


def test_predict_uses_original_ids(synthetic, synthetic_fit):
    users, items, r = synthetic
    fit = synthetic_fit
    np.testing.assert_array_equal(fit.user_ids, np.unique(users))
    np.testing.assert_array_equal(fit.item_ids, np.unique(items))
    pred = fit.predict(users[:50], items[:50])
    u = np.searchsorted(fit.user_ids, users[:50])
    i = np.searchsorted(fit.item_ids, items[:50])
    expected = fit.mean + np.sum(fit.user_vectors[u] * fit.item_vectors[i], axis=1)
    np.testing.assert_allclose(pred, expected, rtol=0, atol=1e-12)
    assert np.sqrt(np.mean((pred - r[:50]) ** 2)) < 0.2
    with pytest.raises(ValueError, match=r"^users: unknown id"):
        fit.predict([12], [1000])  # 12 is not 7u + 11
    with pytest.raises(ValueError, match=r"^items: unknown id"):
        fit.predict([11], [999])
    with pytest.raises(ValueError, match="same length"):
        fit.predict([11, 18], [1000])
    with pytest.raises(ValueError):
        fit.user_vectors[0, 0] = 1.0  # read-only


def _reference_half_step(rows, cols, values, fixed, n_rows, reg):
    """The obvious loop: each row's ridge problem on its own observations."""
    k = fixed.shape[1]
    out = np.zeros((n_rows, k))
    for r in range(n_rows):
        sel = rows == r
        F = fixed[cols[sel]]
        out[r] = np.linalg.solve(F.T @ F + reg * np.eye(k), F.T @ values[sel])
    return out


@pytest.mark.parametrize("reg", [0.3, 2.0])
def test_half_step_matches_loop_reference(reg):
    rng = np.random.default_rng(5)
    n_rows, n_cols, k, n = 40, 25, 4, 300
    rows = rng.integers(0, n_rows - 1, n)  # the last row has no observations
    cols = rng.integers(0, n_cols, n)
    rows[:10], cols[:10] = 3, 7  # a repeated (row, col) pair counts ten times
    values = rng.normal(size=n)
    fixed = rng.normal(size=(n_cols, k))
    fast = _als_half_step(rows, cols, values, fixed, n_rows, reg)
    slow = _reference_half_step(rows, cols, values, fixed, n_rows, reg)
    assert fast.shape == (n_rows, k)
    np.testing.assert_allclose(fast, slow, rtol=0, atol=1e-10)
    np.testing.assert_array_equal(fast[-1], 0.0)
    # and the result really is the ridge optimum: the gradient vanishes for a busy row
    sel = rows == 3
    F = fixed[cols[sel]]
    grad = F.T @ (F @ fast[3] - values[sel]) + reg * fast[3]
    assert np.max(np.abs(grad)) < 1e-10


def test_factorization_is_one_als_fixed_point(synthetic):
    """After the last iteration the items are exactly the ridge solution given the users."""
    users, items, r = synthetic
    fit = factorize_ratings(users, items, r, rank=3, n_iter=5, test_fraction=0.0, seed=2)
    u = np.searchsorted(fit.user_ids, users)
    i = np.searchsorted(fit.item_ids, items)
    again = _als_half_step(i, u, r - fit.mean, fit.user_vectors, fit.n_items, fit.reg)
    np.testing.assert_allclose(again, fit.item_vectors, rtol=0, atol=1e-10)
    assert np.isnan(fit.test_rmse)
    assert fit.mean == pytest.approx(np.mean(r), abs=1e-12)


def test_same_seed_same_factors_different_seed_different_split(synthetic):
    users, items, r = synthetic
    kw = dict(rank=3, n_iter=3)
    a = factorize_ratings(users, items, r, seed=4, **kw)
    b = factorize_ratings(users, items, r, seed=4, **kw)
    c = factorize_ratings(users, items, r, seed=5, **kw)
    np.testing.assert_array_equal(a.user_vectors, b.user_vectors)
    np.testing.assert_array_equal(a.item_vectors, b.item_vectors)
    assert a.test_rmse == b.test_rmse and a.mean == b.mean
    assert a.mean != c.mean  # a different held-out split changes the training mean
    assert not np.allclose(a.item_vectors, c.item_vectors)


def test_center_false_needs_a_dimension_for_the_offset(synthetic, synthetic_fit):
    users, items, r = synthetic
    uncentred = factorize_ratings(users, items, r, rank=3, center=False, seed=0)
    assert uncentred.mean == 0.0
    assert uncentred.test_rmse > 5 * synthetic_fit.test_rmse  # rank 3 cannot hold offset 3
    extra = factorize_ratings(users, items, r, rank=4, center=False, seed=0)
    assert extra.test_rmse < 1.3 * NOISE  # one more dimension absorbs it


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(users=[1, 2]), "users, items and ratings"),
        (dict(ratings=[1.0, np.nan, 2.0]), "ratings"),
        (dict(users=[1.5, 2, 3]), "users"),
        (dict(items=[[1, 2, 3]]), "items"),
        (dict(users=[], items=[], ratings=[]), "ratings"),
        (dict(rank=0), "rank"),
        (dict(rank=2.0), "rank"),
        (dict(reg=0.0), "reg"),
        (dict(reg=-1.0), "reg"),
        (dict(n_iter=0), "n_iter"),
        (dict(test_fraction=1.0), "test_fraction"),
        (dict(test_fraction=-0.1), "test_fraction"),
        (dict(seed=-3), "seed"),
    ],
)
def test_factorize_rejects_bad_input(kwargs, name):
    args = dict(users=[1, 2, 3], items=[4, 5, 4], ratings=[1.0, 2.0, 3.0]) | kwargs
    assert_rejected(lambda: factorize_ratings(**args), name)


# ------------------------------------------------------------------------------ mixture prior
def _is_psd(mats):
    return np.all(np.linalg.eigvalsh(mats) >= -1e-12)


@pytest.mark.parametrize("covariance", ["split", "mixture"])
@pytest.mark.parametrize("covariance_type", ["diag", "full", "tied", "spherical"])
def test_fitted_prior_is_well_formed(covariance, covariance_type):
    X, _ = clusters()
    prior = fit_mixed_effect_prior(
        X, 3, covariance=covariance, covariance_type=covariance_type, seed=0
    )
    assert isinstance(prior, MixedEffectPrior)
    assert (prior.n_actions, prior.n_effects, prior.dim) == (240, 3, 3)
    B = prior.mixing.toarray()
    assert np.all(B >= 0)
    np.testing.assert_allclose(B.sum(axis=1), 1.0, atol=1e-12)
    assert prior.effect_cov_blocks().shape == (3, 3, 3) and prior.action_cov.shape == (3, 3)
    assert _is_psd(prior.effect_cov_blocks()) and _is_psd(prior.action_cov)
    assert _is_psd(prior.marginal_action_prior()[1])


@pytest.mark.parametrize("covariance_type", ["diag", "full"])
def test_prior_matches_the_gaussian_mixture(covariance_type):
    from sklearn.mixture import GaussianMixture

    X, _ = clusters(seed=3)
    seed, share = 11, 0.6
    gmm = GaussianMixture(
        n_components=3,
        covariance_type=covariance_type,
        random_state=int(np.random.default_rng(seed).integers(2**31 - 1)),
    ).fit(X)
    split = fit_mixed_effect_prior(
        X, 3, effect_share=share, covariance_type=covariance_type, seed=seed
    )
    np.testing.assert_allclose(split.effect_mean, gmm.means_, rtol=0, atol=1e-12)
    np.testing.assert_allclose(split.mixing.toarray(), gmm.predict_proba(X), rtol=0, atol=1e-12)
    v = X.var(axis=0)
    np.testing.assert_allclose(split.effect_cov_blocks(), np.stack([share * np.diag(v)] * 3))
    np.testing.assert_allclose(split.action_cov, (1 - share) * np.diag(v))

    mix = fit_mixed_effect_prior(
        X, 3, covariance="mixture", effect_share=share, covariance_type=covariance_type, seed=seed
    )
    C = (
        gmm.covariances_
        if covariance_type == "full"
        else np.stack([np.diag(c) for c in gmm.covariances_])
    )
    np.testing.assert_allclose(mix.effect_mean, gmm.means_, rtol=0, atol=1e-12)
    np.testing.assert_allclose(mix.effect_cov_blocks(), share * C, rtol=1e-12, atol=1e-14)
    avg = np.einsum("l,lde->de", gmm.weights_, C)
    np.testing.assert_allclose(mix.action_cov, (1 - share) * avg, rtol=1e-12, atol=1e-14)
    # within-cluster spread is far below the total spread of well separated clusters
    assert np.all(np.diag(mix.action_cov) < 0.2 * np.diag(split.action_cov))


def test_memberships_recover_clusters():
    X, labels = clusters(seed=7)
    prior = fit_mixed_effect_prior(X, 3, seed=0)
    B = prior.mixing.toarray()
    found = B.argmax(axis=1)
    best = max(np.mean(np.asarray(p)[found] == labels) for p in permutations(range(3)))
    assert best == 1.0
    assert np.mean(B.max(axis=1) > 0.99) > 0.95  # confident memberships
    # negative control: the same test on unstructured data does not find clusters
    noise = np.random.default_rng(0).normal(size=X.shape)
    B0 = fit_mixed_effect_prior(noise, 3, seed=0).mixing.toarray()
    assert np.mean(B0.max(axis=1) > 0.99) < 0.5


def test_same_seed_same_prior():
    X, _ = clusters(seed=2)
    a = fit_mixed_effect_prior(X, 3, seed=np.random.default_rng(9))
    b = fit_mixed_effect_prior(X, 3, seed=np.random.default_rng(9))
    np.testing.assert_array_equal(a.effect_mean, b.effect_mean)
    np.testing.assert_array_equal(a.mixing.toarray(), b.mixing.toarray())


def test_subset_prior_keeps_rows():
    X, _ = clusters(seed=4)
    full = fit_mixed_effect_prior(X, 3, seed=0)
    idx = np.array([5, 200, 5, 17])
    sub = subset_prior(full, idx)
    assert sub.n_actions == 4
    np.testing.assert_array_equal(sub.mixing.toarray(), full.mixing.toarray()[idx])
    np.testing.assert_array_equal(sub.effect_mean, full.effect_mean)
    np.testing.assert_array_equal(sub.effect_cov_full(), full.effect_cov_full())
    np.testing.assert_array_equal(sub.action_cov, full.action_cov)
    direct = fit_mixed_effect_prior(X, 3, seed=0, actions=idx)
    np.testing.assert_array_equal(direct.mixing.toarray(), sub.mixing.toarray())
    np.testing.assert_array_equal(direct.effect_mean, full.effect_mean)
    # a per-action Σ0 is subset too
    S0 = np.stack([np.eye(3) * (1 + k) for k in range(full.n_actions)])
    per = MixedEffectPrior(full.effect_mean, full.effect_cov, full.mixing, S0)
    np.testing.assert_array_equal(subset_prior(per, idx).action_cov, S0[idx])
    assert_rejected(lambda: subset_prior(full, [240]), "actions")
    assert_rejected(lambda: subset_prior(full, []), "actions")
    assert_rejected(lambda: subset_prior("prior", [0]), "prior")


def test_marginal_item_prior():
    X, _ = clusters(seed=1)
    mean, cov = marginal_item_prior(X)
    np.testing.assert_allclose(mean, X.mean(axis=0))
    np.testing.assert_allclose(cov, np.diag(X.var(axis=0)))
    assert_rejected(lambda: marginal_item_prior(np.ones((5, 2))), "item_vectors")


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(item_vectors=np.ones(10)), "item_vectors"),
        (dict(item_vectors=np.full((10, 2), np.inf)), "item_vectors"),
        (dict(item_vectors=np.ones((10, 2))), "item_vectors"),  # no variance
        (dict(n_effects=0), "n_effects"),
        (dict(n_effects=500), "n_effects"),
        (dict(covariance="full"), "covariance"),
        (dict(covariance_type="diagonal"), "covariance_type"),
        (dict(effect_share=1.0), "effect_share"),
        (dict(effect_share=0.0), "effect_share"),
        (dict(effect_share="a lot"), "effect_share"),
        (dict(actions=[0, 240]), "actions"),
        (dict(actions=[0.5]), "actions"),
        (dict(seed="zero"), "seed"),
    ],
)
def test_fit_prior_rejects_bad_input(kwargs, name):
    X, _ = clusters()
    args = dict(item_vectors=X, n_effects=3) | kwargs
    item_vectors, n_effects = args.pop("item_vectors"), args.pop("n_effects")
    assert_rejected(lambda: fit_mixed_effect_prior(item_vectors, n_effects, **args), name)


# ------------------------------------------------------------------------------ labels
def test_mixing_from_labels():
    labels = np.array([[1, 0, 1], [0, 1, 0], [1, 1, 1], [0, 0, 0]])
    with pytest.raises(ValidationError, match=r"^labels: row\(s\) 3 have no label"):
        mixing_from_labels(labels)
    B = mixing_from_labels(labels, empty="uniform")
    np.testing.assert_allclose(B.sum(axis=1), 1.0)
    np.testing.assert_allclose(B[0], [0.5, 0, 0.5])
    np.testing.assert_allclose(B[2], [1 / 3] * 3)
    np.testing.assert_allclose(B[3], [1 / 3] * 3)
    raw = mixing_from_labels(labels[:3], normalize=False)
    np.testing.assert_array_equal(raw, labels[:3].astype(float))
    assert raw.dtype == np.float64
    assert_rejected(lambda: mixing_from_labels(-labels), "labels")
    assert_rejected(lambda: mixing_from_labels(labels[0]), "labels")
    assert_rejected(lambda: mixing_from_labels(labels, empty="zero"), "empty")


def test_prior_from_labels():
    X, groups = clusters(seed=5)
    onehot = np.eye(3)[groups]
    prior = prior_from_labels(X, onehot, effect_share=0.5)
    for g in range(3):
        np.testing.assert_allclose(prior.effect_mean[g], X[groups == g].mean(axis=0))
    v = X.var(axis=0)
    np.testing.assert_allclose(prior.action_cov, 0.5 * np.diag(v))
    np.testing.assert_allclose(prior.effect_cov_blocks(), np.stack([0.5 * np.diag(v)] * 3))
    # multi-label items: each contributes its normalised weight to each of its labels
    labels = onehot.copy()
    labels[:10, 1] = 1
    B = mixing_from_labels(labels)
    multi = prior_from_labels(X, labels)
    expected = (B.T @ X) / B.sum(axis=0)[:, None]
    np.testing.assert_allclose(multi.effect_mean, expected)
    np.testing.assert_allclose(multi.mixing.toarray(), B)
    unused = np.c_[onehot, np.zeros(len(X))]
    with pytest.raises(ValidationError, match=r"^labels: column\(s\) \[3\] have no item"):
        prior_from_labels(X, unused)
    assert_rejected(lambda: prior_from_labels(X[:5], onehot), "labels")
    assert_rejected(lambda: prior_from_labels(X, onehot, effect_share=2.0), "effect_share")


# ------------------------------------------------------------------------------ MovieLens 100K
@pytest.fixture(scope="module")
def movielens():
    path = ML100K / "u.data"
    if not path.exists():
        pytest.skip(f"MovieLens 100K not found at {path}")
    return np.loadtxt(path)


def test_movielens_100k_held_out_rmse(movielens):
    users, items, r = movielens[:, 0], movielens[:, 1], movielens[:, 2]
    start = time.perf_counter()
    fit = factorize_ratings(users, items, r, rank=5, reg=1.0, n_iter=20, test_fraction=0.1, seed=0)
    elapsed = time.perf_counter() - start
    print(f"ml-100k ALS: test RMSE {fit.test_rmse:.4f}, train {fit.train_rmse:.4f}, {elapsed:.2f}s")
    assert (fit.n_users, fit.n_items) == (943, 1682)
    assert fit.test_rmse < 1.0  # acceptance criterion (measured 0.9367)
    assert fit.train_rmse < fit.test_rmse
    assert elapsed < 10.0  # about 0.3 s here; generous for loaded machines

    # the paper's prior: 5 effects by a diagonal GMM, K = 100 random movies
    actions = np.random.default_rng(0).choice(fit.n_items, 100, replace=False)
    prior = fit_mixed_effect_prior(fit.item_vectors, 5, seed=0, actions=actions)
    assert (prior.n_actions, prior.n_effects, prior.dim) == (100, 5, 5)
    v = fit.item_vectors.var(axis=0)
    np.testing.assert_allclose(prior.action_cov, 0.25 * np.diag(v))
    np.testing.assert_allclose(prior.mixing.sum(axis=1), 1.0, atol=1e-12)


def test_movielens_100k_genre_prior(movielens):
    path = ML100K / "u.item"
    if not path.exists():
        pytest.skip(f"MovieLens 100K item file not found at {path}")
    rows = [line.split("|") for line in path.read_text(encoding="latin-1").splitlines() if line]
    ids = np.array([int(row[0]) for row in rows])
    genres = np.array([[int(flag) for flag in row[5:]] for row in rows])
    users, items, r = movielens[:, 0], movielens[:, 1], movielens[:, 2]
    fit = factorize_ratings(users, items, r, rank=5, n_iter=10, seed=0)
    labels = np.zeros_like(genres)
    labels[fit.item_index(ids)] = genres  # row p of labels = genres of item_ids[p]
    prior = prior_from_labels(fit.item_vectors, labels)  # every movie has a genre
    assert (prior.n_actions, prior.n_effects, prior.dim) == (1682, 19, 5)
    np.testing.assert_allclose(prior.mixing.sum(axis=1), 1.0, atol=1e-12)
