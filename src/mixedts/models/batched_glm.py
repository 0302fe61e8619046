"""R GLM posteriors in stacked arrays: meTS-GLM, meTS-GLM-Fa, HierTS-GLM, GLM-TS and UCB-GLM
stepped across runs.

A GLM model of :mod:`mixedts` is the linear-Gaussian algebra with each observed action's
likelihood replaced by a Gaussian pseudo-observation (G_a, b_a) from a Laplace refit
(docs/math.md §4). :class:`BatchedGLMModel` is therefore the
:class:`~mixedts.models.batched.BatchedLinearGaussianModel` (its state, summaries and draws)
with another update, which does for R runs at once what the one-run models' ``update`` does:

1. the R refits of the touched actions, one batched Newton pass over R segments
   (:class:`~mixedts.models.batched_laplace.BatchedLaplace`);
2. the pseudo-observation of each touched action replaced: S' = (P0 + G')⁻¹, and its terms
   of the effect posterior change by ΔM = P0 (S − S') P0, a symmetric matrix of rank ≤ d, and
   P0 (m' − m);
3. the effect posterior's square root updated by the signed rank-d term b_a ⊗ ΔM
   (:func:`~mixedts.linalg.sqrt_lowrank_update_many`), or recomputed exactly, run by run, where
   the one-run model recomputes it: a joint posterior with d ≥ ⌊L·d/2⌋ (L ≤ 2, HierTS), an
   action without effects (factored), or a downdate that would lose definiteness; then the
   refactor cadence of the one-run model.

So a run takes the actions of its one-run policy (the same refits, the same square roots, the
same draws) up to rounding. UCB-GLM's model is a Gaussian store of unit noise and prior I/λ
(V⁻¹ = (λI + Σ x xᵀ)⁻¹) whose mean scores are the penalised MLE's (``design=True``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validation import ValidationError
from ..likelihoods import Likelihood
from ..linalg import matvec, sym_inv
from .base import Draw
from .batched import BatchedLinearGaussianModel, _from_cm, _to_cm
from .batched_inputs import glm_runs_of
from .batched_laplace import BatchedLaplace
from .gaussian import BlockSqrtGaussian, _info_mean
from .linear_gaussian import conditional_posterior

__all__ = ["BatchedGLMModel"]


def _rows(a: np.ndarray, nvec: int) -> np.ndarray:
    """(*c, R) of the played actions -> (R, *c)."""
    return np.moveaxis(a, nvec, 0)


def _sqrt_update(C: np.ndarray, Q: np.ndarray | None, M: np.ndarray):
    """C (I + Q M Qᵀ)^(-½) for stacks: C (…, n, n), Q (…, n, r) orthonormal columns (None:
    the identity, r = n), M (…, r, r) symmetric. Returns the new square roots and, per stack
    entry, whether I + Q M Qᵀ stayed positive definite (where not, C is returned unchanged).

    With M = E diag(λ) Eᵀ: C + (C Q E) diag((1+λ)^(-½) − 1) (Q E)ᵀ, the square root of
    :func:`~mixedts.linalg.sqrt_lowrank_update`.
    """
    lam, E = np.linalg.eigh(0.5 * (M + np.swapaxes(M, -1, -2)))
    ok = ~np.any(lam <= -1.0 + 1e-12, axis=-1)
    lam = np.where(ok[..., None], lam, 0.0)
    r = np.sqrt(1.0 + lam)
    coef = -lam / (r * (1.0 + r))  # (1+λ)^-½ − 1 written without cancellation
    QE = E if Q is None else Q @ E
    return C + ((C @ QE) * coef[..., None, :]) @ np.swapaxes(QE, -1, -2), ok


class BatchedGLMModel(BatchedLinearGaussianModel):
    """The posteriors of R runs of a GLM bandit (docs/math.md §4), stepped together.

    Parameters
    ----------
    action_cov : ndarray, shape (R, K, d, d) or (R, d, d)
        Σ0 (UCB-GLM: I/λ).
    likelihood : Likelihood
        The reward likelihood (logistic), shared by the runs.
    laplace : dict, optional
        The :class:`~mixedts.models.laplace.LaplaceFitter` options (method, batch_size, ridge,
        tol, max_iter), shared by the runs.
    laplace_at : {"posterior", "likelihood"}
        Where each action's likelihood is expanded, as for the one-run models.
    design : bool
        UCB-GLM: Gaussian statistics of unit noise and mean scores from the modes.
    mixing, effect_mean, effect_cov, action_mean, factored, refactor_every, n_actions
        As for :class:`~mixedts.models.batched.BatchedLinearGaussianModel` (``action_mean`` is
        GLM-TS's prior mean).

    Examples
    --------
    >>> from mixedts.likelihoods import Logistic
    >>> R, K, L, d = 2, 4, 3, 2
    >>> model = BatchedGLMModel(np.stack([np.eye(d)] * R), Logistic(), mixing=np.ones((R, K, L)),
    ...                         effect_mean=np.zeros((R, L, d)),
    ...                         effect_cov=np.stack([np.eye(L * d)] * R))
    >>> model.update(np.ones((R, d)), np.array([0, 3]), np.array([1.0, 0.0]))
    >>> mean = model.mean_scores(np.ones((R, d)))
    >>> bool(mean[0, 0] > 0), bool(mean[1, 3] < 0)
    (True, True)
    """

    def __init__(
        self,
        action_cov: Any,
        likelihood: Likelihood,
        *,
        laplace: dict[str, Any] | None = None,
        laplace_at: str = "posterior",
        design: bool = False,
        mixing: Any = None,
        effect_mean: Any = None,
        effect_cov: Any = None,
        action_mean: Any = None,
        factored: bool = False,
        refactor_every: Any = 5000,
        n_actions: int | None = None,
    ) -> None:
        super().__init__(action_cov, 1.0, mixing=mixing, effect_mean=effect_mean,
                         effect_cov=effect_cov, action_mean=action_mean, factored=factored,
                         refactor_every=refactor_every, n_actions=n_actions)
        if laplace_at not in ("posterior", "likelihood"):
            raise ValidationError(
                f"laplace_at must be 'likelihood' or 'posterior', got {laplace_at!r}")
        self.likelihood = likelihood
        self.fitter = BatchedLaplace(likelihood, self.n_runs, self.n_actions, self.dim,
                                     **(laplace or {}))
        self.laplace_at = laplace_at
        self.design = bool(design)
        if self.design and self.effects is not None:
            raise ValidationError("design=True (UCB-GLM) takes no effects")
        # the one-run models: meTS-GLM expands at the posterior except with the online step;
        # GLM-TS whatever the method
        self._at_posterior = laplace_at == "posterior" and not self.design and (
            self.fitter.method != "online" or self.effects is None)
        if self.design:
            self.draws = frozenset({Draw.MEAN, Draw.MEAN_STD})
        # a joint posterior with d ≥ ⌊L·d/2⌋ (L ≤ 2: HierTS) is recomputed exactly at every
        # update, as the one-run model does: from its precision Λ̄, kept here (O((L·d)²) per
        # update) instead of summed afresh over the K actions
        self._always_exact = self.effects is not None and not self.factored and (
            self.dim >= (self.n_effects * self.dim) // 2)
        if self._always_exact:
            self._lam = self._prec0.copy()

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_models(cls, models: Sequence[Any], *, max_cells: int | None = None,
                    max_effect_dim: int | None = None):
        """The batch whose run r continues the GLM model ``models[r]`` (prior, options,
        cadence, Laplace modes and histories, effect posterior), or None when the models
        cannot be batched (see :func:`~mixedts.models.batched_inputs.glm_runs_of`; one type,
        shape, likelihood and set of Laplace options for all, and the size limits of
        :meth:`BatchedLinearGaussianModel.from_models`)."""
        runs = [glm_runs_of(m) for m in models]
        if not runs or any(r is None for r in runs):
            return None
        keys = {(r["kind"], r["factored"], r["acov"].shape, r["mixing"].shape, r["design"],
                 r["laplace_at"], type(r["likelihood"]), tuple(sorted(r["laplace"].items())))
                for r in runs}
        if len(keys) != 1:
            return None
        (K, L), d = runs[0]["mixing"].shape, runs[0]["acov"].shape[-1]
        if max_cells is not None and max(K * d * d, K * L) > max_cells:
            return None
        if max_effect_dim is not None and L * d > max_effect_dim:
            return None

        def stack(key):
            return np.stack([r[key] for r in runs])

        first = runs[0]
        model = cls(stack("acov"), first["likelihood"], laplace=first["laplace"],
                    laplace_at=first["laplace_at"], design=first["design"],
                    mixing=stack("mixing") if L else None,
                    effect_mean=stack("effect_mean") if L else None,
                    effect_cov=stack("effect_cov") if L else None,
                    action_mean=stack("offset"), factored=first["factored"],
                    refactor_every=stack("every"), n_actions=K)
        model.fitter.load(runs)
        if any(r["observed"].any() for r in runs):
            model._G[...] = _to_cm(stack("G"), 2)
            model._b += _to_cm(stack("db"), 1)
            model._observed[...] = stack("observed")
            S = sym_inv(_from_cm(model._P0, 2) + _from_cm(model._G, 2))
            model._S[...] = np.where(model._observed, _to_cm(S, 2), model._S)
            if model.effects is not None:
                for i, name in enumerate(("C", "h", "mean")):
                    getattr(model.effects, name)[...] = np.stack(
                        [np.reshape(r["effects"][i], getattr(model.effects, name).shape[1:])
                         for r in runs])
            model._since[...] = stack("since")
            if model._lam is not None:
                model._lam[...] = model._effect_information(slice(None))[0]
        return model

    # ------------------------------------------------------------------ summaries
    def mean_scores(self, X: Any) -> np.ndarray:
        if not self.design:
            return super().mean_scores(X)
        # UCB-GLM: x_iᵀθ̂_i with the penalised MLE (0 before any data)
        return np.einsum("rkd,drk->rk", self.fitter.modes, self.contexts(X).columns)

    def action_posterior(self) -> tuple[np.ndarray, np.ndarray]:
        if not self.design:
            return super().action_posterior()
        return self.fitter.modes.copy(), _from_cm(self._S, 2)

    # ------------------------------------------------------------------ feedback
    def update(self, X: Any, A: Any, Y: Any, rngs: Any = None) -> None:
        """Condition run r on reward ``Y[r]`` of action ``A[r]`` in context ``X[r]``: refit
        its action's likelihood and replace its pseudo-observation (see the module).

        ``rngs`` (one generator per run) are needed by the minibatch refits, which draw their
        rows from them as the one-run models draw from the policy's. Invalid input raises
        :class:`~mixedts.ValidationError` before any state or generator changes.
        """
        X, A, Y = self._check_feedback(X, A, Y)
        Y = self.likelihood.check_rewards(Y, "Y")
        if self.fitter.method == "minibatch" and (rngs is None or len(rngs) != self.n_runs):
            raise ValidationError(f"rngs must hold one generator per run ({self.n_runs}) for "
                                  "minibatch refits")
        r = self._runs
        x = np.ascontiguousarray(X if X.ndim == 2 else X[r, A])  # (R, d)
        P0 = _rows(self._P0[:, :, r, A], 2)
        S_old, b_old, G_old = _rows(self._S[:, :, r, A], 2), _rows(self._b[:, r, A], 1), \
            _rows(self._G[:, :, r, A], 2)
        if self.design:  # UCB-GLM: V gains x xᵀ; the modes are the penalised MLE
            _, _, token = self.fitter.propose(A, x, Y, G_old, rngs)
            G_new = G_old + x[:, :, None] * x[:, None, :]
            b_new = b_old + Y[:, None] * x
            self._commit(A, sym_inv(P0 + G_new), G_new, b_new, token)
            return
        center, prior = None, None
        if self._at_posterior:  # the MAP under the conditional prior N(ν_a + Γ_a μ̄, Σ0_a)
            center = x * 0.0 if self._offset is None else _rows(self._offset[:, r, A], 1)
            if self.effects is not None:
                mix = self._B[r, A][:, None, :] @ self.effects.mean.reshape(
                    self.n_runs, self.n_effects, self.dim)
                center = mix[:, 0]
            prior = (P0, center)
        mode, G_new, token = self.fitter.propose(A, x, Y, G_old, rngs, prior)
        b_new = self._pseudo_b(P0, G_new, mode, center, A)
        S_new, m_new = conditional_posterior(P0, G_new, b_new)
        change = None
        if self.effects is not None:
            m_old = matvec(S_old, b_old)
            dM = P0 @ (S_old - S_new) @ P0
            change = self._effects_change(A, 0.5 * (dM + np.swapaxes(dM, 1, 2)),
                                          matvec(P0, m_new - m_old))
        self._commit(A, S_new, G_new, b_new, token)
        if change is not None:
            self._commit_effects(*change)

    def _pseudo_b(self, P0, G, mode, center, A):
        """b of the pseudo-observation, as the one-run models form it."""
        if self.effects is None:  # GLM-TS: b includes the prior part P0 μ0
            if self._at_posterior:
                return matvec(P0 + G, mode)  # so that m = S b is the mode
            prior_b = 0.0 if self._offset is None else matvec(
                P0, _rows(self._offset[:, self._runs, A], 1))
            return matvec(G, mode) + prior_b
        b = matvec(G, mode)
        if self._at_posterior:  # b = G θ̂ + ∇log L(θ̂), ∇log L(θ̂) = P0 (θ̂ − center)
            b = b + matvec(P0, mode - center)
        return b

    def _commit(self, A, S, G, b, token) -> None:
        r = self._runs
        self._S[:, :, r, A] = np.moveaxis(S, 0, 2)
        self._G[:, :, r, A] = np.moveaxis(G, 0, 2)
        self._b[:, r, A] = b.T
        self._observed[r, A] = True
        self.fitter.commit(token)
        self.n_updates += 1

    # ------------------------------------------------------------------ effects
    def _effects_change(self, A, dM, dpm):
        """Each run's effect posterior after its signed rank-≤d change (b_a b_aᵀ) ⊗ ΔM of
        the precision (b_a ⊗ P0 (m' − m) of h̄): the proposed square roots, h̄ and means, and
        the runs that are recomputed exactly instead (as the one-run model's
        ``_effects_change`` decides).

        The one-run model factors ΔM = W diag(±1) Wᵀ and updates with Z = Cᵀ (b_a ⊗ W); here
        Z diag(±1) Zᵀ = Y ΔM Yᵀ with Y = Cᵀ (b_a ⊗ I) is used directly (one eigenproblem of
        R_Y ΔM R_Yᵀ, Y = Q R_Y), the same square root up to rounding
        (:func:`~mixedts.linalg.sqrt_lowrank_update`)."""
        R, L, d = self.n_runs, self.n_effects, self.dim
        Bu = self._B[self._runs, A]  # (R, L)
        eff = self.effects
        if not self.factored:
            h = eff.h + (Bu[:, :, None] * dpm[:, None, :]).reshape(R, L * d)
            if self._always_exact:
                self._lam += np.swapaxes(Bu[:, :, None, None, None] * Bu[:, None, :, None, None]
                                         * dM[:, None, None], 2, 3).reshape(R, L * d, L * d)
                return None, h, None, np.ones(R, dtype=bool)
            # Y (R, L·d, d): column j is Σ_l b_l (row l·d + j of C)
            Y = np.swapaxes((Bu[:, None, :] @ eff.C.reshape(R, L, d * L * d)).reshape(
                R, d, L * d), 1, 2)
            Q, Ry = np.linalg.qr(Y)
            C, ok = _sqrt_update(eff.C, Q, Ry @ dM @ np.swapaxes(Ry, 1, 2))
            return C, h, _info_mean(C, h), ~ok
        # block l: C_l' = C_l (I + b_l² C_lᵀ ΔM C_l)^(-1/2)
        M = (Bu * Bu)[:, :, None, None] * (np.swapaxes(eff.C, -1, -2) @ dM[:, None] @ eff.C)
        C, ok = _sqrt_update(eff.C, None, M)
        h = eff.h + Bu[:, :, None] * dpm[:, None, :]
        touched = (Bu != 0)[:, :, None]
        mean = np.where(touched, BlockSqrtGaussian._mean(C, h), eff.mean)
        return C, h, mean, ~(ok.all(axis=1) & touched[:, :, 0].any(axis=1))

    def _commit_effects(self, C, h, mean, exact) -> None:
        """Low-rank runs take the proposal and may be due for their refactor; the others are
        recomputed exactly (their refactor count unchanged, as in the one-run model)."""
        eff = self.effects
        low = ~exact
        if low.all():
            eff.C, eff.h, eff.mean = C, h, mean
        elif low.any():
            eff.C[low], eff.h[low], eff.mean[low] = C[low], h[low], mean[low]
        if low.any():
            self._since[low] += 1
        if exact.any():
            idx = np.flatnonzero(exact)
            if self._lam is not None:
                prec, h_idx = self._lam[idx], h[idx]
            else:  # a failed downdate, or an action without effects: summed afresh
                prec, h_idx = self._effect_information(idx)
            fresh = type(eff).from_precision(prec, h_idx)
            eff.C[idx], eff.h[idx], eff.mean[idx] = fresh.C, fresh.h, fresh.mean
        due = low & (self._every > 0) & (
            self._since >= np.maximum(self._every, self._observed.sum(axis=1)))
        if due.any():
            self.refactor(np.flatnonzero(due))

    def __repr__(self) -> str:
        return (
            f"BatchedGLMModel(n_runs={self.n_runs}, n_actions={self.n_actions}, "
            f"n_effects={self.n_effects}, dim={self.dim}, factored={self.factored}, "
            f"likelihood={self.likelihood.name!r}, laplace={self.fitter.method!r})"
        )
