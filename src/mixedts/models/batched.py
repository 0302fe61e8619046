"""R linear-Gaussian posteriors in stacked arrays: the one-run models with a leading runs axis.

Experiments repeat a policy over many seeded runs, and stepping each run's model in Python
costs a fixed ~0.1 ms of interpreter overhead per round and run, which dominates at small K,
L, d. :class:`BatchedLinearGaussianModel` holds the posteriors of R runs (each its own problem:
its own prior, noise and refactor cadence) and advances all of them with one batched pass.

It is not a second copy of the algebra. Every formula is a function of
:mod:`~mixedts.models.linear_gaussian` (the per-action conditional posteriors, the effect
information of eq. 7 / eq. 43, the scores given the effects, the marginals of eq. 16) and the
effect posterior is the square-root Gaussian of :mod:`~mixedts.models.gaussian` (draws
Ψ = μ̄ + C z, Potter rank-one updates) — the calls ``MixedEffectModel`` and
``IndependentGaussianModel`` make. What this class adds is storage: every action of every run
is materialised densely and component-major (``COLUMNS``: (d, d, R, K), so that the per-round
products run over the long R·K axis), the effect posterior is a stack (R, L·d, L·d) or
(R, L, d, d) (factored), and the refactors are run by run.

Like every model it never chooses: it offers the summaries of ``SCORE_DRAWS`` for all runs at
once, each (R, K); :class:`mixedts.evaluation.lockstep.LockstepPolicies` applies the runs'
decision rules. ``sample_scores(X, rngs)`` draws, per run r, ``rngs[r].standard_normal(L·d)``
(when L > 0) then ``rngs[r].standard_normal(K)`` and transforms them as the one-run models do,
and a run refactors after max(refactor_every, observed actions) updates as they do, so a run
of a batch takes the actions of its one-run model up to rounding (a ``JointGaussianModel``'s
exact posterior is held in this form too: the same law, drawn through the effects).

The model of run r (docs/math.md §1, with an action-mean offset ν)::

    Ψ_r ~ N(μ_Ψ[r], Σ_Ψ[r]),   θ_{r,i} | Ψ_r ~ N(ν[r,i] + Γ_{r,i} Ψ_r, Σ0[r,i]),
    y = xᵀ θ_{r,a} + N(0, σ_r²),   Γ_{r,i} Ψ = Σ_l B[r,i,l] ψ_l   (L may be 0)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validation import ValidationError, as_float_array, check_actions, check_shape
from ..linalg import sym_inv
from .base import SCORE_DRAWS
from .batched_inputs import check_arguments, runs_of
from .gaussian import BlockSqrtGaussian, SqrtGaussian
from .linear_gaussian import (
    COLUMNS,
    conditional_mean,
    conditional_posterior,
    conditional_scores,
    draw_scores,
    effect_information,
    effect_prior,
    effect_score_var,
    effect_terms,
    marginal_cov,
    mix_cov,
    observe,
    sufficient_statistics,
)

__all__ = ["BatchedContexts", "BatchedLinearGaussianModel"]


def _to_cm(a: np.ndarray, nvec: int) -> np.ndarray:
    """(R, K, *c) with ``nvec`` trailing component axes -> contiguous (*c, R, K), a copy."""
    return np.array(np.moveaxis(a, (0, 1), (nvec, nvec + 1)), order="C")


def _from_cm(a: np.ndarray, nvec: int) -> np.ndarray:
    """(*c, R, K) -> contiguous (R, K, *c), a copy (never a view of the state)."""
    return np.array(np.moveaxis(a, (nvec, nvec + 1), (0, 1)), order="C")


class BatchedContexts:
    """One round's validated contexts of the R runs, component-major (d, R, K).

    :meth:`BatchedLinearGaussianModel.contexts` makes them; every summary takes them in place
    of raw contexts, so that a round's summaries validate and convert its contexts once.
    """

    __slots__ = ("columns",)

    def __init__(self, columns: np.ndarray) -> None:
        self.columns = columns


class BatchedLinearGaussianModel:
    """The posteriors of R independent runs of a mixed-effect (or independent) linear bandit.

    Parameters
    ----------
    action_cov : ndarray, shape (R, K, d, d) or (R, d, d)
        Σ0 per run and action, or one per run shared by its actions (symmetric positive
        definite). R is its leading axis.
    noise_std : float or ndarray, shape (R,)
        Reward noise σ_r (> 0).
    mixing : ndarray, shape (R, K, L), optional
        Dense mixing weights b_i of every run (None: no effects, L = 0: each action is an
        independent Bayesian linear regression, LinTS's model).
    effect_mean : ndarray, shape (R, L, d), optional
        μ_Ψ; required with ``mixing``.
    effect_cov : ndarray, shape (R, L·d, L·d) or (R, L, d, d), optional
        Σ_Ψ, full (effects stacked effect by effect) or its diagonal blocks; required with
        ``mixing``. Blocks mean a block-diagonal Σ_Ψ.
    action_mean : ndarray, shape (R, K, d), optional
        The offset ν of the action means (default 0).
    factored : bool
        meTS-Fa's effect posterior (docs/math.md §3, eq. 43): L independent blocks. Needs a
        block-diagonal Σ_Ψ (given as blocks, or full with zero off-diagonal blocks).
    refactor_every : int or ndarray of int, shape (R,)
        Run r recomputes its state exactly from the sufficient statistics after
        max(refactor_every[r], its observed actions) updates, as the one-run models do
        (0: never).
    n_actions : int, optional
        K, needed only when no argument has a K axis (shared Σ0, no mixing, no action mean).

    Attributes
    ----------
    n_runs, n_actions, dim, n_effects : int
        R, K, d, L.
    n_updates : int
        Lockstep updates so far (one per call of :meth:`update`).

    Examples
    --------
    >>> import numpy as np
    >>> R, K, L, d = 2, 4, 1, 2
    >>> model = BatchedLinearGaussianModel(
    ...     np.stack([np.eye(d)] * R), 0.5, mixing=np.ones((R, K, L)),
    ...     effect_mean=np.zeros((R, L, d)), effect_cov=np.stack([np.eye(L * d)] * R))
    >>> X = np.ones((R, d))
    >>> rngs = [np.random.default_rng(s) for s in range(R)]
    >>> model.sample_scores(X, rngs).shape
    (2, 4)
    >>> model.update(X, np.array([0, 3]), np.array([1.0, 0.0]))
    >>> [a.shape for a in model.action_posterior()]
    [(2, 4, 2), (2, 4, 2, 2)]
    """

    draws = SCORE_DRAWS

    def __init__(
        self,
        action_cov: Any,
        noise_std: Any,
        *,
        mixing: Any = None,
        effect_mean: Any = None,
        effect_cov: Any = None,
        action_mean: Any = None,
        factored: bool = False,
        refactor_every: Any = 5000,
        n_actions: int | None = None,
    ) -> None:
        a = check_arguments(action_cov, noise_std, mixing, effect_mean, effect_cov, action_mean,
                            bool(factored), refactor_every, n_actions)
        R, K, L, d = a.acov.shape[0], a.acov.shape[1], a.mixing.shape[2], a.acov.shape[-1]
        self.n_runs, self.n_actions, self.dim, self.n_effects = R, K, d, L
        self.factored = bool(factored) and L > 0
        self._runs = np.arange(R)
        self._noise_var = a.noise**2
        self._every = a.every
        # constant per-action terms, component-major (d, d, R, K) and (d, R, K), read-only
        self._P0 = _to_cm(sym_inv(a.acov), 2)
        self._offset = None if not np.any(a.offset) else _to_cm(a.offset, 1)
        self._B = a.mixing  # (R, K, L)
        self._Bt = np.ascontiguousarray(np.swapaxes(a.mixing, 1, 2))  # (R, L, K)
        for arr in (self._P0, self._B, self._Bt, self._noise_var, self._every):
            arr.setflags(write=False)
        # the state of an unobserved action is its prior: S = Σ0, G = 0, b = P0 ν
        self._S = _to_cm(a.acov, 2)
        self._G = np.zeros((d, d, R, K))
        self._b = COLUMNS.mv(self._P0, _to_cm(a.offset, 1))
        self._observed = np.zeros((R, K), dtype=bool)
        self._since = np.zeros(R, dtype=np.int64)
        self.n_updates = 0
        self.effects: SqrtGaussian | BlockSqrtGaussian | None = None
        self._lam: np.ndarray | None = None  # the effect precision, where a subclass keeps it
        if L:
            self._prec0, self._h0 = effect_prior(a.effect_mean, a.effect_cov, self.factored)
            gaussian = BlockSqrtGaussian if self.factored else SqrtGaussian
            self.effects = gaussian.from_precision(self._prec0, self._h0)
        self._countdown = self._next_check()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_priors(cls, priors: Sequence[Any], noise_std: Any, **kwargs: Any):
        """A batch whose run r has the :class:`~mixedts.MixedEffectPrior` ``priors[r]``.

        All priors must have the same K, L and d. ``kwargs`` go to the constructor
        (``action_mean``, ``factored``, ``refactor_every``).
        """
        if not priors:
            raise ValidationError("priors must hold at least one MixedEffectPrior")
        shapes = {(p.n_actions, p.n_effects, p.dim) for p in priors}
        if len(shapes) != 1:
            raise ValidationError(f"priors must share (K, L, d), got {sorted(shapes)}")
        K, _, d = shapes.pop()
        return cls(
            np.stack([np.broadcast_to(np.asarray(p.action_cov), (K, d, d)) for p in priors]),
            noise_std,
            mixing=np.stack([p.mixing.toarray() for p in priors]),
            effect_mean=np.stack([np.asarray(p.effect_mean) for p in priors]),
            effect_cov=np.stack([p.effect_cov_full() for p in priors]),
            **kwargs,
        )

    @classmethod
    def from_models(cls, models: Sequence[Any], *, max_cells: int | None = None,
                    max_effect_dim: int | None = None):
        """The batch whose run r continues ``models[r]`` (its prior, noise, factored flag,
        refactor cadence and data), or None when the models cannot be batched.

        Batchable: one type for all — :class:`~mixedts.models.MixedEffectModel` (Gaussian
        rewards, exact or factored), :class:`~mixedts.models.JointGaussianModel` (the same
        exact posterior) or :class:`~mixedts.models.IndependentGaussianModel` (Gaussian
        rewards) — with one (K, L, d) and factored flag, K·d² and K·L at most ``max_cells``
        and L·d at most ``max_effect_dim`` (dense per-run arrays).
        """
        runs = [runs_of(m) for m in models]
        if not runs or any(r is None for r in runs):
            return None
        keys = {(r["kind"], r["factored"], r["acov"].shape, r["mixing"].shape) for r in runs}
        if len(keys) != 1:
            return None
        (K, L), d = runs[0]["mixing"].shape, runs[0]["acov"].shape[-1]
        if max_cells is not None and max(K * d * d, K * L) > max_cells:
            return None
        if max_effect_dim is not None and L * d > max_effect_dim:
            return None

        def stack(key):
            return np.stack([r[key] for r in runs])

        model = cls(stack("acov"), stack("noise"), mixing=stack("mixing") if L else None,
                    effect_mean=stack("effect_mean") if L else None,
                    effect_cov=stack("effect_cov") if L else None,
                    action_mean=stack("offset"), factored=runs[0]["factored"],
                    refactor_every=stack("every"), n_actions=K)
        if any(r["observed"].any() for r in runs):
            model._G[...] = _to_cm(stack("G"), 2)
            model._b += _to_cm(stack("db"), 1)
            model._observed[...] = stack("observed")
            model.refactor()
            model._since[...] = stack("since")  # each run keeps its model's cadence
            model._countdown = model._next_check()
        return model

    # ------------------------------------------------------------------ exact recompute
    def refactor(self, runs: Any = None) -> None:
        """Recompute S and the effect posterior of ``runs`` (default all) exactly from the
        sufficient statistics, as the one-run models' ``refactor`` does (observed actions
        only; unobserved ones stay at their prior)."""
        idx = slice(None) if runs is None else np.asarray(runs)
        P0 = _from_cm(self._P0[:, :, idx], 2)  # (r, K, d, d)
        S, m = conditional_posterior(P0, _from_cm(self._G[:, :, idx], 2),
                                     _from_cm(self._b[:, idx], 1))
        seen = self._observed[idx][..., None]
        S = np.where(seen[..., None], S, _from_cm(self._S[:, :, idx], 2))
        self._S[:, :, idx] = _to_cm(S, 2)
        if self.effects is not None:
            self._exact_effects(idx, P0, S, m)
        self._since[idx] = 0

    def _exact_effects(self, idx, P0=None, S=None, m=None) -> None:
        """The effect posterior of runs ``idx`` computed from scratch from the actions' terms
        (eq. 7 / eq. 43; unobserved actions add none: M = 0, η = 0), from ``P0``, ``S``,
        ``m`` (r, K, …) where the caller has them, else from the state."""
        prec, h = self._effect_information(idx, P0, S, m)
        if self._lam is not None:  # a model that also keeps the precision (GLM updates)
            self._lam[idx] = prec
        fresh = type(self.effects).from_precision(prec, h)
        for name in ("C", "h", "mean"):
            getattr(self.effects, name)[idx] = getattr(fresh, name)

    def _effect_information(self, idx, P0=None, S=None, m=None):
        """Precision and information vector of the effect posterior of runs ``idx``, from
        scratch."""
        if P0 is None:
            P0, S = _from_cm(self._P0[:, :, idx], 2), _from_cm(self._S[:, :, idx], 2)
            m = np.matmul(S, _from_cm(self._b[:, idx], 1)[..., None])[..., 0]
        seen = self._observed[idx][..., None]
        offset = None if self._offset is None else _from_cm(self._offset[:, idx], 1)
        M, eta = effect_terms(P0, S, m, offset)
        return effect_information(self._prec0[idx], self._h0[idx], M * seen[..., None],
                                  eta * seen, self._B[idx], self.factored)

    def _next_check(self) -> int:
        """Updates until a run may be due for a refactor (a lower bound: the thresholds only
        grow), so that the per-update check is one integer decrement."""
        live = self._every > 0
        if not live.any():
            return np.iinfo(np.int64).max
        due = np.maximum(self._every, self._observed.sum(axis=1)) - self._since
        return max(1, int(due[live].min()))

    def _maybe_refactor(self) -> None:
        due = (self._every > 0) & (
            self._since >= np.maximum(self._every, self._observed.sum(axis=1)))
        if due.any():
            self.refactor(np.flatnonzero(due))
        self._countdown = self._next_check()

    # ------------------------------------------------------------------ posteriors
    def effect_posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """Posterior of the effects Ψ of every run: mean (R, L, d), covariance (R, L·d, L·d)
        (block diagonal when factored)."""
        R, L, d = self.n_runs, self.n_effects, self.dim
        if not L:
            return np.zeros((R, 0, d)), np.zeros((R, 0, 0))
        mean = self.effects.mean.reshape(R, L, d).copy()
        if not self.factored:
            return mean, self.effects.cov()
        cov = np.zeros((R, L, d, L, d))
        cov[:, np.arange(L), :, np.arange(L), :] = np.moveaxis(self.effects.cov(), 1, 0)
        return mean, cov.reshape(R, L * d, L * d)

    def action_posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """Marginal posterior of every θ_i (Ψ integrated out, docs/math.md eq. 16): mean
        (R, K, d) and covariance (R, K, d, d)."""
        S = _from_cm(self._S, 2)
        m = np.matmul(S, _from_cm(self._b, 1)[..., None])[..., 0]  # m = S b
        if self.effects is None:
            return m, S
        P0 = _from_cm(self._P0, 2)
        mix_mean = self._B @ self.effects.mean.reshape(self.n_runs, self.n_effects, self.dim)
        T = mix_cov(self._B, self.effects.operand(), self.factored)
        return conditional_mean(S, P0, m, mix_mean), marginal_cov(S, P0, T)

    # ------------------------------------------------------------------ summaries
    def _check_X(self, X: Any, name: str = "X") -> np.ndarray:
        """Contexts (R, d) shared by the actions or (R, K, d) one per action."""
        X = as_float_array(X, name, ndim=(2, 3))
        R, K, d = self.n_runs, self.n_actions, self.dim
        check_shape(X, (R, d) if X.ndim == 2 else (R, K, d), name)
        return X

    def contexts(self, X: Any) -> BatchedContexts:
        """Validated contexts, (R, d) shared by each run's actions or (R, K, d) one per action,
        for the summaries of one round (a contiguous (d, R, K) array: einsum is several times
        slower on strided or broadcast views)."""
        if isinstance(X, BatchedContexts):
            return X
        X = self._check_X(X)
        Xc = np.empty((self.dim, self.n_runs, self.n_actions))
        Xc[...] = X.T[:, :, None] if X.ndim == 2 else X.transpose(2, 0, 1)
        return BatchedContexts(Xc)

    def _scores_given(self, Xc: np.ndarray, psi: np.ndarray | None, var: bool = True):
        """Mean and variance (R, K) of every score given the effects ``psi`` (R, L, d)."""
        mix = None
        if psi is not None:  # Γ_i Ψ = Σ_l b_il ψ_l, component-major (d, R, K)
            mix = np.ascontiguousarray(np.swapaxes(np.swapaxes(psi, 1, 2) @ self._Bt, 0, 1))
        return conditional_scores(self._S, self._b, Xc, mix, self._P0, COLUMNS, var=var)

    def sample_scores(self, X: Any, rngs: Sequence[np.random.Generator]) -> np.ndarray:
        """One posterior draw of every score x_iᵀθ_i of every run, (R, K).

        ``X`` (R, d), (R, K, d) or :meth:`contexts`; run r draws
        ``rngs[r].standard_normal(L·d)`` (when L > 0) then ``rngs[r].standard_normal(K)``:
        Ψ = μ̄ + C z, then x_iᵀθ_i | Ψ (docs/math.md §2).
        """
        Xc = self.contexts(X).columns
        R, K, L, d = self.n_runs, self.n_actions, self.n_effects, self.dim
        if len(rngs) != R:
            raise ValidationError(f"rngs must hold one generator per run ({R}), got {len(rngs)}")
        eps = np.empty((R, K))
        z = np.empty((R, L * d))
        # the only loop over runs: each run draws from its own generator, in a fixed order
        for gen, z_r, eps_r in zip(rngs, z, eps):
            if L:
                gen.standard_normal(out=z_r)  # = gen.standard_normal(L * d), written in place
            gen.standard_normal(out=eps_r)  # = gen.standard_normal(K)
        psi = None
        if L:
            psi = self.effects.draw(z.reshape(R, L, d) if self.factored else z).reshape(R, L, d)
        mean, var = self._scores_given(Xc, psi)
        return draw_scores(mean, var, eps)

    def mean_scores(self, X: Any) -> np.ndarray:
        """Posterior mean of every score x_iᵀθ_i, (R, K)."""
        psi = None if self.effects is None else self.effects.mean.reshape(
            self.n_runs, self.n_effects, self.dim)
        return self._scores_given(self.contexts(X).columns, psi, var=False)[0]

    def score_std(self, X: Any) -> np.ndarray:
        """Marginal posterior standard deviation of every score, (R, K) (docs/math.md eq. 16:
        x_iᵀ S_i x_i plus the effects' share)."""
        Xc = self.contexts(X).columns
        var = conditional_scores(self._S, self._b, Xc, layout=COLUMNS, mean=False)[1]
        if self.effects is not None:
            q = _from_cm(COLUMNS.mv(self._P0, COLUMNS.mv(self._S, Xc)), 1)  # P0 S x, (R, K, d)
            var = var + effect_score_var(q, self._B, self.effects.operand(), self.factored)
        return np.sqrt(var)

    # ------------------------------------------------------------------ feedback
    def _check_feedback(self, X: Any, A: Any, Y: Any):
        """Validated contexts, actions (R,) and rewards (R,) of one lockstep update."""
        X = self._check_X(X)
        A = check_actions(A, self.n_actions, "A")
        check_shape(A, (self.n_runs,), "A")
        Y = as_float_array(Y, "Y", ndim=1)
        check_shape(Y, (self.n_runs,), "Y")
        return X, A, Y

    def update(self, X: Any, A: Any, Y: Any, rngs: Any = None) -> None:
        """Condition run r on reward ``Y[r]`` of action ``A[r]`` in context ``X[r]``.

        ``X`` (R, d) the played contexts or (R, K, d) every action's (``X[r, A[r]]`` is used),
        ``A`` (R,) int, ``Y`` (R,). Invalid input raises :class:`~mixedts.ValidationError`
        before any state changes. (``rngs``: unused, Gaussian updates draw nothing.)
        """
        X, A, Y = self._check_feedback(X, A, Y)
        R, L, d = self.n_runs, self.n_effects, self.dim
        r = self._runs
        # the played action of every run, component-major: (d, d, R) and (d, R)
        x = np.ascontiguousarray((X if X.ndim == 2 else X[r, A]).T)
        P0_a = self._P0[:, :, r, A] if L else None
        b_a = self._b[:, r, A]
        obs = observe(self._S[:, :, r, A], P0_a, b_a, x, Y, self._noise_var, COLUMNS)
        dG, db = sufficient_statistics(x, Y, self._noise_var, COLUMNS)
        proposal = None
        if L:  # the effect precision gains u uᵀ, u = b_a ⊗ w, and h̄ gains b_a ⊗ P0 (m' − m)
            mix_a = self._B[r, A][:, :, None]  # (R, L, 1)
            u, dh = mix_a * obs.w.T[:, None, :], mix_a * obs.eta.T[:, None, :]
            if not self.factored:
                u, dh = u.reshape(R, L * d), dh.reshape(R, L * d)
            proposal = self.effects.proposed_rank_one(None, u, dh)
        # commit: nothing below can fail on valid input
        self._S[:, :, r, A] = obs.S
        self._G[:, :, r, A] += dG
        self._b[:, r, A] = b_a + db
        self._observed[r, A] = True
        if proposal is not None:
            self.effects.commit(*proposal)
        self.n_updates += 1
        self._since += 1
        self._countdown -= 1
        if self._countdown <= 0:
            self._maybe_refactor()

    def __repr__(self) -> str:
        return (
            f"BatchedLinearGaussianModel(n_runs={self.n_runs}, n_actions={self.n_actions}, "
            f"n_effects={self.n_effects}, dim={self.dim}, factored={self.factored})"
        )
