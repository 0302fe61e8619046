"""The exact posterior under a general linear effect structure (sDM's prior).

θ_a | ψ ~ N(W_a ψ, Σ_a), ψ ~ N(μ, Σ), y = xᵀθ_a + N(0, σ²). It is docs/math.md §1–2 with
Γ_a = W_a, computed with the same functions as the mixed-effect model
(:mod:`~mixedts.models.linear_gaussian`, :class:`~mixedts.models.gaussian.SqrtGaussian`):

* each action keeps S_a = (P0_a + G_a)⁻¹ and b_a = Σ y x/σ² (dense, (K, d, d) and (K, d));
* the effect posterior keeps a square root of its covariance and its information vector
  h = Σ⁻¹μ + Σ_a W_aᵀ P0_a m_a, precision Σ⁻¹ + Σ_a W_aᵀ M_a W_a (eq. 7);
* one observation of a is a rank-one step: S_a by Sherman–Morrison, and the effect precision
  gains u uᵀ with u = W_aᵀ w (w = P0_a S_a x/√c), h gains W_aᵀ w e/√c (``observe``);
* x_iᵀθ_i | ψ ~ N(x_iᵀ m_i + q_iᵀ W_i ψ, x_iᵀ S_i x_i), q_i = P0_i S_i x_i.

Rounding drift is bounded by an exact recompute after ``refactor_every`` updates.

Binary rewards (y ~ Bernoulli(sigmoid(xᵀθ_a)), sDM's App. E.1, docs/math.md §4): each touched
action's likelihood is replaced by a Gaussian pseudo-observation, G_a ← Ğ_a (the curvature at
the expansion point) and b_a ← Ğ_a θ̆_a (plus ∇log L at the posterior mode), from
``LaplaceFitter.pseudo_observations`` (:mod:`mixedts.models.laplace`); the same closed forms
then apply. The touched actions' S, m are recomputed and the effect precision Σ̄⁻¹ (kept
alongside its square root) gains Σ_a W_aᵀ (M_a' − M_a) W_a, h gains Σ_a W_aᵀ (η_a' − η_a):
O(u·d²·d′ + d′³) per update of u touched actions.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..likelihoods import Gaussian, Likelihood
from ..linalg import NotPositiveDefiniteError
from .base import SCORE_DRAWS, Draw, register_model
from .gaussian import SqrtGaussian
from .laplace import LaplaceFitter
from .linear_gaussian import (
    conditional_posterior,
    effect_terms,
    marginal_cov,
    observe,
    sufficient_statistics,
)


def _rowdot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.einsum("kd,kd->k", a, b)


@register_model
class LinearEffectModel:
    """Exact Gaussian posterior of a :class:`~mixedts.LinearEffectPrior`, updated by rank-one
    steps (Gaussian rewards), or its Laplace plug-in for GLM rewards.

    Parameters
    ----------
    prior : LinearEffectPrior
    noise_std : float
        σ (Gaussian rewards only).
    refactor_every : int
        Exact recompute after this many incremental updates (0: never).
    likelihood : Likelihood, optional
        Gaussian (default) or a GLM such as :class:`~mixedts.likelihoods.Logistic`, whose
        per-action likelihoods are replaced by Gaussian pseudo-observations.
    laplace : dict, optional
        Options of the :class:`~mixedts.models.laplace.LaplaceFitter`.
    laplace_at : {"posterior", "likelihood"}
        Where each action's log-likelihood is expanded: at the MAP under its conditional
        prior N(W_a μ̄, Σ_a) given the current effect mean (default), or at its
        ridge-penalised maximum (sDM's App. E.1: G ← Ğ, b ← Ğ μ̆).
    """

    draws = SCORE_DRAWS | {Draw.SAMPLES}

    def __init__(self, prior, noise_std: float = 1.0, refactor_every: int = 5000,
                 likelihood: Likelihood | None = None, laplace: dict[str, Any] | None = None,
                 laplace_at: str = "posterior") -> None:  # fmt: skip
        self.prior = prior
        self.noise_std = float(noise_std)
        self.refactor_every = int(refactor_every)
        self.likelihood = likelihood if likelihood is not None else Gaussian()
        self.laplace_at = laplace_at
        self.fitter = (None if isinstance(self.likelihood, Gaussian)
                       else LaplaceFitter(self.likelihood, prior.dim, **(laplace or {})))
        K, d = prior.n_actions, prior.dim
        self.n_actions, self.dim = K, d
        self.W = np.array(prior.loadings)
        self.P0 = np.linalg.inv(prior.action_covs())
        self.P0 = 0.5 * (self.P0 + np.swapaxes(self.P0, 1, 2))
        self.G = np.zeros((K, d, d))
        self.b = np.zeros((K, d))
        self.n_updates = 0
        self._since_refactor = 0
        self.refactor()

    # ------------------------------------------------------------------ exact recompute
    def refactor(self) -> None:
        """Recompute every action's S, m and the effect posterior from the statistics."""
        self.S, self.m = conditional_posterior(self.P0, self.G, self.b)
        M, eta = effect_terms(self.P0, self.S, self.m)
        Wt = np.swapaxes(self.W, 1, 2)
        prec0 = np.linalg.inv(self.prior.effect_cov)
        precision = 0.5 * (prec0 + prec0.T) + np.einsum("kei,kij,kjf->ef", Wt, M, self.W)
        h = prec0 @ self.prior.effect_mean + np.einsum("kei,ki->e", Wt, eta)
        self.effects = SqrtGaussian.from_precision(precision, h)
        self.precision = precision  # Σ̄⁻¹, which the GLM updates change additively
        self._since_refactor = 0

    # ------------------------------------------------------------------ updates
    def update(self, x: np.ndarray, a: int, y: float, rng=None) -> None:
        """Condition on reward ``y`` of action ``a`` with its context row ``x`` (d,)."""
        if self.fitter is not None:
            self.update_batch(x[None], np.array([a]), np.array([y]), rng)
            return
        var = self.noise_std**2
        obs = observe(self.S[a], self.P0[a], self.b[a], x, y, var)
        Wt = self.W[a].T
        u = Wt @ obs.w
        C, h, mean = self.effects.proposed_rank_one(None, u, Wt @ obs.eta)
        dG, db = sufficient_statistics(x, y, var)
        self.effects.C, self.effects.h, self.effects.mean = C, h, mean
        self.precision = self.precision + np.outer(u, u)
        self.S[a] = obs.S
        self.G[a] += dG
        self.b[a] += db
        self.m[a] = obs.S @ self.b[a]
        self.n_updates += 1
        self._since_refactor += 1
        if self.refactor_every and self._since_refactor >= self.refactor_every:
            self.refactor()

    def update_batch(self, X: np.ndarray, A: np.ndarray, Y: np.ndarray, rng=None) -> None:
        """Condition on n observations at once: the statistics, then one exact recompute
        (Gaussian rewards), or one batched Laplace refit of the touched actions (GLM)."""
        if len(A) == 0:
            return
        if self.fitter is not None:
            self._update_glm(X, A, Y, rng)
            return
        dG, db = sufficient_statistics(X, Y, self.noise_std**2)
        np.add.at(self.G, A, dG)
        np.add.at(self.b, A, db)
        self.n_updates += len(A)
        self.refactor()

    def _update_glm(self, X: np.ndarray, A: np.ndarray, Y: np.ndarray, rng) -> None:
        """New pseudo-observations of the touched actions, then their S, m and the effects."""
        U, inv = np.unique(A, return_inverse=True)
        P0, W = self.P0[U], self.W[U]
        center = W @ self.effects.mean if self.laplace_at == "posterior" else None
        G, b, token = self.fitter.pseudo_observations(U, inv, X, Y, self.G[U], rng,
                                                      self.laplace_at, P0, center)
        S, m = conditional_posterior(P0, G, b)
        M_new, eta_new = effect_terms(P0, S, m)
        M_old, eta_old = effect_terms(P0, self.S[U], self.m[U])
        Wt = np.swapaxes(W, 1, 2)
        precision = self.precision + np.einsum("uei,uij,ujf->ef", Wt, M_new - M_old, W,
                                                optimize=True)
        precision = 0.5 * (precision + precision.T)
        h = self.effects.h + np.einsum("uei,ui->e", Wt, eta_new - eta_old)
        try:
            effects = SqrtGaussian.from_precision(precision, h)
        except NotPositiveDefiniteError:  # rounding lost definiteness: recompute exactly
            effects = None
        # commit: nothing below can fail
        self.G[U], self.b[U], self.S[U], self.m[U] = G, b, S, m
        self.fitter.commit(token)
        self.n_updates += len(A)
        self._since_refactor += len(A)
        if effects is None or (self.refactor_every
                               and self._since_refactor >= self.refactor_every):
            self.refactor()
            return
        self.effects, self.precision = effects, precision

    # ------------------------------------------------------------------ scores
    def _score_parts(self, x: np.ndarray):
        """x_iᵀ m_i (K,), x_iᵀ S_i x_i (K,) and g_i = W_iᵀ P0_i S_i x_i (K, d′)."""
        X = np.broadcast_to(x, (self.n_actions, self.dim))
        v = np.einsum("kij,kj->ki", self.S, X)
        q = np.einsum("kij,kj->ki", self.P0, v)
        return _rowdot(v, self.b), _rowdot(v, X), np.einsum("kd,kde->ke", q, self.W)

    def sample_scores(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw ψ, then every x_iᵀθ_i | ψ (the scalar-score shortcut), (K,)."""
        psi = self.effects.sample(rng)
        mean0, var, g = self._score_parts(x)
        return mean0 + g @ psi + np.sqrt(var) * rng.standard_normal(self.n_actions)

    def sample_scores_many(self, x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` independent draws of :meth:`sample_scores`, (n, K)."""
        psi = self.effects.sample(rng, n)
        mean0, var, g = self._score_parts(x)
        return mean0 + psi @ g.T + np.sqrt(var) * rng.standard_normal((n, self.n_actions))

    def mean_scores(self, x: np.ndarray) -> np.ndarray:
        mean0, _, g = self._score_parts(x)
        return mean0 + g @ self.effects.mean

    def score_std(self, x: np.ndarray) -> np.ndarray:
        """√(x_iᵀ S_i x_i + g_iᵀ Σ̄ g_i) (eq. 16), (K,)."""
        _, var, g = self._score_parts(x)
        return np.sqrt(var + self.effects.std_along(g) ** 2)

    # ------------------------------------------------------------------ marginals
    def effect_posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean (d′,) and covariance (d′, d′) of ψ's posterior."""
        return self.effects.mean.copy(), self.effects.cov()

    def posterior_mean(self) -> np.ndarray:
        """E[θ_i] = m_i + S_i P0_i W_i μ̄, (K, d)."""
        return self.m + np.einsum("kij,kj->ki", self.S @ self.P0, self.W @ self.effects.mean)

    def posterior_cov(self) -> np.ndarray:
        """Cov[θ_i] = S_i + S_i P0_i W_i Σ̄ W_iᵀ P0_i S_i, (K, d, d)."""
        mix = self.W @ self.effects.cov() @ np.swapaxes(self.W, 1, 2)
        return marginal_cov(self.S, self.P0, mix)

    def sample_parameters(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` joint draws of every θ_i: ψ, then θ_i | ψ, (n, K, d)."""
        psi = self.effects.sample(rng, n)  # (n, d′)
        cond = self.m + np.einsum("kij,nkj->nki", self.S @ self.P0,
                                  np.einsum("kde,ne->nkd", self.W, psi))
        chol = np.linalg.cholesky(self.S)
        return cond + np.einsum("kij,nkj->nki", chol,
                                rng.standard_normal((n, self.n_actions, self.dim)))

    def add_action(self, *args: Any) -> int:
        raise NotImplementedError(
            "LinearEffectModel has a fixed catalogue: build a new prior with the action")

    # ------------------------------------------------------------------ persistence
    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        cfg = {"noise_std": self.noise_std, "refactor_every": self.refactor_every,
               "n_updates": self.n_updates, "since_refactor": self._since_refactor,
               "glm": None if self.fitter is None else self.fitter.config(),
               "laplace_at": self.laplace_at}
        arrays = {"effect_mean": self.prior.effect_mean, "effect_cov": self.prior.effect_cov,
                  "loadings": self.W, "action_cov": np.asarray(self.prior.action_cov),
                  "G": self.G, "b": self.b, "S": self.S, "m": self.m,
                  "effects_C": self.effects.C, "effects_h": self.effects.h,
                  "effects_precision": self.precision}
        if self.fitter is not None:
            arrays.update(self.fitter.state())
        return cfg, arrays

    @classmethod
    def from_state(cls, cfg: dict[str, Any], arrays: dict[str, np.ndarray]):
        from ..priors_linear import LinearEffectPrior
        from .mixed_effect import glm_from_config

        prior = LinearEffectPrior(arrays["effect_mean"], arrays["effect_cov"],
                                  arrays["loadings"], arrays["action_cov"])
        likelihood, laplace = glm_from_config(cfg.get("glm"))
        model = cls(prior, float(cfg["noise_std"]), int(cfg["refactor_every"]), likelihood,
                    laplace, cfg.get("laplace_at", "posterior"))
        if model.fitter is not None:
            model.fitter.load_state(arrays)
        model.G = np.array(arrays["G"], dtype=np.float64)
        model.b = np.array(arrays["b"], dtype=np.float64)
        model.S = np.array(arrays["S"], dtype=np.float64)
        model.m = np.array(arrays["m"], dtype=np.float64)
        model.effects = SqrtGaussian(arrays["effects_C"], arrays["effects_h"])
        if "effects_precision" in arrays:
            model.precision = np.array(arrays["effects_precision"], dtype=np.float64)
        else:  # a file from before the precision was kept: Σ̄⁻¹ from the square root
            inv = np.linalg.inv(model.effects.cov())
            model.precision = 0.5 * (inv + inv.T)
        model.n_updates = int(cfg["n_updates"])
        model._since_refactor = int(cfg["since_refactor"])
        return model
