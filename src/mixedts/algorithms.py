"""The objects users hold: one model paired with one decision rule and a random generator.

Paper names (``MeTS``, ``FactoredMeTS``, ``HierTS``, ``LinTS``, ``LinUCB``, ``JointTS``) are thin
constructors over :class:`ContextualBandit`.
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from . import _validation as V
from .likelihoods import Gaussian, Likelihood, get_likelihood
from .models.glm import DiagonalLaplaceModel, GLMUCBModel
from .models.independent import IndependentGaussianModel
from .models.joint import JointGaussianModel
from .models.laplace import METHODS
from .models.mixed_effect import MixedEffectModel
from .policies import UCB, DecisionRule, ThompsonSampling, argmax_active
from .priors import MixedEffectPrior

_GAUSSIAN = Gaussian()


def check_laplace_at(laplace_at: str) -> str:
    if laplace_at not in ("likelihood", "posterior"):
        raise V.ValidationError(
            f"laplace_at must be 'likelihood' or 'posterior', got {laplace_at!r}"
        )
    return laplace_at


def glm_options(
    likelihood: str | Likelihood, laplace: str, laplace_batch: int, ridge: float, binarize: bool
) -> tuple[Likelihood, dict[str, Any]]:
    """Validate the likelihood options shared by every policy that accepts them."""
    lik = get_likelihood(likelihood, binarize=bool(binarize))
    if laplace not in METHODS:
        raise V.ValidationError(f"laplace must be one of {METHODS}, got {laplace!r}")
    options = {
        "method": laplace,
        "batch_size": V.check_int(laplace_batch, "laplace_batch", low=1),
        "ridge": V.check_positive(ridge, "ridge"),
    }
    return lik, options


class ContextualBandit:
    """A model, a decision rule and a ``numpy.random.Generator``.

    Every public method validates its arguments first; a rejected call raises ``ValueError``
    naming the argument and leaves the posterior and the random state exactly as they were.
    """

    def __init__(self, model, rule: DecisionRule, seed=None) -> None:
        self.model = model
        self.rule = rule
        self.rng = V.as_generator(seed)
        self.active = np.ones(model.n_actions, dtype=bool)

    # ------------------------------------------------------------------ sizes
    @property
    def n_actions(self) -> int:
        """K, the number of actions (retired ones included)."""
        return self.model.n_actions

    @property
    def dim(self) -> int:
        """d, the context dimension."""
        return self.model.dim

    # ------------------------------------------------------------------ decisions
    def _check_any_active(self) -> None:
        if not self.active.any():
            raise V.ValidationError("every action is retired: add_action first")

    def select(self, x) -> int:
        """Choose an action for context ``x`` (d,) shared or (K, d) per action."""
        x = V.check_context(x, self.n_actions, self.dim)
        self._check_any_active()
        scores = self.rule.scores(self.model, x, self.rng)
        return argmax_active(scores, self.active, self.rng, self.rule.deterministic)

    def select_batch(self, X) -> np.ndarray:
        """Choose n actions from the current posterior (no updates in between).

        ``X`` is (n, d) or (n, K, d). Returns (n,) action indices.
        """
        X = V.check_contexts(X, self.n_actions, self.dim)
        self._check_any_active()
        out = np.empty(len(X), dtype=np.int64)
        for t in range(len(X)):  # rounds, not actions: each round is one batched pass
            scores = self.rule.scores(self.model, X[t], self.rng)
            out[t] = argmax_active(scores, self.active, self.rng, self.rule.deterministic)
        return out

    # ------------------------------------------------------------------ feedback
    @property
    def likelihood(self) -> Likelihood:
        """The reward likelihood of the model (Gaussian unless a GLM was asked for)."""
        return getattr(self.model, "likelihood", _GAUSSIAN)

    def _rewards(self, Y: np.ndarray, name: str) -> np.ndarray:
        """Check rewards against the likelihood (raises before any state changes), then apply
        the documented Bernoulli conversion of fractional rewards when ``binarize=True``."""
        Y = self.likelihood.check_rewards(Y, name)
        if getattr(self.likelihood, "binarize", False):
            Y = self.rng.binomial(1, Y).astype(np.float64)
        return Y

    def update(self, x, a, y) -> None:
        """Condition on reward ``y`` of action ``a`` in context ``x`` ((d,) or (K, d))."""
        x = V.check_context(x, self.n_actions, self.dim)
        a = V.check_action(a, self.n_actions)
        y = self._rewards(np.array([V.check_reward(y)]), "y")[0]
        xa = x if x.ndim == 1 else x[a]
        self.model.update(np.ascontiguousarray(xa), a, float(y), rng=self.rng)

    def update_batch(self, X, A, Y) -> None:
        """Condition on n rewards at once (delayed or logged feedback).

        ``X`` (n, d) or (n, K, d), ``A`` (n,), ``Y`` (n,). Equivalent to n calls of ``update``
        (exactly for Gaussian rewards; GLM rewards get one joint Laplace refit).
        """
        X = V.check_contexts(X, self.n_actions, self.dim)
        A = V.check_actions(A, self.n_actions)
        Y = V.as_float_array(Y, "Y", ndim=1)
        if not (len(X) == len(A) == len(Y)):
            raise V.ValidationError(
                f"X, A and Y must have the same length, got {len(X)}, {len(A)}, {len(Y)}"
            )
        Y = self._rewards(Y, "Y")
        Xa = X if X.ndim == 2 else X[np.arange(len(A)), A]
        self.model.update_batch(np.ascontiguousarray(Xa), A, Y, rng=self.rng)

    # ------------------------------------------------------------------ catalogue
    def retire_action(self, i) -> None:
        """Never select action ``i`` again; what it taught the shared effects stays."""
        i = V.check_action(i, self.n_actions, "i")
        self.active[i] = False

    def _add(self, *args, **kwargs) -> int:
        index = self.model.add_action(*args, **kwargs)
        self.active = np.append(self.active, True)
        return index

    # ------------------------------------------------------------------ inspection
    def posterior_mean(self) -> np.ndarray:
        """Marginal posterior mean of each action's parameter, (K, d)."""
        return self.model.posterior_mean()

    def posterior_cov(self) -> np.ndarray:
        """Marginal posterior covariance of each action's parameter, (K, d, d)."""
        return self.model.posterior_cov()

    def sample_parameters(self, n: int, seed=None) -> np.ndarray:
        """``n`` joint posterior draws of all parameters, (n, K, d).

        Draws come from the model's own sampling path. With ``seed=None`` the policy's
        generator is used (and advanced); pass a seed to leave it untouched.
        """
        n = V.check_int(n, "n", low=1)
        rng = self.rng if seed is None else V.as_generator(seed)
        return self.model.sample_parameters(n, rng)

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> None:
        """Save to ``path`` (.npz, no pickle); ``mixedts.load(path)`` continues exactly."""
        from .persistence import save_policy

        save_policy(self, path)

    def copy(self) -> ContextualBandit:
        """A deep copy (posterior and random state)."""
        return copy.deepcopy(self)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(n_actions={self.n_actions}, dim={self.dim}, "
            f"rule={self.rule!r}, retired={int((~self.active).sum())})"
        )


