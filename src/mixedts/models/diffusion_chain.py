"""The latent chain of dTS: upward likelihood messages, top-down draws, Lemma 2's marginals.

The actions' terms enter through two sums over the observed actions (docs/diffusion.md §2)::

    Ḡ_act = Σ_i (P_1 − P_1 S_i P_1),     η_act = Σ_i P_1 m_i        (S_i, m_i: eq. 5)

(the ``M_i`` and ``η_i`` of :func:`~mixedts.models.linear_gaussian.effect_terms`). With the
*message maps* V_ℓ (V_ℓ = W_ℓ for linear links: exact, Aouali 2023 Eqs. 5–8; V_ℓ = I for
non-linear links: the approximation of Aouali 2025 Eqs. 9–12)::

    Ḡ_1 = V_1ᵀ Ḡ_act V_1,   B̄_1 = V_1ᵀ η_act
    Σ̄_ℓ⁻¹ = P_{ℓ+1} + Ḡ_ℓ                                                   ℓ = 1 … L
    Ḡ_{ℓ+1} = V_{ℓ+1}ᵀ (P_{ℓ+1} − P_{ℓ+1} Σ̄_ℓ P_{ℓ+1}) V_{ℓ+1},
    B̄_{ℓ+1} = V_{ℓ+1}ᵀ P_{ℓ+1} Σ̄_ℓ B̄_ℓ                                     ℓ = 1 … L − 1

(P_ℓ = Σ_ℓ⁻¹). The conditional posteriors are then, from the top down::

    ψ_L | H ~ N(Σ̄_L (P_{L+1} m + B̄_L), Σ̄_L)
    ψ_ℓ | ψ_{ℓ+1}, H ~ N(K_ℓ f_{ℓ+1}(ψ_{ℓ+1}) + Σ̄_ℓ B̄_ℓ, Σ̄_ℓ),   K_ℓ = Σ̄_ℓ P_{ℓ+1}

The cost is O(L d³) whatever the number of actions. Arrays are 0-based: index j holds ψ_{j+1}.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..linalg import matvec, sqrt_from_precision
from .linear_gaussian import effect_terms

__all__ = ["ActionChains", "Chain", "draw_latents", "latent_marginals", "upward"]


class Chain:
    """The latent posteriors given the actions' sums: (L, d, d) and (L, d) stacks."""

    __slots__ = ("C", "K", "Sbar", "c")

    def __init__(self, Sbar: np.ndarray, C: np.ndarray, K: np.ndarray, c: np.ndarray) -> None:
        #: Σ̄_ℓ, the conditional covariances
        self.Sbar = Sbar
        #: square roots C_ℓ (Σ̄_ℓ = C_ℓ C_ℓᵀ)
        self.C = C
        #: K_ℓ = Σ̄_ℓ P_{ℓ+1}, the gain of the parent's link (K_L unused: the top has none)
        self.K = K
        #: c_ℓ, the conditional mean's data part (for the top, the whole mean)
        self.c = c


def _sym(a: np.ndarray) -> np.ndarray:
    return 0.5 * (a + np.swapaxes(a, -1, -2))


def _t(a: np.ndarray) -> np.ndarray:
    """Aᵀ of a matrix or of every matrix of a stack (for a matrix, the view ``a.T``)."""
    return np.swapaxes(a, -1, -2)


