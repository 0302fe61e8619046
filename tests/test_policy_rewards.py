"""mixedts policies as reward models: fit_on_logs, predict_rewards_with_policy, sDM (issue #12)."""

import numpy as np
import pytest

from mixedts import LinearEffectPrior, ValidationError
from mixedts.environments import MixedEffectEnvironment
from mixedts.offline import (
    LoggedFeedback,
    estimate_all,
    evaluate,
    predict_rewards,
    simulate_logs,
    true_policy_value,
)
from mixedts.offline.policy_rewards import (
    fit_on_logs,
    predict_rewards_with_policy,
    sdm_reward_models,
)
from mixedts.policies import (
    EXP4,
    GLMTS,
    UCBGLM,
    BernoulliTS,
    GaussianTS,
    JointTS,
    LinTS,
    LinUCB,
    MeTS,
)
from oracles import logistic_map


def _logs(contexts="shared", n=60, K=6, L=2, d=3, seed=0):
    env = MixedEffectEnvironment(n_actions=K, n_effects=L, dim=d, contexts=contexts, seed=seed)
    return env, simulate_logs(env, "uniform", n, seed=seed + 1)


def _loop(policy, contexts):
    return np.stack([policy.model.mean_scores(x) for x in contexts])


@pytest.mark.parametrize("contexts", ["shared", "pool"])
@pytest.mark.parametrize("make", [
    lambda env: MeTS(env.prior),
    lambda env: LinTS.from_prior(env.prior),
    lambda env: LinUCB(env.n_actions, env.dim, regularization=2.0),
    lambda env: JointTS(env.prior),
])
def test_linear_predictions_equal_a_loop_of_mean_scores(contexts, make):
    env, logs = _logs(contexts)
    policy = fit_on_logs(make(env), logs)
    q = predict_rewards_with_policy(policy, logs.contexts)
    assert q.shape == (len(logs), logs.n_actions)
    np.testing.assert_allclose(q, _loop(policy, logs.contexts), rtol=0, atol=1e-10)
    # the reward_model route of predict_rewards / evaluate gives the same numbers
    np.testing.assert_array_equal(predict_rewards(policy, logs), q)


def test_fit_on_logs_equals_sequential_updates_and_returns_the_policy():
    env, logs = _logs("pool", n=30)
    fitted = MeTS(env.prior)
    assert fit_on_logs(fitted, logs) is fitted
    seq = MeTS(env.prior)
    for x, a, y in zip(logs.contexts, logs.actions, logs.rewards):
        seq.update(x, int(a), float(y))
    np.testing.assert_allclose(fitted.posterior_mean(), seq.posterior_mean(), atol=1e-10)


@pytest.mark.parametrize("contexts", ["shared", "pool"])
def test_glm_policy_gives_the_probit_posterior_mean_and_needs_binary_rewards(contexts):
    """sDM's App. E.1 reward: sigmoid(xᵀμ̂_a / √(1 + (π/8) xᵀΣ̂_a x)), written out per round
    and action; ``predictive="plug-in"`` gives sigmoid(xᵀμ̂_a)."""
    env, logs = _logs(contexts, n=40)
    policy = GLMTS(np.zeros((env.n_actions, env.dim)), np.eye(env.dim))
    with pytest.raises(ValidationError, match="0 or 1"):
        fit_on_logs(policy, logs)  # Gaussian rewards
    binary = logs.replace(rewards=(logs.rewards > 0).astype(float))
    fit_on_logs(policy, binary)
    M, S = policy.posterior_mean(), policy.posterior_cov()
    X = binary.contexts
    want = np.zeros((len(X), env.n_actions))
    for t in range(len(X)):
        for a in range(env.n_actions):
            x = X[t] if X.ndim == 2 else X[t, a]
            want[t, a] = 1.0 / (1.0 + np.exp(-(x @ M[a]) / np.sqrt(1 + np.pi / 8 * x @ S[a] @ x)))
    q = predict_rewards_with_policy(policy, X)
    np.testing.assert_allclose(q, want, rtol=0, atol=1e-12)
    assert np.all((q > 0) & (q < 1))
    u = X @ M.T if X.ndim == 2 else np.einsum("nkd,kd->nk", X, M)
    plug = predict_rewards_with_policy(policy, X, predictive="plug-in")
    np.testing.assert_allclose(plug, 1.0 / (1.0 + np.exp(-u)), atol=1e-12)
    assert np.max(np.abs(plug - q)) > 1e-3  # the two differ
    with pytest.raises(ValidationError, match="predictive"):
        predict_rewards_with_policy(policy, X, predictive="mean")
    # UCB-GLM has no posterior: always its plug-in MLE
    ucb = fit_on_logs(UCBGLM(env.n_actions, env.dim), binary)
    u = X @ ucb.posterior_mean().T if X.ndim == 2 else np.einsum(
        "nkd,kd->nk", X, ucb.posterior_mean())
    np.testing.assert_allclose(predict_rewards_with_policy(ucb, X), 1.0 / (1.0 + np.exp(-u)),
                               atol=1e-12)


