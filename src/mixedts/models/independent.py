"""Independent per-action Gaussian posteriors (LinTS, LinUCB): structure ignored.

The formulas are those of :mod:`~mixedts.models.linear_gaussian` with L = 0 and the prior mean
inside b (b_i = P0_i μ0_i + Σ y x/σ²), held by an :class:`~mixedts.models.actions.ActionStore`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import ValidationError, as_float_array, check_shape, check_symmetric_psd
from ..likelihoods import Gaussian, Likelihood
from .actions import ActionStore
from .base import SCORE_DRAWS, Draw, register_model
from .laplace import LaplaceFitter
from .linear_gaussian import ROWS, conditional_scores, draw_scores
from .mixed_effect import glm_from_config


@register_model
class IndependentGaussianModel:
    """θ_i ~ N(μ0_i, Σ0_i) independently, Gaussian rewards with noise σ.

    Parameters
    ----------
    prior_mean : ndarray, shape (K, d)
    prior_cov : ndarray, shape (d, d) or (K, d, d)
    noise_std : float
    refactor_every : int
        Recompute the covariances exactly every this many updates (0: never).
    likelihood : Likelihood, optional
        Gaussian (default) or a GLM whose likelihood is Laplace-approximated (GLM-TS).
    laplace : dict, optional
        Options of the :class:`~mixedts.models.laplace.LaplaceFitter`.
    laplace_at : {"likelihood", "posterior"}
        Laplace-approximate each action's likelihood and combine it with the Gaussian prior
        (the plug-in meTS-GLM uses), or the posterior itself at its MAP (Chapelle & Li 2011).

    Examples
    --------
    >>> model = IndependentGaussianModel(np.zeros((3, 2)), np.eye(2), noise_std=1.0)
    >>> x = np.array([1.0, 0.0])
    >>> model.update(x, 1, 2.0)                  # only action 1 learns
    >>> model.posterior_mean()
    array([[0., 0.],
           [1., 0.],
           [0., 0.]])
    >>> model.score_std(x).round(3)
    array([1.   , 0.707, 1.   ])
    """

    draws = SCORE_DRAWS | {Draw.MEAN_STD_COUNT, Draw.SAMPLES}

    def __init__(
        self,
        prior_mean: np.ndarray,
        prior_cov: np.ndarray,
        noise_std: float = 1.0,
        refactor_every: int = 5000,
        likelihood: Likelihood | None = None,
        laplace: dict[str, Any] | None = None,
        laplace_at: str = "posterior",
    ) -> None:
        self.laplace_at = laplace_at
        self.prior_mean = np.array(prior_mean, dtype=np.float64)
        self.prior_cov = np.array(prior_cov, dtype=np.float64)
        self.n_actions, self.dim = self.prior_mean.shape
        self.noise_std = float(noise_std)
        self.refactor_every = int(refactor_every)
        self.store = ActionStore(
            self.n_actions, self.prior_cov, self.noise_std**2, prior_mean=self.prior_mean
        )
        self.likelihood = likelihood if likelihood is not None else Gaussian()
        self.fitter = (
            None
            if isinstance(self.likelihood, Gaussian)
            else LaplaceFitter(self.likelihood, self.dim, **(laplace or {}))
        )
        self._since_refactor = 0
        self.n_updates = 0

    # ------------------------------------------------------------------ scores
    def _scores(self, x: np.ndarray):
        n = self.store.n
        if n == self.n_actions and self.store.ordered:  # slot i is action i
            return self.store.observed_scores(x, None)
        if x.ndim == 1:
            mean = self.prior_mean @ x
        else:
            mean = np.einsum("kd,kd->k", x, self.prior_mean)
        var = np.broadcast_to(self.store.prior_var(x, self.n_actions), (self.n_actions,)).copy()
        n = self.store.n
        if n:
            acts = self.store.actions[:n]
            mean[acts], var[acts] = self.store.observed_scores(x, None)
        return mean, var

    def sample_scores(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        mean, var = self._scores(x)
        return draw_scores(mean, var, rng.standard_normal(self.n_actions))

    def sample_scores_rounds(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """:meth:`sample_scores` for n rounds at once (no update in between), (n, K): the
        contexts ``X`` (n, d) or (n, K, d), and the normals of the n calls in one draw."""
        n_r, K = len(X), self.n_actions
        eps = rng.standard_normal((n_r, K))
        xs = X[:, None, :] if X.ndim == 2 else X  # (n, 1 or K, d)
        mean = np.broadcast_to(np.einsum("...i,...i->...", xs, self.prior_mean), (n_r, K)).copy()
        st = self.store
        var = st.prior_var_rounds(xs, K)
        n = st.n
        if n:
            acts = st.actions[:n]
            xo = xs if X.ndim == 2 else X[:, acts]
            mean[:, acts], var[:, acts] = conditional_scores(st.S[:n], st.b[:n], xo,
                                                             layout=ROWS, m=st.m[:n])
        return draw_scores(mean, var, eps)

    def sample_scores_many(self, x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` independent draws of :meth:`sample_scores`, (n, K) (the actions are
        independent, so each score is drawn from its own marginal)."""
        mean, var = self._scores(x)
        return draw_scores(mean, var, rng.standard_normal((n, self.n_actions)))

    def mean_scores(self, x: np.ndarray) -> np.ndarray:
        return self._scores(x)[0]

    def score_std(self, x: np.ndarray) -> np.ndarray:
        return np.sqrt(self._scores(x)[1])

    # ------------------------------------------------------------------ marginals
    def posterior_mean(self) -> np.ndarray:
        mean = self.prior_mean.copy()
        n = self.store.n
        if n:
            mean[self.store.actions[:n]] = self.store.m[:n]  # m = S (P0 μ0 + b) for these
        return mean

    def posterior_cov(self) -> np.ndarray:
        cov = np.array(self.store.prior_cov(np.arange(self.n_actions)))
        n = self.store.n
        if n:
            cov[self.store.actions[:n]] = self.store.S[:n]
        return cov

    def sample_parameters(self, n: int, rng: np.random.Generator) -> np.ndarray:
        chol = np.linalg.cholesky(self.posterior_cov())
        z = rng.standard_normal((n, self.n_actions, self.dim))
        return self.posterior_mean() + np.einsum("kij,skj->ski", chol, z)

    # ------------------------------------------------------------------ updates
    def update(self, x: np.ndarray, a: int, y: float, rng=None) -> None:
        if self.fitter is not None:
            self.update_batch(x[None], np.array([a]), np.array([y]), rng)
            return
        self.store.commit(self.store.propose(a, x, y))
        self.store.sort_slots()
        self.n_updates += 1
        self._since_refactor += 1
        if self.refactor_every and self._since_refactor >= max(self.refactor_every, self.store.n):
            self.refactor()

    def update_batch(self, X: np.ndarray, A: np.ndarray, Y: np.ndarray, rng=None) -> None:
        if len(A) == 0:
            return
        if self.fitter is None:
            self.store.commit_batch(self.store.propose_batch(A, X, Y))
        else:
            U, inv = np.unique(A, return_inverse=True)
            old = self.store.state_of(U)
            if self.laplace_at == "posterior":
                P0 = np.array(old[4])
                mode, G, token = self.fitter.propose(
                    U, inv, X, Y, old[3], rng, prior=(P0, self.prior_mean[U])
                )
                b = np.einsum("uij,uj->ui", P0 + G, mode)  # so that m = S b is the mode
            else:
                mode, G, token = self.fitter.propose(U, inv, X, Y, old[3], rng)
                b = np.einsum("uij,uj->ui", G, mode) + self.store.prior_b(U)
            p = self.store.propose_set(U, np.bincount(inv, minlength=len(U)), G, b, old)
            self.store.commit_batch(p)
            self.fitter.commit(token)
        self.store.sort_slots()
        self.n_updates += len(A)

    def refactor(self) -> None:
        self.store.refresh()
        self._since_refactor = 0

    def counts(self) -> np.ndarray:
        """Number of observations of each action, (K,)."""
        out = np.zeros(self.n_actions, dtype=np.int64)
        n = self.store.n
        out[self.store.actions[:n]] = self.store.counts[:n]
        return out

    # ------------------------------------------------------------------ catalogue
    def add_action(self, prior_mean: np.ndarray, prior_cov: np.ndarray | None = None) -> int:
        """Append an action with prior mean (d,) (and prior covariance (d, d) when per action)."""
        mean = as_float_array(prior_mean, "prior_mean", ndim=1)
        check_shape(mean, (self.dim,), "prior_mean")
        if self.prior_cov.ndim == 3:
            if prior_cov is None:
                raise ValidationError("prior_cov is required: this model has one per action")
            cov = as_float_array(prior_cov, "prior_cov", ndim=2)
            check_shape(cov, (self.dim, self.dim), "prior_cov")
            check_symmetric_psd(cov, "prior_cov")
            self.prior_cov = np.concatenate([self.prior_cov, cov[None]])
            self.store.set_action_cov(self.prior_cov)
        elif prior_cov is not None:
            raise ValidationError("prior_cov: this model shares one prior covariance; pass None")
        self.prior_mean = np.concatenate([self.prior_mean, mean[None]])
        self.store.set_prior_mean(self.prior_mean)
        self.n_actions += 1
        self.store.set_n_actions(self.n_actions)
        return self.n_actions - 1

    # ------------------------------------------------------------------ persistence
    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        cfg = {
            "noise_std": self.noise_std,
            "refactor_every": self.refactor_every,
            "since_refactor": self._since_refactor,
            "n_updates": self.n_updates,
            "glm": None if self.fitter is None else self.fitter.config(),
            "laplace_at": self.laplace_at,
        }
        arrays = {"prior_mean": self.prior_mean, "prior_cov": self.prior_cov}
        if self.fitter is not None:
            arrays.update(self.fitter.state())
        arrays.update({f"store.{k}": v for k, v in self.store.state().items()})
        return cfg, arrays

    @classmethod
    def from_state(cls, cfg: dict[str, Any], arrays: dict[str, np.ndarray]):
        likelihood, laplace = glm_from_config(cfg.get("glm"))
        model = cls(
            arrays["prior_mean"], arrays["prior_cov"], cfg["noise_std"], cfg["refactor_every"],
            likelihood, laplace, cfg.get("laplace_at", "likelihood"),
        )
        if model.fitter is not None:
            model.fitter.load_state(arrays)
        model.store.load_state(
            {k[len("store.") :]: v for k, v in arrays.items() if k.startswith("store.")}
        )
        model._since_refactor = int(cfg["since_refactor"])
        model.n_updates = int(cfg["n_updates"])
        model.store.sort_slots()
        return model
