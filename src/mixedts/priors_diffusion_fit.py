"""Fit a dTS chain prior: a DDPM pre-trained on offline samples of action parameters.

Aouali (2025), App. G.2: each link f_ℓ is the mean of one reverse step of a denoising
diffusion model (Ho et al., 2020) whose noise predictor ε̂(x, ℓ) is a 2-layer ReLU network
taking the step ℓ as input, trained with the DDPM noise-prediction loss and Adam (learning
rate 1e-3, batches of min(2048, N)); Σ_ℓ = σ_ℓ² I is fixed, σ_ℓ increasing in ℓ.

With the samples standardised, z = (θ − μ)/s (s per coordinate), the forward process is
x_ℓ = √ᾱ_ℓ z + √(1 − ᾱ_ℓ) ε, ᾱ_ℓ = Π_{k≤ℓ} α_k, α_k = 1 − β_k, and the reverse step is::

    x_{ℓ−1} | x_ℓ ~ N((x_ℓ − β_ℓ/√(1 − ᾱ_ℓ) ε̂(x_ℓ, ℓ)) / √α_ℓ,  β_ℓ I)

This is the chain of :class:`~mixedts.DiffusionPrior` with ψ_ℓ = μ + s ⊙ x_ℓ (latents in the
samples' own units), θ = ψ_0, Σ_ℓ = β_ℓ diag(s²), Σ_{L+1} = diag(s²) and ψ_L's mean μ. Each
f_ℓ is exactly a :class:`~mixedts.ReLULink`: skip 1/√α_ℓ, the standardisation folded into the
first layer's weights, the step's features into its bias, and the factor −β_ℓ s/(√α_ℓ √(1−ᾱ_ℓ))
and the shift (1 − 1/√α_ℓ) μ into the output layer. See docs/diffusion.md §7.
"""

from __future__ import annotations

import hashlib
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ._validation import ValidationError, as_float_array, as_generator, check_int, check_positive
from .priors_diffusion import DiffusionPrior, ReLULink

__all__ = ["FittedDenoiser", "cache_folder", "fit_cached", "fit_denoiser",
           "fit_diffusion_prior", "noise_schedule", "step_features"]

SCHEDULES = ("cosine", "linear")
#: sinusoidal frequencies of the step features (besides ℓ/L itself)
STEP_FREQUENCIES = 4


def noise_schedule(n_layers: int, kind: str = "cosine") -> np.ndarray:
    """β_1 … β_L, non-decreasing: the cosine schedule of Nichol & Dhariwal (2021), which suits any
    L, or Ho et al.'s linear one rescaled to L steps (β from 0.1/L to 20/L, capped at 0.999).

    Examples
    --------
    >>> beta = noise_schedule(5)
    >>> bool(np.all(np.diff(beta) > 0)), float(np.prod(1 - beta)) < 1e-3
    (True, True)
    """
    L = check_int(n_layers, "n_layers", low=1)
    if kind not in SCHEDULES:
        raise ValidationError(f"schedule must be one of {SCHEDULES}, got {kind!r}")
    if kind == "linear":
        return np.minimum(np.linspace(0.1 / L, 20.0 / L, L), 0.999) if L > 1 else np.full(1, 0.999)
    s = 0.008
    f = np.cos((np.arange(L + 1) / L + s) / (1 + s) * np.pi / 2) ** 2
    abar = f / f[0]
    return np.minimum(1.0 - abar[1:] / abar[:-1], 0.999)


def step_features(steps: np.ndarray, n_layers: int) -> np.ndarray:
    """The network's step input: ℓ/L and sin, cos(2^k π ℓ / (2L)), k < 4, (n, 9).

    Examples
    --------
    >>> step_features(np.array([1, 10]), 10).shape
    (2, 9)
    """
    t = np.asarray(steps, dtype=np.float64) / n_layers
    freq = np.pi * 2.0 ** np.arange(STEP_FREQUENCIES) / 2
    ang = np.multiply.outer(t, freq)
    return np.concatenate([t[:, None], np.sin(ang), np.cos(ang)], axis=1)


