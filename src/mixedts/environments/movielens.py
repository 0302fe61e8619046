"""MovieLens as a bandit with a learned (or genre) mixed-effect structure (docs/math.md §6).

The truth comes from an offline factorisation of the ratings: movie ``i``'s parameter θ_i is
its item vector and each round's context is a random user's vector, so the expected reward of
a movie is the user's predicted (centred) rating. What the policies are *given* is a proxy
structure learned from the same item vectors: a Gaussian mixture over all movies
(``structure="learned"``) or the genres (``structure="genre"``). The proxy is only a prior;
the true θ_i are the item vectors themselves, not draws from it.

The factorisation and the structure are fitted once per process and cached (they depend on
the data and the structure settings, not on the run): every run then draws its own ``K``
movies, and every round its own user.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import expit

from .._validation import ValidationError, as_generator, check_int, check_positive
from ..priors import MixedEffectPrior
from .base import BanditEnvironment, Rounds

STRUCTURES = ("learned", "genre")
REWARDS = ("linear", "logistic")


@dataclass(frozen=True)
class LearnedStructure:
    """What is fitted once from the ratings: the truth and the proxy prior over all movies.

    Attributes
    ----------
    user_vectors : ndarray (n_users, d)
    item_vectors : ndarray (n_items, d)
    item_ids : ndarray (n_items,)
        MovieLens ids of the rows of ``item_vectors``.
    priors : dict of str to MixedEffectPrior
        ``"learned"`` (the Gaussian mixture) and ``"genre"``, over all ``n_items`` movies
        (mixing has one row per movie).
    marginal_mean, marginal_cov : ndarray (d,), (d, d)
        The independent prior the paper gives LinTS and GLM-TS: N(mean movie, diag(v)).
    test_rmse : float
        Held-out RMSE of the factorisation (nan when fitted on every rating).
    """

    user_vectors: np.ndarray
    item_vectors: np.ndarray
    item_ids: np.ndarray
    priors: dict[str, MixedEffectPrior]
    marginal_mean: np.ndarray
    marginal_cov: np.ndarray
    test_rmse: float


@functools.lru_cache(maxsize=8)
def learn_structure(
    data: str | None,
    dim: int,
    n_effects: int,
    reg: float,
    n_iter: int,
    effect_share: float,
    structure_seed: int,
) -> LearnedStructure:
    """Factorise the ratings and fit the proxy prior (cached per process).

    ``data`` is a MovieLens folder (``None``: download the official ml-100k archive into the
    cache, see :func:`mixedts.datasets.load_movielens`).
    """
    from ..datasets import load_movielens
    from ..structure import (
        factorize_ratings,
        fit_mixed_effect_prior,
        marginal_item_prior,
        prior_from_labels,
    )

    movielens = load_movielens(data, download=data is None)
    r = movielens.ratings
    seeds = np.random.SeedSequence(structure_seed).spawn(2)
    fact = factorize_ratings(
        r["user_id"].to_numpy(), r["item_id"].to_numpy(), r["rating"].to_numpy(),
        rank=dim, reg=reg, n_iter=n_iter, test_fraction=0.0, seed=seeds[0],
    )
    V = fact.item_vectors
    genres = movielens.genre_matrix(fact.item_ids)
    genres = genres[:, genres.sum(axis=0) > 0]  # a genre no movie has is no effect
    priors = {
        "learned": fit_mixed_effect_prior(V, n_effects, effect_share=effect_share,
                                          seed=seeds[1]),
        "genre": prior_from_labels(V, genres, effect_share=effect_share),
    }
    mean, cov = marginal_item_prior(V)
    return LearnedStructure(fact.user_vectors, V, np.asarray(fact.item_ids), priors, mean, cov,
                            float(fact.test_rmse))


@dataclass(repr=False)
class MovieLensEnvironment(BanditEnvironment):
    """MovieLens ratings as a contextual bandit (the meTS paper's Fig. 3 setting).

    An offline rank-``dim`` ALS factorisation of all ratings gives user vectors x_u and item
    vectors v_i. Each instance (run) draws ``n_actions`` distinct movies; each round draws one
    user uniformly, whose vector is the context shared by every action. Rewards are
    ``x_uᵀv_i + N(0, noise_std²)`` (``"linear"``) or ``Bernoulli(sigmoid(x_uᵀv_i))``
    (``"logistic"``).

    Parameters
    ----------
    data : str or Path or None
        The MovieLens folder (ml-100k or ml-1m layout). ``None`` downloads the official ml-100k
        archive once into the cache (checksum-verified).
    n_actions : int
        K, movies per run.
    dim : int
        d, the rank of the factorisation.
    n_effects : int
        L, mixture components of the learned structure (ignored for ``"genre"``, where L is the
        number of genres).
    structure : {"learned", "genre"}
        The proxy prior ``prior``: a Gaussian mixture over all item vectors (b_i =
        memberships), or the genre flags (b_i = normalised indicators, ψ_l = the genre's mean
        vector). Both are in ``priors``; a policy picks the other with its ``structure``
        option, so both structures run on the same instances.
    reward : {"linear", "logistic"}
    noise_std : float
        σ of the linear rewards (the authors' code: 0.5).
    reg, als_iterations : float, int
        Ridge and iterations of the ALS factorisation (docs/math.md: 1.0 and 20).
    effect_share : float
        Share of the per-dimension variance v given to the effects: Σ_Ψ = s·diag(v) per block,
        Σ0 = (1 − s)·diag(v) (the paper: 0.75).
    structure_seed : int
        Seeds the factorisation and the mixture; the same for every run.
    seed : int, SeedSequence or Generator
        Draws the run's movies.

    Attributes
    ----------
    prior : MixedEffectPrior
        The proxy prior over the run's K movies (what meTS is given).
    priors : dict of str to MixedEffectPrior
        Both structures over the run's K movies.
    theta : ndarray (K, d)
        The movies' item vectors (the truth).
    movies : ndarray (K,)
        MovieLens ids of the actions.
    users : ndarray (n_users, d)
        The pool of contexts.

    Raises
    ------
    ValidationError
        An invalid option, or more actions than movies.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> folder = Path(tempfile.mkdtemp())  # 8 users rate 6 movies (the ml-100k layout)
    >>> rng = np.random.default_rng(0)
    >>> rows = [f"{u}\\t{i}\\t{rng.integers(1, 6)}\\t0" for u in range(1, 9) for i in range(1, 7)]
    >>> _ = (folder / "u.data").write_text("\\n".join(rows))
    >>> movies = [f"{i}|Movie {i}|||x|{i % 2}|{1 - i % 2}" for i in range(1, 7)]
    >>> _ = (folder / "u.item").write_text("\\n".join(movies))
    >>> _ = (folder / "u.genre").write_text("Comedy|0\\nDrama|1\\n")
    >>> env = MovieLensEnvironment(folder, n_actions=3, dim=2, n_effects=2, seed=0)
    >>> env.theta.shape, env.users.shape, env.prior.n_effects
    ((3, 2), (8, 2), 2)
    >>> env.sample(4, rng).rewards.shape
    (4, 3)
    """

    data: Any = None
    n_actions: int = 100
    dim: int = 5
    n_effects: int = 5
    structure: str = "learned"
    reward: str = "linear"
    noise_std: float = 0.5
    reg: float = 1.0
    als_iterations: int = 20
    effect_share: float = 0.75
    structure_seed: int = 0
    seed: Any = None
    prior: MixedEffectPrior = field(init=False, repr=False)
    priors: dict = field(init=False, repr=False)
    theta: np.ndarray = field(init=False, repr=False)
    movies: np.ndarray = field(init=False, repr=False)
    users: np.ndarray = field(init=False, repr=False)
    learned: LearnedStructure = field(init=False, repr=False)

    def __post_init__(self) -> None:
        K = check_int(self.n_actions, "n_actions", 1)
        d = check_int(self.dim, "dim", 1)
        L = check_int(self.n_effects, "n_effects", 1)
        check_positive(self.noise_std, "noise_std")
        check_positive(self.reg, "reg")
        check_int(self.als_iterations, "als_iterations", 1)
        check_int(self.structure_seed, "structure_seed", 0)
        if not 0.0 < float(self.effect_share) < 1.0:
            raise ValidationError(f"effect_share must be in (0, 1), got {self.effect_share!r}")
        if self.structure not in STRUCTURES:
            raise ValidationError(
                f"structure must be one of {STRUCTURES}, got {self.structure!r}")
        if self.reward not in REWARDS:
            raise ValidationError(f"reward must be one of {REWARDS}, got {self.reward!r}")
        data = None if self.data is None else str(Path(self.data).expanduser().resolve())
        self.learned = learn_structure(
            data, d, L, float(self.reg), int(self.als_iterations),
            float(self.effect_share), int(self.structure_seed),
        )
        n_items = len(self.learned.item_vectors)
        if K > n_items:
            raise ValidationError(f"n_actions must be at most the {n_items} movies, got {K}")
        rng = as_generator(self.seed)
        rows = np.sort(rng.choice(n_items, size=K, replace=False))
        self.priors = {
            name: MixedEffectPrior(
                full.effect_mean, full.effect_cov, full.mixing[rows],
                full.action_cov if full.action_cov.ndim == 2 else full.action_cov[rows],
            )
            for name, full in self.learned.priors.items()
        }
        self.prior = self.priors[self.structure]
        self.theta = self.learned.item_vectors[rows]
        self.movies = self.learned.item_ids[rows]
        self.users = self.learned.user_vectors

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(n_actions={self.n_actions}, dim={self.dim}, "
                f"structure={self.structure!r}, n_effects={self.prior.n_effects}, "
                f"reward={self.reward!r}"
                + (f", noise_std={self.noise_std:.4g})" if self.reward == "linear" else ")"))

    def independent_prior(self) -> tuple[np.ndarray, np.ndarray]:
        """The paper's prior for LinTS and GLM-TS: every movie ~ N(mean movie, diag(v)).

        Returns mean (K, d) and covariance (d, d).
        """
        mean = np.broadcast_to(self.learned.marginal_mean, (self.n_actions, self.dim)).copy()
        return mean, self.learned.marginal_cov.copy()

    # ---------------------------------------------------------------- truth
    @property
    def context_bound(self) -> float:
        return float(np.linalg.norm(self.users, axis=1).max())

    def _link(self, u: np.ndarray) -> np.ndarray:
        return expit(u) if self.reward == "logistic" else u

    def expected_rewards(self, x: np.ndarray) -> np.ndarray:
        """E[y | x, i] for every movie, (K,)."""
        return self._link(self.theta @ np.asarray(x, dtype=np.float64))

    def context(self, rng: np.random.Generator) -> np.ndarray:
        """A random user's vector (d,)."""
        return self.users[rng.integers(len(self.users))]

    def draw_reward(self, x: np.ndarray, a: int, rng: np.random.Generator) -> float:
        u = float(self.theta[a] @ np.asarray(x, dtype=np.float64))
        if self.reward == "logistic":
            return float(rng.uniform() < expit(u))
        return u + self.noise_std * float(rng.standard_normal())

    def sample(self, n: int, rng: np.random.Generator) -> Rounds:
        """``n`` rounds: users (n, d), expected rewards (n, K), every movie's reward (n, K)."""
        n = check_int(n, "n", 0)
        X = self.users[rng.integers(len(self.users), size=n)]
        means = self._link(X @ self.theta.T)
        if self.reward == "logistic":
            rewards = (rng.random(means.shape) < means).astype(np.float64)
        else:
            rewards = means + self.noise_std * rng.standard_normal(means.shape)
        return Rounds(X, means, rewards)
