"""Bad input raises ``ValueError`` naming the argument and leaves the policy exactly as it was.

"Exactly" means bitwise: every array of ``policy.model.get_state()``, its configuration, the
active mask and the random generator's state are compared before and after the rejected call.
Inputs are fuzzed with hypothesis (derandomized, a fixed number of examples).
"""

from __future__ import annotations

import copy
import functools
import re

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from builders import POLICY_NAMES, assert_same_state, snapshot, warmed
from mixedts import HierTS, LinTS, LinUCB, MixedEffectPrior, ValidationError

FUZZ = settings(max_examples=50, deadline=None, derandomize=True)
BAD_VALUES = [np.nan, np.inf, -np.inf]


@functools.cache
def _base(name):
    return warmed(name, seed=3)


def fresh(name):
    """A deep copy of a cached, warmed policy (cheap, and isolated between examples)."""
    return copy.deepcopy(_base(name))


def assert_rejected(policy, call, *names):
    """``call()`` raises a ValidationError (a ValueError) whose message starts with the
    argument's name (or, for a length mismatch, names each of ``names``); the policy's state
    is bitwise unchanged."""
    before = snapshot(policy)
    with pytest.raises(ValueError) as info:
        call()
    msg = str(info.value)
    assert isinstance(info.value, ValidationError), f"not a ValidationError: {info.value!r}"
    if len(names) == 1:
        assert re.match(rf"{re.escape(names[0])}\b", msg), f"{names[0]!r} not named in {msg!r}"
    for name in names:
        assert re.search(rf"(^|[\s,(]){re.escape(name)}\b", msg), f"{name!r} not named in {msg!r}"
    assert_same_state(before, snapshot(policy))


# ---------------------------------------------------------------------------- strategies
shapes = st.lists(st.integers(0, 8), min_size=0, max_size=4).map(tuple)


@st.composite
def arrays_of(draw, shape):
    """A finite float array of ``shape`` (values from a drawn seed: much cheaper to generate
    than element-wise hypothesis arrays, and still deterministic)."""
    seed = draw(st.integers(0, 2**32 - 1))
    return np.random.default_rng(seed).uniform(-5, 5, shape)


@st.composite
def poisoned(draw, shape):
    """A finite array of ``shape`` with one entry replaced by NaN or ±inf."""
    arr = draw(arrays_of(shape))
    flat = arr.reshape(-1)
    flat[draw(st.integers(0, flat.size - 1))] = draw(st.sampled_from(BAD_VALUES))
    return flat.reshape(shape)


def context_shapes(policy):
    return [(policy.dim,), (policy.n_actions, policy.dim)]


def is_valid_batch_shape(shape, policy):
    return (len(shape) == 2 and shape[1] == policy.dim) or (
        len(shape) == 3 and shape[1:] == (policy.n_actions, policy.dim)
    )


# ---------------------------------------------------------------------------- contexts
@pytest.mark.parametrize("name", POLICY_NAMES)
@FUZZ
@given(data=st.data())
def test_bad_context_is_rejected(name, data):
    """Wrong shapes (any number of dimensions, empty axes) or one NaN/inf entry."""
    policy = fresh(name)
    if data.draw(st.booleans(), label="poison"):
        shape = data.draw(st.sampled_from(context_shapes(policy)), label="shape")
        x = data.draw(poisoned(shape), label="x")
    else:
        shape = data.draw(shapes.filter(lambda s: s not in context_shapes(policy)), label="shape")
        x = data.draw(arrays_of(shape), label="x")
    a = int(data.draw(st.integers(0, policy.n_actions - 1)))
    assert_rejected(policy, lambda: policy.select(x), "x")
    assert_rejected(policy, lambda: policy.update(x, a, 0.5), "x")


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_non_numeric_contexts_are_rejected(name):
    policy = fresh(name)
    d = policy.dim
    for x in [None, "abc", ["a"] * d, [1.0] * (d - 1) + [None], np.array([1 + 1j] + [0] * (d - 1)),
              {"x": 1}]:
        assert_rejected(policy, lambda x=x: policy.select(x), "x")
        assert_rejected(policy, lambda x=x: policy.update(x, 0, 1.0), "x")