class FittedDenoiser:
    """The trained noise predictor ε̂(x, ℓ) with its schedule and standardisation.

    Attributes
    ----------
    weights, biases : lists of arrays
        The MLP's layers, input (d + 9) → hidden → hidden → d.
    beta : ndarray (L,)
    mean, scale : ndarray (d,)
        μ and s of the standardisation.
    losses : ndarray
        The training loss after each chunk of steps.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> net = fit_denoiser(rng.normal(size=(100, 2)), n_layers=3, hidden=8, steps=10)
    >>> psi = rng.normal(size=(4, 2))
    >>> bool(np.allclose(net.link(2)(psi), net.reverse_mean(psi, 2)))
    True
    """

    def __init__(self, weights, biases, beta, mean, scale, losses) -> None:
        self.weights, self.biases = [np.asarray(w) for w in weights], [np.asarray(b)
                                                                       for b in biases]
        self.beta, self.mean, self.scale = np.asarray(beta), np.asarray(mean), np.asarray(scale)
        self.losses = np.asarray(losses)

    @property
    def n_layers(self) -> int:
        return len(self.beta)

    def predict(self, x: np.ndarray, step: int) -> np.ndarray:
        """ε̂(x, ℓ) for standardised rows x (n, d) at step ℓ (1-based)."""
        feats = np.broadcast_to(step_features(np.array([step]), self.n_layers),
                                (len(x), 1 + 2 * STEP_FREQUENCIES))
        h = np.concatenate([x, feats], axis=1)
        for w, b in zip(self.weights[:-1], self.biases[:-1]):
            h = np.maximum(h @ w + b, 0.0)
        return h @ self.weights[-1] + self.biases[-1]

    def reverse_mean(self, psi: np.ndarray, step: int) -> np.ndarray:
        """The DDPM reverse-step mean in the samples' units (the oracle of f_ℓ)."""
        beta = self.beta[step - 1]
        abar = np.prod(1.0 - self.beta[:step])
        x = (psi - self.mean) / self.scale
        eps = self.predict(x, step)
        z = (x - beta / np.sqrt(1.0 - abar) * eps) / np.sqrt(1.0 - beta)
        return self.mean + self.scale * z

    def link(self, step: int) -> ReLULink:
        """f_ℓ as a :class:`ReLULink` (exactly :meth:`reverse_mean`)."""
        d = len(self.mean)
        beta = self.beta[step - 1]
        alpha, abar = 1.0 - beta, np.prod(1.0 - self.beta[:step])
        w1, b1 = self.weights[0], self.biases[0]  # (d + 9, h), (h,)
        feats = step_features(np.array([step]), self.n_layers)[0]
        first_w = (w1[:d] / self.scale[:, None]).T
        first_b = b1 + feats @ w1[d:] - (self.mean / self.scale) @ w1[:d]
        gain = -beta / (np.sqrt(alpha) * np.sqrt(1.0 - abar)) * self.scale
        out_w = (self.weights[-1] * gain).T
        out_b = self.biases[-1] * gain + (1.0 - 1.0 / np.sqrt(alpha)) * self.mean
        middle = [w.T for w in self.weights[1:-1]]
        return ReLULink([first_w, *middle, out_w],
                        [first_b, *self.biases[1:-1], out_b], skip=1.0 / np.sqrt(alpha))

    def prior(self) -> DiffusionPrior:
        """The chain: links f_1 … f_L, Σ_ℓ = β_ℓ diag(s²), Σ_{L+1} = diag(s²), mean μ."""
        s2 = np.diag(self.scale**2)
        covs = [b * s2 for b in self.beta] + [s2]
        return DiffusionPrior([self.link(step) for step in range(1, self.n_layers + 1)], covs,
                              self.mean)


def _check_samples(samples: Any) -> np.ndarray:
    try:
        X = as_float_array(samples, "samples", ndim=(1, 2))
    except ValidationError as exc:
        if "NaN" not in str(exc):
            raise
        arr = np.asarray(samples, dtype=np.float64)
        bad = ~np.isfinite(arr.reshape(len(arr), -1)).all(axis=1)
        raise ValidationError(f"samples contains NaN or infinite values (first at row "
                              f"{int(np.argmax(bad))})") from None
    if X.ndim == 1:
        X = X[:, None]
    if len(X) < 2 or X.shape[1] < 1:
        raise ValidationError(f"samples must be (N, d) with N >= 2 and d >= 1, got {X.shape}")
    flat = np.flatnonzero(X.std(axis=0) == 0)
    if len(flat):
        raise ValidationError(f"samples: column {int(flat[0])} is constant (nothing to model)")
    return X


