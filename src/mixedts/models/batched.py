"""R independent linear-Gaussian bandit runs stepped in lockstep, batched over runs with numpy.

Experiments repeat every policy over many seeded runs. Stepping each run with its own Python
``select``/``update`` costs a fixed ~0.5 ms of interpreter overhead per round and run, which
dominates at small K, L, d. :class:`BatchedLinearGaussianTS` holds the posteriors of R runs
(each its own problem instance: its own prior, noise and generator) in stacked arrays and
advances all of them with one batched pass per call.

Model of run r (docs/math.md §1, with an action-mean offset ``m``)::

    Ψ_r ~ N(μ_Ψ[r], Σ_Ψ[r])                                  (L·d stacked; L may be 0)
    θ_{r,i} | Ψ_r ~ N(m[r,i] + Γ_{r,i} Ψ_r, Σ0[r,i]),  Γ_{r,i} Ψ = Σ_l B[r,i,l] ψ_l
    y = xᵀ θ_{r,a} + N(0, σ_r²)

State (per run): G_i = Σ x xᵀ/σ², g_i = Σ y x/σ², S_i = (P0_i + G_i)⁻¹ with P0_i = Σ0_i⁻¹,
and the effect posterior in information form (Λ̄, h̄)::

    Λ̄ = Σ_Ψ⁻¹ + Σ_i (b_i b_iᵀ) ⊗ M_i,          M_i = P0_i − P0_i S_i P0_i  (= P0_i S_i G_i)
    h̄ = Σ_Ψ⁻¹ μ_Ψ + Σ_i b_i ⊗ η_i,             η_i = P0_i S_i (g_i − G_i m_i)

Derivation of the offset: integrating θ_i out of action i's likelihood gives, as a function
of c = m_i + Γ_i Ψ, exp(−½ cᵀ M_i c + cᵀ P0_i S_i g_i); substituting c gives the precision
Γ_iᵀ M_i Γ_i = (b_i b_iᵀ) ⊗ M_i and the linear term Γ_iᵀ (P0_i S_i g_i − M_i m_i), and
M_i = P0_i S_i G_i turns the latter into b_i ⊗ P0_i S_i (g_i − G_i m_i). With m = 0 these are
docs/math.md eq. 7. Given Ψ, θ_i ~ N(μ̃_i, S_i) with μ̃_i = S_i (P0_i (m_i + Γ_i Ψ) + g_i).

One observation (x, y) of action a is a rank-one change (v = S_a x, c = σ² + xᵀ v)::

    S_a ← S_a − v vᵀ / c
    Λ̄  ← Λ̄ + u uᵀ,  u = b_a ⊗ w,  w = P0_a v / √c          (M_a gains w wᵀ exactly)
    h̄  ← h̄ + b_a ⊗ w · e / √c,  e = y − xᵀ m_a − vᵀ (g_a − G_a m_a)

(the last because S_a ρ_a, ρ = g − G m, moves by v e / c), so an update costs O(L²d² + d²)
per run, and every ``refactor_every`` updates everything is recomputed from G and g.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from .._validation import (
    ValidationError,
    as_float_array,
    check_actions,
    check_int,
    check_shape,
    check_symmetric_psd,
)

__all__ = ["BatchedLinearGaussianTS"]

_RULES = ("thompson", "ucb")


def _sym(a: np.ndarray) -> np.ndarray:
    """The symmetric part of a stack of square matrices (removes rounding asymmetry)."""
    return 0.5 * (a + np.swapaxes(a, -1, -2))


def _matvec(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Batched matrix-vector product: (..., n, m) @ (..., m) -> (..., n)."""
    return np.matmul(a, x[..., None])[..., 0]