# ---------------------------------------------------------------------------- actions
def bad_actions(K):
    return st.one_of(
        st.integers(max_value=-1),
        st.integers(min_value=K),
        st.integers(-(2**62), -1).map(np.int64),
        st.integers(K, 2**40).map(np.int64),
        st.floats(allow_nan=True, allow_infinity=True),
        st.integers(0, K - 1).map(float),  # 2.0 is not an action index
        st.integers(0, K - 1).map(np.float64),
        st.booleans(),
        st.text(max_size=3),
        st.none(),
        st.integers(0, K - 1).map(lambda a: [a]),
        st.integers(0, K - 1).map(lambda a: np.array([a])),
    )


@pytest.mark.parametrize("name", POLICY_NAMES)
@FUZZ
@given(data=st.data())
def test_bad_action_is_rejected(name, data):
    policy = fresh(name)
    a = data.draw(bad_actions(policy.n_actions), label="a")
    x = np.full(policy.dim, 0.3)
    assert_rejected(policy, lambda: policy.update(x, a, 1.0), "a")


@pytest.mark.parametrize("name", POLICY_NAMES)
@FUZZ
@given(data=st.data())
def test_bad_reward_is_rejected(name, data):
    policy = fresh(name)
    y = data.draw(
        st.one_of(
            st.sampled_from(BAD_VALUES),
            st.sampled_from(BAD_VALUES).map(np.float64),
            st.integers(1, 3).flatmap(lambda n: arrays_of((n,))),
            st.text(min_size=1, max_size=3).filter(lambda s: not _parses_as_float(s)),
            st.none(),
        ),
        label="y",
    )
    x = np.full(policy.dim, 0.3)
    assert_rejected(policy, lambda: policy.update(x, 1, y), "y")


def _parses_as_float(s):
    try:
        float(s)
    except ValueError:
        return False
    return True


# ---------------------------------------------------------------------------- batches
@st.composite
def bad_batch(draw, K, d):
    """(X, A, Y, names): one thing wrong in an otherwise valid batch; names the culprit."""
    n = draw(st.integers(1, 6))
    per_action = draw(st.booleans())
    X = draw(arrays_of((n, K, d) if per_action else (n, d)))
    A = np.array(draw(st.lists(st.integers(0, K - 1), min_size=n, max_size=n)), dtype=np.int64)
    Y = draw(arrays_of((n,)))
    kind = draw(st.sampled_from(
        ["X-shape", "X-nan", "A-range", "A-negative", "A-fraction", "A-nan", "A-ndim", "A-type",
         "Y-nan", "Y-ndim", "length"]
    ))
    i = draw(st.integers(0, n - 1))
    if kind == "X-shape":
        shape = draw(shapes.filter(
            lambda s: not ((len(s) == 2 and s[1] == d) or (len(s) == 3 and s[1:] == (K, d)))
        ))
        return draw(arrays_of(shape)), A, Y, ["X"]
    if kind == "X-nan":
        return draw(poisoned(X.shape)), A, Y, ["X"]
    if kind in ("A-range", "A-negative"):
        A = A.copy()
        A[i] = draw(st.integers(K, 10**6)) if kind == "A-range" else draw(st.integers(-10**6, -1))
        return X, A, Y, ["A"]
    if kind == "A-fraction":
        A = A.astype(float)
        A[i] += draw(st.floats(0.01, 0.99))
        return X, A, Y, ["A"]
    if kind == "A-nan":
        A = A.astype(float)
        A[i] = draw(st.sampled_from(BAD_VALUES))
        return X, A, Y, ["A"]
    if kind == "A-ndim":
        return X, A.reshape(n, 1), Y, ["A"]
    if kind == "A-type":
        return X, A.astype(str), Y, ["A"]
    if kind == "Y-nan":
        return X, A, draw(poisoned((n,))), ["Y"]
    if kind == "Y-ndim":
        return X, A, Y.reshape(n, 1), ["Y"]
    # lengths: drop or add rows in one or two of the three
    m = draw(st.tuples(st.integers(0, 8), st.integers(0, 8), st.integers(0, 8)).filter(
        lambda t: len(set(t)) > 1
    ))
    X = draw(arrays_of((m[0], K, d) if per_action else (m[0], d)))
    A = np.zeros(m[1], dtype=np.int64)
    Y = np.zeros(m[2])
    return X, A, Y, ["X", "A", "Y"]


