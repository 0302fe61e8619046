"""The exact joint Gaussian posterior over all K·d action parameters (JointTS, small K).

The effects are marginalised out of the prior (``MixedEffectPrior.marginal_joint_prior``), so
the actions are correlated a priori; each observation adds ``(e_a ⊗ x)(e_a ⊗ x)ᵀ / σ²`` to the
(K·d, K·d) precision. Cost O((K·d)²) per round: a reference point, not a production path.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from ..linalg import sym_inv
from ..priors import MixedEffectPrior
from .base import SCORE_DRAWS, Draw, register_model
from .gaussian import SqrtGaussian
from .linear_gaussian import sufficient_statistics
from .mixed_effect import prior_arrays, prior_from_arrays


@register_model
class JointGaussianModel:
    """Exact joint posterior of Θ = (θ_1, …, θ_K) under a mixed-effect prior.

    The slow, obvious reference: one (K·d)-dimensional Gaussian over all action parameters,
    which :class:`~mixedts.models.MixedEffectModel` must match.

    Parameters
    ----------
    prior : MixedEffectPrior
    noise_std : float
        σ, the reward noise standard deviation.
    refactor_every : int
        Recompute the factor exactly after this many incremental updates (0: never).

    Examples
    --------
    >>> from mixedts import MixedEffectPrior
    >>> from mixedts.models import MixedEffectModel
    >>> prior = MixedEffectPrior(np.zeros((2, 2)), np.stack([np.eye(2)] * 2),
    ...                          np.eye(2)[[0, 0, 1]], 0.5 * np.eye(2))
    >>> joint, fast = JointGaussianModel(prior), MixedEffectModel(prior)
    >>> for model in (joint, fast):
    ...     model.update_batch(np.eye(2)[[0, 1]], np.array([0, 2]), np.array([1.0, -1.0]))
    >>> joint.posterior_mean().round(3)
    array([[ 0.6,  0. ],
           [ 0.4,  0. ],
           [ 0. , -0.6]])
    >>> bool(np.allclose(joint.posterior_cov(), fast.posterior_cov()))
    True
    """

    draws = SCORE_DRAWS | {Draw.SAMPLES}

    def __init__(
        self, prior: MixedEffectPrior, noise_std: float = 1.0, refactor_every: int = 5000
    ) -> None:
        self.noise_std = float(noise_std)
        self.refactor_every = int(refactor_every)
        self.dim = prior.dim
        self._set_prior(prior)
        K, d = self.n_actions, self.dim
        self.G = np.zeros((K, d, d))
        self.b = np.zeros((K, d))
        self.gauss = SqrtGaussian(np.linalg.cholesky(self._cov0), self._h0)
        self._since_refactor = 0
        self.n_updates = 0

    def _set_prior(self, prior: MixedEffectPrior) -> None:
        self.prior = prior
        self.n_actions = prior.n_actions
        mean0, self._cov0 = prior.marginal_joint_prior()
        self._prec0 = sym_inv(self._cov0)
        self._h0 = self._prec0 @ mean0

    def refactor(self) -> None:
        """Recompute the posterior exactly from the prior and the sufficient statistics."""
        K, d = self.n_actions, self.dim
        prec = self._prec0.copy().reshape(K, d, K, d)
        prec[np.arange(K), :, np.arange(K), :] += self.G
        prec = prec.reshape(K * d, K * d)
        self.gauss = SqrtGaussian.from_precision(0.5 * (prec + prec.T), self._h0 + self.b.ravel())
        self._since_refactor = 0

    # ------------------------------------------------------------------ scores
    def _rowdot(self, x: np.ndarray, theta: np.ndarray) -> np.ndarray:
        return theta @ x if x.ndim == 1 else np.einsum("kd,kd->k", theta, x)

    def sample_scores(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        theta = self.gauss.sample(rng).reshape(self.n_actions, self.dim)
        return self._rowdot(x, theta)

    def sample_scores_many(self, x: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` independent joint draws of every score, (n, K)."""
        theta = self.sample_parameters(n, rng)
        if x.ndim == 1:
            return theta @ x
        return np.einsum("nkd,kd->nk", theta, x)

    def mean_scores(self, x: np.ndarray) -> np.ndarray:
        return self._rowdot(x, self.gauss.mean.reshape(self.n_actions, self.dim))

    def score_std(self, x: np.ndarray) -> np.ndarray:
        K, d = self.n_actions, self.dim
        X = np.broadcast_to(x, (K, d))
        rows = np.repeat(np.arange(K), d)
        Gm = sp.csr_matrix((X.ravel(), (rows, np.arange(K * d))), shape=(K, K * d))
        return self.gauss.std_along(Gm)

    # ------------------------------------------------------------------ marginals
    def posterior_mean(self) -> np.ndarray:
        return self.gauss.mean.reshape(self.n_actions, self.dim).copy()

    def posterior_cov(self) -> np.ndarray:
        K, d = self.n_actions, self.dim
        C = self.gauss.C.reshape(K, d, K * d)
        return C @ np.swapaxes(C, 1, 2)

    def joint_cov(self) -> np.ndarray:
        """The full (K·d, K·d) posterior covariance."""
        return self.gauss.cov()

    def sample_parameters(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.gauss.sample(rng, n).reshape(n, self.n_actions, self.dim)

    # ------------------------------------------------------------------ updates
    def update(self, x: np.ndarray, a: int, y: float, rng=None) -> None:
        d, s = self.dim, self.noise_std
        dG, db = sufficient_statistics(x, y, s**2)
        rows = a * d + np.arange(d)
        self.gauss.commit(*self.gauss.proposed_rank_one(rows, x / s, db))
        self.G[a] += dG
        self.b[a] += db
        self.n_updates += 1
        self._since_refactor += 1
        if self.refactor_every and self._since_refactor >= self.refactor_every:
            self.refactor()

    def update_batch(self, X: np.ndarray, A: np.ndarray, Y: np.ndarray, rng=None) -> None:
        if len(A) == 0:
            return
        K, d, s = self.n_actions, self.dim, self.noise_std
        dG, db = sufficient_statistics(X, Y, s**2)
        np.add.at(self.G, A, dG)
        np.add.at(self.b, A, db)
        self.n_updates += len(A)
        if len(A) < (K * d) // 2:
            U = np.zeros((K, d, len(A)))
            U[A, :, np.arange(len(A))] = X / s
            dh = np.zeros((K, d))
            np.add.at(dh, A, db)
            self.gauss.commit(*self.gauss.proposed_lowrank(U.reshape(K * d, -1), dh.ravel()))
            self._since_refactor += len(A)
        else:
            self.refactor()

    # ------------------------------------------------------------------ catalogue
    def add_action(self, mixing_row: np.ndarray, action_cov: np.ndarray | None = None) -> int:
        """Append an action; the joint posterior is recomputed exactly (O((K·d)³))."""
        self._set_prior(self.prior.with_action(mixing_row, action_cov))
        d = self.dim
        self.G = np.concatenate([self.G, np.zeros((1, d, d))])
        self.b = np.concatenate([self.b, np.zeros((1, d))])
        self.refactor()
        return self.n_actions - 1

    # ------------------------------------------------------------------ persistence
    def get_state(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        cfg = {
            "noise_std": self.noise_std,
            "refactor_every": self.refactor_every,
            "since_refactor": self._since_refactor,
            "n_updates": self.n_updates,
        }
        arrays = prior_arrays(self.prior)
        arrays.update(
            {"G": self.G, "b": self.b, "gauss.C": self.gauss.C, "gauss.h": self.gauss.h,
             "gauss.mean": self.gauss.mean}
        )
        return cfg, arrays

    @classmethod
    def from_state(cls, cfg: dict[str, Any], arrays: dict[str, np.ndarray]):
        model = cls(prior_from_arrays(arrays), cfg["noise_std"], cfg["refactor_every"])
        model.G = arrays["G"].copy()
        model.b = arrays["b"].copy()
        model.gauss.C = np.array(arrays["gauss.C"], dtype=np.float64, order="C")
        model.gauss.h = arrays["gauss.h"].copy()
        model.gauss.mean = arrays["gauss.mean"].copy()
        model._since_refactor = int(cfg["since_refactor"])
        model.n_updates = int(cfg["n_updates"])
        return model