# Per-action arrays are stored "component-major": (d, d, R, K) and (d, R, K) rather than
# (R, K, d, d). With d of 2 to 10, numpy's loops over a length-d innermost axis are dominated by
# per-element overhead; putting the long R·K axis innermost makes the per-round einsums 4-10x
# faster at K = 100, d = 2.
def _to_cm(a: np.ndarray, nvec: int) -> np.ndarray:
    """(R, K, *c) with ``nvec`` trailing component axes -> contiguous (*c, R, K), a copy."""
    return np.array(np.moveaxis(a, (0, 1), (nvec, nvec + 1)), order="C")


def _from_cm(a: np.ndarray, nvec: int) -> np.ndarray:
    """(*c, R, K) -> contiguous (R, K, *c), a copy (never a view of the state)."""
    return np.array(np.moveaxis(a, (nvec, nvec + 1), (0, 1)), order="C")


def _mv(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Component-major matrix-vector products: (i, j, ...) , (j, ...) -> (i, ...)."""
    return np.einsum("ij...,j...->i...", a, x)


def _dot(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Component-major dot products: (j, ...) , (j, ...) -> (...)."""
    return np.einsum("j...,j...->...", x, y)


class BatchedLinearGaussianTS:
    """Thompson sampling (or LinUCB) for R independent runs of a mixed-effect linear bandit.

    Every run has its own prior, noise level and generator; ``select`` and ``update`` advance
    all runs at once with operations batched over runs (and actions). With ``mixing=None``
    (L = 0) each action is an independent Bayesian linear regression (LinTS / LinUCB with a
    Gaussian prior N(m_i, Σ0_i)).

    Parameters
    ----------
    action_cov : ndarray, shape (R, K, d, d) or (R, d, d)
        Σ0 per run and action, or one per run shared by its actions. Symmetric positive
        definite.
    noise_std : float or ndarray, shape (R,)
        Reward noise σ_r (> 0).
    rngs : sequence of R numpy.random.Generator
        Run r draws its randomness from ``rngs[r]`` only, so a run's actions do not depend on
        the other runs of the batch.
    mixing : ndarray, shape (R, K, L), optional
        Dense mixing weights b_i of every run (None: no effects, L = 0).
    effect_mean : ndarray, shape (R, L, d), optional
        μ_Ψ; required with ``mixing``.
    effect_cov : ndarray, shape (R, L·d, L·d), optional
        Σ_Ψ (full, effects stacked effect by effect); required with ``mixing``.
    action_mean : ndarray, shape (R, K, d), optional
        Offset m of the action means (default 0).
    rule : {"thompson", "ucb"}
        Thompson sampling, or the upper confidence bound x_iᵀμ_i + alpha·sd (L = 0 only).
    alpha : float or ndarray (R,), optional
        UCB width (default 1.0), shared or one per run; only with ``rule="ucb"``.
    factored : bool
        meTS-Fa's mean-field effect posterior (docs/math.md §3, eq. 43): the effects are sampled
        independently from the diagonal (d, d) blocks of Λ̄ and the matching blocks of h̄.
        Needs a block-diagonal Σ_Ψ (eq. 43 uses the blocks of Σ_Ψ, not of its inverse).
    refactor_every : int
        Recompute the state exactly from the sufficient statistics after this many updates,
        which bounds rounding drift (0: never).
    n_actions : int, optional
        K, needed only when no argument has a K axis (shared Σ0, no mixing, no action mean).

    Attributes
    ----------
    n_runs, n_actions, dim, n_effects : int
        R, K, d, L.
    n_updates : int
        Lockstep updates so far (one per call of :meth:`update`).

    Examples
    --------
    >>> import numpy as np
    >>> R, K, L, d = 2, 4, 1, 2
    >>> rngs = [np.random.default_rng(s) for s in range(R)]
    >>> model = BatchedLinearGaussianTS(
    ...     np.stack([np.eye(d)] * R), 0.5, rngs, mixing=np.ones((R, K, L)),
    ...     effect_mean=np.zeros((R, L, d)), effect_cov=np.stack([np.eye(L * d)] * R))
    >>> X = np.ones((R, d))
    >>> A = model.select(X)
    >>> A.shape
    (2,)
    >>> model.update(X, A, np.array([1.0, 0.0]))
    >>> [a.shape for a in model.action_posterior()]
    [(2, 4, 2), (2, 4, 2, 2)]
    """

    def __init__(
        self,
        action_cov: Any,
        noise_std: Any,
        rngs: Sequence[np.random.Generator],
        *,
        mixing: Any = None,
        effect_mean: Any = None,
        effect_cov: Any = None,
        action_mean: Any = None,
        rule: str = "thompson",
        alpha: float | None = None,
        refactor_every: int = 1000,
        n_actions: int | None = None,
        factored: bool = False,
    ) -> None:
        # the generators define the batch: R = len(rngs)
        rngs = [rngs] if isinstance(rngs, np.random.Generator) else list(rngs)
        if not rngs or not all(isinstance(g, np.random.Generator) for g in rngs):
            raise ValidationError(
                "rngs must be a non-empty sequence of numpy Generators (one per run)"
            )
        R = len(rngs)
        acov = as_float_array(action_cov, "action_cov", ndim=(3, 4))
        d = acov.shape[-1]
        if acov.shape[0] != R or d < 1:
            raise ValidationError(
                f"action_cov must have shape ({R}, K, d, d) or ({R}, d, d) with d >= 1 "
                f"(R = len(rngs) = {R}), got {acov.shape}"
            )
        check_symmetric_psd(acov, "action_cov")

        # K: from whichever argument has an action axis; all of them must agree
        sizes: dict[str, int] = {}
        if acov.ndim == 4:
            sizes["action_cov"] = acov.shape[1]
        if mixing is not None:
            mix = as_float_array(mixing, "mixing", ndim=3)
            sizes["mixing"] = mix.shape[1]
        if action_mean is not None:
            am = as_float_array(action_mean, "action_mean", ndim=3)
            sizes["action_mean"] = am.shape[1]
        if n_actions is not None:
            sizes["n_actions"] = check_int(n_actions, "n_actions", low=1)
        if not sizes:
            raise ValidationError(
                "n_actions is required when no argument has an action axis "
                "(shared action_cov, no mixing, no action_mean)"
            )
        K = next(iter(sizes.values()))
        for name, k in sizes.items():
            if k != K:
                raise ValidationError(f"{name} has {k} actions, expected {K} ({sizes})")
        if K < 1:
            raise ValidationError("there must be at least one action")
        if acov.ndim == 4:
            check_shape(acov, (R, K, d, d), "action_cov")

        noise = as_float_array(noise_std, "noise_std", ndim=(0, 1))
        noise = np.broadcast_to(noise, (R,)) if noise.ndim == 0 else noise
        check_shape(noise, (R,), "noise_std")
        if np.any(noise <= 0):
            raise ValidationError("noise_std must be positive")

        if mixing is None:
            if effect_mean is not None or effect_cov is not None:
                raise ValidationError("effect_mean / effect_cov need mixing (None means L = 0)")
            L = 0
            mix = np.zeros((R, K, 0))
            mu_psi = np.zeros((R, 0, d))
            cov_psi = np.zeros((R, 0, 0))
        else:
            check_shape(mix, (R, K, None), "mixing")
            L = mix.shape[2]
            if effect_mean is None or effect_cov is None:
                raise ValidationError("mixing needs effect_mean and effect_cov")
            mu_psi = as_float_array(effect_mean, "effect_mean", ndim=3)
            check_shape(mu_psi, (R, L, d), "effect_mean")
            cov_psi = as_float_array(effect_cov, "effect_cov", ndim=3)
            check_shape(cov_psi, (R, L * d, L * d), "effect_cov")
            if L:
                check_symmetric_psd(cov_psi, "effect_cov")
        if action_mean is None:
            am = np.zeros((R, K, d))
        check_shape(am, (R, K, d), "action_mean")

        if rule not in _RULES:
            raise ValidationError(f"rule must be one of {_RULES}, got {rule!r}")
        if rule == "ucb":
            if L:
                raise ValidationError(
                    "rule='ucb' needs L = 0 (mixing=None): the UCB width of the mixed model "
                    "is not implemented"
                )
            alpha = np.asarray(1.0 if alpha is None else alpha, dtype=np.float64)
            if alpha.shape not in ((), (R,)) or not np.all(np.isfinite(alpha)) or \
                    np.any(alpha < 0):
                raise ValidationError(
                    f"alpha must be a finite number >= 0 or one per run ({R},), got {alpha}")
            # one width per run, as a column so that it broadcasts over the actions
            alpha = np.broadcast_to(alpha, (R,))[:, None].copy()
        elif alpha is not None:
            raise ValidationError("alpha is the UCB width: pass it only with rule='ucb'")
        self.refactor_every = check_int(refactor_every, "refactor_every", low=0)
        self.factored = bool(factored)
        # keeps the diagonal (d, d) blocks of an (Ld, Ld) matrix (the factored posterior)
        self._block_mask = np.kron(np.eye(L), np.ones((d, d))) if L else np.zeros((0, 0))
        if self.factored and L and np.any(cov_psi * (1.0 - self._block_mask) != 0.0):
            raise ValidationError(
                "effect_cov must be block-diagonal (one (d, d) block per effect) with "
                "factored=True")

        self.n_runs, self.n_actions, self.dim, self.n_effects = R, K, d, L
        self.rule = rule
        self.alpha = alpha
        self.rngs = rngs
        self._noise_var = np.ascontiguousarray(noise, dtype=np.float64) ** 2
        # constant prior terms, component-major (see _to_cm), read-only
        acov = _sym(acov)
        P0 = _sym(np.linalg.inv(acov))
        if P0.ndim == 3:  # shared Σ0: materialised per action, einsum is slow on broadcasts
            P0 = np.broadcast_to(P0[:, None], (R, K, d, d))
        self._P0 = _to_cm(P0, 2)  # (d, d, R, K)
        self._m = _to_cm(np.asarray(am), 1)  # (d, R, K)
        self._Pm = _mv(self._P0, self._m)  # P0_i m_i, (d, R, K)
        self._B = np.array(mix, order="C")  # (R, K, L), a copy: the caller's stays writeable
        self._Bt = np.ascontiguousarray(np.swapaxes(mix, 1, 2))  # (R, L, K)
        cov_psi = _sym(cov_psi)
        self._prec0 = _sym(np.linalg.inv(cov_psi)) if L else cov_psi.copy()
        self._h0 = _matvec(self._prec0, np.asarray(mu_psi).reshape(R, L * d))
        for arr in (
            self._P0,
            self._m,
            self._Pm,
            self._B,
            self._Bt,
            self._prec0,
            self._h0,
            self._noise_var,
        ):
            arr.setflags(write=False)
        # sufficient statistics G = Σ x xᵀ/σ², g = Σ y x/σ² (component-major) and derived state
        self._G = np.zeros((d, d, R, K))
        self._g = np.zeros((d, R, K))
        self.n_updates = 0
        self._since_refactor = 0
        self.refactor()

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def from_priors(
        cls,
        priors: Sequence[Any],
        noise_std: Any,
        rngs: Sequence[np.random.Generator],
        **kwargs: Any,
    ) -> BatchedLinearGaussianTS:
        """A batch whose run r has the :class:`~mixedts.MixedEffectPrior` ``priors[r]``.

        All priors must have the same K, L and d. ``kwargs`` go to the constructor
        (``action_mean``, ``rule``, ``refactor_every``).
        """
        if not priors:
            raise ValidationError("priors must hold at least one MixedEffectPrior")
        shapes = {(p.n_actions, p.n_effects, p.dim) for p in priors}
        if len(shapes) != 1:
            raise ValidationError(f"priors must share (K, L, d), got {sorted(shapes)}")
        K, _, d = shapes.pop()
        covs = [np.asarray(p.action_cov) for p in priors]
        if all(c.ndim == 2 for c in covs):
            acov = np.stack(covs)
        else:
            acov = np.stack([np.broadcast_to(c, (K, d, d)) for c in covs])
        return cls(
            acov,
            noise_std,
            rngs,
            mixing=np.stack([p.mixing.toarray() for p in priors]),
            effect_mean=np.stack([np.asarray(p.effect_mean) for p in priors]),
            effect_cov=np.stack([p.effect_cov_full() for p in priors]),
            **kwargs,
        )

    # ------------------------------------------------------------------ exact recompute
    def refactor(self) -> None:
        """Recompute S, Λ̄ and h̄ exactly from the sufficient statistics G, g.

        Cost O(R K (d³ + L² d²) + R (L d)²); bounds the drift of the rank-one updates.
        """
        R, K, d, L = self.n_runs, self.n_actions, self.dim, self.n_effects
        P0 = _from_cm(self._P0, 2)  # (R, K, d, d)
        G = _from_cm(self._G, 2)
        S = _sym(np.linalg.inv(P0 + G))
        self._S = _to_cm(S, 2)
        if L:
            PS = P0 @ S
            M = _sym(P0 - PS @ P0)  # (Σ0 + G⁻¹)⁻¹ without inverting G
            rho = _from_cm(self._g - _mv(self._G, self._m), 1)  # g − G m, (R, K, d)
            eta = _matvec(PS, rho)
            # Σ_i (b_i b_iᵀ) ⊗ M_i as one batched (L², K) @ (K, d²) product per run
            BB = (self._B[:, :, :, None] * self._B[:, :, None, :]).reshape(R, K, L * L)
            data = np.swapaxes(BB, 1, 2) @ M.reshape(R, K, d * d)
            data = data.reshape(R, L, L, d, d).transpose(0, 1, 3, 2, 4).reshape(R, L * d, L * d)
            self._Lam = _sym(self._prec0 + data)
            self._h = self._h0 + (self._Bt @ eta).reshape(R, L * d)
        else:
            self._Lam = np.zeros((R, 0, 0))
            self._h = np.zeros((R, 0))
        self._since_refactor = 0

    # ------------------------------------------------------------------ posteriors
    def _effect_root(self) -> tuple[np.ndarray, np.ndarray]:
        """(W, W h̄) with W = chol(Λ̄)⁻¹, so Σ̄ = Wᵀ W and μ̄ = Wᵀ (W h̄); (R, Ld, Ld), (R, Ld)."""
        Lam = self._Lam * self._block_mask if self.factored else self._Lam
        W = np.linalg.inv(np.linalg.cholesky(Lam))
        return W, _matvec(W, self._h)

    def effect_posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """Posterior of the effects Ψ of every run.

        Returns
        -------
        mean : ndarray, shape (R, L, d)
            μ̄ = Λ̄⁻¹ h̄.
        cov : ndarray, shape (R, L·d, L·d)
            Σ̄ = Λ̄⁻¹.
        """
        R, L, d = self.n_runs, self.n_effects, self.dim
        if not L:
            return np.zeros((R, 0, d)), np.zeros((R, 0, 0))
        W, Wh = self._effect_root()
        Wt = np.swapaxes(W, 1, 2)
        return _matvec(Wt, Wh).reshape(R, L, d), _sym(Wt @ W)

    def action_posterior(self) -> tuple[np.ndarray, np.ndarray]:
        """Marginal posterior of every θ_i (Ψ integrated out, docs/math.md eq. 16).

        Returns
        -------
        mean : ndarray, shape (R, K, d)
            S_i (P0_i (m_i + Γ_i μ̄) + g_i).
        cov : ndarray, shape (R, K, d, d)
            S_i + S_i P0_i Γ_i Σ̄ Γ_iᵀ P0_i S_i.
        """
        R, K, d, L = self.n_runs, self.n_actions, self.dim, self.n_effects
        mu, cov = self.effect_posterior()
        S, P0 = _from_cm(self._S, 2), _from_cm(self._P0, 2)
        c = _from_cm(self._m, 1) + self._B @ mu  # m_i + Γ_i μ̄, (R, K, d)
        mean = _matvec(S, _matvec(P0, c) + _from_cm(self._g, 1))
        if not L:
            return mean, S
        # Γ_i Σ̄ Γ_iᵀ = Σ_{l,l'} b_il b_il' Σ̄_{ll'}: (K, L²) @ (L², d²) per run
        BB = (self._B[:, :, :, None] * self._B[:, :, None, :]).reshape(R, K, L * L)
        blocks = cov.reshape(R, L, d, L, d).transpose(0, 1, 3, 2, 4).reshape(R, L * L, d * d)
        T = (BB @ blocks).reshape(R, K, d, d)
        SP = S @ P0
        return mean, _sym(S + SP @ T @ np.swapaxes(SP, -1, -2))

    # ------------------------------------------------------------------ decisions
    def _check_X(self, X: Any, name: str = "X") -> np.ndarray:
        """Contexts (R, d) shared by the actions or (R, K, d) one per action."""
        X = as_float_array(X, name, ndim=(2, 3))
        R, K, d = self.n_runs, self.n_actions, self.dim
        check_shape(X, (R, d) if X.ndim == 2 else (R, K, d), name)
        return X

    def scores(self, X: Any) -> np.ndarray:
        """The score of every action of every run; :meth:`select` is its argmax.

        Thompson: one posterior draw of x_iᵀθ_i per action (consumes the generators exactly as
        :meth:`select` does). UCB: x_iᵀμ_i + alpha·sqrt(x_iᵀ S_i x_i), no randomness.

        Parameters
        ----------
        X : ndarray, shape (R, d) or (R, K, d)
            One context per run shared by its actions, or one per action.

        Returns
        -------
        ndarray, shape (R, K)
        """
        X = self._check_X(X)
        R, K, d, L = self.n_runs, self.n_actions, self.dim, self.n_effects
        # contiguous (d, R, K): einsum is several times slower on strided or broadcast views
        Xc = np.empty((d, R, K))
        Xc[...] = X.T[:, :, None] if X.ndim == 2 else np.moveaxis(X, 2, 0)
        Sx = _mv(self._S, Xc)  # S_i x_i, (d, R, K)
        sd = np.sqrt(np.maximum(_dot(Xc, Sx), 0.0))  # sd of x_iᵀθ_i given Ψ, (R, K)
        lin = self._Pm + self._g  # P0_i m_i + g_i; S symmetric: x_iᵀ S_i lin = (S_i x_i)ᵀ lin
        if self.rule == "ucb":
            return _dot(Sx, lin) + self.alpha * sd
        # the only loop over runs: each run draws from its own generator, in a fixed order
        eps = np.empty((R, K))
        z = np.empty((R, L * d))
        for gen, z_r, eps_r in zip(self.rngs, z, eps):
            if L:
                gen.standard_normal(out=z_r)  # = gen.standard_normal(L * d), written in place
            gen.standard_normal(out=eps_r)  # = gen.standard_normal(K)
        if L:
            # Ψ = μ̄ + Wᵀ z = Wᵀ (W h̄ + z) has covariance Wᵀ W = Λ̄⁻¹
            W, Wh = self._effect_root()
            psi = _matvec(np.swapaxes(W, 1, 2), Wh + z).reshape(R, L, d)
            gamma_psi = np.matmul(np.swapaxes(psi, 1, 2), self._Bt)  # Γ_i Ψ, (R, d, K)
            lin = lin + _mv(self._P0, np.ascontiguousarray(np.swapaxes(gamma_psi, 0, 1)))
        return _dot(Sx, lin) + sd * eps  # x_iᵀ μ̃_i(Ψ) + sd · ε

    def select(self, X: Any) -> np.ndarray:
        """Choose one action per run.

        Parameters
        ----------
        X : ndarray, shape (R, d) or (R, K, d)
            One context per run shared by its actions, or one per action.

        Returns
        -------
        ndarray of int, shape (R,)
            argmax of :meth:`scores`. Thompson draws, per run r,
            ``rngs[r].standard_normal(L*d)`` (when L > 0) then ``rngs[r].standard_normal(K)``
            (ties have probability 0: the lowest index). UCB scores are deterministic and tie
            in the first rounds: a tied run draws ``rngs[r].integers(n_ties)``, as the
            one-run policies do.
        """
        scores = self.scores(X)
        best = np.argmax(scores, axis=1)
        if self.rule == "ucb":
            top = scores == scores[np.arange(self.n_runs), best][:, None]
            # a loop over the tied runs only (the first rounds, or identical actions)
            for r in np.flatnonzero(top.sum(axis=1) > 1):
                ties = np.flatnonzero(top[r])
                best[r] = ties[self.rngs[r].integers(len(ties))]
        return best

    # ------------------------------------------------------------------ feedback
    def update(self, X: Any, A: Any, Y: Any) -> None:
        """Condition run r on reward ``Y[r]`` of action ``A[r]`` in context ``X[r]``.

        Parameters
        ----------
        X : ndarray, shape (R, d) or (R, K, d)
            The context of the played action, or every action's context (``X[r, A[r]]`` is
            used).
        A : ndarray of int, shape (R,)
        Y : ndarray, shape (R,)

        Invalid input raises :class:`~mixedts.ValidationError` before any state changes.
        """
        X = self._check_X(X)
        A = check_actions(A, self.n_actions, "A")
        check_shape(A, (self.n_runs,), "A")
        Y = as_float_array(Y, "Y", ndim=1)
        check_shape(Y, (self.n_runs,), "Y")
        R, L, d = self.n_runs, self.n_effects, self.dim
        r = np.arange(R)
        x = (X if X.ndim == 2 else X[r, A]).T  # (d, R): component-major like the state
        s2 = self._noise_var
        # the touched action of every run, (d, d, R) and (d, R)
        S_a, P0_a, m_a = self._S[:, :, r, A], self._P0[:, :, r, A], self._m[:, r, A]
        G_a, g_a = self._G[:, :, r, A], self._g[:, r, A]
        v = _mv(S_a, x)  # S_a x
        c = s2 + _dot(x, v)  # σ² + xᵀ S_a x > 0
        if L:
            root_c = np.sqrt(c)
            w = (_mv(P0_a, v) / root_c).T  # M_a gains w wᵀ, (R, d)
            rho = g_a - _mv(G_a, m_a)  # g − G m before this observation
            e = Y - _dot(x, m_a) - _dot(v, rho)  # S_a ρ_a moves by v e / c
            b_a = self._B[r, A]  # (R, L)
            u = (b_a[:, :, None] * w[:, None, :]).reshape(R, L * d)
            dh = (b_a[:, :, None] * (w * (e / root_c)[:, None])[:, None, :]).reshape(R, L * d)
            self._Lam += u[:, :, None] * u[:, None, :]
            self._h += dh
        self._S[:, :, r, A] = S_a - v[:, None] * v[None, :] / c
        self._G[:, :, r, A] = G_a + x[:, None] * x[None, :] / s2
        self._g[:, r, A] = g_a + x * (Y / s2)
        self.n_updates += 1
        self._since_refactor += 1
        if self.refactor_every and self._since_refactor >= self.refactor_every:
            self.refactor()

    def __repr__(self) -> str:
        return (
            f"BatchedLinearGaussianTS(n_runs={self.n_runs}, n_actions={self.n_actions}, "
            f"n_effects={self.n_effects}, dim={self.dim}, rule={self.rule!r})"
        )
