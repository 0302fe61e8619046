"""Regression tests for the defects the one-registry refactor fixed (issue #11).

Each failed on the main branch before it: a save that could not be loaded, two Laplace
defaults, expert policies without the inspection methods the README promised, a context-free
class that changed its parent's signatures, experiment files that could not name half the
policies, and bad input that slipped through or got a misleading message.
"""

from __future__ import annotations

import inspect
import re

import numpy as np
import pytest

import mixedts
from builders import assert_same_state, snapshot, warmed
from mixedts import (
    EXP4,
    GLMTS,
    BernoulliTS,
    ContextualBandit,
    CorruptFileError,
    GeneralizedTS,
    LinTS,
    MeTS,
    TableExperts,
    ValidationError,
)
from mixedts.environments import MixedEffectEnvironment
from mixedts.evaluation import PolicySpec, load_experiment
from mixedts.policies._likelihood import DEFAULT_LAPLACE_AT


def test_ucbglm_probability_score_round_trips(tmp_path):
    env = MixedEffectEnvironment(5, 2, 2, reward="logistic", seed=0)
    policy = PolicySpec("UCBGLM", {"score": "probability", "alpha": 0.3})(env, 0)
    x = env.context(np.random.default_rng(1))
    policy.update(x, 2, 1)
    policy.save(tmp_path / "u.npz")
    loaded = mixedts.load(tmp_path / "u.npz")
    assert loaded.rule.config() == {"name": "ucb-probability", "alpha": 0.3}
    assert loaded.select(x) == policy.select(x)


def test_one_laplace_default_everywhere(prior):
    for cls in (MeTS, LinTS, GLMTS, mixedts.FactoredMeTS):
        assert inspect.signature(cls).parameters["laplace_at"].default == "posterior"
        assert inspect.signature(cls.from_environment).parameters["laplace_at"].default == \
            DEFAULT_LAPLACE_AT == "posterior"
    lin = LinTS.from_prior(prior, likelihood="logistic")
    assert lin.model.laplace_at == "posterior"
    assert GLMTS.from_prior(prior).model.laplace_at == "posterior"
    assert MeTS(prior, likelihood="logistic").model.laplace_at == "posterior"
    assert LinTS.from_prior(prior, likelihood="logistic",
                            laplace_at="likelihood").model.laplace_at == "likelihood"


def test_expert_policies_have_the_inspection_methods():
    experts = TableExperts([[0.2, 0.8], [0.7, 0.3], [0.5, 0.5]])
    policy = GeneralizedTS(experts, seed=0)
    policy.update(a=0, y=1.0)
    w = policy.weights()
    np.testing.assert_allclose(policy.posterior_mean(), w)
    np.testing.assert_allclose(policy.posterior_cov(), np.diag(w) - np.outer(w, w))
    draws = policy.sample_parameters(4000, seed=1)
    assert draws.shape == (4000, 3) and np.all(draws.sum(axis=1) == 1)
    np.testing.assert_allclose(draws.mean(axis=0), w, atol=0.03)  # one-hot ~ Categorical(w)
    assert not np.allclose(w, 1 / 3)  # the update moved the weights: the check has teeth


def test_context_free_policies_wrap_instead_of_subclassing():
    policy = BernoulliTS(3, seed=0)
    assert not isinstance(policy, ContextualBandit)
    assert isinstance(policy.contextual, ContextualBandit)
    assert inspect.signature(type(policy).update).parameters.keys() == {"self", "a", "y"}
    policy.update(1, 1.0)
    assert policy.contextual.model.counts()[1] == 1


@pytest.mark.parametrize("kind", ["GeneralizedTS", "EXP4", "EpsilonGreedyExperts",
                                  "BernoulliTS", "GaussianTS", "UCB1", "KLUCB"])
def test_experiment_files_name_every_public_policy(kind, tmp_path):
    (tmp_path / "e.toml").write_text(
        f'horizon = 25\nruns = 2\n[environment]\ntype = "mixed-effect"\nn_actions = 6\n'
        f'dim = 2\nreward = "logistic"\n[policies.p]\ntype = "{kind}"\n')
    res = load_experiment(tmp_path / "e.toml").run(quiet=True)
    assert res.n_runs == 2 and res.horizon == 25


def test_gts_infers_the_number_of_actions_from_the_first_prediction():
    calls = []

    def expert(w):
        def f(x):
            calls.append(1)
            return 1 / (1 + np.exp(-np.asarray(x) @ w))
        return f

    policy = GeneralizedTS([expert(np.array([1.0, 0.0])), expert(np.array([0.0, 1.0]))],
                           seed=0)
    assert policy.n_actions is None
    X = np.array([[1.0, -1.0], [0.5, 0.5], [-1.0, 1.0], [0.0, 0.2]])  # K = 4 rows
    a = policy.select(X)
    assert policy.n_actions == 4 and 0 <= a < 4 and len(policy.active) == 4
    policy.update(X, a, 1.0)
    assert policy.action_probabilities(X).shape == (4,)


def test_saving_before_the_first_prediction_is_refused(tmp_path):
    policy = GeneralizedTS([lambda x: np.array([0.5, 0.2]), lambda x: np.array([0.1, 0.2])])
    with pytest.raises(ValidationError, match="n_actions is not known yet"):
        policy.save(tmp_path / "p.npz")
    assert not (tmp_path / "p.npz").exists()


def test_a_bad_first_prediction_leaves_the_policy_unknown_and_unchanged():
    policy = GeneralizedTS([lambda x: np.array([0.5, 2.0]), lambda x: np.array([0.1, 0.2])],
                           seed=0)
    state = policy.rng.bit_generator.state
    with pytest.raises(ValidationError, match="experts"):
        policy.select(np.ones(2))
    assert policy.n_actions is None and policy.rng.bit_generator.state == state


@pytest.mark.parametrize("bad,word", [("1.0", "text"), (None, "None"), (b"1", "text"),
                                      (["1"], "text")])
def test_rewards_that_are_not_numbers_are_refused(bad, word):
    policy = warmed("MeTS")
    before = snapshot(policy)
    x = np.ones(policy.dim)
    with pytest.raises(ValidationError, match=rf"^y must be numeric, got .*{word}"):
        policy.update(x, 0, bad)
    assert_same_state(before, snapshot(policy))
    with pytest.raises(ValidationError, match=r"^Y must be numeric"):
        policy.update_batch(np.ones((2, policy.dim)), [0, 1], [1.0, bad])
    assert_same_state(before, snapshot(policy))


def test_exp4_needs_k_for_its_default_rate():
    with pytest.raises(ValidationError, match=r"^n_actions"):
        EXP4([lambda x: x, lambda x: x])


def test_load_of_a_text_file_names_the_path_and_gives_no_pickle_advice(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("policy = MeTS\n")
    with pytest.raises(CorruptFileError) as info:
        mixedts.load(path)
    msg = str(info.value)
    assert msg.startswith("path: ") and "not a readable mixedts policy file" in msg
    assert not re.search("pickle", msg, re.I)