@pytest.mark.parametrize("name", POLICY_NAMES)
@FUZZ
@given(data=st.data())
def test_bad_batch_is_rejected(name, data):
    policy = fresh(name)
    X, A, Y, names = data.draw(bad_batch(policy.n_actions, policy.dim), label="batch")
    assert_rejected(policy, lambda: policy.update_batch(X, A, Y), *names)
    if names == ["X"]:  # the same bad contexts are refused by select_batch
        assert_rejected(policy, lambda: policy.select_batch(X), "X")


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_valid_float_action_indices_in_a_batch_are_accepted(name):
    """Integral floats (e.g. from a pandas column) are accepted in batches, as documented."""
    a, b = fresh(name), fresh(name)
    X = np.full((2, a.dim), 0.2)
    a.update_batch(X, np.array([1.0, 3.0]), np.array([0.5, -0.5]))
    b.update_batch(X, np.array([1, 3]), np.array([0.5, -0.5]))
    np.testing.assert_array_equal(a.posterior_mean(), b.posterior_mean())


# ---------------------------------------------------------------------------- retired actions
@pytest.mark.parametrize("name", POLICY_NAMES)
def test_select_after_every_action_is_retired_raises(name):
    policy = fresh(name)
    for i in range(policy.n_actions):
        policy.retire_action(i)
    x = np.full(policy.dim, 0.1)
    before = snapshot(policy)
    with pytest.raises(ValueError, match="retired"):
        policy.select(x)
    with pytest.raises(ValueError, match="retired"):
        policy.select_batch(np.stack([x, x]))
    assert_same_state(before, snapshot(policy))


@pytest.mark.parametrize("name", POLICY_NAMES)
def test_retire_action_out_of_range_raises(name):
    policy = fresh(name)
    for i in [-1, -policy.n_actions, policy.n_actions, 10**9, 1.0, 2.5, "0", None, True]:
        assert_rejected(policy, lambda i=i: policy.retire_action(i), "i")


# ---------------------------------------------------------------------------- other arguments
@pytest.mark.parametrize("name", POLICY_NAMES)
def test_sample_parameters_bad_arguments(name):
    policy = fresh(name)
    for n in [0, -3, 2.0, "5", None]:
        assert_rejected(policy, lambda n=n: policy.sample_parameters(n), "n")
    for seed in [-1, 1.5, "seed", [1, 2]]:
        assert_rejected(policy, lambda seed=seed: policy.sample_parameters(3, seed=seed), "seed")


@pytest.mark.parametrize("name", ["MeTS", "MeTS-per-action-cov", "FactoredMeTS", "JointTS"])
def test_add_action_bad_mixing_row(name):
    policy = fresh(name)
    L = policy.model.prior.n_effects
    d = policy.dim
    acov = None if policy.model.prior.shared_action_cov else np.eye(d)
    for row in [np.ones(L + 1), np.ones(L - 1) if L > 1 else np.ones(0), np.ones((2, L)),
                np.r_[np.nan, np.ones(L - 1)], np.r_[np.inf, np.ones(L - 1)], "ab"]:
        assert_rejected(policy, lambda row=row: policy.add_action(row, acov), "mixing_row")


@pytest.mark.parametrize("name", ["MeTS-per-action-cov", "FactoredMeTS"])
def test_add_action_bad_action_cov(name):
    policy = fresh(name)
    L, d = policy.model.prior.n_effects, policy.dim
    non_psd = np.eye(d)
    non_psd[0, 0] = -1.0
    non_sym = np.eye(d)
    non_sym[0, 1] = 0.5
    bad_nan = np.eye(d)
    bad_nan[0, 0] = np.nan
    for cov in [None, np.eye(d + 1), np.eye(d)[None], non_psd, non_sym, bad_nan]:
        assert_rejected(policy, lambda cov=cov: policy.add_action(np.ones(L), cov), "action_cov")


def test_add_action_to_lints_and_hierts_bad_arguments():
    for name in ["LinTS", "LinUCB"]:
        policy = fresh(name)
        d = policy.dim
        for mean in [np.ones(d + 1), np.full(d, np.nan), np.ones((1, d))]:
            assert_rejected(policy, lambda p=policy, m=mean: p.add_action(m), "prior_mean")
    lints = fresh("LinTS")  # per-action prior covariance
    assert_rejected(lints, lambda: lints.add_action(np.zeros(lints.dim)), "prior_cov")
    assert_rejected(lints, lambda: lints.add_action(np.zeros(lints.dim), -np.eye(lints.dim)),
                    "prior_cov")
    ucb = fresh("LinUCB")  # shared prior covariance: must not be given one
    assert_rejected(ucb, lambda: ucb.add_action(None, np.eye(ucb.dim)), "prior_cov")
    hier = fresh("HierTS")  # shared Σ0: a different one is refused
    assert_rejected(hier, lambda: hier.add_action(3 * np.eye(hier.dim)), "action_cov")


