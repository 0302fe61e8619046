"""R runs of linear dTS in stacked arrays: :class:`DiffusionModel` with a leading runs axis.

Experiments repeat dTS over many seeded runs; stepping each run's model in Python pays the
chain's O(L d³) recursion and numpy's per-call overhead once per run and round.
:class:`BatchedDiffusionModel` holds the posteriors of R runs of a
:class:`~mixedts.models.diffusion.DiffusionModel` with linear links and shared latents (each run
its own prior W_ℓ, Σ_ℓ, m, noise and refactor cadence) and advances all of them at once.

It is not a second copy of the algebra. The actions' conditional posteriors (S_i, b_i, the
rank-one step and its terms w, P_1 (m' − m) of the sums) are those of
:class:`~mixedts.models.batched.BatchedLinearGaussianModel` with no effects (the formulas of
:mod:`~mixedts.models.linear_gaussian`, component-major over the long R·K axis); the chain is
:func:`~mixedts.models.diffusion_chain.upward`, :func:`~mixedts.models.diffusion_chain.draw_latents`
and :func:`~mixedts.models.diffusion_chain.latent_marginals`, which take one prior per entry of
a batch: the calls ``DiffusionModel`` makes. What this class adds is storage: the sums
Ḡ_act (R, d, d) and η_act (R, d), kept incrementally (one observation changes them by w wᵀ and
P_1 (m' − m)), and the runs' chains (L, R, …), recomputed once per round for all runs.

``sample_scores(X, rngs)`` draws, per run r, ``rngs[r].standard_normal(L·d)`` (the
``(1, L, d)`` normals of the one-run ``sample_scores``) then ``rngs[r].standard_normal(K)``,
and transforms them as the one-run model does: ψ_L, …, ψ_1 top-down, u = W_1 ψ_1, then every
x_iᵀθ_i | u. A run refactors after max(refactor_every, its observed actions) updates, as the
one-run model does. So a run of a batch takes the actions of its one-run policy, with the same
posterior up to rounding.

GLM-dTS (logistic rewards) is held too: each run's touched action is refitted by
:class:`~mixedts.models.batched_laplace.BatchedLaplace` (the one-run refits, minibatch draws
from the run's generator), its pseudo-observation replaced (G ← Ĝ_a, b ← Ĝ_a θ̂_a, plus
P_1 (θ̂_a − E[u | H]) at the MAP), and the sums change by P_1 (S − S') P_1 and P_1 (m' − m), as
in ``DiffusionModel.update_batch``. Non-linear links (Monte Carlo marginals) and per-action
latents are not held here (``from_models``: None; they run one run at a time).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validation import ValidationError, as_float_array, check_shape, check_symmetric_psd
from ..likelihoods import Gaussian, Likelihood
from ..linalg import matvec, sym_inv
from .base import SCORE_DRAWS
from .batched import BatchedLinearGaussianModel, _from_cm
from .batched_laplace import BatchedLaplace
from .diffusion import DiffusionModel
from .diffusion_chain import Chain, Marginals, draw_latents, latent_marginals, upward
from .linear_gaussian import (
    COLUMNS,
    conditional_mean,
    conditional_posterior,
    conditional_scores,
    draw_scores,
    effect_terms,
    marginal_cov,
    observe,
    sufficient_statistics,
)

__all__ = ["BatchedDiffusionModel"]


def _sym(a: np.ndarray) -> np.ndarray:
    return 0.5 * (a + np.swapaxes(a, -1, -2))


def _laplace_state(fitter, K: int, d: int) -> dict[str, np.ndarray]:
    """A one-run Laplace fitter's modes and stored rows in the form
    :meth:`~mixedts.models.batched_laplace.BatchedLaplace.load` reads."""
    modes, fitted = np.zeros((K, d)), np.zeros(K, dtype=bool)
    for a, mode in fitter.modes.items():  # the fitted actions (none for a fresh model)
        modes[a], fitted[a] = mode, True
    hist = [(a, *fitter.rows(a)) for a in sorted(fitter._hist)]
    return {"modes": modes, "fitted": fitted,
            "hist_X": np.concatenate([h[1] for h in hist]) if hist else np.zeros((0, d)),
            "hist_y": np.concatenate([h[2] for h in hist]) if hist else np.zeros(0),
            "hist_w": np.concatenate([h[3] for h in hist]) if hist else np.zeros(0),
            "hist_a": np.concatenate([np.full(len(h[2]), h[0]) for h in hist]) if hist
            else np.zeros(0, dtype=np.int64)}


class BatchedDiffusionModel(BatchedLinearGaussianModel):
    """The dTS posteriors of R independent runs (linear links, shared latents).

    Parameters
    ----------
    links : ndarray, shape (R, L, d, d)
        W_1 … W_L of every run.
    covs : ndarray, shape (R, L + 1, d, d)
        Σ_1 … Σ_{L+1} of every run (symmetric positive definite).
    mean : ndarray, shape (R, d)
        m, the prior mean of each run's top latent ψ_L.
    noise_std : float or ndarray, shape (R,)
        σ_r (> 0).
    n_actions : int
        K.
    refactor_every : int or ndarray of int, shape (R,)
        Run r recomputes every S_i and both sums after max(refactor_every[r], its observed
        actions) updates, as :class:`~mixedts.models.diffusion.DiffusionModel` does (0: never).
    likelihood : Likelihood, optional
        Gaussian (default, σ_r) or a GLM (GLM-dTS, shared by the runs; σ unused).
    laplace : dict, optional
        The :class:`~mixedts.models.laplace.LaplaceFitter` options (method, batch_size, ridge,
        tol, max_iter), shared by the runs.
    laplace_at : {"posterior", "likelihood"}
        Where each action's log-likelihood is expanded, as for ``DiffusionModel``.

    Attributes
    ----------
    n_runs, n_actions, dim, n_layers : int
        R, K, d, L.
    G_act, eta_act : ndarray, (R, d, d) and (R, d)
        Σ_i (P_1 − P_1 S_i P_1) and Σ_i P_1 m_i over each run's observed actions.

    Examples
    --------
    >>> import numpy as np
    >>> R, K, L, d = 2, 4, 2, 2
    >>> model = BatchedDiffusionModel(np.stack([[np.eye(d)] * L] * R),
    ...                               np.stack([[np.eye(d)] * (L + 1)] * R), np.zeros((R, d)),
    ...                               1.0, n_actions=K)
    >>> rngs = [np.random.default_rng(s) for s in range(R)]
    >>> model.sample_scores(np.ones((R, K, d)), rngs).shape
    (2, 4)
    >>> model.update(np.ones((R, d)), np.array([0, 3]), np.array([1.0, 0.0]))
    >>> [a.shape for a in model.action_posterior()], model.effect_posterior()[1].shape
    ([(2, 4, 2), (2, 4, 2, 2)], (2, 4, 4))
    """

    draws = SCORE_DRAWS

    def __init__(self, links: Any, covs: Any, mean: Any, noise_std: Any, *, n_actions: int,
                 refactor_every: Any = 5000, likelihood: Likelihood | None = None,
                 laplace: dict[str, Any] | None = None, laplace_at: str = "posterior") -> None:
        W = as_float_array(links, "links", ndim=4)
        R, L, d = W.shape[0], W.shape[1], W.shape[-1]
        check_shape(W, (R, L, d, d), "links")
        if R < 1 or L < 1 or d < 1:
            raise ValidationError(f"links must have shape (R, L, d, d) with R, L, d >= 1, got "
                                  f"{W.shape}")
        covs = as_float_array(covs, "covs", ndim=4)
        check_shape(covs, (R, L + 1, d, d), "covs")
        check_symmetric_psd(covs.reshape(-1, d, d), "covs")
        mean = as_float_array(mean, "mean", ndim=2)
        check_shape(mean, (R, d), "mean")
        # the actions: Σ0 = Σ_1, no effects (u enters at scoring time, as in DiffusionModel)
        super().__init__(covs[:, 0], noise_std, refactor_every=refactor_every,
                         n_actions=n_actions)
        self.n_layers = L
        self._links = np.ascontiguousarray(np.moveaxis(W, 1, 0))  # (L, R, d, d)
        self._precs = sym_inv(np.ascontiguousarray(np.moveaxis(_sym(covs), 1, 0)))  # P_ℓ
        self._top = np.array(mean)
        self._acov = _sym(covs[:, 0])
        for arr in (self._links, self._precs, self._top, self._acov):
            arr.setflags(write=False)
        self.G_act = np.zeros((R, d, d))
        self.eta_act = np.zeros((R, d))
        self._chain: Chain | None = None
        self._marginals: Marginals | None = None
        if laplace_at not in ("posterior", "likelihood"):
            raise ValidationError(
                f"laplace_at must be 'likelihood' or 'posterior', got {laplace_at!r}")
        glm = likelihood is not None and not isinstance(likelihood, Gaussian)
        self.likelihood = likelihood if glm else Gaussian()
        self.laplace_at = laplace_at
        self.fitter = BatchedLaplace(likelihood, R, self.n_actions, d, **(laplace or {})) \
            if glm else None
        # DiffusionModel expands at the MAP under N(E[u | H], Σ_1) unless the step is online
        self._at_posterior = glm and laplace_at == "posterior" and self.fitter.method != "online"

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_models(cls, models: Sequence[Any], *, max_cells: int | None = None,
                    max_effect_dim: int | None = None):
        """The batch whose run r continues ``models[r]`` (its prior, noise, cadence, data and
        Laplace fits), or None when they cannot be batched: each a
        :class:`~mixedts.models.diffusion.DiffusionModel` with linear links and shared latents,
        one (K, L, d), likelihood, set of Laplace options and ``laplace_at`` for all (GLM
        rewards without ``binarize``), K·d² at most ``max_cells`` and L·d at most
        ``max_effect_dim``."""
        models = list(models)
        if not models or not all(
            type(m) is DiffusionModel and m.latents == "shared" and m.prior.is_linear
            for m in models
        ):
            return None
        keys = {(m.n_actions, m.n_layers, m.dim, type(m.likelihood), m.laplace_at,
                 None if m.fitter is None else tuple(sorted(m.fitter.config().items())))
                for m in models}
        first = models[0]
        if len(keys) != 1 or getattr(first.likelihood, "binarize", False):
            return None
        K, L, d = first.n_actions, first.n_layers, first.dim
        if max_cells is not None and K * d * d > max_cells:
            return None
        if max_effect_dim is not None and L * d > max_effect_dim:
            return None
        laplace = None if first.fitter is None else {
            k: v for k, v in first.fitter.config().items()
            if k in ("method", "batch_size", "ridge", "tol", "max_iter")}
        batch = cls(np.stack([np.stack(m.prior.links) for m in models]),
                    np.stack([m.prior.covs for m in models]),
                    np.stack([m.prior.mean for m in models]),
                    np.array([m.noise_std for m in models]), n_actions=K,
                    refactor_every=np.array([m.refactor_every for m in models]),
                    likelihood=first.likelihood, laplace=laplace, laplace_at=first.laplace_at)
        for r, m in enumerate(models):  # once, at construction: each run's observed actions
            n = m.store.n
            if n:
                acts = m.store.actions[:n]
                batch._S[:, :, r, acts] = np.moveaxis(m.store.S[:n], 0, 2)
                batch._G[:, :, r, acts] = np.moveaxis(m.store.G[:n], 0, 2)
                batch._b[:, r, acts] = m.store.b[:n].T
                batch._observed[r, acts] = True
            batch.G_act[r], batch.eta_act[r] = m.G_act, m.eta_act
            batch._since[r] = m._since_refactor
        if batch.fitter is not None:
            batch.fitter.load([_laplace_state(m.fitter, K, d) for m in models])
        batch._countdown = batch._next_check()
        return batch

    # ------------------------------------------------------------------ chain
    @property
    def chain(self) -> Chain:
        """Every run's latent conditionals, arrays (L, R, …), recomputed after a change."""
        if self._chain is None:
            self._chain = upward(self._precs, self._links, self.G_act, self.eta_act, self._top)
        return self._chain

    def _changed(self) -> None:
        self._chain = None
        self._marginals = None

    def latent_posterior(self) -> Marginals:
        """Every run's Lemma 2 marginals: ψ's (R, L, d), (R, L, d, d), u's (R, d), (R, d, d)."""
        if self._marginals is None:
            self._marginals = latent_marginals(self.chain, self._links)
        return self._marginals

    def _link(self, j: int, psi: np.ndarray) -> np.ndarray:
        """f_{j+1}(ψ) = W_{j+1} ψ for every run's row ψ (R, d)."""
        return matvec(self._links[j], psi)

    # ------------------------------------------------------------------ summaries
    def _scores_given(self, Xc: np.ndarray, u: np.ndarray, var: bool = True):
        """Mean and variance (R, K) of every score given each run's u (R, d): with
        v_i = S_i x_i, x_iᵀ S_i (P_1 u + b_i) and v_iᵀ x_i."""
        Pu = matvec(self._precs[0], u)  # P_1 u, folded in (P_1 is the run's, not the action's)
        mix = np.empty_like(Xc)
        mix[...] = Pu.T[:, :, None]
        return conditional_scores(self._S, self._b, Xc, mix, None, COLUMNS, var=var)

    def sample_scores(self, X: Any, rngs: Sequence[np.random.Generator]) -> np.ndarray:
        """One posterior draw of every score of every run, (R, K): run r draws
        ``rngs[r].standard_normal(L·d)`` then ``rngs[r].standard_normal(K)``, as
        ``DiffusionModel.sample_scores`` draws its (1, L, d) and (K,) normals."""
        Xc = self.contexts(X).columns
        R, K, L, d = self.n_runs, self.n_actions, self.n_layers, self.dim
        if len(rngs) != R:
            raise ValidationError(f"rngs must hold one generator per run ({R}), got {len(rngs)}")
        z = np.empty((R, L * d))
        eps = np.empty((R, K))
        # the only loop over runs: each run draws from its own generator, in a fixed order
        for gen, z_r, eps_r in zip(rngs, z, eps):
            gen.standard_normal(out=z_r)
            gen.standard_normal(out=eps_r)
        psi = draw_latents(self.chain, self._link, z.reshape(R, L, d))
        mean, var = self._scores_given(Xc, self._link(0, psi[:, 0]))
        return draw_scores(mean, var, eps)

    def mean_scores(self, X: Any) -> np.ndarray:
        """Posterior mean of every score, (R, K)."""
        u = self.latent_posterior().u_mean
        return self._scores_given(self.contexts(X).columns, u, var=False)[0]

    def score_std(self, X: Any) -> np.ndarray:
        """Var[x_iᵀθ_i] = x_iᵀ S_i x_i + q_iᵀ Cov[u] q_i, q_i = P_1 S_i x_i, rooted, (R, K)."""
        Xc = self.contexts(X).columns
        v = COLUMNS.mv(self._S, Xc)
        q = COLUMNS.mv(self._P0, v)
        u_cov = self.latent_posterior().u_cov
        return np.sqrt(COLUMNS.dot(v, Xc) + np.einsum("irk,rij,jrk->rk", q, u_cov, q))

    # ------------------------------------------------------------------ posteriors
    def action_posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """Every run's marginal θ_i posterior (Lemma 2): mean (R, K, d) S_i (P_1 E[u] + b_i),
        covariance (R, K, d, d) S_i + (S_i P_1) Cov[u] (S_i P_1)ᵀ (unobserved: E[u] and
        Σ_1 + Cov[u])."""
        marg = self.latent_posterior()
        S = _from_cm(self._S, 2)
        m = np.matmul(S, _from_cm(self._b, 1)[..., None])[..., 0]
        P0 = self._precs[0][:, None]
        seen = self._observed[..., None]
        mean = np.where(seen, conditional_mean(S, P0, m, marg.u_mean[:, None]),
                        marg.u_mean[:, None])
        cov = np.where(seen[..., None], marginal_cov(S, P0, marg.u_cov[:, None]),
                       (self._acov + marg.u_cov)[:, None])
        return mean, cov

    def effect_posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """Every run's joint latent posterior: means (R, L, d) of ψ_1 … ψ_L and their joint
        covariance (R, L·d, L·d): diagonal blocks Lemma 2's, and for ℓ < k,
        Cov[ψ_ℓ, ψ_k] = A_ℓ Cov[ψ_{ℓ+1}, ψ_k], A_ℓ = K_ℓ W_{ℓ+1}."""
        marg, chain = self.latent_posterior(), self.chain
        R, L, d = self.n_runs, self.n_layers, self.dim
        cov = np.zeros((R, L, d, L, d))
        for k in range(L):  # layers, not runs or actions
            block = marg.cov[:, k]
            cov[:, k, :, k, :] = block
            for j in range(k - 1, -1, -1):
                block = chain.K[j] @ self._links[j + 1] @ block
                cov[:, j, :, k, :] = block
                cov[:, k, :, j, :] = np.swapaxes(block, -1, -2)
        return marg.mean.copy(), cov.reshape(R, L * d, L * d)

    # ------------------------------------------------------------------ feedback
    def update(self, X: Any, A: Any, Y: Any, rngs: Any = None) -> None:
        """Condition run r on reward ``Y[r]`` of action ``A[r]`` in context ``X[r]``: the
        rank-one step of its action, and Ḡ_act += w wᵀ, η_act += P_1 (m' − m), as
        ``DiffusionModel.update`` does. Invalid input raises
        :class:`~mixedts.ValidationError` before any state changes (``rngs``: unused)."""
        X, A, Y = self._check_feedback(X, A, Y)
        if self.fitter is not None:
            self._update_glm(X, A, self.likelihood.check_rewards(Y, "Y"), rngs)
            return
        r = self._runs
        x = np.ascontiguousarray((X if X.ndim == 2 else X[r, A]).T)  # (d, R)
        b_a = self._b[:, r, A]
        obs = observe(self._S[:, :, r, A], self._P0[:, :, r, A], b_a, x, Y, self._noise_var,
                      COLUMNS)
        dG, db = sufficient_statistics(x, Y, self._noise_var, COLUMNS)
        # commit: nothing below can fail on valid input
        self._S[:, :, r, A] = obs.S
        self._G[:, :, r, A] += dG
        self._b[:, r, A] = b_a + db
        self._observed[r, A] = True
        w = obs.w.T  # (R, d)
        self.G_act += w[:, :, None] * w[:, None, :]
        self.eta_act += obs.eta.T
        self._after()

    def _update_glm(self, X: np.ndarray, A: np.ndarray, Y: np.ndarray, rngs: Any) -> None:
        """GLM rewards: refit each run's action (the one-run refits, from the runs' own
        generators), replace its pseudo-observation (G ← Ĝ_a, b ← Ĝ_a θ̂_a, plus
        P_1 (θ̂_a − E[u | H]) when expanded at the MAP), and change the sums by
        P_1 (S − S') P_1 and P_1 (m' − m), as ``DiffusionModel.update_batch`` does."""
        R = self.n_runs
        if self.fitter.method == "minibatch" and (rngs is None or len(rngs) != R):
            raise ValidationError(f"rngs must hold one generator per run ({R}) for minibatch "
                                  "refits")
        r = self._runs
        x = np.ascontiguousarray(X if X.ndim == 2 else X[r, A])  # (R, d)
        P0 = np.moveaxis(self._P0[:, :, r, A], 2, 0)  # (R, d, d)
        S_old, G_old = np.moveaxis(self._S[:, :, r, A], 2, 0), np.moveaxis(
            self._G[:, :, r, A], 2, 0)
        b_old = self._b[:, r, A].T
        if self._at_posterior:
            center = self.latent_posterior().u_mean  # (R, d)
            mode, G_new, token = self.fitter.propose(A, x, Y, G_old, rngs, (P0, center))
            b_new = matvec(G_new, mode) + matvec(P0, mode - center)
        else:
            mode, G_new, token = self.fitter.propose(A, x, Y, G_old, rngs)
            b_new = matvec(G_new, mode)
        S_new, m_new = conditional_posterior(P0, G_new, b_new)
        dM = P0 @ (S_old - S_new) @ P0
        dpm = matvec(P0, m_new - matvec(S_old, b_old))
        # commit: nothing below can fail on valid input
        self._S[:, :, r, A] = np.moveaxis(S_new, 0, 2)
        self._G[:, :, r, A] = np.moveaxis(G_new, 0, 2)
        self._b[:, r, A] = b_new.T
        self._observed[r, A] = True
        self.fitter.commit(token)
        self.G_act += 0.5 * (dM + np.swapaxes(dM, 1, 2))
        self.eta_act += dpm
        self._after()

    def _after(self) -> None:
        """One observation per run: the chains change, and the runs' refactor cadence."""
        self._changed()
        self.n_updates += 1
        self._since += 1
        self._countdown -= 1
        if self._countdown <= 0:
            self._maybe_refactor()

    def refactor(self, runs: Any = None) -> None:
        """Recompute S_i and both sums of ``runs`` (default all) exactly from the sufficient
        statistics, as ``DiffusionModel.refactor`` does (observed actions only)."""
        super().refactor(runs)
        idx = slice(None) if runs is None else np.asarray(runs)
        S = _from_cm(self._S[:, :, idx], 2)  # (r, K, d, d)
        m = np.matmul(S, _from_cm(self._b[:, idx], 1)[..., None])[..., 0]
        M, eta = effect_terms(self._precs[0][idx][:, None], S, m)
        seen = self._observed[idx]
        M_sum = (M * seen[..., None, None]).sum(axis=1)
        self.G_act[idx] = 0.5 * (M_sum + np.swapaxes(M_sum, -1, -2))
        self.eta_act[idx] = (eta * seen[..., None]).sum(axis=1)
        self._changed()

    def __repr__(self) -> str:
        return (f"BatchedDiffusionModel(n_runs={self.n_runs}, n_actions={self.n_actions}, "
                f"n_layers={self.n_layers}, dim={self.dim})")
