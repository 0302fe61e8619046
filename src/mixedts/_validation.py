"""Validation helpers used once, at the public boundary.

Every public entry point validates its arguments here *before* it touches any state, so that a
rejected call leaves a policy exactly as it was. Internals trust what comes out of these helpers.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import scipy.sparse as sp


class ValidationError(ValueError):
    """Raised for invalid user input. A subclass of ``ValueError`` that names the argument.

    Notes
    -----
    Every public entry point checks its arguments before it touches any state: a rejected call
    leaves the policy, its posterior and its random generator exactly as they were.

    Examples
    --------
    >>> from mixedts import GaussianTS, ValidationError
    >>> policy = GaussianTS(2, seed=0)
    >>> try:
    ...     policy.update(5, 1.0)
    ... except ValidationError as exc:
    ...     print(exc)
    a must be an action index in [0, 2), got 5
    >>> issubclass(ValidationError, ValueError)
    True
    """


def as_generator(seed: Any) -> np.random.Generator:
    """A ``numpy.random.Generator`` from ``None``, an int, a ``SeedSequence`` or a Generator.

    Parameters
    ----------
    seed : None, int, SeedSequence or numpy Generator
        A Generator is returned as it is (not copied); an int must be non-negative.

    Returns
    -------
    numpy.random.Generator

    Raises
    ------
    ValidationError
        A negative int or another type.

    Examples
    --------
    >>> rng = as_generator(7)
    >>> as_generator(rng) is rng, int(as_generator(7).integers(10))
    (True, 9)
    """
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None or isinstance(seed, (numbers.Integral, np.random.SeedSequence)):
        if isinstance(seed, numbers.Integral) and int(seed) < 0:
            raise ValidationError(f"seed must be a non-negative integer, got {seed}")
        return np.random.default_rng(seed)
    raise ValidationError(
        f"seed must be None, an int, a SeedSequence or a numpy Generator, got {type(seed).__name__}"
    )


def _check_numeric_kind(raw: np.ndarray, name: str) -> None:
    """Refuse text, bytes, None and other non-numbers that numpy would convert silently."""
    if raw.dtype.kind in "USV":
        raise ValidationError(f"{name} must be numeric, got text {raw.flat[0].item()!r}"
                              if raw.size else f"{name} must be numeric, got text")
    if raw.dtype.kind == "O":
        for i, v in enumerate(raw.flat):
            if v is None or isinstance(v, (str, bytes)) or not isinstance(
                v, (numbers.Number, np.generic)
            ):
                where = "" if raw.ndim == 0 else f" (entry {i})"
                raise ValidationError(f"{name} must be numeric, got {v!r}{where}")


def _to_float64(value: Any, name: str) -> np.ndarray:
    try:
        raw = np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{name} must be numeric: {exc}") from None
    _check_numeric_kind(raw, name)
    if np.iscomplexobj(raw):  # a cast would silently drop the imaginary part
        raise ValidationError(f"{name} must be real, got complex values")
    try:
        return np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValidationError(f"{name} must be numeric: {exc}") from None


def as_float_array(value: Any, name: str, ndim: int | tuple[int, ...] | None = None) -> np.ndarray:
    """Convert to a finite float64 array, checking its number of dimensions.

    Parameters
    ----------
    value : array_like
        Numbers (text, None and complex values are refused).
    name : str
        The argument's name, for the message.
    ndim : int or tuple of int, optional
        The allowed numbers of dimensions.

    Returns
    -------
    ndarray of float64
        ``value`` itself when it is already a float64 ndarray.

    Raises
    ------
    ValidationError
        Non-numeric or complex values, the wrong number of dimensions, NaN or infinity.

    Examples
    --------
    >>> as_float_array([1, 2], "x", ndim=1)
    array([1., 2.])
    >>> as_float_array([1.0, np.nan], "x")
    Traceback (most recent call last):
    ...
    mixedts._validation.ValidationError: x contains NaN or infinite values (first at entry 1)
    """
    if type(value) is np.ndarray and value.dtype == np.float64:
        arr = value  # the hot path (a context from numpy): nothing to convert
    else:
        arr = _to_float64(value, name)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else ndim
        if arr.ndim not in allowed:
            want = " or ".join(str(n) for n in allowed)
            raise ValidationError(f"{name} must have {want} dimension(s), got shape {arr.shape}")
    if not _all_finite(arr):
        raise ValidationError(f"{name} contains NaN or infinite values{_first_bad(arr)}")
    return arr


def _first_bad(arr: np.ndarray) -> str:
    """Where the first non-finite value of ``arr`` is, for a message: its row (or entry)."""
    if arr.ndim == 0:
        return ""
    bad = ~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1)
    return f" (first at {'entry' if arr.ndim == 1 else 'row'} {int(np.argmax(bad))})"


def _all_finite(arr: np.ndarray) -> bool:
    """Whether every value is finite (two C calls, no Python-level wrapper)."""
    return bool(np.isfinite(arr).all())


_FLOAT64 = np.dtype(np.float64)


def _finite_sum_of_squares(arr: np.ndarray) -> bool:
    """A one-call sufficient test that every value of a float64 array is finite: Σ a² is
    finite (a NaN or an infinity makes it NaN or +inf, the squares being ≥ 0, so nothing
    cancels). False may also mean an overflow of finite values (|x| > 1e154, where numpy
    warns of the overflow as the scores would): callers then run the full check, which
    decides (and names the first bad entry)."""
    flat = arr if arr.ndim == 1 else arr.reshape(-1)
    return math.isfinite(flat.dot(flat)) if flat.size else True


def check_shape(arr: np.ndarray, shape: tuple[int | None, ...], name: str) -> None:
    """Check ``arr.shape`` against ``shape`` where ``None`` matches any length.

    Parameters
    ----------
    arr : ndarray
    shape : tuple of int or None
    name : str
        The argument's name, for the message.

    Raises
    ------
    ValidationError
        Another number of dimensions or another length.

    Examples
    --------
    >>> check_shape(np.zeros((5, 3)), (None, 3), "X")
    >>> check_shape(np.zeros((5, 3)), (None, 2), "X")
    Traceback (most recent call last):
    ...
    mixedts._validation.ValidationError: X must have shape (any, 2), got (5, 3)
    """
    ok = arr.ndim == len(shape) and all(s is None or s == a for s, a in zip(shape, arr.shape))
    if not ok:
        want = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
        raise ValidationError(f"{name} must have shape {want}, got {arr.shape}")


def check_symmetric_psd(mats: np.ndarray, name: str, strict: bool = True) -> None:
    """Check a (d, d) or (n, d, d) stack of matrices is symmetric and positive (semi)definite.

    Parameters
    ----------
    mats : ndarray, shape (d, d) or (n, d, d)
    name : str
        The argument's name, for the message.
    strict : bool
        Positive definite (a Cholesky factor exists), else semidefinite (eigenvalues ≥ 0 up
        to rounding).

    Raises
    ------
    ValidationError
        Non-square, non-symmetric or not positive (semi)definite matrices.

    Examples
    --------
    >>> check_symmetric_psd(np.eye(2), "cov")
    >>> check_symmetric_psd(np.array([[1.0, 2.0], [2.0, 1.0]]), "cov")
    Traceback (most recent call last):
    ...
    mixedts._validation.ValidationError: cov must be positive definite
    """
    if mats.shape[-1] != mats.shape[-2]:
        raise ValidationError(f"{name} must be square, got shape {mats.shape}")
    scale = max(1.0, float(np.max(np.abs(mats))) if mats.size else 1.0)
    if not np.allclose(mats, np.swapaxes(mats, -1, -2), rtol=1e-10, atol=1e-12 * scale):
        raise ValidationError(f"{name} must be symmetric")
    if strict:
        try:
            np.linalg.cholesky(mats)
        except np.linalg.LinAlgError:
            raise ValidationError(f"{name} must be positive definite") from None
    else:
        eig = np.linalg.eigvalsh(mats)
        if np.any(eig < -1e-10 * scale):
            raise ValidationError(f"{name} must be positive semidefinite")


def check_positive(value: Any, name: str) -> float:
    """A finite, strictly positive float.

    Parameters
    ----------
    value : number
    name : str
        The argument's name, for the message.

    Returns
    -------
    float

    Raises
    ------
    ValidationError
        Not a number, not finite, or ≤ 0.

    Examples
    --------
    >>> check_positive(2, "noise_std")
    2.0
    >>> check_positive(0, "noise_std")
    Traceback (most recent call last):
    ...
    mixedts._validation.ValidationError: noise_std must be a positive finite number, got 0
    """
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ValidationError(f"{name} must be a positive number, got {value!r}") from None
    if not np.isfinite(out) or out <= 0:
        raise ValidationError(f"{name} must be a positive finite number, got {value!r}")
    return out


def check_int(value: Any, name: str, low: int = 0) -> int:
    """An integer >= ``low`` (numpy integers accepted, bools and floats rejected).

    Parameters
    ----------
    value : int
    name : str
        The argument's name, for the message.
    low : int
        The smallest value allowed.

    Returns
    -------
    int

    Raises
    ------
    ValidationError
        Not an integer (a bool or a float included), or below ``low``.

    Examples
    --------
    >>> check_int(np.int64(3), "n_actions", low=1)
    3
    >>> check_int(2.0, "n_actions")
    Traceback (most recent call last):
    ...
    mixedts._validation.ValidationError: n_actions must be an integer, got 2.0
    """
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise ValidationError(f"{name} must be an integer, got {value!r}")
    if int(value) < low:
        raise ValidationError(f"{name} must be >= {low}, got {value}")
    return int(value)


def check_action(a: Any, n_actions: int, name: str = "a") -> int:
    """A valid action index in ``[0, n_actions)``.

    Parameters
    ----------
    a : int
    n_actions : int
        K.
    name : str
        The argument's name, for the message.

    Returns
    -------
    int

    Raises
    ------
    ValidationError
        Not an integer, or outside [0, K).

    Examples
    --------
    >>> check_action(3, 3)
    Traceback (most recent call last):
    ...
    mixedts._validation.ValidationError: a must be an action index in [0, 3), got 3
    """
    if type(a) is int and 0 <= a < n_actions:  # the hot path: nothing to convert
        return a
    a = check_int(a, name, low=-(2**62))
    if not 0 <= a < n_actions:
        raise ValidationError(f"{name} must be an action index in [0, {n_actions}), got {a}")
    return a


def check_actions(A: Any, n_actions: int, name: str = "A") -> np.ndarray:
    """A 1-d integer array of valid action indices.

    Parameters
    ----------
    A : array_like of int, shape (n,)
        Whole floats are accepted.
    n_actions : int
        K.
    name : str
        The argument's name, for the message.

    Returns
    -------
    ndarray of int64, shape (n,)

    Raises
    ------
    ValidationError
        Not one-dimensional, not whole numbers, or an index outside [0, K).

    Examples
    --------
    >>> check_actions([0, 2.0], 3)
    array([0, 2])
    >>> check_actions([0, 1.5], 3)
    Traceback (most recent call last):
    ...
    mixedts._validation.ValidationError: A must hold integer action indices
    """
    arr = np.asarray(A)
    if arr.ndim != 1:
        raise ValidationError(f"{name} must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if (
            np.issubdtype(arr.dtype, np.floating)
            and np.all(np.isfinite(arr))
            and np.all(arr == np.round(arr))
        ):
            arr = arr.astype(np.int64)
        else:
            raise ValidationError(f"{name} must hold integer action indices")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and (arr.min() < 0 or arr.max() >= n_actions):
        raise ValidationError(f"{name} must hold action indices in [0, {n_actions})")
    return arr


def check_context(x: Any, n_actions: int, dim: int, name: str = "x") -> np.ndarray:
    """A context: (d,) shared by all actions or (K, d) one row per action.

    Parameters
    ----------
    x : array_like, shape (d,) or (K, d)
    n_actions, dim : int
        K and d.
    name : str
        The argument's name, for the message.

    Returns
    -------
    ndarray of float64

    Raises
    ------
    ValidationError
        Another shape, or values that are not finite numbers.

    Examples
    --------
    >>> check_context(np.ones((4, 2)), 4, 2).shape
    (4, 2)
    >>> check_context(np.ones(3), 4, 2)
    Traceback (most recent call last):
    ...
    mixedts._validation.ValidationError: x must have shape (2), got (3,)
    """
    if type(x) is np.ndarray and x.dtype == _FLOAT64:  # the hot path: O(1) numpy calls
        shape = x.shape
        if (shape == (dim,) or shape == (n_actions, dim)) and _finite_sum_of_squares(x):
            return x
    arr = as_float_array(x, name, ndim=(1, 2))
    if arr.ndim == 1:
        check_shape(arr, (dim,), name)
    else:
        check_shape(arr, (n_actions, dim), name)
    return arr


def check_contexts(X: Any, n_actions: int, dim: int, name: str = "X") -> np.ndarray:
    """A batch of contexts: (n, d) shared, or (n, K, d) per action.

    Parameters
    ----------
    X : array_like, shape (n, d) or (n, K, d)
    n_actions, dim : int
        K and d.
    name : str
        The argument's name, for the message.

    Returns
    -------
    ndarray of float64

    Raises
    ------
    ValidationError
        Another shape, or values that are not finite numbers.

    Examples
    --------
    >>> check_contexts(np.ones((5, 4, 2)), 4, 2).shape
    (5, 4, 2)
    """
    arr = as_float_array(X, name, ndim=(2, 3))
    if arr.ndim == 2:
        check_shape(arr, (None, dim), name)
    else:
        check_shape(arr, (None, n_actions, dim), name)
    return arr


def check_reward(y: Any, name: str = "y") -> float:
    """A finite scalar reward.

    Parameters
    ----------
    y : number
    name : str
        The argument's name, for the message.

    Returns
    -------
    float

    Raises
    ------
    ValidationError
        Not a finite number, or not a scalar.

    Examples
    --------
    >>> check_reward(np.float32(0.5))
    0.5
    """
    if isinstance(y, float) and math.isfinite(y):  # the hot path (numpy floats included)
        return float(y)
    arr = as_float_array(y, name, ndim=0)
    return float(arr)


def check_mixing(mixing: Any, n_effects: int | None = None, name: str = "mixing"):
    """Mixing weights: (K, L) dense array or scipy sparse matrix → CSR float64 (K, L).

    Parameters
    ----------
    mixing : array_like or scipy.sparse matrix, shape (K, L)
    n_effects : int, optional
        L, when it is known.
    name : str
        The argument's name, for the message.

    Returns
    -------
    scipy.sparse.csr_matrix
        Explicit zeros removed, indices sorted.

    Raises
    ------
    ValidationError
        Not two-dimensional, not finite, or not L columns.

    Examples
    --------
    >>> B = check_mixing([[0.5, 0.0], [0.0, 1.0]], n_effects=2)
    >>> B.shape, B.nnz
    ((2, 2), 2)
    """
    if sp.issparse(mixing):
        mat = sp.csr_matrix(mixing, dtype=np.float64)
        mat.sum_duplicates()
        if not np.all(np.isfinite(mat.data)):
            raise ValidationError(f"{name} contains NaN or infinite values")
    else:
        dense = as_float_array(mixing, name, ndim=2)
        mat = sp.csr_matrix(dense)
    mat.eliminate_zeros()
    mat.sort_indices()
    if n_effects is not None and mat.shape[1] != n_effects:
        raise ValidationError(
            f"{name} must have {n_effects} columns (one per effect), got shape {mat.shape}"
        )
    return mat
