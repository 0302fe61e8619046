"""Independent-action GLM models that are not Gaussian plug-ins: the diagonal Laplace posterior
of Chapelle & Li (2011) and the MLE-plus-confidence-ellipsoid model of UCB-GLM (Li et al. 2017).

(GLM-TS with a full covariance is :class:`~mixedts.models.independent.IndependentGaussianModel`
with a logistic likelihood: each action's likelihood is Laplace-approximated and combined with
its Gaussian prior, exactly as meTS-GLM does without the effects.)
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import ValidationError, as_float_array, check_shape
from ..likelihoods import Likelihood, get_likelihood, laplace_fit
from ..linalg import rowdot
from .actions import ActionStore
from .base import SCORE_DRAWS, Draw, register_model
from .laplace import LaplaceFitter


@register_model
class DiagonalLaplaceModel:
    """Chapelle & Li (2011, Algorithm 3): θ_i ~ N(m_i, diag(1/q_i)), refitted by MAP.

    On new data for action i: m_i ← argmin ½ Σ_j q_ij (θ_j − m_ij)² − Σ log p(y | xᵀθ) and
    q_ij ← q_ij + Σ x_j² f'(xᵀm_i), all touched actions in one batched Newton solve.

    Parameters
    ----------
    prior_mean : (K, d)
    prior_var : (K, d) or (d,)
        Prior variances (the diagonal of the prior covariance).
    likelihood : Likelihood
    """

    draws = SCORE_DRAWS | {Draw.SAMPLES}

    def __init__(self, prior_mean, prior_var, likelihood: Likelihood) -> None:
        self.mean = np.array(prior_mean, dtype=np.float64)
        self.n_actions, self.dim = self.mean.shape
        self.prec = 1.0 / np.broadcast_to(np.asarray(prior_var, dtype=np.float64),
                                          self.mean.shape).copy()
        self.likelihood = likelihood
        self.counts_ = np.zeros(self.n_actions, dtype=np.int64)
        self.n_updates = 0

    def sample_scores(self, x, rng):
        mean, var = self.mean_scores(x), self.score_std(x) ** 2
        return mean + np.sqrt(var) * rng.standard_normal(self.n_actions)

    def sample_scores_many(self, x, n, rng):
        """``n`` independent draws of :meth:`sample_scores`, (n, K)."""
        return self.mean_scores(x) + self.score_std(x) * rng.standard_normal((n, self.n_actions))

    def mean_scores(self, x):
        return self.mean @ x if x.ndim == 1 else rowdot(self.mean, x)

    def score_std(self, x):
        var = 1.0 / self.prec
        return np.sqrt(var @ (x * x) if x.ndim == 1 else rowdot(x * x, var))

    def posterior_mean(self):
        return self.mean.copy()

    def posterior_cov(self):
        cov = np.zeros((self.n_actions, self.dim, self.dim))
        cov[:, np.arange(self.dim), np.arange(self.dim)] = 1.0 / self.prec
        return cov

    def sample_parameters(self, n, rng):
        return self.mean + rng.standard_normal((n, *self.mean.shape)) / np.sqrt(self.prec)

    def counts(self):
        return self.counts_.copy()

    def update(self, x, a, y, rng=None):
        self.update_batch(x[None], np.array([a]), np.array([y]), rng)

    def update_batch(self, X, A, Y, rng=None):
        if len(A) == 0:
            return
        U, inv = np.unique(A, return_inverse=True)
        d = self.dim
        P = np.zeros((len(U), d, d))
        P[:, np.arange(d), np.arange(d)] = self.prec[U]
        mode, G, _ = laplace_fit(self.likelihood, X, Y, inv, len(U), self.mean[U], ridge=P,
                                 center=self.mean[U])
        # Chapelle & Li update the precision with the curvature at the new mode, diagonal only
        self.mean[U] = mode
        self.prec[U] += np.diagonal(G, axis1=1, axis2=2)
        np.add.at(self.counts_, A, 1)
        self.n_updates += len(A)

    def add_action(self, prior_mean=None, prior_var=None) -> int:
        mean = np.zeros(self.dim) if prior_mean is None else as_float_array(prior_mean,
                                                                              "prior_mean", 1)
        check_shape(mean, (self.dim,), "prior_mean")
        var = np.ones(self.dim) if prior_var is None else as_float_array(prior_var, "prior_var", 1)
        check_shape(var, (self.dim,), "prior_var")
        if np.any(var <= 0):
            raise ValidationError("prior_var must be positive")
        self.mean = np.concatenate([self.mean, mean[None]])
        self.prec = np.concatenate([self.prec, 1.0 / var[None]])
        self.counts_ = np.append(self.counts_, 0)
        self.n_actions += 1
        return self.n_actions - 1

    def get_state(self):
        cfg = {"likelihood": self.likelihood.name, "n_updates": self.n_updates,
               "binarize": bool(getattr(self.likelihood, "binarize", False))}
        return cfg, {"mean": self.mean, "prec": self.prec, "counts": self.counts_}

    @classmethod
    def from_state(cls, cfg: dict[str, Any], arrays: dict[str, np.ndarray]):
        model = cls(arrays["mean"], 1.0 / arrays["prec"],
                    get_likelihood(cfg["likelihood"], cfg["binarize"]))
        model.prec = arrays["prec"].copy()
        model.counts_ = arrays["counts"].astype(np.int64).copy()
        model.n_updates = int(cfg["n_updates"])
        return model


@register_model
class GLMUCBModel:
    """UCB-GLM (Li, Lu & Zhou 2017), one GLM per action: the penalised MLE θ̂_i and the design
    matrix V_i = λI + Σ x xᵀ; ``mean_scores`` are x_iᵀθ̂_i and ``score_std`` is ‖x_i‖_{V_i⁻¹}.

    Parameters
    ----------
    n_actions, dim : int
    likelihood : Likelihood
    regularization : float
        λ, both the ridge of the MLE and the design matrix's.
    """

    draws = frozenset({Draw.MEAN, Draw.MEAN_STD, Draw.MEAN_STD_COUNT})

    def __init__(self, n_actions: int, dim: int, likelihood: Likelihood,
                 regularization: float = 1.0) -> None:
        self.n_actions, self.dim = n_actions, dim
        self.likelihood = likelihood
        self.regularization = float(regularization)
        # V⁻¹ by Sherman–Morrison: a Gaussian store with prior I/λ and unit noise
        self.store = ActionStore(n_actions, np.eye(dim) / self.regularization, 1.0)
        self.fitter = LaplaceFitter(likelihood, dim, "exact", ridge=self.regularization)
        self.n_updates = 0

    def _modes(self) -> np.ndarray:
        theta = np.zeros((self.n_actions, self.dim))
        if self.fitter.modes:
            acts = np.fromiter(self.fitter.modes, dtype=np.int64)
            theta[acts] = np.stack([self.fitter.modes[a] for a in acts.tolist()])
        return theta

    def mean_scores(self, x):
        theta = self._modes()
        return theta @ x if x.ndim == 1 else rowdot(theta, x)

    def score_std(self, x):
        var = np.broadcast_to(self.store.prior_var(x, self.n_actions), (self.n_actions,)).copy()
        n = self.store.n
        if n:
            acts = self.store.actions[:n]
            var[acts] = self.store.observed_scores(x, np.zeros((n, self.dim)))[1]
        return np.sqrt(var)

    def sample_scores(self, x, rng):  # pragma: no cover - UCB-GLM is not a sampling model
        raise NotImplementedError("UCB-GLM has no posterior to sample")

    def posterior_mean(self):
        return self._modes()

    def posterior_cov(self):
        cov = np.array(self.store.prior_cov(np.arange(self.n_actions)))
        n = self.store.n
        if n:
            cov[self.store.actions[:n]] = self.store.S[:n]
        return cov

    def sample_parameters(self, n, rng):
        chol = np.linalg.cholesky(self.posterior_cov())
        return self._modes() + np.einsum("kij,skj->ski", chol,
                                         rng.standard_normal((n, self.n_actions, self.dim)))

    def counts(self):
        out = np.zeros(self.n_actions, dtype=np.int64)
        out[self.store.actions[: self.store.n]] = self.store.counts[: self.store.n]
        return out

    def update(self, x, a, y, rng=None):
        self.update_batch(x[None], np.array([a]), np.array([y]), rng)

    def update_batch(self, X, A, Y, rng=None):
        if len(A) == 0:
            return
        U, inv = np.unique(A, return_inverse=True)
        old = self.store.state_of(U)
        _, _, token = self.fitter.propose(U, inv, X, Y, old[3], rng)
        self.store.commit_batch(self.store.propose_batch(A, X, Y))
        self.fitter.commit(token)
        self.n_updates += len(A)

    def add_action(self, prior_mean=None, prior_cov=None) -> int:
        if prior_mean is not None or prior_cov is not None:
            raise ValidationError("UCB-GLM actions have no prior: call add_action()")
        self.n_actions += 1
        self.store.set_n_actions(self.n_actions)
        return self.n_actions - 1

    def get_state(self):
        cfg = {"likelihood": self.likelihood.name, "regularization": self.regularization,
               "n_actions": self.n_actions, "dim": self.dim, "n_updates": self.n_updates,
               "binarize": bool(getattr(self.likelihood, "binarize", False))}
        arrays = {f"store.{k}": v for k, v in self.store.state().items()}
        arrays.update(self.fitter.state())
        return cfg, arrays

    @classmethod
    def from_state(cls, cfg, arrays):
        model = cls(int(cfg["n_actions"]), int(cfg["dim"]),
                    get_likelihood(cfg["likelihood"], cfg["binarize"]),
                    float(cfg["regularization"]))
        model.store.load_state(
            {k[len("store."):]: v for k, v in arrays.items() if k.startswith("store.")}
        )
        model.fitter.load_state(arrays)
        model.n_updates = int(cfg["n_updates"])
        return model