def test_probit_prediction_is_the_monte_carlo_mean_of_the_sigmoid():
    """E[sigmoid(xᵀθ_a)] under N(μ̂_a, Σ̂_a) (the structured posterior's marginal, few logs, so
    Σ̂_a is wide) by 100 000 draws of θ: the probit estimate is within 0.02 (Monte Carlo s.e.
    ≤ 0.0016); the plug-in sigmoid(xᵀμ̂_a) is not (negative control)."""
    rng = np.random.default_rng(0)
    K, d, e = 5, 3, 2
    prior = LinearEffectPrior(rng.uniform(-1, 1, e), 3 * np.eye(e), rng.uniform(-1, 1, (K, d, e)),
                              np.eye(d))
    X = rng.uniform(-1, 1, (12, d))
    A = rng.integers(K, size=12)
    Y = (rng.uniform(size=12) < 0.5).astype(float)
    policy = fit_on_logs(MeTS(prior, likelihood="logistic"), LoggedFeedback(X, A, Y))
    M, S = policy.posterior_mean(), policy.posterior_cov()
    theta = M + np.einsum("kij,skj->ski", np.linalg.cholesky(S),
                          rng.standard_normal((100_000, K, d)))
    X_new = 2 * rng.uniform(-1, 1, (20, d))
    mc = (1.0 / (1.0 + np.exp(-np.einsum("nd,skd->snk", X_new, theta)))).mean(0)
    q = predict_rewards_with_policy(policy, X_new)
    assert np.max(np.abs(q - mc)) < 0.02, np.max(np.abs(q - mc))
    plug = predict_rewards_with_policy(policy, X_new, predictive="plug-in")
    assert np.max(np.abs(plug - mc)) > 0.05


def test_context_free_policy_broadcasts_its_posterior_mean():
    env, logs = _logs(n=50)
    for policy in (GaussianTS(env.n_actions), BernoulliTS(env.n_actions)):
        data = logs if isinstance(policy, GaussianTS) else logs.replace(
            rewards=(logs.rewards > 0).astype(float))
        fit_on_logs(policy, data)
        q = predict_rewards(policy, data)
        assert q.shape == (len(data), env.n_actions)
        np.testing.assert_array_equal(q, np.tile(policy.posterior_mean(), (len(data), 1)))
    # each arm's posterior moved towards its logged rewards
    assert policy.counts().sum() == len(logs)