# ---------------------------------------------------------------------------- constructors
def _spd(rng, n):
    Q = rng.normal(size=(n, n))
    return Q @ Q.T / n + 0.5 * np.eye(n)


def _valid_parts(seed, K, L, d):
    rng = np.random.default_rng(seed)
    return {
        "effect_mean": rng.normal(size=(L, d)),
        "effect_cov": np.stack([_spd(rng, d) for _ in range(L)]),
        "mixing": rng.uniform(-1, 1, (K, L)),
        "action_cov": _spd(rng, d),
    }


def _not_psd(rng, n, strict_negative):
    """Symmetric with a negative eigenvalue, or exactly singular (PSD but not PD)."""
    if strict_negative:
        Q, _ = np.linalg.qr(rng.normal(size=(n, n)))
        eig = rng.uniform(0.5, 2.0, n)
        eig[rng.integers(n)] = -rng.uniform(0.1, 2.0)
        M = (Q * eig) @ Q.T
        return 0.5 * (M + M.T)
    # exactly singular: a positive definite matrix with one row and column zeroed
    M = _spd(rng, n)
    i = rng.integers(n)
    M[i, :] = 0.0
    M[:, i] = 0.0
    return M


@FUZZ
@given(data=st.data())
def test_prior_rejects_bad_arguments(data):
    seed = data.draw(st.integers(0, 2**16), label="seed")
    K, L, d = (data.draw(st.integers(1, 5), label=s) for s in "KLd")
    rng = np.random.default_rng(seed)
    parts = _valid_parts(seed, K, L, d)
    MixedEffectPrior(**parts)  # the unmodified parts are valid
    kind = data.draw(st.sampled_from([
        "effect_cov-not-psd", "effect_cov-full-not-psd", "effect_cov-not-symmetric",
        "effect_cov-full-not-symmetric", "action_cov-not-psd", "action_cov-per-action-not-psd",
        "action_cov-not-symmetric", "mixing-columns", "mixing-sparse-columns", "mixing-nan",
        "mixing-sparse-nan", "action_cov-shape", "effect_cov-shape", "effect_mean-nan",
        "effect_cov-nan", "mixing-ndim",
    ]), label="kind")
    arg = kind.split("-")[0]
    if kind == "effect_cov-not-psd":
        cov = parts["effect_cov"].copy()
        cov[rng.integers(L)] = _not_psd(rng, d, data.draw(st.booleans()))
        parts["effect_cov"] = cov
    elif kind == "effect_cov-full-not-psd":
        parts["effect_cov"] = _not_psd(rng, L * d, data.draw(st.booleans()))
    elif kind in ("effect_cov-not-symmetric", "effect_cov-full-not-symmetric"):
        if (d == 1 and kind == "effect_cov-not-symmetric") or L * d == 1:
            d = 2
            parts = _valid_parts(seed, K, L, d)
        full = np.kron(np.eye(L), np.eye(d)) + 0.1 if "full" in kind else None
        cov = full if full is not None else parts["effect_cov"].copy()
        n = cov.shape[-1]
        i, j = rng.choice(n, 2, replace=False)
        eps = data.draw(st.floats(1e-6, 1.0))
        target = cov if cov.ndim == 2 else cov[rng.integers(L)]
        target[i, j] += eps * max(1.0, abs(target[i, j]))
        parts["effect_cov"] = cov
    elif kind == "action_cov-not-psd":
        parts["action_cov"] = _not_psd(rng, d, data.draw(st.booleans()))
    elif kind == "action_cov-per-action-not-psd":
        covs = np.stack([_spd(rng, d) for _ in range(K)])
        covs[rng.integers(K)] = _not_psd(rng, d, data.draw(st.booleans()))
        parts["action_cov"] = covs
    elif kind == "action_cov-not-symmetric":
        d = max(d, 2)
        parts = _valid_parts(seed, K, L, d)
        cov = parts["action_cov"].copy()
        cov[0, 1] += data.draw(st.floats(1e-6, 1.0))
        parts["action_cov"] = cov
    elif kind in ("mixing-columns", "mixing-sparse-columns"):
        L2 = data.draw(st.integers(1, 6).filter(lambda v: v != L))
        B = rng.uniform(-1, 1, (K, L2))
        parts["mixing"] = sp.csr_matrix(B) if "sparse" in kind else B
    elif kind in ("mixing-nan", "mixing-sparse-nan"):
        B = parts["mixing"].copy()
        B[rng.integers(K), rng.integers(L)] = data.draw(st.sampled_from(BAD_VALUES))
        parts["mixing"] = sp.csr_matrix(B) if "sparse" in kind else B
    elif kind == "mixing-ndim":
        parts["mixing"] = parts["mixing"].reshape(-1)
    elif kind == "action_cov-shape":
        shape = data.draw(st.sampled_from([
            (d + 1, d + 1), (K + 1, d, d), (K, d + 1, d + 1), (d,), (1, K, d, d), (d, 2 * d),
        ]))
        parts["action_cov"] = np.broadcast_to(np.eye(shape[-1]), shape) if len(shape) > 1 \
            else np.ones(shape)
    elif kind == "effect_cov-shape":
        shape = data.draw(st.sampled_from([
            (L + 1, d, d), (L, d + 1, d + 1), (L * d + 1, L * d + 1), (d,), (1, L, d, d),
        ]))
        parts["effect_cov"] = np.broadcast_to(np.eye(shape[-1]), shape) if len(shape) > 1 \
            else np.ones(shape)
    elif kind == "effect_mean-nan":
        mean = parts["effect_mean"].copy()
        mean[rng.integers(L), rng.integers(d)] = data.draw(st.sampled_from(BAD_VALUES))
        parts["effect_mean"] = mean
    elif kind == "effect_cov-nan":
        cov = parts["effect_cov"].copy()
        cov[rng.integers(L), rng.integers(d), rng.integers(d)] = np.nan
        parts["effect_cov"] = cov
    with pytest.raises(ValueError) as info:
        MixedEffectPrior(**parts)
    assert str(info.value).startswith(arg), (kind, str(info.value))


