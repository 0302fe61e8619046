"""Small, warmed-up policies of every class and a bitwise snapshot of a policy's whole state.

Shared by the bad-input, persistence, catalogue and batch tests. Sizes are chosen so that
K, L and d are all different (a shape mix-up cannot pass by accident).
"""

from __future__ import annotations

import copy
import json

import numpy as np

from conftest import make_prior
from mixedts import GLMTS, UCBGLM, FactoredMeTS, HierTS, JointTS, LinTS, LinUCB, MeTS

K, L, D = 7, 2, 3
NOISE = 0.8

POLICY_NAMES = [
    "MeTS",
    "MeTS-per-action-cov",
    "FactoredMeTS",
    "HierTS",
    "JointTS",
    "LinTS",
    "LinUCB",
]


GLM_NAMES = [
    "MeTS-GLM",
    "MeTS-GLM-minibatch",
    "MeTS-GLM-online",
    "FactoredMeTS-GLM",
    "GLMTS",
    "GLMTS-diagonal",
    "UCBGLM",
]


def build(name: str, seed: int = 0, K: int = K, L: int = L, d: int = D, refactor_every=5000):
    """A fresh (unwarmed) policy of the named kind."""
    if name in GLM_NAMES:
        prior = make_prior(seed, K, L, d, "dense", "shared", "full")
        if name == "UCBGLM":
            return UCBGLM(K, d, alpha=1.0, seed=seed + 100)
        if name.startswith("GLMTS"):
            return GLMTS.from_prior(prior, diagonal=name.endswith("diagonal"), seed=seed + 100)
        cls = FactoredMeTS if name.startswith("Factored") else MeTS
        method = name.split("-")[-1] if name.endswith(("minibatch", "online")) else "exact"
        return cls(prior, seed=seed + 100, likelihood="logistic", laplace=method,
                   laplace_batch=5, refactor_every=refactor_every)
    if name == "MeTS":
        prior = make_prior(seed, K, L, d, "dense", "shared", "full")
        return MeTS(prior, NOISE, seed=seed + 100, refactor_every=refactor_every)
    if name == "MeTS-per-action-cov":
        prior = make_prior(seed, K, L, d, "sparse", "per-action", "block")
        return MeTS(prior, NOISE, seed=seed + 100, refactor_every=refactor_every)
    if name == "FactoredMeTS":
        prior = make_prior(seed, K, L, d, "dense", "per-action", "block")
        return FactoredMeTS(prior, NOISE, seed=seed + 100, refactor_every=refactor_every)
    if name == "HierTS":
        rng = np.random.default_rng(seed)
        return HierTS(K, rng.normal(size=d), 2.0 * np.eye(d), 0.5 * np.eye(d), NOISE,
                      seed=seed + 100, refactor_every=refactor_every)
    if name == "JointTS":
        prior = make_prior(seed, K, L, d, "dense", "shared", "full")
        return JointTS(prior, NOISE, seed=seed + 100, refactor_every=refactor_every)
    if name == "LinTS":
        prior = make_prior(seed, K, L, d, "dense", "per-action", "full")
        return LinTS.from_prior(prior, noise_std=NOISE, seed=seed + 100,
                                refactor_every=refactor_every)
    if name == "LinUCB":
        return LinUCB(K, d, alpha=1.5, noise_std=NOISE, seed=seed + 100)
    raise ValueError(name)


def play(policy, rng: np.random.Generator, n: int, per_action_context: bool = False):
    """``n`` rounds of select + update with random contexts and rewards; returns the actions."""
    K, d = policy.n_actions, policy.dim
    out = []
    for _ in range(n):
        x = rng.uniform(-1, 1, (K, d)) if per_action_context else rng.uniform(-1, 1, d)
        a = policy.select(x)
        if policy.likelihood.name == "logistic":
            policy.update(x, a, float(rng.uniform() < 0.5))
        else:
            policy.update(x, a, float(rng.normal()))
        out.append(a)
    return out


def warmed(name: str, seed: int = 0, n: int = 12, **kwargs):
    """A policy of the named kind after ``n`` rounds, so that some actions are observed."""
    policy = build(name, seed, **kwargs)
    play(policy, np.random.default_rng(seed + 1), n)
    return policy


def snapshot(policy):
    """Everything that must not change on a rejected call, in a form compared bitwise."""
    cfg, arrays = policy.model.get_state()
    return {
        "config": json.dumps(cfg, sort_keys=True),
        "arrays": {
            k: (np.asarray(v).dtype.str, np.asarray(v).shape, np.asarray(v).tobytes())
            for k, v in arrays.items()
        },
        "active": policy.active.tobytes(),
        "n_actions": policy.n_actions,
        "rng": copy.deepcopy(policy.rng.bit_generator.state),
        "rule": json.dumps(policy.rule.config(), sort_keys=True),
    }


def assert_same_state(before, after):
    assert before["config"] == after["config"]
    assert before["arrays"].keys() == after["arrays"].keys()
    for k in before["arrays"]:
        assert before["arrays"][k] == after["arrays"][k], f"array {k} changed"
    assert before["active"] == after["active"]
    assert before["n_actions"] == after["n_actions"]
    assert before["rng"] == after["rng"], "random state changed"
    assert before["rule"] == after["rule"]