class _MixedMixin:
    """Inspection and catalogue changes shared by the mixed-effect policies."""

    model: MixedEffectModel | JointGaussianModel

    def effect_posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean (L, d) and covariance (L·d, L·d) of the effect posterior."""
        return self.model.effect_posterior()

    def add_action(self, mixing_row, action_cov=None) -> int:
        """Append an action with its mixing row (L,) (and Σ0 (d, d) when per action).

        Returns the new action's index; its posterior starts from the prior given the effects.
        """
        return self._add(mixing_row, action_cov)


class MeTS(_MixedMixin, ContextualBandit):
    """Mixed-effect Thompson sampling, exact linear-Gaussian posterior (Aouali et al. 2023).

    Parameters
    ----------
    prior : MixedEffectPrior
    noise_std : float
        Reward noise σ.
    seed : int, SeedSequence or numpy Generator, optional
    refactor_every : int
        Exact recompute after this many incremental updates (bounds rounding drift), or after
        as many updates as there are observed actions if that is more, so that its amortised
        cost does not grow with the catalogue. Call :meth:`refactor` to do it now.
    likelihood : {"gaussian", "logistic"} or Likelihood
        ``"logistic"`` gives meTS-GLM: Bernoulli rewards with a sigmoid link, each action's
        likelihood Laplace-approximated (math.md §4). Rewards must then be 0 or 1.
    laplace : {"exact", "minibatch", "online"}
        How the Laplace mode is refitted after each observation (see
        :mod:`mixedts.models.laplace`): the whole history (default), a random minibatch of
        ``laplace_batch`` rows (the authors' scheme; cost independent of the horizon) or one
        Newton step (cheap streaming).
    ridge : float
        The fit's ridge, which keeps the mode finite on separable data (the paper: 1e-3).
    binarize : bool
        Accept rewards in [0, 1] and replace each by a Bernoulli(y) draw from the policy's
        generator (logistic only).
    laplace_at : {"posterior", "likelihood"}
        Where each action's log-likelihood is expanded: at the MAP under its conditional prior
        given the effects' mean (default; stays informative on separable data), or at its
        ridge-penalised maximum, the paper's exact scheme (see
        :class:`~mixedts.models.mixed_effect.MixedEffectModel`).

    Examples
    --------
    >>> import numpy as np
    >>> from mixedts import MeTS, MixedEffectPrior
    >>> rng = np.random.default_rng(0)
    >>> prior = MixedEffectPrior(np.zeros((3, 2)), 3 * np.stack([np.eye(2)] * 3),
    ...                          rng.uniform(-1, 1, (10, 3)), np.eye(2))
    >>> policy = MeTS(prior, seed=1)
    >>> x = np.array([0.5, -0.2])
    >>> a = policy.select(x)
    >>> policy.update(x, a, 1.0)
    >>> policy.posterior_mean().shape
    (10, 2)
    """

    _factored = False

    def __init__(
        self,
        prior: MixedEffectPrior,
        noise_std: float = 1.0,
        seed=None,
        refactor_every: int = 5000,
        likelihood: str | Likelihood = "gaussian",
        laplace: str = "exact",
        laplace_batch: int = 30,
        ridge: float = 1e-3,
        binarize: bool = False,
        laplace_at: str = "posterior",
    ) -> None:
        if not isinstance(prior, MixedEffectPrior):
            raise V.ValidationError("prior must be a MixedEffectPrior")
        noise_std = V.check_positive(noise_std, "noise_std")
        refactor_every = V.check_int(refactor_every, "refactor_every", low=0)
        lik, options = glm_options(likelihood, laplace, laplace_batch, ridge, binarize)
        model = MixedEffectModel(
            prior, noise_std, self._factored, refactor_every, lik, options,
            check_laplace_at(laplace_at),
        )
        super().__init__(model, ThompsonSampling(), seed)

    @property
    def prior(self) -> MixedEffectPrior:
        return self.model.prior

    def refactor(self) -> None:
        """Recompute every factor exactly now."""
        self.model.refactor()


class FactoredMeTS(MeTS):
    """meTS-Fa: the factored (mean-field) effect posterior of math.md §3.

    Same arguments as :class:`MeTS`. Cheaper per round (O(nnz·d²) effect updates) and exact
    when every mixing row is one-hot and Σ_Ψ is block-diagonal.

    Examples
    --------
    >>> import numpy as np
    >>> from mixedts import FactoredMeTS, MixedEffectPrior
    >>> prior = MixedEffectPrior(np.zeros((2, 2)), np.stack([np.eye(2)] * 2),
    ...                          np.eye(2)[[0, 1, 1]], np.eye(2))
    >>> policy = FactoredMeTS(prior, seed=0)
    >>> policy.update(np.ones(2), policy.select(np.ones(2)), 0.5)
    >>> policy.effect_posterior()[1].shape
    (4, 4)"""

    _factored = True


class HierTS(MeTS):
    """Hierarchical TS (Hong et al. 2022): one effect μ shared by all actions, b_i = 1.

    Parameters
    ----------
    n_actions : int
    effect_mean : (d,) prior mean of the shared effect
    effect_cov : (d, d) prior covariance of the shared effect
    action_cov : (d, d) or (K, d, d) conditional covariance Σ0 of each action
    likelihood_options
        ``likelihood``, ``laplace``, … as for :class:`MeTS`.

    Examples
    --------
    >>> import numpy as np
    >>> from mixedts import HierTS
    >>> policy = HierTS(5, np.zeros(3), np.eye(3), 0.5 * np.eye(3), seed=0)
    >>> policy.select(np.ones(3)) in range(5)
    True
    """

    def __init__(
        self,
        n_actions: int,
        effect_mean,
        effect_cov,
        action_cov,
        noise_std: float = 1.0,
        seed=None,
        refactor_every: int = 5000,
        **likelihood_options,
    ) -> None:
        n_actions = V.check_int(n_actions, "n_actions", low=1)
        mean = V.as_float_array(effect_mean, "effect_mean", ndim=1)
        cov = V.as_float_array(effect_cov, "effect_cov", ndim=2)
        prior = MixedEffectPrior(mean[None], cov[None], np.ones((n_actions, 1)), action_cov)
        super().__init__(prior, noise_std, seed, refactor_every, **likelihood_options)

    def add_action(self, action_cov=None) -> int:  # type: ignore[override]
        """Append an action (its mixing weight is 1)."""
        return self._add(np.ones(1), action_cov)

    @classmethod
    def from_prior(cls, prior: MixedEffectPrior, **kwargs) -> HierTS:
        """One effect with the average prior of ``prior``'s effects (the paper's baseline)."""
        blocks = prior.effect_cov_blocks()
        return cls(prior.n_actions, np.asarray(prior.effect_mean).mean(0), blocks.mean(0),
                   prior.action_cov, **kwargs)


class JointTS(_MixedMixin, ContextualBandit):
    """Thompson sampling on the exact joint Gaussian over all K·d parameters (small K).

    O((K·d)²) memory and time per round: the reference the fast policies are tested against.

    Examples
    --------
    >>> import numpy as np
    >>> from mixedts import JointTS, MixedEffectPrior
    >>> prior = MixedEffectPrior(np.zeros((1, 2)), np.eye(2)[None], np.ones((4, 1)), np.eye(2))
    >>> policy = JointTS(prior, seed=0)
    >>> policy.update(np.ones(2), 0, 1.0)
    >>> policy.model.joint_cov().shape
    (8, 8)"""

    def __init__(
        self, prior: MixedEffectPrior, noise_std: float = 1.0, seed=None, refactor_every: int = 5000
    ) -> None:
        if not isinstance(prior, MixedEffectPrior):
            raise V.ValidationError("prior must be a MixedEffectPrior")
        noise_std = V.check_positive(noise_std, "noise_std")
        refactor_every = V.check_int(refactor_every, "refactor_every", low=0)
        model = JointGaussianModel(prior, noise_std, refactor_every)
        super().__init__(model, ThompsonSampling(), seed)

    def effect_posterior(self):  # pragma: no cover - JointTS marginalises the effects
        raise AttributeError("JointTS has no effect posterior: the effects are marginalised")


def _independent_prior(prior_mean, prior_cov) -> tuple[np.ndarray, np.ndarray]:
    mean = V.as_float_array(prior_mean, "prior_mean", ndim=2)
    K, d = mean.shape
    if K < 1 or d < 1:
        raise V.ValidationError(f"prior_mean must have shape (K, d), got {mean.shape}")
    cov = V.as_float_array(prior_cov, "prior_cov", ndim=(2, 3))
    V.check_shape(cov, (d, d) if cov.ndim == 2 else (K, d, d), "prior_cov")
    V.check_symmetric_psd(cov, "prior_cov")
    return mean, 0.5 * (cov + np.swapaxes(cov, -1, -2))


class _IndependentMixin:
    model: IndependentGaussianModel

    def add_action(self, prior_mean=None, prior_cov=None) -> int:
        """Append an action with prior mean (d,) (zeros by default) and, if per action, Σ (d, d)."""
        mean = np.zeros(self.dim) if prior_mean is None else prior_mean
        return self._add(mean, prior_cov)

    def counts(self) -> np.ndarray:
        """Observations per action, (K,)."""
        return self.model.counts()


class LinTS(_IndependentMixin, ContextualBandit):
    """Linear Thompson sampling with an independent Gaussian prior per action.

    Parameters
    ----------
    prior_mean : (K, d)
    prior_cov : (d, d) shared or (K, d, d) per action
    noise_std : float
    likelihood, laplace, laplace_batch, ridge, binarize
        As for :class:`MeTS`; ``likelihood="logistic"`` is GLM-TS (see :class:`GLMTS`).

    Examples
    --------
    >>> import numpy as np
    >>> from mixedts import LinTS
    >>> policy = LinTS(np.zeros((4, 2)), np.eye(2), noise_std=0.5, seed=0)
    >>> policy.update(np.array([1.0, 0.0]), 2, 1.0)
    >>> policy.posterior_mean()[2]
    array([0.8, 0. ])
    """

    def __init__(
        self,
        prior_mean,
        prior_cov,
        noise_std: float = 1.0,
        seed=None,
        refactor_every: int = 5000,
        likelihood: str | Likelihood = "gaussian",
        laplace: str = "exact",
        laplace_batch: int = 30,
        ridge: float = 1e-3,
        binarize: bool = False,
    ) -> None:
        mean, cov = _independent_prior(prior_mean, prior_cov)
        noise_std = V.check_positive(noise_std, "noise_std")
        refactor_every = V.check_int(refactor_every, "refactor_every", low=0)
        lik, options = glm_options(likelihood, laplace, laplace_batch, ridge, binarize)
        model = IndependentGaussianModel(mean, cov, noise_std, refactor_every, lik, options)
        super().__init__(model, ThompsonSampling(), seed)

    @classmethod
    def from_prior(cls, prior: MixedEffectPrior, **kwargs) -> LinTS:
        """LinTS on the marginal prior N(Γ_i μ_Ψ, Σ0 + Γ_i Σ_Ψ Γ_iᵀ) (structure ignored)."""
        mean, cov = prior.marginal_action_prior()
        return cls(mean, cov, **kwargs)


class LinUCB(_IndependentMixin, ContextualBandit):
    """Disjoint LinUCB (Li et al. 2010): ridge regression per action and an upper bound.

    Parameters
    ----------
    n_actions, dim : int
    alpha : float
        Width multiplier (``width="constant"``).
    regularization : float
        Ridge λ (prior covariance I/λ).
    width : {"constant", "abbasi-yadkori"}
        The self-normalised width of Abbasi-Yadkori et al. (2011) with ``delta``.

    Examples
    --------
    >>> import numpy as np
    >>> from mixedts import LinUCB
    >>> policy = LinUCB(3, 2, alpha=1.0, seed=0)
    >>> for a in range(3):
    ...     policy.update(np.ones(2), a, float(a))
    >>> policy.select(np.ones(2))
    2
    """

    def __init__(
        self,
        n_actions: int,
        dim: int,
        alpha: float = 1.0,
        regularization: float = 1.0,
        noise_std: float = 1.0,
        width: str = "constant",
        delta: float = 0.05,
        theta_norm: float = 1.0,
        seed=None,
        prior_mean=None,
    ) -> None:
        K = V.check_int(n_actions, "n_actions", low=1)
        d = V.check_int(dim, "dim", low=1)
        lam = V.check_positive(regularization, "regularization")
        noise_std = V.check_positive(noise_std, "noise_std")
        mean = np.zeros((K, d)) if prior_mean is None else prior_mean
        mean, cov = _independent_prior(mean, np.eye(d) * (noise_std**2 / lam))
        model = IndependentGaussianModel(mean, cov, noise_std)
        rule = UCB(alpha, width, delta, lam, noise_std, theta_norm)
        super().__init__(model, rule, seed)


class GLMTS(_IndependentMixin, ContextualBandit):
    """GLM Thompson sampling (Chapelle & Li 2011) with logistic rewards, one model per action.

    ``diagonal=False`` (default): a full-covariance Laplace approximation of each action's
    posterior at its MAP under N(prior_mean_i, prior_cov_i) (``laplace_at="posterior"``), or,
    with ``laplace_at="likelihood"``, the likelihood's Laplace approximation combined with the
    prior (the plug-in meTS-GLM uses, without the effects). ``diagonal=True``: Chapelle & Li's
    Algorithm 3, a MAP fit under the current diagonal Gaussian and q += Σ x² p(1 − p).

    Parameters
    ----------
    prior_mean : (K, d)
    prior_cov : (d, d) or (K, d, d) (only the diagonal is used when ``diagonal=True``)
    laplace, laplace_batch, ridge, binarize : as for :class:`MeTS` (full covariance only)

    Examples
    --------
    >>> import numpy as np
    >>> from mixedts import GLMTS
    >>> policy = GLMTS(np.zeros((3, 2)), np.eye(2), diagonal=True, seed=0)
    >>> policy.update(np.array([1.0, -1.0]), 0, 1)
    >>> bool(policy.posterior_mean()[0, 0] > 0)
    True
    """

    def __init__(
        self,
        prior_mean,
        prior_cov,
        diagonal: bool = False,
        seed=None,
        laplace: str = "exact",
        laplace_batch: int = 30,
        ridge: float = 1e-3,
        binarize: bool = False,
        refactor_every: int = 5000,
        laplace_at: str = "posterior",
    ) -> None:
        mean, cov = _independent_prior(prior_mean, prior_cov)
        lik, options = glm_options("logistic", laplace, laplace_batch, ridge, binarize)
        check_laplace_at(laplace_at)
        if diagonal:
            model = DiagonalLaplaceModel(mean, np.diagonal(cov, axis1=-2, axis2=-1), lik)
        else:
            refactor_every = V.check_int(refactor_every, "refactor_every", low=0)
            model = IndependentGaussianModel(
                mean, cov, 1.0, refactor_every, lik, options, laplace_at
            )
        super().__init__(model, ThompsonSampling(), seed)

    @classmethod
    def from_prior(cls, prior: MixedEffectPrior, **kwargs) -> GLMTS:
        """GLM-TS on the marginal prior N(Γ_i μ_Ψ, Σ0 + Γ_i Σ_Ψ Γ_iᵀ) (structure ignored)."""
        mean, cov = prior.marginal_action_prior()
        return cls(mean, cov, **kwargs)

    def add_action(self, prior_mean=None, prior_cov=None) -> int:
        """Append an action with prior mean (d,) and covariance (d, d) where per action."""
        if isinstance(self.model, DiagonalLaplaceModel):
            var = None if prior_cov is None else np.diagonal(np.asarray(prior_cov))
            return self._add(prior_mean, var)
        return super().add_action(prior_mean, prior_cov)


class UCBGLM(_IndependentMixin, ContextualBandit):
    """UCB-GLM (Li, Lu & Zhou 2017) with logistic rewards, one GLM per action.

    Score x_iᵀθ̂_i + α ‖x_i‖_{V_i⁻¹} with the penalised MLE θ̂_i and V_i = λI + Σ x xᵀ
    (ties, e.g. in the first rounds, are broken uniformly at random).

    Parameters
    ----------
    n_actions, dim : int
    alpha : float
    regularization : float
        λ.
    binarize : bool
        Accept rewards in [0, 1] (Bernoulli conversion, as for :class:`MeTS`).

    Examples
    --------
    >>> import numpy as np
    >>> from mixedts import UCBGLM
    >>> policy = UCBGLM(3, 2, alpha=0.5, seed=0)
    >>> policy.update(np.ones(2), 1, 1)
    >>> policy.counts()
    array([0, 1, 0])
    """

    def __init__(
        self,
        n_actions: int,
        dim: int,
        alpha: float = 1.0,
        regularization: float = 1.0,
        seed=None,
        binarize: bool = False,
    ) -> None:
        K = V.check_int(n_actions, "n_actions", low=1)
        d = V.check_int(dim, "dim", low=1)
        lam = V.check_positive(regularization, "regularization")
        lik, _ = glm_options("logistic", "exact", 1, lam, binarize)
        model = GLMUCBModel(K, d, lik, lam)
        super().__init__(model, UCB(alpha, regularization=lam), seed)

    def add_action(self) -> int:  # type: ignore[override]
        """Append an action (no data yet: θ̂ = 0, V = λI)."""
        return self._add()


POLICY_CLASSES: dict[str, type] = {
    cls.__name__: cls
    for cls in (MeTS, FactoredMeTS, HierTS, JointTS, LinTS, LinUCB, GLMTS, UCBGLM)
}
MODEL_CLASSES: dict[str, Any] = {
    cls.__name__: cls
    for cls in (
        MixedEffectModel,
        IndependentGaussianModel,
        JointGaussianModel,
        DiagonalLaplaceModel,
        GLMUCBModel,
    )
}

# The K-armed and expert policies subclass ContextualBandit: imported after it, registered here.
from .experts import EXPERT_MODELS, EXPERT_POLICIES, EXPERT_RULES  # noqa: E402
from .karmed import KARMED_MODELS, KARMED_POLICIES, KARMED_RULES  # noqa: E402
from .policies import RULES  # noqa: E402

POLICY_CLASSES.update({**KARMED_POLICIES, **EXPERT_POLICIES})
MODEL_CLASSES.update({**KARMED_MODELS, **EXPERT_MODELS})
RULES.update({**KARMED_RULES, **EXPERT_RULES})