@pytest.mark.parametrize(
    "make, name",
    [
        (lambda: HierTS(0, np.zeros(2), np.eye(2), np.eye(2)), "n_actions"),
        (lambda: HierTS(3, np.zeros(2), np.eye(3), np.eye(2)), "effect_cov"),
        (lambda: HierTS(3, np.zeros(2), -np.eye(2), np.eye(2)), "effect_cov"),
        (lambda: HierTS(3, np.zeros(2), np.eye(2), np.eye(2), noise_std=0.0), "noise_std"),
        (lambda: HierTS(3, np.zeros(2), np.eye(2), np.eye(2), noise_std=np.nan), "noise_std"),
        (lambda: HierTS(3, np.zeros(2), np.eye(2), np.eye(2), refactor_every=-1),
         "refactor_every"),
        (lambda: HierTS(3, np.zeros(2), np.eye(2), np.eye(2), seed=-1), "seed"),
        (lambda: HierTS(3, np.zeros(2), np.eye(2), np.eye(2), seed=1.5), "seed"),
        (lambda: LinTS(np.zeros((3, 2)), np.eye(3)), "prior_cov"),
        (lambda: LinTS(np.zeros((3, 2)), np.ones((2, 2))), "prior_cov"),
        (lambda: LinTS(np.zeros(3), np.eye(2)), "prior_mean"),
        (lambda: LinTS(np.full((3, 2), np.nan), np.eye(2)), "prior_mean"),
        (lambda: LinUCB(3, 0), "dim"),
        (lambda: LinUCB(3, 2, alpha=-1.0), "alpha"),
        (lambda: LinUCB(3, 2, regularization=0), "regularization"),
        (lambda: LinUCB(3, 2, width="wide"), "width"),
        (lambda: LinUCB(3, 2, width="abbasi-yadkori", delta=1.5), "delta"),
    ],
)
def test_constructors_reject_bad_arguments(make, name):
    with pytest.raises(ValueError) as info:
        make()
    assert str(info.value).startswith(name), str(info.value)