def fit_denoiser(samples: Any, n_layers: int, *, hidden: int = 64, steps: int = 3000,
                 batch_size: int | None = None, learning_rate: float = 1e-3,
                 schedule: str = "cosine", seed: Any = 0,
                 progress: Callable[[int, int], None] | None = None) -> FittedDenoiser:
    """Train the noise predictor (see :func:`fit_diffusion_prior` for the options); returns
    the :class:`FittedDenoiser`, whose :meth:`~FittedDenoiser.prior` is the chain.

    Examples
    --------
    >>> net = fit_denoiser(np.random.default_rng(0).normal(size=(50, 2)), 4, hidden=8,
    ...                    steps=20, seed=1)
    >>> net.n_layers, net.prior().n_layers, len(net.losses) > 0
    (4, 4, True)
    """
    X = _check_samples(samples)
    L = check_int(n_layers, "n_layers", low=1)
    hidden = check_int(hidden, "hidden", low=1)
    steps = check_int(steps, "steps", low=1)
    learning_rate = check_positive(learning_rate, "learning_rate")
    beta = noise_schedule(L, schedule)
    N, d = X.shape
    B = min(2048, N) if batch_size is None else check_int(batch_size, "batch_size", low=1)
    try:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPRegressor
        from threadpoolctl import threadpool_limits
    except ImportError as exc:  # pragma: no cover - optional dependency
        raise ImportError("DiffusionPrior.fit needs scikit-learn: pip install "
                          "'mixedts[structure]'") from exc
    rng = as_generator(seed)
    net_seed = int(rng.integers(2**31 - 1))
    mean, scale = X.mean(axis=0), X.std(axis=0)
    Z = (X - mean) / scale
    abar = np.cumprod(1.0 - beta)
    net = MLPRegressor(hidden_layer_sizes=(hidden, hidden), activation="relu", solver="adam",
                       learning_rate_init=learning_rate, batch_size=B, alpha=0.0,
                       random_state=net_seed, shuffle=True)
    per_call = max(1, 4096 // B)  # batches per partial_fit call (one pass over fresh noise)
    losses, done = [], 0
    while done < steps:  # chunks of Adam steps, not actions or draws
        k = min(per_call, steps - done)
        m = B * k
        idx = rng.integers(N, size=m)
        step = rng.integers(1, L + 1, size=m)
        eps = rng.standard_normal((m, d))
        a = abar[step - 1][:, None]
        xt = np.sqrt(a) * Z[idx] + np.sqrt(1.0 - a) * eps
        inputs = np.concatenate([xt, step_features(step, L)], axis=1).astype(np.float32)
        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore", ConvergenceWarning)
            net.partial_fit(inputs, eps.astype(np.float32))
        losses.append(float(net.loss_))
        done += k
        if progress is not None:
            progress(done, steps)
    return FittedDenoiser([w.astype(np.float64) for w in net.coefs_],
                          [b.astype(np.float64) for b in net.intercepts_], beta, mean, scale,
                          losses)


def fit_diffusion_prior(samples: Any, n_layers: int, *, hidden: int = 64, steps: int = 3000,
                        batch_size: int | None = None, learning_rate: float = 1e-3,
                        schedule: str = "cosine", seed: Any = 0,
                        progress: Callable[[int, int], None] | None = None) -> DiffusionPrior:
    """A :class:`~mixedts.DiffusionPrior` fitted as a DDPM on ``samples`` of θ (N, d).

    The noise predictor is scikit-learn's ``MLPRegressor`` (two hidden ReLU layers of width
    ``hidden``, Adam, no weight decay), trained with the DDPM loss ‖ε − ε̂(x_ℓ, ℓ)‖² on
    ``steps`` Adam steps of ``batch_size`` rows (default min(2048, N), as the paper), each row
    a sample with a fresh step ℓ ~ U{1..L} and fresh noise. scikit-learn rather than torch or
    JAX: it is already the ``structure`` extra, runs on CPU with nothing else to install, and a
    2-layer MLP on a few thousand rows is all the paper trains; its weights are plain arrays,
    so the fitted prior is :class:`ReLULink` arrays that save without pickle.

    Parameters
    ----------
    samples : array_like (N, d)
        Offline samples (estimates) of action parameters; finite, N >= 2, no constant column.
    n_layers : int
        L, the diffusion steps (= latent layers).
    hidden : int
        Width of both hidden layers.
    steps : int
        Adam steps (the paper: 20,000 epochs, i.e. 20,000 steps when N <= 2048).
    batch_size : int, optional
    learning_rate : float
    schedule : {"cosine", "linear"}
        β_ℓ (:func:`noise_schedule`); σ_ℓ² = β_ℓ increases with ℓ.
    seed : int, SeedSequence or Generator
        Seeds the network's initialisation, its shuffling, the steps and the noise: the fit is
        a function of (samples, options, seed).
    progress : callable(done, total), optional

    Returns
    -------
    DiffusionPrior
        Non-linear links f_ℓ (:class:`ReLULink`), covariances Σ_ℓ = β_ℓ diag(s²).

    Raises
    ------
    ValidationError
        Bad samples (NaN, wrong shape, a constant column) or options, before any fitting.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> samples = rng.normal(size=(200, 2)) * [1.0, 0.5] + [3.0, 0.0]
    >>> prior = fit_diffusion_prior(samples, n_layers=5, hidden=16, steps=50, seed=0)
    >>> prior.n_layers, prior.dim, prior.is_linear
    (5, 2, False)
    >>> prior.sample_independent(3, rng).shape
    (3, 2)
    """
    return fit_denoiser(samples, n_layers, hidden=hidden, steps=steps, batch_size=batch_size,
                        learning_rate=learning_rate, schedule=schedule, seed=seed,
                        progress=progress).prior()


#: fitted priors of this process, by (content hash of the samples, options); bounded
_CACHE: dict[str, DiffusionPrior] = {}
CACHE_SIZE = 32
#: part of every cache key: bump it when a change of the fitting changes its result
FIT_VERSION = 1


def cache_folder() -> Path | None:
    """Where fitted priors are kept between processes: ``$MIXEDTS_FIT_CACHE`` ("off": nowhere),
    else ``diffusion-priors`` under the data cache (``$MIXEDTS_DATA`` or ~/.cache/mixedts).

    Examples
    --------
    >>> folder = cache_folder()  # None when $MIXEDTS_FIT_CACHE is "off"
    >>> folder is None or isinstance(folder, Path)
    True
    """
    own = os.environ.get("MIXEDTS_FIT_CACHE")
    if own:
        return None if own == "off" else Path(own).expanduser()
    root = os.environ.get("MIXEDTS_DATA")
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "mixedts") / \
        "diffusion-priors"