def test_bad_reward_models_name_reward_model():
    env, logs = _logs(n=20)
    with pytest.raises(ValidationError, match="reward_model"):
        predict_rewards(object(), logs)
    with pytest.raises(ValidationError, match="reward_model"):
        evaluate(logs, np.full((20, env.n_actions), 1 / env.n_actions), ["dm"],
                 reward_model="ridge")
    with pytest.raises(ValidationError, match="reward_model"):  # experts have no reward model
        predict_rewards(EXP4([lambda x: np.eye(env.n_actions)[0]], n_actions=env.n_actions),
                        logs)
    with pytest.raises(ValidationError, match="reward_model"):  # wrong number of actions
        predict_rewards(LinUCB(env.n_actions + 1, env.dim), logs)
    with pytest.raises(ValidationError, match="reward_model"):  # wrong dimension
        predict_rewards(LinUCB(env.n_actions, env.dim + 1), logs)
    with pytest.raises(ValidationError, match="policy has"):
        fit_on_logs(LinUCB(env.n_actions + 1, env.dim), logs)


def test_sdm_reward_models_are_fitted_and_dm_freq_is_ridge():
    env, logs = _logs("pool", n=40)
    models = sdm_reward_models(logs, env.prior, env.noise_std, regularization=0.5)
    assert set(models) == {"sdm", "dm-bayes", "dm-freq"}
    assert isinstance(models["sdm"], MeTS) and isinstance(models["dm-bayes"], LinTS)
    X = logs.logged_action_contexts
    ridge = np.stack([
        np.linalg.solve(X[logs.actions == a].T @ X[logs.actions == a] + 0.5 * np.eye(env.dim),
                        X[logs.actions == a].T @ logs.rewards[logs.actions == a])
        for a in range(env.n_actions)
    ])
    np.testing.assert_allclose(models["dm-freq"].posterior_mean(), ridge, atol=1e-9)
    table = estimate_all(logs, logs.logging_probabilities, ["dm", "dr"],
                         reward_model=models["sdm"])
    assert np.isfinite(table["dm"].value) and np.isfinite(table["dr"].value)
    with pytest.raises(ValidationError, match="prior"):
        sdm_reward_models(logs, "not a prior")


def _linear_logs(binary, K=6, d=2, e=3, n=80, seed=0):
    rng = np.random.default_rng(seed)
    prior = LinearEffectPrior(rng.uniform(-1, 1, e), 2 * np.eye(e),
                              rng.uniform(-1, 1, (K, d, e)), 0.5 * np.eye(d))
    X, A = rng.uniform(-1, 1, (n, d)), rng.integers(K, size=n)
    theta = rng.normal(size=(K, d))
    u = np.einsum("nd,nd->n", X, theta[A])
    R = (rng.uniform(size=n) < 1 / (1 + np.exp(-u))).astype(float) if binary else u + \
        rng.normal(size=n)
    return prior, LoggedFeedback(X, A, R)


