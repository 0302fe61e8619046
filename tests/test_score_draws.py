"""``MixedEffectModel.sample_scores_many`` (n posterior draws in one pass, the service's and the
offline propensities' workhorse) against n one-draw computations from the same normals: for
each effect draw Ψ_k, the scores are E[x_iᵀθ_i | Ψ_k] + sd_i ε_ki with the conditional mean
and variance of ``_scores_given`` (the path the joint-Gaussian oracles check). Dense and
sparse score maps, shared and per-action contexts and Σ0, joint and factored effects, with
observed and unobserved actions."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import mixedts.models.mixed_effect as me
from conftest import make_prior
from mixedts import FactoredMeTS, MeTS


def _policy(cls, mixing, action_cov, K, L, d, observed, seed=0):
    prior = make_prior(seed, K=K, L=L, d=d, mixing=mixing, action_cov=action_cov,
                       effect_cov="block" if cls is FactoredMeTS else "full")
    policy = cls(prior, noise_std=0.7, seed=seed)
    rng = np.random.default_rng(seed + 1)
    n = observed * K // 4 + 3
    acts = np.r_[np.arange(K)[: observed * K], rng.integers(K, size=n)]
    for a in acts:
        policy.update(rng.uniform(-1, 1, d), int(a), float(rng.normal()))
    return policy


def _one_by_one(model, x, n, rng):
    """The draws from the normals ``sample_scores_many`` takes, one Ψ at a time."""
    L, d, K = model.n_effects, model.dim, model.n_actions
    psi = model.effects.sample(rng, n).reshape(n, L, d)
    eps = rng.standard_normal((n, K))
    out = np.empty((n, K))
    for k in range(n):  # the slow, obvious reference: one conditional at a time
        mean, var = model._scores_given(x, psi[k])
        out[k] = mean + np.sqrt(var) * eps[k]
    return out


@pytest.mark.parametrize("dense", [True, False])
@pytest.mark.parametrize("cls,mixing,action_cov,per_action,observed", [
    (MeTS, "dense", "shared", False, 0),
    (MeTS, "dense", "shared", True, 1),
    (MeTS, "sparse", "per-action", False, 1),
    (MeTS, "dense", "per-action", True, 0),
    (FactoredMeTS, "dense", "shared", False, 1),
    (FactoredMeTS, "onehot", "per-action", True, 0),
])
def test_many_draws_are_the_one_draw_conditionals(monkeypatch, dense, cls, mixing, action_cov,
                                                  per_action, observed):
    K, L, d, n = 14, 3, 4, 25
    if not dense:
        monkeypatch.setattr(me, "_DENSE_SCORE_MAP", 0)
    model = _policy(cls, mixing, action_cov, K, L, d, observed).model
    x = np.random.default_rng(5).uniform(-1, 1, (K, d) if per_action else d)
    rng = np.random.default_rng(9)
    want = _one_by_one(model, x, n, copy.deepcopy(rng))
    got = model.sample_scores_many(x, n, rng)
    assert got.shape == (n, K)
    assert np.max(np.abs(got - want)) <= 1e-12 * (1.0 + np.abs(want).max())


def test_a_transposed_score_map_is_caught():
    """Negative control: the reference tells a wrongly laid-out score map from the right one."""
    K, L, d, n = 14, 3, 4, 25
    model = _policy(MeTS, "dense", "shared", K, L, d, 1).model
    x = np.random.default_rng(5).uniform(-1, 1, d)
    want = _one_by_one(model, x, n, np.random.default_rng(9))
    psi = model.effects.sample(np.random.default_rng(9), n).reshape(n, L * d)
    mean0, var = model._scores_given(x, np.zeros((L, d)))
    q = model._score_directions(x)
    Bt = model.prior.mixing.T.toarray()
    wrong = np.swapaxes(Bt[:, None, :] * q.T[None, :, :], 0, 1).reshape(L * d, K)
    eps = np.random.default_rng(9)
    eps.standard_normal((n, L * d))
    bad = psi @ wrong + mean0 + np.sqrt(var) * eps.standard_normal((n, K))
    assert np.max(np.abs(bad - want)) > 1e-3
