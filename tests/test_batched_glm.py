"""GLM policies stepped across runs: ``BatchedGLMModel`` (models/batched_glm.py) and the fit it
shares with the one-run models (models/newton.py, the distinct-row histories of
models/laplace.py).

The one-run policies are the oracle: R runs stepped together take, round after round, the
actions of the R one-run policies fed the same contexts and rewards, with the same posteriors
(1e-9) and the same generator states, for every GLM policy and every Laplace method. The fit is
checked against :func:`mixedts.likelihoods.laplace_fit` (the reference iterates) and a fit on
the raw, repeated rows; bad input leaves the batch untouched. All seeds are fixed.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from scipy.special import expit

from conftest import make_prior
from mixedts import GLMTS, UCBGLM, FactoredMeTS, HierTS, MeTS, MixedEffectPrior, ValidationError
from mixedts.environments import MixedEffectEnvironment
from mixedts.evaluation import PolicySpec, simulate
from mixedts.evaluation.lockstep import LockstepPolicies
from mixedts.likelihoods import Logistic, laplace_fit
from mixedts.models.batched import BatchedLinearGaussianModel
from mixedts.models.batched_glm import BatchedGLMModel
from mixedts.models.laplace import LaplaceFitter
from mixedts.models.newton import newton_fit

R, K, D = 3, 6, 2


def rel_err(a, b):
    return np.max(np.abs(a - b)) / max(1e-300, np.max(np.abs(b)))


def _policy(kind: str, r: int, zero_rows: bool = False, **options):
    """Run r's one-run policy of ``kind`` (each run its own prior and seed); ``zero_rows``:
    actions 0 and 1 have no effects."""
    prior = make_prior(30 + r, K, 3, D, "dense", "per-action" if r == 1 else "shared",
                       "block" if kind == "FactoredMeTS" else "full")
    if zero_rows:
        B = prior.mixing.toarray()
        B[:2] = 0.0
        prior = MixedEffectPrior(prior.effect_mean, prior.effect_cov, B, prior.action_cov)
    seed = np.random.default_rng(100 + r)
    glm = {"likelihood": "logistic", "refactor_every": 9, **options}
    if kind == "MeTS":
        return MeTS(prior, seed=seed, **glm)
    if kind == "FactoredMeTS":
        return FactoredMeTS(prior, seed=seed, **glm)
    if kind == "HierTS":
        return HierTS.from_prior(prior, seed=seed, **glm)
    if kind == "GLMTS":
        return GLMTS.from_prior(prior, seed=seed, **options)
    return UCBGLM(K, D, alpha=0.5 + r, seed=seed, **options)


CASES = [
    ("MeTS", {}), ("MeTS", {"laplace_at": "likelihood"}),
    ("MeTS", {"laplace": "minibatch", "laplace_batch": 5}), ("MeTS", {"laplace": "online"}),
    ("FactoredMeTS", {"laplace_at": "likelihood"}),
    # rows without effects: the factored model recomputes its effects exactly
    ("FactoredMeTS", {"zero_rows": True}), ("MeTS", {"zero_rows": True}),
    ("FactoredMeTS", {"laplace": "minibatch", "laplace_batch": 5}),
    ("HierTS", {}), ("HierTS", {"laplace": "online"}),
    ("GLMTS", {}), ("GLMTS", {"laplace_at": "likelihood"}), ("GLMTS", {"laplace": "online"}),
    ("GLMTS", {"laplace": "minibatch", "laplace_batch": 5}),
    ("UCBGLM", {"score": "probability"}), ("UCBGLM", {}),
]


def _lockstep_vs_policies(kind, options, rounds=90, pool=True):
    """R one-run policies and the lockstep built from copies of them, fed the same rounds:
    contexts from a small pool (so that rows repeat and the histories merge them), Bernoulli
    rewards of fixed true parameters."""
    policies = [_policy(kind, r, **options) for r in range(R)]
    lock = LockstepPolicies.from_policies(copy.deepcopy(policies))
    assert isinstance(lock.model, BatchedGLMModel)
    rng = np.random.default_rng(7)
    theta = rng.normal(size=(R, K, D)) * 1.5
    contexts = rng.uniform(-1, 1, (4, D))
    acts_l, acts_p = [], []
    for _ in range(rounds):
        X = contexts[rng.integers(4, size=(R, K))] if pool else rng.uniform(-1, 1, (R, K, D))
        u = rng.uniform(size=R)
        A = lock.select(X)
        Y = (u < expit(np.einsum("rd,rd->r", X[np.arange(R), A], theta[np.arange(R), A])))
        lock.update(X, A, Y.astype(float))
        row = []
        for r, p in enumerate(policies):
            a = p.select(X[r])
            p.update(X[r], a, float(u[r] < expit(X[r, a] @ theta[r, a])))
            row.append(a)
        acts_l.append(A)
        acts_p.append(row)
    return lock, policies, np.array(acts_l), np.array(acts_p)


@pytest.mark.parametrize("kind, options", CASES)
def test_lockstep_takes_the_one_run_glm_policies_actions(kind, options):
    """The same refits, pseudo-observations, square roots and draws: the same actions, the
    same posteriors, the same generator states (minibatch draws included)."""
    lock, policies, acts_l, acts_p = _lockstep_vs_policies(kind, options)
    assert np.array_equal(acts_l, acts_p)
    assert len(np.unique(acts_l)) > 2
    mean, cov = lock.action_posterior()
    for r, p in enumerate(policies):
        assert rel_err(mean[r], p.posterior_mean()) < 1e-9
        assert rel_err(cov[r], p.posterior_cov()) < 1e-9
        assert lock.rngs[r].bit_generator.state == p.rng.bit_generator.state
        if kind in ("MeTS", "FactoredMeTS", "HierTS"):
            assert rel_err(lock.effect_posterior()[1][r], p.effect_posterior()[1]) < 1e-9


def test_repeated_rows_are_merged_and_fit_as_the_raw_rows():
    """The exact method keeps an action's distinct rows with their counts; the fit on them is
    laplace_fit on every row (the oracle), and the batch keeps the same table as the one-run
    fitter."""
    lock, policies, acts, _ = _lockstep_vs_policies("MeTS", {"laplace_at": "likelihood"}, 60)
    fitter = policies[0].model.fitter
    a = int(np.bincount(acts[:, 0]).argmax())
    X, y, w = fitter.rows(a)
    assert w.sum() > len(w)  # rows were repeated
    assert len(np.unique(np.c_[X, y], axis=0)) == len(y)
    bx, by, bw = lock.model.fitter.rows(0, a)
    assert np.array_equal(bx, X) and np.array_equal(by, y) and np.array_equal(bw, w)
    Xr, yr = fitter.history(a)
    assert len(yr) == w.sum()
    mode, _, _ = laplace_fit(Logistic(), Xr, yr, np.zeros(len(yr), dtype=int), 1,
                             np.zeros((1, D)), ridge=fitter.ridge, tol=1e-13)
    assert rel_err(fitter.modes[a], mode[0]) < 1e-7
    # a batch update merges several new rows into the table at once, in order
    new_X = np.r_[X[:1], [[9.0, 9.0]], X[:1], [[9.0, 9.0]]]
    table = fitter.merged(a, new_X, np.r_[y[:1], 1, y[:1], 1])
    assert np.array_equal(table[2], np.r_[w[0] + 2, w[1:], 2])
    assert np.array_equal(table[0][-1], [9.0, 9.0]) and len(table[2]) == len(w) + 1


def test_newton_fit_is_laplace_fit():
    """The fused one-pass fit against the reference: many segments of very different sizes
    (one row, separable ones, weights, a matrix penalty and a centre), to 1e-8."""
    rng = np.random.default_rng(0)
    for trial in range(4):
        S, d = 9, 3
        counts = np.r_[1, 2, rng.integers(1, 60, S - 2)]
        seg = np.repeat(np.arange(S), counts)
        X = rng.normal(size=(len(seg), d))
        y = (rng.uniform(size=len(seg)) < 0.5).astype(float)
        y[seg == 1] = 1.0  # a separable segment
        w = rng.integers(1, 4, len(seg)).astype(float) if trial % 2 else None
        P = 1e-3 if trial < 2 else np.stack([np.eye(d) * (1 + s) for s in range(S)])
        c = None if trial < 2 else rng.normal(size=(S, d))
        init = rng.normal(size=(S, d))
        got = newton_fit(Logistic(), X, y, seg, S, init, P, 1e-10, 100, w, c)
        want = laplace_fit(Logistic(), X, y, seg, S, init, P, 1e-13, 200, w, c)
        assert rel_err(got[0], want[0]) < 1e-8
        assert rel_err(got[1], want[1]) < 1e-8
        # a segment's fit does not depend on the others
        alone = newton_fit(Logistic(), X[seg == 4], y[seg == 4], np.zeros(counts[4], int), 1,
                           init[4:5], P if np.ndim(P) == 0 else P[4:5], 1e-10, 100,
                           None if w is None else w[seg == 4], None if c is None else c[4:5])
        assert np.array_equal(alone[0][0], got[0][4]) and np.array_equal(alone[1][0], got[1][4])
    with pytest.raises(ValueError, match="segment"):
        newton_fit(Logistic(), X, y, seg, S + 1, np.zeros((S + 1, d)))


def test_a_glm_run_does_not_depend_on_its_batch():
    """Run r batched with others or alone: the same actions (the fit's segments, the draws
    and the exact recomputes are per run)."""
    env = MixedEffectEnvironment(8, 3, 2, contexts="pool", reward="logistic", pool_size=5)
    specs = {"meTS-GLM": PolicySpec("MeTS", {"likelihood": "logistic"}),
             "Fa": PolicySpec("FactoredMeTS", {"likelihood": "logistic",
                                               "laplace_at": "likelihood"}),
             "UCB-GLM": PolicySpec("UCBGLM", {"alpha": 1.0, "score": "probability"})}
    many = simulate(env, specs, horizon=60, n_runs=4, seed=3, quiet=True)
    few = simulate(env, specs, horizon=60, n_runs=2, seed=3, quiet=True)
    seq = simulate(env, specs, horizon=60, n_runs=4, seed=3, quiet=True, vectorize=False)
    cols = ["policy", "run", "round", "action", "reward"]
    head = many.frame[many.frame["run"] < 2][cols].reset_index(drop=True)
    assert head.equals(few.frame[cols].reset_index(drop=True))
    assert many.frame[cols].equals(seq.frame[cols])


def test_from_models_continues_glm_models():
    """A batch built from trained one-run models (modes, merged rows, square roots, cadence)
    goes on exactly as they do."""
    policies = [_policy("MeTS", r) for r in range(R)]
    rng = np.random.default_rng(3)
    for _ in range(25):
        for p in policies:
            x = rng.uniform(-1, 1, D).round(1)
            p.update(x, int(rng.integers(K)), float(rng.integers(2)))
    acts_l, acts_p = [], []
    lock = LockstepPolicies.from_policies(copy.deepcopy(policies))
    for _ in range(40):
        X = rng.uniform(-1, 1, (R, K, D)).round(1)
        A = lock.select(X)
        Y = rng.integers(2, size=R).astype(float)
        lock.update(X, A, Y)
        acts_p.append([p.select(X[r]) for r, p in enumerate(policies)])
        for r, p in enumerate(policies):
            p.update(X[r], acts_p[-1][r], Y[r])
        acts_l.append(A)
    assert np.array_equal(np.array(acts_l), np.array(acts_p))
    mean, _ = lock.action_posterior()
    for r, p in enumerate(policies):
        assert rel_err(mean[r], p.posterior_mean()) < 1e-9


def test_what_cannot_be_batched_is_refused():
    prior = make_prior(0, K, 3, D)
    assert BatchedGLMModel.from_models([MeTS(prior, likelihood="logistic", binarize=True).model]) \
        is None  # its Bernoulli conversions draw between the runs' draws
    assert BatchedGLMModel.from_models([GLMTS.from_prior(prior, diagonal=True).model]) is None
    assert BatchedGLMModel.from_models([MeTS(prior).model]) is None  # Gaussian: the other engine
    assert BatchedLinearGaussianModel.from_models([MeTS(prior, likelihood="logistic").model]) \
        is None
    two = [MeTS(prior, likelihood="logistic").model,
           MeTS(prior, likelihood="logistic", laplace="online").model]
    assert BatchedGLMModel.from_models(two) is None  # one set of Laplace options
    assert LockstepPolicies.from_policies([UCBGLM(K, D, alpha=1.0)]) is not None


def _state(model):
    out = {k: np.array(v) for k, v in vars(model).items() if isinstance(v, np.ndarray)}
    out.update({f"fit.{k}": np.array(v) for k, v in vars(model.fitter).items()
                if isinstance(v, np.ndarray)})
    if model.effects is not None:
        out.update({f"eff.{k}": np.array(v) for k, v in vars(model.effects).items()})
    return out


@pytest.mark.parametrize("bad, name", [
    ((np.ones((R, D)), np.array([0, 1, 2]), np.array([1.0, 0.5, 0.0])), "Y"),
    ((np.ones((R, D)), np.array([0, 1, 7]), np.array([1.0, 1.0, 0.0])), "A"),
    ((np.ones((R, D + 1)), np.array([0, 1, 2]), np.array([1.0, 1.0, 0.0])), "X"),
    ((np.ones((R, D)), np.array([0, 1]), np.array([1.0, 1.0, 0.0])), "A"),
])
def test_bad_update_raises_and_leaves_the_batch_and_generators(bad, name):
    lock, _, _, _ = _lockstep_vs_policies("MeTS", {"laplace": "minibatch",
                                                    "laplace_batch": 3}, 20)
    before = _state(lock.model)
    rng_before = [copy.deepcopy(g.bit_generator.state) for g in lock.rngs]
    with pytest.raises(ValidationError, match=name):
        lock.update(*bad)
    after = _state(lock.model)
    assert before.keys() == after.keys()
    for k in before:
        assert np.array_equal(before[k], after[k]), k
    assert [g.bit_generator.state for g in lock.rngs] == rng_before
    with pytest.raises(ValidationError, match="rngs"):
        lock.model.update(np.ones((R, D)), np.zeros(R, dtype=int), np.ones(R))


def test_laplace_fitter_reads_files_saved_without_counts():
    fitter = LaplaceFitter(Logistic(), 2)
    X, y = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), np.array([1.0, 1.0, 0.0])
    fitter.load_state({"laplace.actions": np.array([3]), "laplace.modes": np.zeros((1, 2)),
                       "laplace.hist_actions": np.array([3]),
                       "laplace.hist_counts": np.array([3]), "laplace.hist_X": X,
                       "laplace.hist_y": y})
    assert np.array_equal(fitter.history(3)[0], X)
    assert fitter.rows(3)[2].tolist() == [1.0, 1.0, 1.0]
