"""The chain prior of dTS: L latent layers above the actions (a diffusion model's reverse chain).

::

    ψ_L            ~ N(m, Σ_{L+1})
    ψ_{ℓ−1} | ψ_ℓ  ~ N(f_ℓ(ψ_ℓ), Σ_ℓ)        ℓ = L, …, 2
    θ_i | ψ_1      ~ N(f_1(ψ_1), Σ_1)        i = 1, …, K (independent given ψ_1)

with linear links f_ℓ(ψ) = W_ℓ ψ (Aouali 2023, "Linear diffusion models meet contextual
bandits"; the posterior is then exact) or the denoisers of a diffusion model, here
:class:`ReLULink` networks (Aouali, "Diffusion models meet contextual bandits", NeurIPS 2025;
the posterior is then approximated). Every latent and every θ_i lives in R^d. See
docs/diffusion.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._validation import (
    ValidationError,
    as_float_array,
    as_generator,
    check_int,
    check_shape,
    check_symmetric_psd,
)
from .priors import MixedEffectPrior

__all__ = ["DiffusionPrior", "ReLULink"]


@dataclass(frozen=True, eq=False)
class ReLULink:
    """A non-linear link f(ψ) = a ψ + W_out h(ψ) + b_out, h the hidden ReLU layers.

    h(ψ) = relu(W_k … relu(W_1 ψ + b_1) … + b_k). A random network (the papers' non-linear
    synthetic links: ``skip = 0``) or one step of a fitted DDPM denoiser (``skip`` = 1/√α_ℓ,
    the noise prediction folded into the last layer and the step into the first bias).

    Parameters
    ----------
    weights : sequence of arrays
        (h_1, d), (h_2, h_1), …, (d, h_k): the hidden layers, then the output layer.
    biases : sequence of arrays
        (h_1,), …, (d,), one per weight.
    skip : float
        a, the coefficient of the identity path.

    Examples
    --------
    >>> import numpy as np
    >>> f = ReLULink([np.eye(2), -np.eye(2)], [np.zeros(2), np.ones(2)])
    >>> f(np.array([[1.0, -2.0]]))
    array([[0., 1.]])
    """

    weights: tuple
    biases: tuple
    skip: float = 0.0

    def __post_init__(self) -> None:
        ws, bs = list(self.weights), list(self.biases)
        if len(ws) < 2 or len(ws) != len(bs):
            raise ValidationError("weights and biases must be two or more matching layers")
        ws = [as_float_array(w, f"weights[{j}]", ndim=2) for j, w in enumerate(ws)]
        bs = [as_float_array(b, f"biases[{j}]", ndim=1) for j, b in enumerate(bs)]
        d = ws[0].shape[1]
        for j, (w, b) in enumerate(zip(ws, bs)):
            width_in = d if j == 0 else ws[j - 1].shape[0]
            check_shape(w, (None, width_in), f"weights[{j}]")
            check_shape(b, (w.shape[0],), f"biases[{j}]")
        check_shape(ws[-1], (d, None), f"weights[{len(ws) - 1}]")
        skip = float(as_float_array(self.skip, "skip", ndim=0))
        for arr in (*ws, *bs):
            arr.setflags(write=False)
        object.__setattr__(self, "weights", tuple(ws))
        object.__setattr__(self, "biases", tuple(bs))
        object.__setattr__(self, "skip", skip)

    @property
    def dim(self) -> int:
        return int(self.weights[0].shape[1])

    def __call__(self, psi: np.ndarray) -> np.ndarray:
        """f(ψ) for rows ψ (…, d), (…, d)."""
        h = psi
        for w, b in zip(self.weights[:-1], self.biases[:-1]):
            h = np.maximum(h @ w.T + b, 0.0)
        out = h @ self.weights[-1].T + self.biases[-1]
        return out + self.skip * psi if self.skip else out

    @classmethod
    def random(cls, dim: int, hidden: int, rng: np.random.Generator, low: float = -1.0,
               high: float = 1.0) -> ReLULink:
        """A 2-layer ReLU network with every weight and bias U[low, high] (the papers' random
        non-linear links)."""
        u = rng.uniform
        return cls([u(low, high, (hidden, dim)), u(low, high, (dim, hidden))],
                   [u(low, high, hidden), u(low, high, dim)])


def _as_link(link: Any, j: int, d: int | None):
    if isinstance(link, ReLULink):
        if d is not None and link.dim != d:
            raise ValidationError(f"links[{j}] must act on R^{d}, got R^{link.dim}")
        return link
    W = as_float_array(link, f"links[{j}]", ndim=2)
    n = W.shape[0] if d is None else d
    check_shape(W, (n, n), f"links[{j}]")
    if n < 1:
        raise ValidationError(f"links[{j}] must be (d, d) with d >= 1, got {W.shape}")
    W = np.array(W)
    W.setflags(write=False)
    return W


class DiffusionPrior:
    """The dTS chain prior, linear (W_ℓ matrices) or non-linear (:class:`ReLULink`).

    Parameters
    ----------
    links : sequence of L links
        f_1, …, f_L: (d, d) matrices W_ℓ (the sparsity pattern W_ℓ = (W̄_ℓ, 0) is allowed) or
        :class:`ReLULink` networks.
    covs : sequence of L + 1 arrays, each (d, d)
        Σ_1 (of the actions given ψ_1), …, Σ_L, then Σ_{L+1} (of ψ_L); symmetric positive
        definite.
    mean : array_like, shape (d,), optional
        m, the mean of the top latent ψ_L (zeros by default).

    Examples
    --------
    >>> import numpy as np
    >>> from mixedts import DiffusionPrior
    >>> rng = np.random.default_rng(0)
    >>> prior = DiffusionPrior(links=[rng.uniform(-1, 1, (3, 3)) for _ in range(2)],
    ...                        covs=[np.eye(3)] * 3)
    >>> prior.n_layers, prior.dim, prior.sample(5, rng).shape
    (2, 3, (5, 3))
    >>> hier2 = prior.to_hierts2(5)  # the one-effect MixedEffectPrior with the same posterior
    >>> hier2.n_effects, hier2.n_actions
    (1, 5)
    """

    def __init__(self, links: Sequence[Any], covs: Sequence[Any], mean: Any = None) -> None:
        if isinstance(links, np.ndarray) and links.ndim == 3:
            links = list(links)
        if not isinstance(links, (list, tuple)) or len(links) < 1:
            raise ValidationError("links must be a non-empty list of (d, d) links")
        first = _as_link(links[0], 0, None)
        d = first.dim if isinstance(first, ReLULink) else first.shape[0]
        parsed = [first] + [_as_link(link, j, d) for j, link in enumerate(links) if j]
        L = len(parsed)
        if isinstance(covs, np.ndarray) and covs.ndim == 3:
            covs = list(covs)
        if not isinstance(covs, (list, tuple)) or len(covs) != L + 1:
            got = len(covs) if isinstance(covs, (list, tuple)) else type(covs).__name__
            raise ValidationError(f"covs must hold L + 1 = {L + 1} matrices (Σ_1 … Σ_{L + 1}), "
                                  f"got {got}")
        checked = []
        for j, c in enumerate(covs):
            c = as_float_array(c, f"covs[{j}]", ndim=2)
            check_shape(c, (d, d), f"covs[{j}]")
            check_symmetric_psd(c, f"covs[{j}]")
            checked.append(0.5 * (c + c.T))
        m = np.zeros(d) if mean is None else as_float_array(mean, "mean", ndim=1)
        check_shape(m, (d,), "mean")
        self._links = tuple(parsed)
        self._covs = np.stack(checked)
        self._mean = np.array(m)
        for arr in (self._covs, self._mean):
            arr.setflags(write=False)

    # ------------------------------------------------------------------ sizes
    @property
    def links(self) -> tuple:
        """f_1, …, f_L: read-only (d, d) arrays or :class:`ReLULink` networks."""
        return self._links

    @property
    def covs(self) -> np.ndarray:
        """Σ_1, …, Σ_{L+1}, (L + 1, d, d), read-only."""
        return self._covs

    @property
    def mean(self) -> np.ndarray:
        """m, the mean of ψ_L, (d,)."""
        return self._mean

    @property
    def n_layers(self) -> int:
        """L, the number of latent layers."""
        return len(self._links)

    @property
    def dim(self) -> int:
        return int(self._covs.shape[-1])

    @property
    def is_linear(self) -> bool:
        """True when every link is a matrix (the posterior is then exact)."""
        return all(isinstance(f, np.ndarray) for f in self._links)

    def link(self, j: int, psi: np.ndarray) -> np.ndarray:
        """f_{j+1}(ψ) for rows ψ (…, d) (0-based ``j``: ``link(0, ψ_1)`` is θ's mean)."""
        f = self._links[j]
        return psi @ f.T if isinstance(f, np.ndarray) else f(psi)

    # ------------------------------------------------------------------ sampling
    def sample(self, n_actions: int, rng=None, return_latents: bool = False):
        """K action parameters θ (K, d) drawn from the chain (one ψ_L, …, ψ_1 for all of them).

        With ``return_latents=True`` returns (θ, ψ) where ψ (L, d) holds ψ_1, …, ψ_L.
        """
        K = check_int(n_actions, "n_actions", low=1)
        rng = as_generator(rng)
        chol = np.linalg.cholesky(self._covs)
        L, d = self.n_layers, self.dim
        psi = np.empty((L, d))
        psi[L - 1] = self._mean + chol[L] @ rng.standard_normal(d)
        for j in range(L - 2, -1, -1):  # layers, not actions
            psi[j] = self.link(j + 1, psi[j + 1]) + chol[j + 1] @ rng.standard_normal(d)
        theta = self.link(0, psi[0]) + rng.standard_normal((K, d)) @ chol[0].T
        return (theta, psi) if return_latents else theta

    def sample_independent(self, n: int, rng=None) -> np.ndarray:
        """``n`` draws of one θ, each from its own chain (ψ_L, …, ψ_1 drawn anew), (n, d):
        the marginal law of an action parameter, vectorised over the draws."""
        n = check_int(n, "n", low=1)
        rng = as_generator(rng)
        chol = np.linalg.cholesky(self._covs)
        L, d = self.n_layers, self.dim
        psi = self._mean + rng.standard_normal((n, d)) @ chol[L].T
        for j in range(L - 1, -1, -1):  # layers: ψ_j from ψ_{j+1}, then θ from ψ_1
            psi = self.link(j, psi) + rng.standard_normal((n, d)) @ chol[j].T
        return psi

    @classmethod
    def fit(cls, samples: Any, n_layers: int, **options: Any) -> DiffusionPrior:
        """A chain prior pre-trained as a DDPM on offline ``samples`` of θ (N, d): see
        :func:`mixedts.priors_diffusion_fit.fit_diffusion_prior` for the options (``hidden``,
        ``steps``, ``batch_size``, ``learning_rate``, ``schedule``, ``seed``, ``progress``).
        Needs scikit-learn.

        Examples
        --------
        >>> rng = np.random.default_rng(0)
        >>> prior = DiffusionPrior.fit(rng.normal(size=(100, 2)), n_layers=4, hidden=8,
        ...                            steps=20, seed=0)
        >>> prior.n_layers, prior.is_linear
        (4, False)
        """
        from .priors_diffusion_fit import fit_diffusion_prior

        return fit_diffusion_prior(samples, n_layers, **options)

    # ------------------------------------------------------------------ linear reductions
    def _need_linear(self, what: str) -> None:
        if not self.is_linear:
            raise ValidationError(f"{what} needs linear links (matrices W_ℓ)")

    def products(self) -> np.ndarray:
        """B_ℓ = W_1 ⋯ W_ℓ for ℓ = 1 … L, (L, d, d) (linear links)."""
        self._need_linear("products")
        out = [self._links[0]]
        for W in self._links[1:]:
            out.append(out[-1] @ W)
        return np.stack(out)

    def effect_cov(self) -> np.ndarray:
        """Ω₂ = Σ_ℓ B_ℓ Σ_{ℓ+1} B_ℓᵀ, the covariance of u = W_1 ψ_1 (d, d) (linear links).

        The actions depend on the latents only through u, so exact dTS has the θ posterior of
        the one-effect prior θ_i | u ~ N(u, Σ_1), u ~ N(B_L m, Ω₂) (:meth:`to_hierts2`).
        """
        B = self.products()
        cov = np.einsum("lij,ljk,lmk->im", B, self._covs[1:], B)
        return 0.5 * (cov + cov.T)

    def to_hierts2(self, n_actions: int) -> MixedEffectPrior:
        """The equivalent one-effect :class:`MixedEffectPrior` (the papers' HierTS-2): effect
        u ~ N(B_L m, Ω₂), mixing 1 for every action, action covariance Σ_1.

        Raises ``ValidationError`` when Ω₂ is singular (links of low rank)."""
        K = check_int(n_actions, "n_actions", low=1)
        mean = self.products()[-1] @ self._mean
        try:
            return MixedEffectPrior(mean[None], self.effect_cov()[None], np.ones((K, 1)),
                                    np.array(self._covs[0]))
        except ValidationError as exc:
            raise ValidationError(f"to_hierts2: Ω₂ is not positive definite ({exc})") from None

    def to_hierts1(self) -> DiffusionPrior:
        """The papers' HierTS-1 as a one-layer chain: it keeps ψ_L only and treats the actions
        as independent given it, θ_i | ψ_L ~ N(B_L ψ_L, Ω₁), Ω₁ = Σ_1 + Σ_{ℓ<L} B_ℓ Σ_{ℓ+1} B_ℓᵀ,
        ψ_L ~ N(m, Σ_{L+1}). An approximation (the actions share the lower latents)."""
        B = self.products()
        L = self.n_layers
        omega1 = self._covs[0] + np.einsum("lij,ljk,lmk->im", B[: L - 1], self._covs[1:L],
                                           B[: L - 1])
        return DiffusionPrior([B[-1]], [0.5 * (omega1 + omega1.T), self._covs[L]], self._mean)

    # ------------------------------------------------------------------ persistence
    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays that rebuild this prior (:meth:`from_arrays`), no pickle."""
        out = {"covs": np.array(self._covs), "mean": np.array(self._mean)}
        for j, f in enumerate(self._links):
            if isinstance(f, np.ndarray):
                out[f"link{j}.W"] = np.array(f)
            else:
                out[f"link{j}.skip"] = np.array(f.skip)
                for k, (w, b) in enumerate(zip(f.weights, f.biases)):
                    out[f"link{j}.w{k}"], out[f"link{j}.b{k}"] = np.array(w), np.array(b)
        return out

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray]) -> DiffusionPrior:
        covs = arrays["covs"]
        links = []
        for j in range(len(covs) - 1):
            if f"link{j}.W" in arrays:
                links.append(arrays[f"link{j}.W"])
                continue
            n = sum(1 for k in arrays if k.startswith(f"link{j}.w"))
            links.append(ReLULink([arrays[f"link{j}.w{k}"] for k in range(n)],
                                  [arrays[f"link{j}.b{k}"] for k in range(n)],
                                  float(arrays[f"link{j}.skip"])))
        return cls(links, list(covs), arrays["mean"])

    def __repr__(self) -> str:
        kind = "linear" if self.is_linear else "non-linear"
        return f"DiffusionPrior(n_layers={self.n_layers}, dim={self.dim}, links={kind})"
