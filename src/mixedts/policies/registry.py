"""One registry of policies: a class and one ``@register`` line beside it.

Everything else derives from the registered class:

* its save/load name is the class name (``POLICIES``);
* its experiment-file options are the keyword-only parameters of its
  ``from_environment(environment, seed=None, horizon=None, *, ...)`` classmethod, and each
  option's check comes from the parameter's annotation (``float``, ``int``, ``bool``, ``str``,
  ``Literal[...]``, unions of those, and ``Annotated[..., check]`` for ranges);
* its documentation is that signature (:func:`describe`).

The experiment engine, persistence and the CLI read this registry and nothing else.
"""

from __future__ import annotations

import inspect
import math
import types
import typing
from collections.abc import Callable, Mapping
from typing import Annotated, Any, Literal, Union

from .._validation import ValidationError

#: every registered policy class, by its name (= its TOML ``type`` and its save/load name)
POLICIES: dict[str, type] = {}


class ConfigError(ValidationError):
    """An invalid experiment file or policy option; the message names the key.

    A :class:`~mixedts.ValidationError`, hence a ``ValueError``.

    Examples
    --------
    >>> from mixedts.evaluation import ConfigError, PolicySpec
    >>> try:
    ...     PolicySpec("HierTS", {"effect_cov_scale": -1.0})
    ... except ConfigError as exc:
    ...     print(exc)
    policy.effect_cov_scale: expected a positive number, got -1.0
    """


# ---------------------------------------------------------------------- option annotations
def _positive(v: float) -> float:
    if v <= 0:
        raise ValueError(f"expected a positive number, got {v!r}")
    return v


def _non_negative(v: float) -> float:
    if v < 0:
        raise ValueError(f"expected a non-negative number, got {v!r}")
    return v


def _unit(v: float) -> float:
    if not 0 <= v <= 1:
        raise ValueError(f"expected a number in [0, 1], got {v!r}")
    return v


def at_least(low: int) -> Callable[[int], int]:
    """An ``Annotated`` check: an integer ``>= low``."""
    def check(v: int) -> int:
        if v < low:
            raise ValueError(f"expected an integer >= {low}, got {v}")
        return v

    check.__name__ = f"at_least_{low}"
    return check


Positive = Annotated[float, _positive]
NonNegative = Annotated[float, _non_negative]
Probability = Annotated[float, _unit]
PositiveInt = Annotated[int, at_least(1)]
Count = Annotated[int, at_least(0)]


def checker(tp: Any) -> Callable[[Any], Any]:
    origin = typing.get_origin(tp)
    if origin is Annotated:
        base, *extra = typing.get_args(tp)
        inner = checker(base)

        def check(v):
            v = inner(v)
            for f in extra:
                v = f(v)
            return v

        return check
    if origin is Literal:
        choices = typing.get_args(tp)

        def check(v):
            if isinstance(v, bool) or v not in choices:
                raise ValueError(f"expected one of {list(choices)}, got {v!r}")
            return v

        return check
    if origin in (Union, types.UnionType):
        checks = [checker(t) for t in typing.get_args(tp) if t is not type(None)]

        def check(v):
            errors = []
            for c in checks:
                try:
                    return c(v)
                except ValueError as exc:
                    errors.append(str(exc).removeprefix("expected "))
            raise ValueError("expected " + " or ".join(errors))

        return check
    if tp is bool:
        def check(v):
            if not isinstance(v, bool):
                raise ValueError(f"expected true or false, got {v!r}")
            return v

        return check
    if tp is int:
        def check(v):
            if isinstance(v, bool) or not isinstance(v, int):
                raise ValueError(f"expected an integer, got {v!r}")
            return v

        return check
    if tp is float:
        def check(v):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"expected a number, got {v!r}")
            return float(v)

        return check
    if tp is str:
        def check(v):
            if not isinstance(v, str) or not v:
                raise ValueError(f"expected a name, got {v!r}")
            return v

        return check
    raise TypeError(f"unsupported option annotation {tp!r}")


