"""The inputs of the many-runs engine: validated stacked arrays, from arguments or one-run models.

:func:`check_arguments` validates the arguments of
:class:`~mixedts.models.batched.BatchedLinearGaussianModel` (every error names its argument);
:func:`runs_of` reads what a one-run model is (prior, noise, factored flag, refactor cadence and
data) as the arrays of one run, or says that it cannot be batched; :func:`glm_runs_of` does the
same for the GLM models (plus their Laplace options, modes and histories).
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np

from .._validation import (
    ValidationError,
    as_float_array,
    check_int,
    check_shape,
    check_symmetric_psd,
)
from .actions import ActionStore
from .glm import GLMUCBModel
from .independent import IndependentGaussianModel
from .joint import JointGaussianModel
from .mixed_effect import MixedEffectModel


def _sym(a: np.ndarray) -> np.ndarray:
    return 0.5 * (a + np.swapaxes(a, -1, -2))


def _n_actions(acov, mix, am, n_actions) -> int:
    """K from whichever argument has an action axis; all of them must agree."""
    sizes: dict[str, int] = {}
    if acov.ndim == 4:
        sizes["action_cov"] = acov.shape[1]
    if mix is not None:
        sizes["mixing"] = mix.shape[1]
    if am is not None:
        sizes["action_mean"] = am.shape[1]
    if n_actions is not None:
        sizes["n_actions"] = check_int(n_actions, "n_actions", low=1)
    if not sizes:
        raise ValidationError(
            "n_actions is required when no argument has an action axis "
            "(shared action_cov, no mixing, no action_mean)"
        )
    K = next(iter(sizes.values()))
    for name, k in sizes.items():
        if k != K:
            raise ValidationError(f"{name} has {k} actions, expected {K} ({sizes})")
    if K < 1:
        raise ValidationError("there must be at least one action")
    return K


def _effect_cov(cov: np.ndarray, R: int, L: int, d: int, factored: bool) -> np.ndarray:
    """Σ_Ψ as the engine keeps it: blocks (R, L, d, d) when factored, else (R, L·d, L·d)."""
    if cov.ndim == 4:
        check_shape(cov, (R, L, d, d), "effect_cov")
        check_symmetric_psd(cov, "effect_cov")
        cov = _sym(cov)
        if factored:
            return cov
        full = np.zeros((R, L, d, L, d))
        full[:, np.arange(L), :, np.arange(L), :] = np.moveaxis(cov, 1, 0)
        return full.reshape(R, L * d, L * d)
    check_shape(cov, (R, L * d, L * d), "effect_cov")
    check_symmetric_psd(cov, "effect_cov")
    cov = _sym(cov)
    if not factored:
        return cov
    blocks = cov.reshape(R, L, d, L, d)
    diag = blocks[:, np.arange(L), :, np.arange(L), :]  # (L, R, d, d)
    off = blocks.copy()
    off[:, np.arange(L), :, np.arange(L), :] = 0.0
    if np.any(off != 0.0):
        raise ValidationError(
            "effect_cov must be block-diagonal (one (d, d) block per effect) with factored=True"
        )
    return np.ascontiguousarray(np.moveaxis(diag, 0, 1))


def check_arguments(action_cov, noise_std, mixing, effect_mean, effect_cov, action_mean,
                    factored: bool, refactor_every, n_actions) -> SimpleNamespace:
    """Validated, copied arrays: ``acov`` (R, K, d, d), ``noise`` (R,), ``mixing`` (R, K, L)
    (L = 0 without effects), ``effect_mean`` (R, L, d), ``effect_cov`` (see
    :func:`_effect_cov`), ``offset`` (R, K, d) and ``every`` (R,) int."""
    acov = as_float_array(action_cov, "action_cov", ndim=(3, 4))
    R, d = acov.shape[0], acov.shape[-1]
    if R < 1 or d < 1:
        raise ValidationError(
            f"action_cov must have shape (R, K, d, d) or (R, d, d) with R, d >= 1, got "
            f"{acov.shape}"
        )
    check_symmetric_psd(acov, "action_cov")
    mix = None if mixing is None else as_float_array(mixing, "mixing", ndim=3)
    am = None if action_mean is None else as_float_array(action_mean, "action_mean", ndim=3)
    K = _n_actions(acov, mix, am, n_actions)
    if acov.ndim == 4:
        check_shape(acov, (R, K, d, d), "action_cov")
    acov = np.array(np.broadcast_to(_sym(acov)[:, None] if acov.ndim == 3 else _sym(acov),
                                    (R, K, d, d)))

    noise = as_float_array(noise_std, "noise_std", ndim=(0, 1))
    noise = np.broadcast_to(noise, (R,)) if noise.ndim == 0 else noise
    check_shape(noise, (R,), "noise_std")
    if np.any(noise <= 0):
        raise ValidationError("noise_std must be positive")

    if mix is None:
        if effect_mean is not None or effect_cov is not None:
            raise ValidationError("effect_mean / effect_cov need mixing (None means L = 0)")
        mix, mu, cov = np.zeros((R, K, 0)), np.zeros((R, 0, d)), None
    else:
        check_shape(mix, (R, K, None), "mixing")
        L = mix.shape[2]
        if effect_mean is None or effect_cov is None:
            raise ValidationError("mixing needs effect_mean and effect_cov")
        mu = as_float_array(effect_mean, "effect_mean", ndim=3)
        check_shape(mu, (R, L, d), "effect_mean")
        cov = _effect_cov(as_float_array(effect_cov, "effect_cov", ndim=(3, 4)), R, L, d,
                          factored and L > 0)
    if am is None:
        am = np.zeros((R, K, d))
    check_shape(am, (R, K, d), "action_mean")

    every = np.asarray(refactor_every)
    if every.ndim == 0:
        every = np.full(R, check_int(refactor_every, "refactor_every", low=0))
    else:
        check_shape(every, (R,), "refactor_every")
        every = np.array([check_int(e, "refactor_every", low=0) for e in every.tolist()])
    return SimpleNamespace(
        acov=acov, noise=np.array(noise, dtype=np.float64), mixing=np.array(mix, order="C"),
        effect_mean=np.array(mu), effect_cov=cov, offset=np.array(am),
        every=every.astype(np.int64),
    )


def runs_of(model: Any) -> dict[str, Any] | None:
    """One run's arrays from a one-run model, or None when it cannot be batched.

    Keys: ``kind``, ``factored``, ``acov`` (K, d, d), ``noise``, ``every``, ``mixing`` (K, L),
    ``effect_mean`` (L, d), ``effect_cov`` ((L·d, L·d), or blocks (L, d, d) when factored),
    ``offset`` (K, d), and the data: ``G`` (K, d, d), ``db`` (K, d) (b minus its prior part),
    ``observed`` (K,) and ``since`` (updates since its last refactor).
    """
    if isinstance(model, (MixedEffectModel, IndependentGaussianModel)):
        if model.fitter is not None:  # GLM rewards: Laplace refits, see glm_runs_of
            return None
    elif not isinstance(model, JointGaussianModel):
        return None
    return _linear_parts(model)


def _store_data(store: ActionStore, K: int, d: int):
    """G (K, d, d), b minus its prior part (K, d) and the observed flags (K,) of a store."""
    G, db, observed = np.zeros((K, d, d)), np.zeros((K, d)), np.zeros(K, dtype=bool)
    n = store.n
    acts = store.actions[:n]
    G[acts], observed[acts] = store.G[:n], True
    db[acts] = store.b[:n] - store.prior_b(acts)
    return G, db, observed


def _linear_parts(model: Any) -> dict[str, Any]:
    if isinstance(model, (MixedEffectModel, IndependentGaussianModel)):
        K, d = model.n_actions, model.dim
        G, db, observed = _store_data(model.store, K, d)
        if isinstance(model, IndependentGaussianModel):
            acov = np.broadcast_to(model.prior_cov, (K, d, d))
            return {"kind": "independent", "factored": False, "acov": acov,
                    "noise": model.noise_std, "every": model.refactor_every,
                    "mixing": np.zeros((K, 0)), "effect_mean": np.zeros((0, d)),
                    "effect_cov": np.zeros((0, 0)), "offset": model.prior_mean, "G": G,
                    "db": db, "observed": observed, "since": model._since_refactor}
        prior, factored = model.prior, model.factored
    else:
        prior, factored = model.prior, False
        G, db = model.G, model.b
        observed = np.any(G != 0, axis=(1, 2)) | np.any(db != 0, axis=1)
    K, d = prior.n_actions, prior.dim
    return {"kind": type(model).__name__, "factored": factored,
            "acov": np.broadcast_to(np.asarray(prior.action_cov), (K, d, d)),
            "noise": model.noise_std, "every": model.refactor_every,
            "mixing": prior.mixing.toarray(), "effect_mean": np.asarray(prior.effect_mean),
            "effect_cov": prior.effect_cov_blocks() if factored else prior.effect_cov_full(),
            "offset": np.zeros((K, d)), "G": G, "db": db, "observed": observed,
            "since": model._since_refactor}


def glm_runs_of(model: Any) -> dict[str, Any] | None:
    """One run's arrays from a one-run GLM model, or None when it cannot be batched.

    Batchable: :class:`~mixedts.models.MixedEffectModel` (meTS-GLM, meTS-GLM-Fa, HierTS-GLM)
    and :class:`~mixedts.models.IndependentGaussianModel` (GLM-TS with a full covariance)
    with a GLM likelihood, and :class:`~mixedts.models.glm.GLMUCBModel` (UCB-GLM); not with
    ``binarize`` (its Bernoulli draws would come between the runs' other draws).

    The keys of :func:`runs_of` (``noise`` 1: unused by Laplace pseudo-observations; UCB-GLM's
    design matrix is the Gaussian store of unit noise) and ``design`` (UCB-GLM),
    ``likelihood``, ``laplace`` (the fitter's options), ``laplace_at``, and the fitter's data:
    ``modes`` (K, d), ``fitted`` (K,) and the stored rows ``hist_X`` (n, d), ``hist_y``,
    ``hist_w``, ``hist_a`` (n,) (each action's rows in their order, with their counts);
    mixed-effect models also ``effects``, their effect posterior's (C, h, mean).

    Examples
    --------
    >>> from mixedts import UCBGLM
    >>> policy = UCBGLM(3, 2)
    >>> policy.update(np.ones(2), 1, 1)
    >>> parts = glm_runs_of(policy.model)
    >>> parts["kind"], parts["fitted"].tolist(), parts["hist_w"].tolist()
    ('ucb', [False, True, False], [1.0])
    """
    if isinstance(model, GLMUCBModel):
        K, d = model.n_actions, model.dim
        G, db, observed = _store_data(model.store, K, d)
        parts = {"kind": "ucb", "factored": False,
                 "acov": np.broadcast_to(model.store.action_cov, (K, d, d)), "noise": 1.0,
                 "every": 0, "mixing": np.zeros((K, 0)), "effect_mean": np.zeros((0, d)),
                 "effect_cov": np.zeros((0, 0)), "offset": np.zeros((K, d)), "G": G, "db": db,
                 "observed": observed, "since": 0, "design": True, "laplace_at": "likelihood"}
    elif isinstance(model, (MixedEffectModel, IndependentGaussianModel)) and (
            model.fitter is not None):
        parts = _linear_parts(model)
        parts.update(noise=1.0, design=False, laplace_at=model.laplace_at)
        if isinstance(model, IndependentGaussianModel):  # its GLM updates never refactor
            parts.update(every=0, since=0)
        else:  # the square root itself, so that the draws continue the model's
            parts["effects"] = (model.effects.C, model.effects.h, model.effects.mean)
    else:
        return None
    fitter = model.fitter
    if getattr(model.likelihood, "binarize", False):
        return None
    K, d = parts["G"].shape[0], parts["G"].shape[-1]
    modes, fitted = np.zeros((K, d)), np.zeros(K, dtype=bool)
    for a, mode in fitter.modes.items():  # the fitted actions (none for a fresh model)
        modes[a], fitted[a] = mode, True
    hist = [(a, *fitter.rows(a)) for a in sorted(fitter._hist)]
    parts.update(
        likelihood=model.likelihood,
        laplace={k: v for k, v in fitter.config().items()
                 if k in ("method", "batch_size", "ridge", "tol", "max_iter")},
        modes=modes, fitted=fitted,
        hist_X=np.concatenate([h[1] for h in hist]) if hist else np.zeros((0, d)),
        hist_y=np.concatenate([h[2] for h in hist]) if hist else np.zeros(0),
        hist_w=np.concatenate([h[3] for h in hist]) if hist else np.zeros(0),
        hist_a=np.concatenate([np.full(len(h[2]), h[0]) for h in hist]) if hist else
        np.zeros(0, dtype=np.int64),
    )
    return parts