def upward(precs: np.ndarray, maps, G_act: np.ndarray, eta_act: np.ndarray,
           top_mean: np.ndarray) -> Chain:
    """The chain's conditional posteriors from the actions' sums (the recursion above).

    Parameters
    ----------
    precs : (L + 1, d, d)
        P_1 … P_{L+1}; (L + 1, …, d, d) gives each entry of the batch its own prior.
    maps : sequence of L (d, d) arrays, or None
        V_1 … V_L (the links W_ℓ; None: identities, the non-linear approximation); (…, d, d)
        arrays give each entry its own (the many-runs engine, one prior per run).
    G_act, eta_act : (…, d, d), (…, d)
        Σ_i M_i and Σ_i η_i over the observed actions; with leading dimensions, one chain per
        entry (per-action latents: each action's own M_i and η_i), and the chain's arrays are
        then (L, …, d, d) and (L, …, d).
    top_mean : (d,) or (…, d)
        m, the prior mean of ψ_L (zero in the non-linear model, where f_{L+1} ≡ 0).

    Examples
    --------
    No data: every latent keeps its conditional prior, Σ̄_ℓ = Σ_{ℓ+1}.

    >>> import numpy as np
    >>> precs = np.stack([np.eye(2), np.eye(2) / 2, np.eye(2) / 4])  # P_1, P_2, P_3
    >>> chain = upward(precs, [np.eye(2), np.eye(2)], np.zeros((2, 2)), np.zeros(2),
    ...                np.zeros(2))
    >>> np.diag(chain.Sbar[0]), np.diag(chain.Sbar[1])
    (array([2., 2.]), array([4., 4.]))
    """
    L = precs.shape[0] - 1
    batch = eta_act.shape[:-1]
    d = precs.shape[-1]
    Sbar, C, K = (np.empty((L, *batch, d, d)) for _ in range(3))
    c = np.empty((L, *batch, d))
    V = maps[0] if maps is not None else None
    G = G_act if V is None else _t(V) @ G_act @ V
    B = eta_act if V is None else matvec(_t(V), eta_act)
    for j in range(L):  # layers (L of them), never actions
        P = precs[j + 1]
        C[j] = sqrt_from_precision(_sym(P + G))
        Sbar[j] = C[j] @ np.swapaxes(C[j], -1, -2)
        K[j] = Sbar[j] @ P
        c[j] = matvec(Sbar[j], B)
        if j + 1 < L:
            V = maps[j + 1] if maps is not None else None
            KP = P - P @ K[j]  # P − P Σ̄ P
            G = _sym(KP if V is None else _t(V) @ KP @ V)
            B = matvec(np.swapaxes(K[j], -1, -2), B)
            B = B if V is None else matvec(_t(V), B)
    c[L - 1] += K[L - 1] @ top_mean if top_mean.ndim == 1 else matvec(K[L - 1], top_mean)
    return Chain(Sbar, C, K, c)


def draw_latents(chain: Chain, link, z: np.ndarray) -> np.ndarray:
    """Top-down draws of ψ_1 … ψ_L from standard normals ``z`` (…, L, d), (…, L, d).

    ``link(j, ψ)`` is f_{j+1}(ψ) on rows (…, d) (:meth:`DiffusionPrior.link`). A batched
    chain (arrays (L, B, d, d)) draws entry b's latents from z[…, b, :, :].
    """
    L = chain.c.shape[0]
    psi = np.empty_like(z)
    one = chain.K.ndim == 3  # one chain, or one per entry of the batch

    def gain(M: np.ndarray, v: np.ndarray) -> np.ndarray:
        return v @ M.T if one else matvec(M, v)

    psi[..., L - 1, :] = chain.c[L - 1] + gain(chain.C[L - 1], z[..., L - 1, :])
    for j in range(L - 2, -1, -1):  # layers, not actions
        parent = link(j + 1, psi[..., j + 1, :])
        psi[..., j, :] = gain(chain.K[j], parent) + chain.c[j] + gain(chain.C[j], z[..., j, :])
    return psi


class Marginals(NamedTuple):
    """Marginal posteriors of the latents (Lemma 2), linear links only."""

    #: E[ψ_ℓ | H], (L, d)
    mean: np.ndarray
    #: Cov[ψ_ℓ | H], (L, d, d)
    cov: np.ndarray
    #: E[u | H] and Cov[u | H] of u = W_1 ψ_1, the actions' shared prior mean, (d,), (d, d)
    u_mean: np.ndarray
    u_cov: np.ndarray