# ---------------------------------------------------------------------- the registry
_OPTIONS: dict[str, dict[str, tuple[Callable[[Any], Any], Any]]] = {}


def options_of(cls: type) -> dict[str, tuple[Callable[[Any], Any], Any]]:
    """``{option: (check, default)}`` of a registered class, from ``from_environment``."""
    name = cls.__name__
    if name not in _OPTIONS:
        fn = cls.from_environment
        hints = typing.get_type_hints(fn, include_extras=True)
        out = {}
        for p in inspect.signature(fn).parameters.values():
            if p.kind is p.KEYWORD_ONLY:
                out[p.name] = (checker(hints[p.name]), p.default)
        _OPTIONS[name] = out
    return _OPTIONS[name]


def register(cls: type) -> type:
    """Class decorator: make a policy class known by its name everywhere.

    The class needs ``from_environment(environment, seed=None, horizon=None, *, ...)`` whose
    keyword-only, annotated parameters are its experiment-file options.

    Parameters
    ----------
    cls : type
        The policy class; its name is its save/load name and its experiment-file ``type``.

    Returns
    -------
    type
        ``cls`` itself.

    Raises
    ------
    TypeError
        No ``from_environment`` classmethod, another class registered under the same name, or
        an option annotation the registry cannot check.

    Examples
    --------
    >>> import numpy as np
    >>> from mixedts import GaussianTS, register
    >>> from mixedts.environments import MixedEffectEnvironment
    >>> from mixedts.evaluation import PolicySpec
    >>> @register
    ... class NarrowTS(GaussianTS):
    ...     "Gaussian TS with a narrow prior."
    ...     @classmethod
    ...     def from_environment(cls, environment, seed=None, horizon=None, *,
    ...                          prior_std: Positive = 0.1):
    ...         return cls(environment.n_actions, prior_std=prior_std, seed=seed)
    >>> env = MixedEffectEnvironment(5, 2, 2, seed=0)
    >>> policy = PolicySpec("NarrowTS", {"prior_std": 0.5})(env, np.random.default_rng(0))
    >>> type(policy).__name__, policy.n_actions
    ('NarrowTS', 5)
    >>> del POLICIES["NarrowTS"]  # the example leaves the registry as it found it
    """
    if not callable(getattr(cls, "from_environment", None)):
        raise TypeError(f"{cls.__name__} needs a from_environment classmethod to be registered")
    name = cls.__name__
    if name in POLICIES and POLICIES[name] is not cls:
        raise TypeError(f"a policy named {name!r} is registered already")
    POLICIES[name] = cls
    _OPTIONS.pop(name, None)
    options_of(cls)  # fail at import time on an unsupported annotation
    return cls


def policy_class(name: str, where: str = "policy") -> type:
    """The registered class named ``name``; a ``ConfigError`` naming ``where.type`` if none."""
    from .. import policies  # noqa: F401  (the built-in policies register on import)

    if name not in POLICIES:
        raise ConfigError(f"{where}.type: unknown policy {name!r}; expected one of "
                          f"{sorted(POLICIES)}")
    return POLICIES[name]


def check_options(cls: type, options: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validate experiment-file ``options`` of ``cls``; errors name ``where.key``."""
    allowed = options_of(cls)
    out = {}
    for key, value in options.items():
        if key not in allowed:
            hint = f"one of {sorted(allowed)}" if allowed else "no options"
            raise ConfigError(f"{where}.{key}: unknown option for {cls.__name__}; "
                              f"expected {hint}")
        try:
            out[key] = allowed[key][0](value)
        except ValueError as exc:
            raise ConfigError(f"{where}.{key}: {exc}") from None
    return out


def describe(cls: type) -> str:
    """One line per experiment-file option of ``cls``: ``name = default``."""
    return "\n".join(f"{k} = {d!r}" for k, (_, d) in options_of(cls).items())