@pytest.mark.parametrize("binary", [False, True])
def test_sdm_reward_models_take_a_linear_effect_prior(binary):
    """sDM = MeTS on the LinearEffectPrior, DM (Bayes) = LinTS on its marginal prior (the
    joint of one action given its own rows, from the raw prior: ψ integrated out), DM (Freq)
    = ridge (Gaussian) or the λ-penalised logistic MLE (binary), each fitted on the logs."""
    prior, logs = _linear_logs(binary)
    lik = "logistic" if binary else "gaussian"
    models = sdm_reward_models(logs, prior, 0.9, regularization=0.5, likelihood=lik)
    sdm, bayes, freq = models["sdm"], models["dm-bayes"], models["dm-freq"]
    assert isinstance(sdm, MeTS) and sdm.likelihood.name == lik
    assert isinstance(bayes, LinTS) and bayes.likelihood.name == lik
    assert isinstance(freq, UCBGLM if binary else LinUCB)
    X, A, R = logs.contexts, logs.actions, logs.rewards
    W, mu, cov = prior.loadings, prior.effect_mean, prior.effect_cov
    for a in (0, 3):
        m0, S0 = W[a] @ mu, 0.5 * np.eye(2) + W[a] @ cov @ W[a].T
        Xa, Ra = X[A == a], R[A == a]
        if binary:  # MAP under the marginal prior, the probit reward there
            theta, G = logistic_map(Xa, Ra, np.linalg.inv(S0), m0)
            np.testing.assert_allclose(bayes.posterior_mean()[a], theta, atol=1e-7)
            np.testing.assert_allclose(bayes.posterior_cov()[a],
                                       np.linalg.inv(np.linalg.inv(S0) + G), atol=1e-7)
            mle = logistic_map(Xa, Ra, 0.5 * np.eye(2), np.zeros(2))[0]
            np.testing.assert_allclose(freq.posterior_mean()[a], mle, atol=1e-7)
        else:
            P = np.linalg.inv(S0) + Xa.T @ Xa / 0.81
            np.testing.assert_allclose(bayes.posterior_mean()[a], np.linalg.solve(
                P, np.linalg.solve(S0, m0) + Xa.T @ Ra / 0.81), atol=1e-10)
            np.testing.assert_allclose(freq.posterior_mean()[a], np.linalg.solve(
                Xa.T @ Xa + 0.5 * np.eye(2), Xa.T @ Ra), atol=1e-10)
    q = {label: predict_rewards(m, logs) for label, m in models.items()}
    if binary:
        assert all(np.all((v > 0) & (v < 1)) for v in q.values())
    # the structure is used: sDM's posterior is not DM (Bayes)'s
    assert np.max(np.abs(sdm.posterior_mean() - bayes.posterior_mean())) > 1e-2
    with pytest.raises(ValidationError, match="likelihood"):
        sdm_reward_models(logs, prior, likelihood="poisson")


def test_sdm_beats_its_unstructured_counterparts_with_few_logs_per_action():
    """The structure helps: with 2 logged rounds per action, the DM estimate of the optimal
    policy's value is closer to the truth with the mixed-effect posterior than with the
    marginal (ψ integrated out) or ridge reward models, in mean squared error over 10
    problem instances (fixed seeds; measured ratio about 0.35)."""
    K, n = 20, 40
    err = {"sdm": [], "dm-bayes": [], "dm-freq": []}
    for s in range(10):
        env = MixedEffectEnvironment(n_actions=K, n_effects=2, dim=2, seed=s)
        logs = simulate_logs(env, "uniform", n, seed=100 + s)
        pi = np.zeros((n, K))
        pi[np.arange(n), logs.expected_rewards.argmax(1)] = 1.0
        truth = true_policy_value(logs, pi)
        for label, model in sdm_reward_models(logs, env.prior, env.noise_std).items():
            value = estimate_all(logs, pi, ["dm"], reward_model=model)["dm"].value
            err[label].append((value - truth) ** 2)
    mse = {label: float(np.mean(e)) for label, e in err.items()}
    assert mse["sdm"] < 0.6 * mse["dm-bayes"], mse
    assert mse["sdm"] < 0.6 * mse["dm-freq"], mse
    wins = sum(a < b for a, b in zip(err["sdm"], err["dm-bayes"]))
    assert wins >= 7, (wins, mse)


def test_per_action_contexts_dm_uses_each_actions_own_row():
    env, logs = _logs("pool", n=30)
    policy = fit_on_logs(LinTS.from_prior(env.prior), logs)
    q = predict_rewards(policy, logs)
    M = policy.posterior_mean()
    for t in (0, 7, 29):
        np.testing.assert_allclose(q[t], np.sum(logs.contexts[t] * M, axis=1), atol=1e-12)
    value = estimate_all(logs, logs.logging_probabilities, ["dm"], reward_model=policy)
    assert value["dm"].value == pytest.approx(float(q.mean()))


def test_shared_contexts_logs_are_unchanged_by_a_failed_fit():
    logs = LoggedFeedback(np.ones((3, 2)), [0, 1, 0], [1.0, 0.5, 0.0])
    policy = GLMTS(np.zeros((2, 2)), np.eye(2))
    before = policy.posterior_mean()
    with pytest.raises(ValidationError):
        fit_on_logs(policy, logs)
    np.testing.assert_array_equal(policy.posterior_mean(), before)