def latent_marginals(chain: Chain, links) -> Marginals:
    """Lemma 2 pushed down the chain: E[ψ_L] = c_L, Cov[ψ_L] = Σ̄_L, then with
    A_ℓ = K_ℓ W_{ℓ+1}: E[ψ_ℓ] = A_ℓ E[ψ_{ℓ+1}] + c_ℓ and Cov[ψ_ℓ] = Σ̄_ℓ + A_ℓ Cov[ψ_{ℓ+1}] A_ℓᵀ.
    ``links`` are the matrices W_1 … W_L, (d, d), or (…, d, d) one per entry. A batched chain
    gives (…, L, d) means and (…, L, d, d) covariances, u's (…, d) and (…, d, d)."""
    L = chain.c.shape[0]
    mean, cov = np.empty_like(chain.c), np.empty_like(chain.Sbar)
    mean[L - 1], cov[L - 1] = chain.c[L - 1], chain.Sbar[L - 1]
    for j in range(L - 2, -1, -1):  # layers
        A = chain.K[j] @ links[j + 1]
        mean[j] = matvec(A, mean[j + 1]) + chain.c[j]
        cov[j] = _sym(chain.Sbar[j] + A @ cov[j + 1] @ np.swapaxes(A, -1, -2))
    W1 = links[0]
    u_mean, u_cov = matvec(W1, mean[0]), _sym(W1 @ cov[0] @ _t(W1))
    return Marginals(np.moveaxis(mean, 0, -2), np.moveaxis(cov, 0, -3), u_mean, u_cov)


class ActionChains:
    """Per-action latents: every action has its own chain ψ_{i,L} … ψ_{i,1} (an independent
    draw of the diffusion prior), so its chain sees only its own terms M_i, η_i.

    The observed actions' chains are kept in slot order (the :class:`ActionStore`'s) and
    recomputed, batched, only for the slots that changed; the actions never observed share
    the prior chain (no data). O(L d³) per changed action.
    """

    def __init__(self, precs: np.ndarray, maps, top_mean: np.ndarray) -> None:
        self.precs, self.maps, self.top_mean = precs, maps, top_mean
        d = precs.shape[-1]
        self.prior = upward(precs, maps, np.zeros((d, d)), np.zeros(d), top_mean)
        self.reset()

    def reset(self) -> None:
        """Forget every computed chain (after a refactor or a load)."""
        self._arrays: Chain | None = None
        self._n = 0
        self._dirty: set[int] = set()

    def mark(self, slots) -> None:
        """The slots whose statistics changed."""
        self._dirty.update(np.atleast_1d(slots).tolist())

    def get(self, store) -> Chain:
        """The observed slots' chains, arrays (L, n, …), brought up to date."""
        n = store.n
        todo = self._dirty | set(range(self._n, n))
        cap = 0 if self._arrays is None else self._arrays.c.shape[1]
        if self._arrays is None or n > cap:
            L, d = self.prior.c.shape
            new = max(n, 2 * cap, 16)
            grown = Chain(np.empty((L, new, d, d)), np.empty((L, new, d, d)),
                          np.empty((L, new, d, d)), np.empty((L, new, d)))
            if self._arrays is not None:
                for name in Chain.__slots__:
                    getattr(grown, name)[:, :cap] = getattr(self._arrays, name)
            self._arrays = grown
        if todo:
            slots = np.fromiter(sorted(todo), dtype=np.int64)
            M, eta = effect_terms(store.P0_slots(slots), store.S[slots], store.m[slots])
            sub = upward(self.precs, self.maps, M, eta, self.top_mean)
            for name in Chain.__slots__:
                getattr(self._arrays, name)[:, slots] = getattr(sub, name)
        self._n, self._dirty = n, set()
        a = self._arrays
        return Chain(a.Sbar[:, :n], a.C[:, :n], a.K[:, :n], a.c[:, :n])

    def draw(self, store, link, z: np.ndarray) -> np.ndarray:
        """Every action's latents from standard normals ``z`` (…, K, L, d), (…, K, L, d)."""
        psi = np.empty_like(z)
        unseen = np.flatnonzero(store.slot_of < 0)
        if len(unseen):
            psi[..., unseen, :, :] = draw_latents(self.prior, link, z[..., unseen, :, :])
        if store.n:
            acts = store.actions[: store.n]
            psi[..., acts, :, :] = draw_latents(self.get(store), link, z[..., acts, :, :])
        return psi

    def marginals(self, store, links, n_actions: int) -> Marginals:
        """Lemma 2 for every action's own chain (linear links): (K, L, d), (K, L, d, d), u's
        (K, d) and (K, d, d)."""
        prior = latent_marginals(self.prior, links)
        out = [np.array(np.broadcast_to(a, (n_actions, *a.shape))) for a in prior]
        if store.n:
            acts = store.actions[: store.n]
            for arr, part in zip(out, latent_marginals(self.get(store), links)):
                arr[acts] = part
        return Marginals(*out)
