"""The dTS posterior: per-action conditionals below a latent chain (docs/diffusion.md §2).

State
-----
* per observed action, ``S_i``, ``b_i``, ``m_i = S_i b_i`` in an :class:`ActionStore` (the
  conditional θ_i | ψ_1 ~ N(S_i (P_1 f_1(ψ_1) + b_i), S_i), eq. 5 of Aouali 2023);
* the two sums over the observed actions, Ḡ_act = Σ_i (P_1 − P_1 S_i P_1) and
  η_act = Σ_i P_1 m_i, kept incrementally: one observation of action a changes only a's terms,
  by w wᵀ and P_1 (m_a' − m_a) (:func:`~mixedts.models.linear_gaussian.observe`);
* the chain's conditional posteriors (:mod:`~mixedts.models.diffusion_chain`), recomputed from
  the sums in O(L d³) when a summary is next asked for.

A round then costs O(L d³) for the chain plus one pass over the observed actions' S_i, as
LinTS's does. With linear links the posterior is exact; with :class:`ReLULink` links it is the
approximation of Aouali (2025), Eqs. 9–12, whose marginals are estimated by Monte Carlo.
GLM rewards replace each action's likelihood by its Laplace approximation
N(θ̂_a, Ĝ_a⁻¹) (G ← Ĝ_a, b ← Ĝ_a θ̂_a), the paper's likelihood-level approximation.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..likelihoods import Gaussian, Likelihood
from ..linalg import sym_inv
from ..priors_diffusion import DiffusionPrior
from .actions import ActionStore
from .base import SCORE_DRAWS, Draw, register_model
from .diffusion_chain import (
    ActionChains,
    Chain,
    Marginals,
    draw_latents,
    latent_marginals,
    upward,
)
from .laplace import LaplaceFitter
from .linear_gaussian import conditional_mean, draw_scores, marginal_cov
from .mixed_effect import glm_from_config

#: draws of the Monte Carlo marginals of the non-linear model (seeded, see ``_mc_marginals``)
MC_MARGINAL_DRAWS = 4000
#: the same with per-action latents (every action's chain is drawn)
MC_ACTION_DRAWS = 500
LATENTS = ("shared", "per-action")


@register_model
class DiffusionModel:
    """Posterior of K actions under a :class:`~mixedts.DiffusionPrior`.

    Parameters
    ----------
    prior : DiffusionPrior
    n_actions : int
        K.
    noise_std : float
        σ (Gaussian rewards).
    refactor_every : int
        Recompute every S_i and both sums exactly after this many incremental updates, or
        after as many as there are observed actions if that is more (0: never).
    likelihood : Likelihood, optional
        Gaussian (default) or a GLM (Laplace-approximated per action).
    laplace : dict, optional
        Options of the :class:`~mixedts.models.laplace.LaplaceFitter`.
    laplace_at : {"posterior", "likelihood"}
        Expand each action's log-likelihood at the MAP under the action's conditional prior
        N(c, Σ_1), c = E[f_1(ψ_1) | H] (b ← G θ̂ + P_1 (θ̂ − c); default), which stays
        informative when an action's data are separable, or at its ridge-penalised maximum
        (b ← G θ̂, the paper).
    latents : {"shared", "per-action"}
        One chain above all the actions (Eq. 1 of the papers), or one chain per action: each
        θ_i an independent draw of the diffusion prior (a prior pre-trained on i.i.d. samples
        of action parameters; docs/diffusion.md §7). Per-action with linear links is LinTS on
        the chain's marginal prior.

    Examples
    --------
    >>> import numpy as np
    >>> from mixedts import DiffusionPrior
    >>> prior = DiffusionPrior([np.eye(2), np.eye(2)], [np.eye(2)] * 3)
    >>> model = DiffusionModel(prior, n_actions=4)
    >>> model.update(np.array([1.0, 0.0]), 2, 1.5)
    >>> model.posterior_mean().shape
    (4, 2)
    """

    draws = SCORE_DRAWS | {Draw.SAMPLES}

    def __init__(self, prior: DiffusionPrior, n_actions: int, noise_std: float = 1.0,
                 refactor_every: int = 5000, likelihood: Likelihood | None = None,
                 laplace: dict[str, Any] | None = None, laplace_at: str = "posterior",
                 latents: str = "shared") -> None:
        self.prior = prior
        self.n_actions = int(n_actions)
        self.dim = prior.dim
        self.n_layers = prior.n_layers
        self.noise_std = float(noise_std)
        self.refactor_every = int(refactor_every)
        self.likelihood = likelihood if likelihood is not None else Gaussian()
        self.laplace_at = laplace_at
        self.latents = latents
        self.fitter = (None if isinstance(self.likelihood, Gaussian)
                       else LaplaceFitter(self.likelihood, self.dim, **(laplace or {})))
        self.store = ActionStore(self.n_actions, np.array(prior.covs[0]), self.noise_std**2)
        self._precs = sym_inv(np.array(prior.covs))
        self._maps = list(prior.links) if prior.is_linear else None
        d = self.dim
        self.G_act = np.zeros((d, d))
        self.eta_act = np.zeros(d)
        self._since_refactor = 0
        self.n_updates = 0
        self._chain: Chain | None = None
        self._marginals: Marginals | None = None
        self._per_action = (ActionChains(self._precs, self._maps, prior.mean)
                            if latents == "per-action" else None)

    # ------------------------------------------------------------------ chain
    @property
    def chain(self) -> Chain:
        """The latents' conditional posteriors, recomputed after a change (O(L d³))."""
        if self._chain is None:
            self._chain = upward(self._precs, self._maps, self.G_act, self.eta_act,
                                 self.prior.mean)
        return self._chain

    def _changed(self) -> None:
        self._chain = None
        self._marginals = None

    def latent_posterior(self) -> Marginals:
        """Marginal posteriors of ψ_1 … ψ_L and of u = f_1(ψ_1) (Lemma 2; Monte Carlo for
        non-linear links)."""
        if self._marginals is None:
            if self._per_action is not None:
                self._marginals = (
                    self._per_action.marginals(self.store, self._maps, self.n_actions)
                    if self._maps is not None else self._mc_marginals())
            else:
                self._marginals = (latent_marginals(self.chain, self._maps)
                                   if self._maps is not None else self._mc_marginals())
        return self._marginals

    def _mc_marginals(self) -> Marginals:
        """Moments of the approximate posterior from ``MC_MARGINAL_DRAWS`` top-down draws of a
        generator seeded by the number of updates (deterministic, the policy's untouched)."""
        rng = np.random.default_rng([7, self.n_updates])
        n = MC_MARGINAL_DRAWS if self._per_action is None else MC_ACTION_DRAWS
        psi = self._draw_latents(n, rng)  # (n, [K,] L, d)
        u = self.prior.link(0, psi[..., 0, :])
        dpsi, du = psi - psi.mean(0), u - u.mean(0)
        return Marginals(psi.mean(0), np.einsum("n...i,n...j->...ij", dpsi, dpsi) / (n - 1),
                         u.mean(0), np.einsum("n...i,n...j->...ij", du, du) / (n - 1))

    def _draw_latents(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n top-down draws of (ψ_1 … ψ_L), (n, L, d) (per-action latents: (n, K, L, d))."""
        if self._per_action is not None:
            z = rng.standard_normal((n, self.n_actions, self.n_layers, self.dim))
            return self._per_action.draw(self.store, self.prior.link, z)
        z = rng.standard_normal((n, self.n_layers, self.dim))
        return draw_latents(self.chain, self.prior.link, z)

    def _draw_u(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """n draws of u = f_1(ψ_1), (n, d) (per-action latents: (n, K, d))."""
        return self.prior.link(0, self._draw_latents(n, rng)[..., 0, :])

    # ------------------------------------------------------------------ scores
    def _scores_given(self, x: np.ndarray, u: np.ndarray):
        """Mean and variance of x_iᵀθ_i | u for every action, each (K,); u is (d,), or (K, d)
        with per-action latents."""
        K = self.n_actions
        if u.ndim == 2:
            mean = u @ x if x.ndim == 1 else np.einsum("kd,kd->k", x, u)
        else:
            mean = np.full(K, x @ u) if x.ndim == 1 else x @ u
        var = np.broadcast_to(self.store.prior_var(x, K), (K,)).copy()
        n = self.store.n
        if n:
            acts = self.store.actions[:n]
            mean[acts], var[acts] = self.store.observed_scores(x, u if u.ndim == 1 else u[acts])
        return mean, var

    def _directions(self, x: np.ndarray) -> np.ndarray:
        """q_i = P_1 S_i x_i, the direction of u in action i's score, (K, d)."""
        q = np.array(np.broadcast_to(x, (self.n_actions, self.dim)))
        n = self.store.n
        if n:
            acts = self.store.actions[:n]
            q[acts] = np.matmul(self.store.S[:n], q[acts][:, :, None])[:, :, 0] @ self.store.P0
        return q

    def sample_scores(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Draw ψ_L, …, ψ_1 top-down, then every x_iᵀθ_i | ψ_1 (one pass over the actions)."""
        mean, var = self._scores_given(x, self._draw_u(1, rng)[0])
        return draw_scores(mean, var, rng.standard_normal(self.n_actions))

    def sample_scores_many(self, x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` independent draws of the :meth:`sample_scores` law, (n, K): the mean of
        x_iᵀθ_i | u is x_iᵀ m_i + q_iᵀ u, so n draws of u make one (n, d) @ (d, K) product."""
        u = self._draw_u(n, rng)
        mean0, var = self._scores_given(x, np.zeros(self.dim))
        q = self._directions(x)
        means = mean0 + (u @ q.T if u.ndim == 2 else np.einsum("nkd,kd->nk", u, q))
        return draw_scores(means, var, rng.standard_normal((n, self.n_actions)))

    def mean_scores(self, x: np.ndarray) -> np.ndarray:
        """Posterior mean of x_iᵀθ_i, (K,)."""
        return self._scores_given(x, self.latent_posterior().u_mean)[0]

    def score_std(self, x: np.ndarray) -> np.ndarray:
        """Var[x_iᵀθ_i] = x_iᵀ S_i x_i + q_iᵀ Cov[u] q_i, square-rooted, (K,)."""
        marg = self.latent_posterior()
        _, var = self._scores_given(x, marg.u_mean)
        q = self._directions(x)
        return np.sqrt(var + np.einsum("ki,...ij,kj->k", q, marg.u_cov, q))

    # ------------------------------------------------------------------ marginals
    def _action_terms(self, actions: np.ndarray):
        """(S, P_1 stack, m) of ``actions`` whether observed or not."""
        S, _, m, _, P0 = self.store.state_of(actions)
        return S, P0, m

    def posterior_mean(self) -> np.ndarray:
        """E[θ_i | H], (K, d): S_i (P_1 E[u] + b_i) (Lemma 2's mean)."""
        u = self.latent_posterior().u_mean
        mean = np.array(np.broadcast_to(u, (self.n_actions, self.dim)))
        n = self.store.n
        if n:
            acts = self.store.actions[:n]
            mean[acts] = conditional_mean(self.store.S[:n], self.store.P0, self.store.m[:n],
                                          u if u.ndim == 1 else u[acts])
        return mean

    def posterior_cov(self) -> np.ndarray:
        """Cov[θ_i | H], (K, d, d): S_i + (S_i P_1) Cov[u] (S_i P_1)ᵀ (Lemma 2)."""
        u_cov = self.latent_posterior().u_cov
        cov = np.array(np.broadcast_to(self.prior.covs[0] + u_cov,
                                       (self.n_actions, self.dim, self.dim)))
        n = self.store.n
        if n:
            acts = self.store.actions[:n]
            cov[acts] = marginal_cov(self.store.S[:n], self.store.P0,
                                     u_cov if u_cov.ndim == 2 else u_cov[acts])
        return cov

    def joint_cov(self, actions) -> np.ndarray:
        """The joint posterior covariance of θ_a for ``actions`` (n,), (n·d, n·d): diagonal
        blocks :meth:`posterior_cov`, off-diagonal (S_a P_1) Cov[u] (S_b P_1)ᵀ."""
        actions = np.asarray(actions, dtype=np.int64)
        S, P0, _ = self._action_terms(actions)
        T = S @ P0  # (n, d, d)
        u_cov = self.latent_posterior().u_cov
        n, d = len(actions), self.dim
        if u_cov.ndim == 3:  # per-action latents: independent actions
            blocks = np.zeros((n, d, n, d))
            same = actions[:, None] == actions[None, :]
            a, b = np.nonzero(same)
            blocks[a, :, b, :] = T[a] @ u_cov[actions[a]] @ np.swapaxes(T[b], -1, -2)
        else:
            blocks = np.einsum("aij,jk,blk->aibl", T, u_cov, T)
        blocks[np.arange(n), :, np.arange(n), :] += S
        out = blocks.reshape(n * d, n * d)
        return 0.5 * (out + out.T)

    def sample_parameters(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` joint draws of all θ, (n, K, d): the chain top-down, then every θ_i | ψ_1."""
        K, d = self.n_actions, self.dim
        u = self._draw_u(n, rng)  # (n, d) or (n, K, d)
        mean = np.array(np.broadcast_to(u[:, None, :] if u.ndim == 2 else u, (n, K, d)))
        chol = np.array(np.broadcast_to(np.linalg.cholesky(self.prior.covs[0]), (K, d, d)))
        no = self.store.n
        if no:
            acts = self.store.actions[:no]
            mean[:, acts] = conditional_mean(self.store.S[:no], self.store.P0, self.store.m[:no],
                                             u[:, None, :] if u.ndim == 2 else u[:, acts])
            chol[acts] = np.linalg.cholesky(self.store.S[:no])
        z = rng.standard_normal((n, K, d))
        return mean + np.einsum("kij,skj->ski", chol, z)

    # ------------------------------------------------------------------ updates
    def update(self, x: np.ndarray, a: int, y: float,
               rng: np.random.Generator | None = None) -> None:
        """Condition on one observation: a rank-one step of action a and of the sums."""
        if self.fitter is not None:
            self.update_batch(x[None], np.array([a]), np.array([y]), rng)
            return
        p = self.store.propose(a, x, y)
        slot = self.store.commit(p)
        if self._per_action is not None:
            self._per_action.mark(slot)
        self.G_act += np.outer(p["w"], p["w"])
        self.eta_act += p["dpm"]
        self._after(1)

    def update_batch(self, X: np.ndarray, A: np.ndarray, Y: np.ndarray,
                     rng: np.random.Generator | None = None) -> None:
        """Condition on a batch: X (n, d) contexts of the actions A (n,), rewards Y (n,)."""
        if len(A) == 0:
            return
        if self.fitter is None:
            p, token = self.store.propose_batch(A, X, Y), None
        else:
            U, inv = np.unique(A, return_inverse=True)
            old = self.store.state_of(U)
            if self.laplace_at == "posterior" and self.fitter.method != "online":
                P0 = np.array(old[4])
                u_mean = self.latent_posterior().u_mean
                center = (u_mean[U] if u_mean.ndim == 2
                          else np.broadcast_to(u_mean, (len(U), self.dim)))
                mode, G, token = self.fitter.propose(U, inv, X, Y, old[3], rng,
                                                     prior=(P0, center))
                b = np.einsum("uij,uj->ui", G, mode) + np.einsum("uij,uj->ui", P0, mode - center)
            else:
                mode, G, token = self.fitter.propose(U, inv, X, Y, old[3], rng)
                b = np.einsum("uij,uj->ui", G, mode)
            p = self.store.propose_set(U, np.bincount(inv, minlength=len(U)), G, b, old)
        slots = self.store.commit_batch(p)
        if self._per_action is not None:
            self._per_action.mark(slots)
        if token is not None:
            self.fitter.commit(token)
        self.G_act += p["dM"].sum(axis=0)
        self.eta_act += p["dpm"].sum(axis=0)
        self._after(len(A))

    def _after(self, n_obs: int) -> None:
        self.n_updates += n_obs
        self._since_refactor += n_obs
        self._changed()
        every = self.refactor_every
        if every and self._since_refactor >= max(every, self.store.n):
            self.refactor()

    def refactor(self) -> None:
        """Recompute every S_i and both sums exactly from the sufficient statistics."""
        self.store.refresh()
        M, eta = self.store.M_and_pm()
        self.G_act = 0.5 * (M.sum(axis=0) + M.sum(axis=0).T)
        self.eta_act = eta.sum(axis=0)
        self._since_refactor = 0
        if self._per_action is not None:
            self._per_action.reset()
        self._changed()

    # ------------------------------------------------------------------ catalogue
    def add_action(self) -> int:
        """Append an action at the prior (θ | ψ_1 ~ N(f_1(ψ_1), Σ_1)); returns its index."""
        self.n_actions += 1
        self.store.set_n_actions(self.n_actions)
        self._changed()
        return self.n_actions - 1

    # ------------------------------------------------------------------ persistence
    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        cfg = {"n_actions": self.n_actions, "noise_std": self.noise_std,
               "refactor_every": self.refactor_every, "since_refactor": self._since_refactor,
               "n_updates": self.n_updates, "laplace_at": self.laplace_at,
               "latents": self.latents,
               "glm": None if self.fitter is None else self.fitter.config()}
        arrays = {f"prior.{k}": v for k, v in self.prior.arrays().items()}
        arrays.update({f"store.{k}": v for k, v in self.store.state().items()})
        if self.fitter is not None:
            arrays.update(self.fitter.state())
        arrays["G_act"], arrays["eta_act"] = self.G_act.copy(), self.eta_act.copy()
        return cfg, arrays

    @classmethod
    def from_state(cls, cfg: dict[str, Any], arrays: dict[str, np.ndarray]) -> DiffusionModel:
        prior = DiffusionPrior.from_arrays(
            {k[len("prior."):]: v for k, v in arrays.items() if k.startswith("prior.")})
        likelihood, laplace = glm_from_config(cfg.get("glm"))
        model = cls(prior, cfg["n_actions"], cfg["noise_std"], cfg["refactor_every"],
                    likelihood, laplace, cfg.get("laplace_at", "posterior"),
                    cfg.get("latents", "shared"))
        model.store.load_state(
            {k[len("store."):]: v for k, v in arrays.items() if k.startswith("store.")})
        if model.fitter is not None:
            model.fitter.load_state(arrays)
        model.G_act = np.array(arrays["G_act"], dtype=np.float64)
        model.eta_act = np.array(arrays["eta_act"], dtype=np.float64)
        model._since_refactor = int(cfg["since_refactor"])
        model.n_updates = int(cfg["n_updates"])
        return model
