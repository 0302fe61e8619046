"""Synthetic bandits whose actions come from a diffusion (chain) prior: the dTS papers' setting.

Aouali (2023, Sec. 5) and Aouali (2025, Sec. 5.1): Σ_ℓ = I, links W_ℓ ~ U[−1, 1]^{d×d} with
the sparsity W_ℓ = (W̄_ℓ, 0_{d, d − d_ℓ}) (linear), or 2-layer ReLU networks with U[−1, 1]
weights (non-linear), contexts uniform on [−1, 1]^d and linear-Gaussian or logistic rewards.
See docs/diffusion.md §4 for why the figures need one context per action and round.

Aouali (2025, Sec. 5.2), the Swiss roll: the actions are i.i.d. draws of a 2-D Swiss roll,
not of a chain, and dTS is given a DDPM pre-trained on offline draws of it
(``pretraining_samples``; docs/diffusion.md §7).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.special import expit

from .._validation import ValidationError, as_generator, check_int, check_positive
from ..priors import MixedEffectPrior
from ..priors_diffusion import DiffusionPrior, ReLULink
from .base import BanditEnvironment, Rounds
from .synthetic import _check_range

LINKS = ("linear", "relu")
ACTIONS = ("chain", "swissroll")
REWARDS = ("linear", "logistic")
CONTEXTS = ("per-action", "shared")
#: chain draws of the moment-matched Gaussian prior of a non-linear instance
MOMENT_DRAWS = 20_000


def swiss_roll(n: int, rng: np.random.Generator, noise: float = 0.05) -> np.ndarray:
    """``n`` points of the 2-D Swiss roll of the diffusion tutorials, (n, 2):
    t ~ U[1.5π, 4.5π], θ = (t cos t, t sin t)/10 + noise·N(0, I).

    Examples
    --------
    >>> theta = swiss_roll(1000, np.random.default_rng(0), noise=0.0)
    >>> r = np.linalg.norm(theta, axis=1)
    >>> bool(r.min() >= 0.15 * np.pi - 1e-12), bool(r.max() <= 0.45 * np.pi + 1e-12)
    (True, True)
    """
    t = 1.5 * np.pi * (1.0 + 2.0 * rng.uniform(size=n))
    return np.c_[t * np.cos(t), t * np.sin(t)] / 10.0 + noise * rng.standard_normal((n, 2))


def draw_links(kind: str, dim: int, n_layers: int, rng: np.random.Generator,
               layer_dims=None, hidden: int = 20, low: float = -1.0, high: float = 1.0):
    """Random links: W_ℓ ~ U[low, high]^{d×d} with the last d − d_ℓ columns zeroed (linear), or
    2-layer ReLU networks of width ``hidden`` with U[low, high] weights (relu).

    Examples
    --------
    >>> W = draw_links("linear", 4, 2, np.random.default_rng(0), layer_dims=(4, 1))
    >>> [int((w != 0).any(axis=0).sum()) for w in W]
    [4, 1]
    """
    if kind == "relu":
        return [ReLULink.random(dim, hidden, rng, low, high) for _ in range(n_layers)]
    links = []
    for j in range(n_layers):
        W = rng.uniform(low, high, (dim, dim))
        if layer_dims is not None:
            W[:, layer_dims[j]:] = 0.0
        links.append(W)
    return links


@dataclass(repr=False)
class DiffusionEnvironment(BanditEnvironment):
    """A bandit whose K action parameters are one draw of a chain prior (a new one per seed).

    Parameters
    ----------
    n_actions, dim, n_layers : int
        K, d and L.
    layer_dims : sequence of L ints, optional
        d_ℓ: link ℓ keeps its first d_ℓ columns (linear links; the papers: (5, 2) and
        (20, 10, 5, 2)). None: dense links.
    link : {"linear", "relu"}
        Random matrices, or random 2-layer ReLU networks of width ``hidden``.
    hidden : int
        Hidden width of the ReLU links (the paper: 20 for d = 5, 60 for d = 20).
    link_range : (float, float)
        Bounds of the links' uniform weights.
    latent_std, action_std : float
        Σ_ℓ = latent_std² I for ℓ ≥ 2 and Σ_1 = action_std² I (the papers: 1, 1).
    noise_std : float
        σ of linear rewards.
    reward : {"linear", "logistic"}
    contexts : {"per-action", "shared"}
        Each action draws its own context every round, (K, d) (what the figures need), or one
        context (d,) is shared by all (what the papers' text says).
    context_range : (float, float)
    actions : {"chain", "swissroll"}
        The actions are one draw of the chain (the papers' synthetic settings), or i.i.d.
        draws of the 2-D Swiss roll (:func:`swiss_roll`; ``dim`` must be 2, the links are
        unused and there is no chain prior: dTS fits one, ``prior = "fitted"``).
    pretrain_pool : int
        Offline samples of action parameters offered for pre-training
        (``pretraining_samples``): Swiss-roll draws from ``pretrain_seed``, the same for every
        run; or, for a chain, draws of θ each from its own chain (the marginal law), drawn
        after the instance. 0: none.
    pretrain_seed : int
    roll_noise : float
        The Swiss roll's Gaussian noise.
    seed : int, SeedSequence or Generator
        Draws the instance: links, latents and action parameters.

    Attributes
    ----------
    diffusion_prior : DiffusionPrior or None
        The chain the instance was drawn from (what dTS is given); None for the Swiss roll.
    pretraining_samples : ndarray (pretrain_pool, d) or None
    prior : MixedEffectPrior or None
        The one-effect Gaussian prior of the actions: exactly HierTS-2
        (:meth:`DiffusionPrior.to_hierts2`) for linear links, moment-matched for ReLU links
        (None where that effect covariance is singular). LinTS, LinUCB and GLM-TS use its
        marginal by default.
    theta : ndarray (K, d)
    latents : ndarray (L, d)
        ψ_1 … ψ_L of the instance.

    Examples
    --------
    >>> env = DiffusionEnvironment(n_actions=6, dim=3, n_layers=2, layer_dims=(3, 1), seed=0)
    >>> rounds = env.sample(4, np.random.default_rng(1))
    >>> rounds.contexts.shape, rounds.expected.shape
    ((4, 6, 3), (4, 6))
    >>> env.prior.n_effects, env.diffusion_prior.n_layers
    (1, 2)
    """

    n_actions: int = 100
    dim: int = 5
    n_layers: int = 2
    layer_dims: Any = None
    link: str = "linear"
    hidden: int = 20
    link_range: tuple[float, float] = (-1.0, 1.0)
    latent_std: float = 1.0
    action_std: float = 1.0
    noise_std: float = 1.0
    reward: str = "linear"
    contexts: str = "per-action"
    context_range: tuple[float, float] = (-1.0, 1.0)
    actions: str = "chain"
    pretrain_pool: int = 0
    pretrain_seed: int = 0
    roll_noise: float = 0.05
    seed: Any = None
    diffusion_prior: DiffusionPrior | None = field(init=False, repr=False)
    pretraining_samples: np.ndarray | None = field(init=False, repr=False)
    prior: MixedEffectPrior | None = field(init=False, repr=False)
    theta: np.ndarray = field(init=False, repr=False)
    latents: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        K = check_int(self.n_actions, "n_actions", 1)
        d = check_int(self.dim, "dim", 1)
        L = check_int(self.n_layers, "n_layers", 1)
        check_int(self.hidden, "hidden", 1)
        for name in ("latent_std", "action_std", "noise_std"):
            check_positive(getattr(self, name), name)
        pool = check_int(self.pretrain_pool, "pretrain_pool", 0)
        check_int(self.pretrain_seed, "pretrain_seed", 0)
        check_positive(self.roll_noise, "roll_noise")
        for name, allowed in (("link", LINKS), ("reward", REWARDS), ("contexts", CONTEXTS),
                              ("actions", ACTIONS)):
            if getattr(self, name) not in allowed:
                raise ValidationError(f"{name} must be one of {allowed}, got "
                                      f"{getattr(self, name)!r}")
        self.link_range = _check_range(self.link_range, "link_range")
        self.context_range = _check_range(self.context_range, "context_range")
        if self.layer_dims is not None:
            if self.link != "linear":
                raise ValidationError("layer_dims: the sparsity pattern applies to linear links")
            dims = tuple(self.layer_dims)
            if len(dims) != L:
                raise ValidationError(f"layer_dims must hold n_layers = {L} sizes, got {dims}")
            for j, k in enumerate(dims):
                check_int(k, f"layer_dims[{j}]", 1)
                if k > d:
                    raise ValidationError(f"layer_dims[{j}] must be <= dim = {d}, got {k}")
            self.layer_dims = dims
        rng = as_generator(self.seed)
        if self.actions == "swissroll":
            self._swiss_roll(K, d, pool, rng)
            return
        links = draw_links(self.link, d, L, rng, self.layer_dims, self.hidden, *self.link_range)
        eye = np.eye(d)
        covs = [self.action_std**2 * eye] + [self.latent_std**2 * eye] * L
        self.diffusion_prior = DiffusionPrior(links, covs)
        self.theta, self.latents = self.diffusion_prior.sample(K, rng, return_latents=True)
        self.prior = self._gaussian_prior(rng)  # draws after the instance's
        self.pretraining_samples = (self.diffusion_prior.sample_independent(pool, rng)
                                    if pool else None)

    def _swiss_roll(self, K: int, d: int, pool: int, rng: np.random.Generator) -> None:
        if d != 2:
            raise ValidationError(f"dim must be 2 for actions = 'swissroll', got {d}")
        if self.layer_dims is not None:
            raise ValidationError("layer_dims: the Swiss roll has no chain")
        self.theta = swiss_roll(K, rng, self.roll_noise)
        self.latents = np.zeros((0, d))
        self.diffusion_prior = None
        self.prior = None
        self.pretraining_samples = (
            swiss_roll(pool, np.random.default_rng(self.pretrain_seed), self.roll_noise)
            if pool else None)

    def _gaussian_prior(self, rng: np.random.Generator) -> MixedEffectPrior | None:
        prior, K = self.diffusion_prior, self.n_actions
        if prior.is_linear:
            try:
                return prior.to_hierts2(K)
            except ValidationError:
                return None
        u = self._moment_draws(rng)  # u = f_1(ψ_1), moment-matched
        cov = np.cov(u.T).reshape(self.dim, self.dim)
        try:
            return MixedEffectPrior(u.mean(0)[None], cov[None], np.ones((K, 1)),
                                    np.array(prior.covs[0]))
        except ValidationError:
            return None

    def _moment_draws(self, rng: np.random.Generator) -> np.ndarray:
        """MOMENT_DRAWS draws of u = f_1(ψ_1) from the chain, (n, d), vectorised over draws."""
        prior, L, d = self.diffusion_prior, self.n_layers, self.dim
        chol = np.linalg.cholesky(prior.covs)
        psi = prior.mean + rng.standard_normal((MOMENT_DRAWS, d)) @ chol[L].T
        for j in range(L - 2, -1, -1):  # layers
            psi = prior.link(j + 1, psi) + rng.standard_normal((MOMENT_DRAWS, d)) @ chol[j + 1].T
        return prior.link(0, psi)

    def independent_prior(self) -> tuple[np.ndarray, np.ndarray]:
        """Every action's marginal Gaussian prior, mean (K, d) and covariance (d, d): exact for
        linear links (N(B_L m, Σ_1 + Ω₂)), moment-matched for ReLU links."""
        K = self.n_actions
        if self.actions == "swissroll":  # the roll's own moments (a fixed large sample)
            ref = swiss_roll(MOMENT_DRAWS, np.random.default_rng(0), self.roll_noise)
            return np.tile(ref.mean(axis=0), (K, 1)), np.cov(ref.T)
        if self.prior is not None:
            mean, cov = self.prior.marginal_action_prior()
            return mean, cov[0]
        p = self.diffusion_prior
        mean = p.products()[-1] @ p.mean
        return np.tile(mean, (K, 1)), p.covs[0] + p.effect_cov()

    def __repr__(self) -> str:
        if self.actions == "swissroll":
            return (f"{type(self).__name__}(n_actions={self.n_actions}, actions='swissroll', "
                    f"pretrain_pool={self.pretrain_pool}, reward={self.reward!r}, "
                    f"contexts={self.contexts!r})")
        parts = [f"n_actions={self.n_actions}", f"dim={self.dim}", f"n_layers={self.n_layers}",
                 f"link={self.link!r}", f"reward={self.reward!r}", f"contexts={self.contexts!r}"]
        if self.layer_dims is not None:
            parts.append(f"layer_dims={self.layer_dims}")
        if self.link == "relu":
            parts.append(f"hidden={self.hidden}")
        return f"{type(self).__name__}({', '.join(parts)})"

    # ---------------------------------------------------------------- truth
    @property
    def shared_context(self) -> bool:
        return self.contexts == "shared"

    @property
    def context_bound(self) -> float:
        low, high = self.context_range
        return float(np.sqrt(self.dim) * max(abs(low), abs(high)))

    def _link(self, u: np.ndarray) -> np.ndarray:
        return expit(u) if self.reward == "logistic" else u

    def expected_rewards(self, x: np.ndarray) -> np.ndarray:
        """x_iᵀθ_i (or its sigmoid) for every action, (K,); ``x`` is (d,) or (K, d)."""
        x = np.asarray(x, dtype=np.float64)
        u = self.theta @ x if x.ndim == 1 else np.einsum("kd,kd->k", x, self.theta)
        return self._link(u)

    def draw_reward(self, x: np.ndarray, a: int, rng: np.random.Generator) -> float:
        x = np.asarray(x, dtype=np.float64)
        u = float(self.theta[a] @ (x if x.ndim == 1 else x[a]))
        if self.reward == "logistic":
            return float(rng.uniform() < expit(u))
        return u + self.noise_std * float(rng.standard_normal())

    def sample(self, n: int, rng: np.random.Generator) -> Rounds:
        """``n`` rounds: contexts (n, K, d) or (n, d), expected and realised rewards (n, K)."""
        n = check_int(n, "n", 0)
        K, d = self.n_actions, self.dim
        low, high = self.context_range
        if self.contexts == "per-action":
            X = rng.uniform(low, high, (n, K, d))
            U = np.einsum("nkd,kd->nk", X, self.theta)
        else:
            X = rng.uniform(low, high, (n, d))
            U = X @ self.theta.T
        means = self._link(U)
        if self.reward == "logistic":
            rewards = (rng.random((n, K)) < means).astype(np.float64)
        else:
            rewards = means + self.noise_std * rng.standard_normal((n, K))
        return Rounds(X, means, rewards)
