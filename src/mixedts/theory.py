"""The regret bounds of the two founding papers, as functions.

* :func:`mets_bayes_regret_bound` — Theorem 1 of Aouali, Kveton & Katariya (2023), meTS
  (docs/math.md §5), with its constants.
* :func:`gts_regret_bound`, :func:`gts_tuned_regret_bound`, :func:`gts_bayes_regret_bound` —
  Generalized Thompson sampling (Li 2013). The paper's formulas were lost in the text
  extraction; the bound here is **reconstructed** from the surviving proof outline (conditions
  C1–C4, Lemma 1, Corollaries 1–2) and carries its constants explicitly, so it can be checked
  term by term. :data:`SQUARE_LOSS_CONSTANTS` and :func:`log_loss_constants` give the
  constants (c2, c4) of conditions C2 and C4 for the two losses of the paper.

Each function validates its arguments (``ValidationError`` naming the argument) and says in its
docstring what it assumes. Logarithms are natural.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize

from ._validation import ValidationError, as_float_array, check_int, check_positive

__all__ = [
    "SQUARE_LOSS_CONSTANTS",
    "gts_bayes_regret_bound",
    "gts_regret_bound",
    "gts_tuned_regret_bound",
    "log_loss_constants",
    "mets_bayes_regret_bound",
    "mets_regret_terms",
]


def _unit_open(value, name: str) -> float:
    v = check_positive(value, name)
    if v >= 1:
        raise ValidationError(f"{name} must be in (0, 1), got {value!r}")
    return v


# ---------------------------------------------------------------------------- meTS
def mets_regret_terms(
    n: int,
    n_actions: int,
    n_effects: int,
    dim: int,
    noise_std: float = 1.0,
    action_std: float = 1.0,
    effect_std: float = 1.0,
    kappa_x: float = 1.0,
    kappa_b: float = 1.0,
) -> dict[str, float]:
    """The quantities of meTS's Theorem 1: c, R^A(n), c_A, R^E(n), c_E.

    Parameters
    ----------
    n, n_actions, n_effects, dim, noise_std, action_std, effect_std, kappa_x, kappa_b
        As for :func:`mets_bayes_regret_bound` (which also states the assumptions and the
        formulas).

    Returns
    -------
    dict of str to float
        Keys ``"c"``, ``"R_A"``, ``"c_A"``, ``"R_E"``, ``"c_E"``.

    Raises
    ------
    ValidationError
        A count below 1 or a non-positive scale.

    Examples
    --------
    >>> terms = mets_regret_terms(1000, n_actions=10, n_effects=2, dim=2)
    >>> {name: round(value, 2) for name, value in terms.items()}
    {'c': 11.28, 'R_A': 179.37, 'c_A': 1.44, 'R_E': 27.66, 'c_E': 2.89}
    """
    n = check_int(n, "n", low=1)
    K = check_int(n_actions, "n_actions", low=1)
    L = check_int(n_effects, "n_effects", low=1)
    d = check_int(dim, "dim", low=1)
    s2 = check_positive(noise_std, "noise_std") ** 2
    s02 = check_positive(action_std, "action_std") ** 2
    sp2 = check_positive(effect_std, "effect_std") ** 2
    kx = check_positive(kappa_x, "kappa_x")
    kb = check_positive(kappa_b, "kappa_b")
    c = math.sqrt(2.0 / math.pi * kx * (s02 + kb * sp2)) * K
    c_a = (kx * s02 / s2) / math.log1p(kx * s02 / s2)
    r_a = d * K * c_a * math.log1p(n * kx * s02 / (d * s2))
    c_e = kx * kb * sp2 * (1.0 + kx * s02 / s2) / math.log1p(kx * kb * sp2 / s2)
    r_e = d * L * c_e * math.log1p(K * kb * sp2 / (s02 + s2 / (n * kx)))
    return {"c": c, "R_A": r_a, "c_A": c_a, "R_E": r_e, "c_E": c_e}


def mets_bayes_regret_bound(
    n: int,
    n_actions: int,
    n_effects: int,
    dim: int,
    noise_std: float = 1.0,
    action_std: float = 1.0,
    effect_std: float = 1.0,
    kappa_x: float = 1.0,
    kappa_b: float = 1.0,
    delta: float | None = None,
) -> float:
    r"""Theorem 1 of the meTS paper: the Bayes regret after n rounds is at most

    .. math::
        BR(n) \le \sqrt{2n\,(R^A(n) + R^E(n))\log(1/\delta)} + c\,n\,\delta,

    with :math:`c = \sqrt{(2/\pi)\,\kappa_x(\sigma_0^2 + \kappa_b\sigma_\Psi^2)}\,K`,
    :math:`R^A(n) = dKc_A\log(1 + n\kappa_x\sigma_0^2/(d\sigma^2))`,
    :math:`c_A = (\kappa_x\sigma_0^2/\sigma^2)/\log(1 + \kappa_x\sigma_0^2/\sigma^2)`,
    :math:`R^E(n) = dLc_E\log(1 + K\kappa_b\sigma_\Psi^2/(\sigma_0^2 + \sigma^2/(n\kappa_x)))`,
    :math:`c_E = \kappa_x\kappa_b\sigma_\Psi^2(1 + \kappa_x\sigma_0^2/\sigma^2)
    /\log(1 + \kappa_x\kappa_b\sigma_\Psi^2/\sigma^2)`.

    Parameters
    ----------
    n : int
        Rounds.
    n_actions, n_effects, dim : int
        K, L and d.
    noise_std : float
        σ, the reward noise.
    action_std : float
        σ0: Σ0,i = σ0² I_d.
    effect_std : float
        σ_Ψ: Σ_Ψ = σ_Ψ² I_{Ld}.
    kappa_x : float
        κ_x ≥ ‖x_t‖² for every context.
    kappa_b : float
        κ_b = max_i ‖b_i‖².
    delta : float, optional
        δ ∈ (0, 1); None: 1/n.

    Returns
    -------
    float

    Raises
    ------
    ValidationError
        A count below 1, a non-positive scale or δ outside (0, 1).

    Notes
    -----
    Assumes (the theorem's setting): the linear-Gaussian mixed-effect model of docs/math.md §1 with
    a **correct** prior (Bayes regret: the true parameters are drawn from it);
    Σ0,i = σ0² I_d for every action (``action_std`` = σ0) and Σ_Ψ = σ_Ψ² I_{Ld}
    (``effect_std`` = σ_Ψ; independent isotropic effects, any mean μ_Ψ); known reward noise σ
    (``noise_std``); contexts with ‖x_t‖² ≤ κ_x; κ_b = max_i ‖b_i‖²; exact posterior sampling
    (meTS, not the factored meTS-Fa). The bound holds for any δ ∈ (0, 1); ``delta=None`` uses
    δ = 1/n, for which the second term is the constant c and the bound is Õ(√n).

    Examples
    --------
    >>> from mixedts.theory import mets_bayes_regret_bound
    >>> round(mets_bayes_regret_bound(5000, 100, 3, 2, effect_std=3 ** 0.5, kappa_x=2.0), 1)
    17287.6
    """
    t = mets_regret_terms(n, n_actions, n_effects, dim, noise_std, action_std, effect_std,
                          kappa_x, kappa_b)
    delta = 1.0 / n if delta is None else _unit_open(delta, "delta")
    return math.sqrt(2.0 * n * (t["R_A"] + t["R_E"]) * math.log(1.0 / delta)) + t["c"] * n * delta


# ---------------------------------------------------------------------------- GTS
#: (c2, c4) of the square loss (f − r)² for rewards and predictions in [0, 1] (reconstructed):
#: informativeness ε_j(x)² ≤ 2 Σ_a (f_j − f*)² ≤ (2K/γ) E[ℓ̂] gives c2 = 2; the shifted loss
#: ℓ̂ = (f − f*)(f + f* − 2r) has E ℓ̂² ≤ 4 (f − f*)² = 4 E ℓ̂, so c4 = 4.
SQUARE_LOSS_CONSTANTS: tuple[float, float] = (2.0, 4.0)


def _log_ratio_sup(c: float) -> float:
    """sup of E[ℓ̂²] / E[ℓ̂] for the shifted log loss of a Bernoulli(p) reward,
    ℓ̂ = r ln(p/q) + (1 − r) ln((1 − p)/(1 − q)), over p, q with both log ratios in [−c, c]."""

    def ratio(u: float, v: float) -> float:
        # u = ln(p/q), v = ln((1-p)/(1-q)) determine p: p = (1 - e^{-v}) / (e^{-u} - e^{-v})
        if abs(u - v) < 1e-9:
            return 2.0
        eu, ev = math.exp(-u), math.exp(-v)
        p = (1.0 - ev) / (eu - ev)
        if not 0.0 < p < 1.0:
            return -math.inf
        mean = p * u + (1.0 - p) * v
        if mean <= 1e-300:
            return 2.0
        return (p * u * u + (1.0 - p) * v * v) / mean

    grid = np.linspace(-c, c, 201)
    best, arg = 2.0, (0.0, 0.0)
    for u in grid:  # a 201 x 201 grid over the constraint box, then a local refinement
        for v in grid:
            r = ratio(float(u), float(v))
            if r > best:
                best, arg = r, (float(u), float(v))
    res = optimize.minimize(
        lambda z: -ratio(float(np.clip(z[0], -c, c)), float(np.clip(z[1], -c, c))),
        np.array(arg), method="Nelder-Mead", options={"xatol": 1e-12, "fatol": 1e-14},
    )
    return max(best, -float(res.fun))


def log_loss_constants(c: float) -> tuple[float, float]:
    """(c2, c4) of the log loss, normalised to ℓ̃ = ℓ̂ / c, when every expert's shifted log
    loss (log ratio to the true expert) lies in [−c, c] (the paper's assumption, §4.3).

    Parameters
    ----------
    c : float
        The bound (> 0) on the shifted log loss.

    Returns
    -------
    (float, float)
        c2 and c4, to pass to :func:`gts_regret_bound`.

    Raises
    ------
    ValidationError
        ``c`` is not a positive number.

    Notes
    -----
    c2 = c: by Pinsker, ε_j(x)² ≤ 2 Σ_a (f_j − f*)² ≤ Σ_a KL(f* ‖ f_j) ≤ (K/γ) E[ℓ̂]
    (every arm has probability ≥ γ/K). c4 = sup E[ℓ̂²] / (c E[ℓ̂]) over Bernoulli pairs obeying
    the constraint, computed numerically (Lemma 3 proves it finite; its closed form was lost);
    it tends to 2/c as c → 0.

    GTS on the raw log loss with learning rate η_raw is GTS on ℓ̃ with η = c · η_raw, so
    Thompson sampling itself (η_raw = 1) lies outside the reconstructed bound's range
    c4 η < 1 (which needs η_raw < 1 / sup E[ℓ̂²]/E[ℓ̂] ≤ 1/2).

    Examples
    --------
    >>> c2, c4 = log_loss_constants(1.0)
    >>> c2, round(c4, 3)
    (1.0, 2.718)
    >>> round(log_loss_constants(0.1)[1] * 0.1, 1)  # c4 → 2/c as c → 0
    2.1
    """
    c = check_positive(c, "c")
    return c, _log_ratio_sup(c) / c


def _gts_args(T, K, prior_weight, c2, c4):
    T = check_int(T, "T", low=1)
    K = check_int(K, "K", low=1)
    pw = check_positive(prior_weight, "prior_weight")
    if pw > 1:
        raise ValidationError(f"prior_weight must be in (0, 1], got {prior_weight!r}")
    return T, K, pw, check_positive(c2, "c2"), check_positive(c4, "c4")


def _gts_value(T, K, log_term, gamma, eta, c2, c4) -> float:
    gamma = check_positive(gamma, "gamma")
    if gamma > 1:
        raise ValidationError(f"gamma must be in (0, 1], got {gamma}")
    eta = check_positive(eta, "eta")
    if eta > 1 or c4 * eta >= 1:
        raise ValidationError(f"eta must satisfy eta <= 1 and c4 * eta < 1, got {eta}")
    loss_sum = log_term / (eta * (1.0 - c4 * eta))
    return gamma * T + math.sqrt(c2 * K * T * loss_sum / gamma)


def gts_regret_bound(
    T: int, K: int, prior_weight: float, gamma: float, eta: float,
    c2: float = SQUARE_LOSS_CONSTANTS[0], c4: float = SQUARE_LOSS_CONSTANTS[1],
) -> float:
    r"""Reconstructed regret bound of GTS (Li 2013, Lemma 1 + Corollary 1) after T rounds:

    .. math::
        R(T) \le \gamma T + \sqrt{\frac{c_2 K T}{\gamma}\cdot
        \frac{\ln(1/\pi(j^*))}{\eta\,(1 - c_4\eta)}}.

    Parameters
    ----------
    T : int
        Rounds.
    K : int
        Actions.
    prior_weight : float
        π(j*) ∈ (0, 1], the prior weight of the right expert.
    gamma : float
        Uniform exploration γ ∈ (0, 1].
    eta : float
        Learning rate η ∈ (0, 1] with c4 η < 1.
    c2, c4 : float
        The loss's constants of conditions C2 and C4 (the square loss's by default).

    Returns
    -------
    float

    Raises
    ------
    ValidationError
        An argument out of its range (named).

    Notes
    -----
    Derivation: with uniform mixing every arm has probability ≥ γ/K, so a round costs at most
    γ plus Σ_j w_j ε_j(x) ≤ √(c2 (K/γ) E ℓ̄_t) (C2, Jensen); Lemma 1 (C3, C4 and
    e^{−x} ≤ 1 − x + x² for x ≥ −1) gives Σ_t E ℓ̄_t ≤ ln(1/π(j*)) / (η(1 − c4 η)); Cauchy–
    Schwarz over the rounds finishes.

    Assumes: rewards in [0, 1] (binary, or binarised r' ~ Bernoulli(r)); realizability — some
    expert j* predicts the true mean reward exactly, with prior weight
    ``prior_weight`` = π(j*) > 0; the loss (normalised so that the shifted loss
    ℓ(f_j) − ℓ(f_{j*}) lies in [−1, 1], C3) is consistent (C1), informative with constant c2
    (C2: ε_j(x)² ≤ c2 (K/γ) E[shifted loss]) and self-bounded with constant c4 (C4);
    0 < η ≤ 1 with c4 η < 1; γ ∈ (0, 1]. Contexts may be adversarial. The default (c2, c4)
    are those of the square loss (:data:`SQUARE_LOSS_CONSTANTS`); :func:`log_loss_constants`
    gives the log loss's. The paper states the same structure; its exact constants were not
    recoverable from the text, so treat the constants as this reconstruction's.

    Examples
    --------
    >>> round(gts_regret_bound(10_000, K=2, prior_weight=0.1, gamma=0.05, eta=0.1), 1)
    6040.9
    >>> c2, c4 = log_loss_constants(1.0)
    >>> gts_regret_bound(10_000, 2, 0.1, gamma=0.05, eta=0.5, c2=c2, c4=c4)
    Traceback (most recent call last):
    ...
    mixedts._validation.ValidationError: eta must satisfy eta <= 1 and c4 * eta < 1, got 0.5
    """
    T, K, pw, c2, c4 = _gts_args(T, K, prior_weight, c2, c4)
    return _gts_value(T, K, math.log(1.0 / pw), gamma, eta, c2, c4)


def gts_tuned_regret_bound(
    T: int, K: int, prior_weight: float,
    c2: float = SQUARE_LOSS_CONSTANTS[0], c4: float = SQUARE_LOSS_CONSTANTS[1],
) -> tuple[float, float, float]:
    r"""The bound of :func:`gts_regret_bound` at its minimising η and γ: (bound, γ*, η*).

    Parameters
    ----------
    T, K, prior_weight, c2, c4
        As for :func:`gts_regret_bound`.

    Returns
    -------
    (float, float, float)
        The bound, γ* and η*.

    Raises
    ------
    ValidationError
        An argument out of its range (named).

    Notes
    -----
    η* = min(1, 1/(2 c4)) maximises η(1 − c4η); then with B = c2 K ln(1/π(j*)) / (η*(1 − c4η*)),
    γ* = (B / (4T))^{1/3} and the bound is 3 (B/4)^{1/3} T^{2/3} — for c4 ≥ 1/2 that is
    3 (c2 c4 K ln(1/π(j*)))^{1/3} T^{2/3}, the T^{2/3} rate of the paper. Where γ* > 1 the
    bound exceeds T (trivial) and γ = 1 is returned. Same assumptions as
    :func:`gts_regret_bound`; π(j*) = 1 gives 0 (the only expert is the right one).

    Examples
    --------
    >>> bound, gamma, eta = gts_tuned_regret_bound(10_000, K=2, prior_weight=0.1)
    >>> round(bound, 1), round(gamma, 4), eta
    (4633.4, 0.1544, 0.125)
    >>> bool(abs(gts_regret_bound(10_000, 2, 0.1, gamma, eta) - bound) < 1e-9)
    True
    """
    T, K, pw, c2, c4 = _gts_args(T, K, prior_weight, c2, c4)
    eta = min(1.0, 1.0 / (2.0 * c4))
    if c4 * eta >= 1:  # only for c4 >= 1 with eta = 1: impossible given the min above
        eta = 0.5 / c4
    B = c2 * K * math.log(1.0 / pw) / (eta * (1.0 - c4 * eta))
    if B == 0:
        return 0.0, 0.0, eta
    gamma = (B / (4.0 * T)) ** (1.0 / 3.0)
    if gamma > 1:
        return T + math.sqrt(B * T), 1.0, eta
    return 3.0 * T * gamma, gamma, eta


def gts_bayes_regret_bound(
    T: int, K: int, true_prior, prior, gamma: float, eta: float,
    c2: float = SQUARE_LOSS_CONSTANTS[0], c4: float = SQUARE_LOSS_CONSTANTS[1],
) -> float:
    r"""Reconstructed Bayes regret bound of GTS (Corollary 2) when the right expert j* is drawn
    from ``true_prior`` μ while GTS uses ``prior`` π:

    .. math::
        BR(T) \le \gamma T + \sqrt{\frac{c_2 K T}{\gamma}\cdot
        \frac{H(\mu) + \mathrm{KL}(\mu\,\|\,\pi)}{\eta\,(1 - c_4\eta)}},

    from :func:`gts_regret_bound` by Jensen (the bound is concave in ln(1/π(j*))) and
    E_μ ln(1/π(j)) = H(μ) + KL(μ‖π).

    Parameters
    ----------
    T, K, gamma, eta, c2, c4
        As for :func:`gts_regret_bound`.
    true_prior : array_like, shape (N,)
        μ, the law of the right expert (non-negative; normalised).
    prior : array_like, shape (N,)
        π, the prior GTS uses (non-negative, positive wherever μ is; normalised).

    Returns
    -------
    float

    Raises
    ------
    ValidationError
        Priors of different shapes, with a negative entry or a zero sum, π = 0 where μ > 0,
        or another argument out of its range.

    Notes
    -----
    Same assumptions as :func:`gts_regret_bound`, with μ, π (N,) distributions over the same
    experts.

    Examples
    --------
    A uniform π over 4 experts when j* is one of the first two: H(μ) + KL(μ‖π) = ln 4.

    >>> bayes = gts_bayes_regret_bound(10_000, 2, [0.5, 0.5, 0, 0], [0.25] * 4,
    ...                                gamma=0.05, eta=0.1)
    >>> bool(abs(bayes - gts_regret_bound(10_000, 2, 0.25, gamma=0.05, eta=0.1)) < 1e-9)
    True
    """
    mu = as_float_array(true_prior, "true_prior", ndim=1)
    pi = as_float_array(prior, "prior", ndim=1)
    if mu.shape != pi.shape:
        raise ValidationError(f"true_prior and prior must have the same shape, got {mu.shape}, "
                              f"{pi.shape}")
    for name, p in (("true_prior", mu), ("prior", pi)):
        if np.any(p < 0) or p.sum() <= 0:
            raise ValidationError(f"{name} must be non-negative with a positive sum")
    mu, pi = mu / mu.sum(), pi / pi.sum()
    if np.any((mu > 0) & (pi == 0)):
        raise ValidationError("prior must be positive wherever true_prior is")
    support = mu > 0
    cross_entropy = float(-(mu[support] * np.log(pi[support])).sum())
    T, K, _, c2, c4 = _gts_args(T, K, 1.0, c2, c4)
    return _gts_value(T, K, cross_entropy, gamma, eta, c2, c4)
