"""Laplace fits against scipy.optimize on the same penalised log-likelihood."""

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.special import expit, log_expit

from mixedts.likelihoods import Logistic, get_likelihood, laplace_fit


def penalised_nll(theta, X, y, ridge):
    u = X @ theta
    return -np.sum(y * log_expit(u) + (1 - y) * log_expit(-u)) + 0.5 * ridge * theta @ theta


def test_laplace_matches_scipy_on_several_actions_at_once():
    rng = np.random.default_rng(0)
    d, S = 3, 4
    sizes = [5, 40, 200, 1]
    X = rng.uniform(-1, 1, (sum(sizes), d))
    seg = np.repeat(np.arange(S), sizes)
    truth = rng.normal(size=(S, d)) * 2
    y = (rng.uniform(size=len(X)) < expit(np.einsum("nd,nd->n", X, truth[seg]))).astype(float)
    ridge = 1e-3 * 50  # a visible ridge so that the tiny segments are well posed
    mode, G, iters = laplace_fit(Logistic(), X, y, seg, S, np.zeros((S, d)), ridge=ridge)
    assert np.all(iters < 100)
    for s in range(S):
        Xs, ys = X[seg == s], y[seg == s]
        res = minimize(penalised_nll, np.zeros(d), args=(Xs, ys, ridge), method="BFGS",
                       jac=lambda t, Xs, ys, r: Xs.T @ (expit(Xs @ t) - ys) + r * t,
                       options={"gtol": 1e-12, "maxiter": 10_000})
        assert np.max(np.abs(mode[s] - res.x)) < 1e-6 * max(1, np.max(np.abs(res.x)))
        # the Hessian of the penalised objective at scipy's optimum, by central differences
        # of scipy-independent gradients, against G + ridge·I
        p = expit(Xs @ res.x)
        hess = (Xs * (p * (1 - p))[:, None]).T @ Xs + ridge * np.eye(d)
        eps = 1e-5
        num = np.empty((d, d))
        for j in range(d):
            e = np.zeros(d)
            e[j] = eps

            def grad(t, Xs=Xs, ys=ys):
                return Xs.T @ (expit(Xs @ t) - ys) + ridge * t

            num[:, j] = (grad(res.x + e) - grad(res.x - e)) / (2 * eps)
        assert np.max(np.abs(G[s] + ridge * np.eye(d) - hess)) < 1e-6 * np.max(np.abs(hess))
        assert np.max(np.abs(num - hess)) < 1e-6 * np.max(np.abs(hess))


def test_separable_data_stays_finite():
    X = np.random.default_rng(1).uniform(-1, 1, (50, 2))
    y = np.ones(50)
    mode, G, _ = laplace_fit(Logistic(), X, y, np.zeros(50, dtype=int), 1, np.zeros((1, 2)))
    assert np.all(np.isfinite(mode)) and np.all(np.isfinite(G))
    assert np.all(np.abs(mode) < 1e4)


@pytest.mark.parametrize("bad", [2.0, -1.0, 0.5])
def test_logistic_rewards_are_checked(bad):
    with pytest.raises(ValueError, match="y"):
        Logistic().check_rewards(np.array([1.0, bad]))


def test_binarize_accepts_unit_interval_only():
    lik = get_likelihood("logistic", binarize=True)
    lik.check_rewards(np.array([0.0, 0.3, 1.0]))
    with pytest.raises(ValueError):
        lik.check_rewards(np.array([1.2]))
    with pytest.raises(ValueError, match="likelihood"):
        get_likelihood("poisson")