def fit_cached(samples: Any, n_layers: int, *, folder: Any = "auto",
               **options: Any) -> DiffusionPrior:
    """:func:`fit_diffusion_prior`, remembered by the samples' content and the options: in
    this process, and on disk (:func:`cache_folder`, ``.npz`` arrays read without pickle) so
    that the worker processes of an experiment and later runs reuse the fit. The seed is part
    of the key, so a fit is the same whether or not it came from a cache. ``folder``: "auto"
    (:func:`cache_folder`), a path, or None (this process only).

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=(50, 2))
    >>> a = fit_cached(x, 3, folder=None, steps=5, hidden=4)
    >>> a is fit_cached(x.copy(), 3, folder=None, steps=5, hidden=4)
    True
    """
    X = _check_samples(samples)
    seed = options.get("seed", 0)
    if not isinstance(seed, (int, np.integer)):
        return fit_diffusion_prior(X, n_layers, **options)  # a generator: not a cache key
    keyed = {k: v for k, v in sorted(options.items()) if k != "progress"}
    digest = hashlib.sha1(np.ascontiguousarray(X).tobytes() + str(X.shape).encode())
    digest.update(repr((FIT_VERSION, int(n_layers), keyed)).encode())
    key = digest.hexdigest()
    if key in _CACHE:
        return _CACHE[key]
    folder = cache_folder() if isinstance(folder, str) and folder == "auto" else folder
    folder = None if folder is None else Path(folder)
    path = None if folder is None else folder / f"{key}.npz"
    prior = None
    if path is not None and path.is_file():
        try:
            with np.load(path, allow_pickle=False) as f:
                prior = DiffusionPrior.from_arrays({k: f[k] for k in f.files})
        except (OSError, ValueError, KeyError):
            prior = None  # a damaged file: fit again
    if prior is None:
        prior = fit_diffusion_prior(X, n_layers, **options)
        if path is not None:
            try:
                folder.mkdir(parents=True, exist_ok=True)
                tmp = folder / f"{key}.{os.getpid()}.tmp.npz"
                np.savez(tmp, **prior.arrays())
                os.replace(tmp, path)
            except OSError:
                pass  # a read-only cache: keep the fit in this process only
    if len(_CACHE) >= CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = prior
    return prior
