"""Experiment files (TOML): one environment, named policies, a horizon, runs and a seed.

::

    name = "fig2-linear"
    description = "meTS Fig. 2 (left), the authors' code setting"
    horizon = 5000
    runs = 50
    seed = 0
    jobs = 2                  # optional; -1: all cores (the CLI's --jobs overrides)
    resample = true           # optional; a new problem instance per run (the paper)

    [environment]
    type = "mixed-effect"     # or "slates", "classification", "movielens", "diffusion"
    n_actions = 100
    contexts = "pool"
    # ... any MixedEffectEnvironment / SlateEnvironment field; delay = δ wraps it in
    # DelayedFeedback

    [policies.meTS-Lin]       # the name shown in tables and plots
    type = "MeTS"             # a registered policy (mixedts.policies), then its options

    [reference.paper]         # optional published final regrets, shown next to ours
    meTS-Lin = 883

Every error is a :class:`ConfigError` whose message starts with the offending key
(``environment.n_actions: expected an integer >= 1, got 0``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np

from .._validation import ValidationError
from ..datasets import DatasetError
from ..environments import (
    ClassificationEnvironment,
    DelayedFeedback,
    DiffusionEnvironment,
    MixedEffectEnvironment,
    MovieLensEnvironment,
    SlateEnvironment,
)
from ..policies.registry import ConfigError, Positive, at_least, checker
from .registry import PolicySpec, check_kind_options, kinds

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["ConfigError", "Experiment", "load_experiment"]


_number = checker(float)
_positive = checker(Positive)
_boolean = checker(bool)


def _integer(low: int):
    return checker(Annotated[int, at_least(low)])


def _choice(*options: str):
    return checker(Literal[options])


def _string(v):
    """Free text (a description, a path): any string, empty allowed."""
    if not isinstance(v, str):
        raise ValueError(f"expected a string, got {v!r}")
    return v


def _pair(v):
    if not isinstance(v, (list, tuple)) or len(v) != 2:
        raise ValueError(f"expected a pair [low, high], got {v!r}")
    low, high = (_number(x) for x in v)
    if not low < high:
        raise ValueError(f"expected low < high, got {v!r}")
    return (low, high)


def _mixing(v):
    if isinstance(v, str):
        return _choice("dense", "sparse", "onehot", "dirichlet")(v)
    raise ValueError(f"expected 'dense', 'sparse', 'onehot' or 'dirichlet', got {v!r}")


def _sizes(v):
    if not isinstance(v, list) or not v:
        raise ValueError(f"expected a list of integers, got {v!r}")
    return [_integer(1)(x) for x in v]


def _weights(v):
    if not isinstance(v, list) or not v:
        raise ValueError(f"expected a list of numbers, got {v!r}")
    return [_number(x) for x in v]


_COMMON = {
    "dim": _integer(1),
    "effect_std": _positive,
    "action_std": _positive,
    "noise_std": _positive,
    "reward": _choice("linear", "logistic"),
    "contexts": _choice("shared", "pool"),
    "pool_size": _integer(1),
    "context_range": _pair,
    "seed": _integer(0),
    "delay": _integer(1),
}
ENVIRONMENTS: dict[str, tuple[Any, dict[str, Any]]] = {
    "mixed-effect": (
        MixedEffectEnvironment,
        {
            **_COMMON,
            "n_actions": _integer(1),
            "n_effects": _integer(1),
            "mixing": _mixing,
            "mixing_range": _pair,
            "mixing_nnz": _integer(1),
            "dirichlet_alpha": _positive,
        },
    ),
    "slates": (
        SlateEnvironment,
        {
            **_COMMON,
            "n_items": _integer(1),
            "n_positions": _integer(1),
            "position_weights": _weights,
            "distinct": _boolean,
        },
    ),
    "diffusion": (
        DiffusionEnvironment,
        {
            "n_actions": _integer(1),
            "dim": _integer(1),
            "n_layers": _integer(1),
            "layer_dims": _sizes,
            "link": _choice("linear", "relu"),
            "hidden": _integer(1),
            "link_range": _pair,
            "latent_std": _positive,
            "action_std": _positive,
            "noise_std": _positive,
            "reward": _choice("linear", "logistic"),
            "contexts": _choice("per-action", "shared"),
            "context_range": _pair,
            "actions": _choice("chain", "swissroll"),
            "pretrain_pool": _integer(0),
            "pretrain_seed": _integer(0),
            "roll_noise": _positive,
            "seed": _integer(0),
            "delay": _integer(1),
        },
    ),
    "classification": (
        ClassificationEnvironment,
        {"data": _string, "label": _string, "intercept": _boolean, "delay": _integer(1)},
    ),
    "movielens": (
        MovieLensEnvironment,
        {
            "data": _string,
            "n_actions": _integer(1),
            "dim": _integer(1),
            "n_effects": _integer(1),
            "structure": _choice("learned", "genre"),
            "reward": _choice("linear", "logistic"),
            "noise_std": _positive,
            "reg": _positive,
            "als_iterations": _integer(1),
            "effect_share": _positive,
            "structure_seed": _integer(0),
            "seed": _integer(0),
            "delay": _integer(1),
        },
    ),
}
TOP = {
    "name": _string,
    "description": _string,
    "title": _string,
    "horizon": _integer(1),
    "runs": _integer(1),
    "seed": _integer(0),
    "jobs": _integer(-1),
    "resample": _boolean,
    "vectorize": _boolean,
}
REQUIRED_TOP = ("horizon", "runs", "environment", "policies")


@dataclasses.dataclass
class Experiment:
    """A validated experiment: run it with :meth:`run`.

    Build it with :func:`load_experiment` (a TOML file, or the same structure as a dict).

    Examples
    --------
    >>> exp = load_experiment({"horizon": 50, "runs": 2,
    ...                        "environment": {"type": "mixed-effect", "n_actions": 10},
    ...                        "policies": {"meTS": {"type": "MeTS"}}})
    >>> exp.horizon, list(exp.policies)
    (50, ['meTS'])
    >>> exp.run(quiet=True).summary(rounds=[50])["policy"].tolist()
    ['meTS']
    """

    name: str
    environment: Any
    policies: dict[str, PolicySpec]
    horizon: int
    runs: int
    seed: int = 0
    jobs: int = 1
    resample: bool = True
    vectorize: bool = True
    description: str = ""
    title: str = ""
    reference: dict[str, dict[str, float]] = dataclasses.field(default_factory=dict)
    source: str | None = None
    #: the horizon the reference values are final regrets at (the file's)
    reference_horizon: int | None = None

    @property
    def comparable_reference(self) -> dict[str, dict[str, float]]:
        """``reference`` if this experiment runs to the horizon it was read at, else {}: a
        final regret at n = 5000 says nothing about a run cut to n = 500."""
        if self.reference_horizon is not None and self.horizon != self.reference_horizon:
            return {}
        return self.reference

    def replace(self, **changes) -> Experiment:
        """A copy with some of horizon/runs/seed/jobs/vectorize changed (None values are
        ignored)."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def only(self, names: Iterable[str] | None) -> Experiment:
        """A copy that runs only the named policies, in the file's order (None: all).

        A policy's results do not depend on which others run: every policy of a run gets the
        same seeds.
        """
        if names is None:
            return self
        names = list(names)
        for name in names:
            if name not in self.policies:
                raise ConfigError(f"--policies: {self.name} has no policy {name!r}; it has "
                                  f"{', '.join(self.policies)}")
        return dataclasses.replace(
            self, policies={k: v for k, v in self.policies.items() if k in names})

    def run(self, n_jobs: int | None = None, scheduler=None, quiet: bool = False):
        """Simulate; returns :class:`~mixedts.evaluation.Results`."""
        from .simulate import simulate

        meta = {"experiment": self.name, "title": self.title,
                "reference": self.comparable_reference,
                "source": self.source}
        return simulate(self.environment, self.policies, self.horizon, self.runs, self.seed,
                        n_jobs=self.jobs if n_jobs is None else n_jobs, scheduler=scheduler,
                        quiet=quiet, resample=self.resample, meta=meta,
                        vectorize=self.vectorize)


def _check(table: Mapping, schema: Mapping, where: str, skip: tuple = ()) -> dict[str, Any]:
    out = {}
    for key, value in table.items():
        if key in skip:
            continue
        if key not in schema:
            raise ConfigError(f"{where}{key}: unknown key; expected one of "
                              f"{sorted([*schema, *skip])}")
        try:
            out[key] = schema[key](value)
        except ValueError as exc:
            raise ConfigError(f"{where}{key}: {exc}") from None
    return out


def _load_table(path: Path, label: str | None):
    """(X, y) from a .csv (header row; ``label`` column, default the last) or .npz (X, y)."""
    if not path.exists():
        raise ConfigError(f"environment.data: no such file {str(path)!r}")
    if path.suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            if "X" not in z or "y" not in z:
                raise ConfigError("environment.data: an .npz needs arrays 'X' and 'y'")
            return z["X"], z["y"]
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover
        raise ConfigError("environment.data: reading CSV needs pandas") from exc
    frame = pd.read_csv(path)
    label = label or frame.columns[-1]
    if label not in frame.columns:
        raise ConfigError(f"environment.label: no column {label!r} in {path.name}")
    return frame.drop(columns=label).to_numpy(dtype=float), frame[label].to_numpy()


def _environment(table: Any, base: Path | None, overrides: Mapping[str, Any] | None = None):
    if not isinstance(table, Mapping):
        raise ConfigError("environment: expected a table [environment]")
    if overrides:
        table = {**table, **{k: v for k, v in overrides.items() if v is not None}}
    kind = table.get("type", "mixed-effect")
    if kind not in ENVIRONMENTS:
        raise ConfigError(f"environment.type: unknown environment {kind!r}; expected one of "
                          f"{sorted(ENVIRONMENTS)}")
    cls, schema = ENVIRONMENTS[kind]
    fields = _check(table, schema, "environment.", skip=("type",))
    delay = fields.pop("delay", 1)
    try:
        if kind == "classification":
            if "data" not in fields:
                raise ConfigError("environment.data: required for type = 'classification'")
            path = Path(fields.pop("data"))
            if base is not None and not path.is_absolute():
                path = base / path
            X, y = _load_table(path, fields.pop("label", None))
            env = cls(X, y, **fields)
        elif kind == "movielens":
            if "data" in fields:
                path = Path(fields["data"]).expanduser()
                if base is not None and not path.is_absolute():
                    path = base / path
                fields["data"] = str(path)
            try:
                env = cls(**fields)
            except OSError as exc:  # missing, or not downloadable
                raise ConfigError(f"environment.data: {exc} (on the command line: --data "
                                  "PATH/TO/ml-100k)") from None
            except DatasetError as exc:  # malformed
                raise ConfigError(f"environment.data: {exc}") from None
        else:
            env = cls(**fields)
    except ConfigError:
        raise
    except ValidationError as exc:
        # the message starts with the field's name
        raise ConfigError(f"environment.{exc}") from None
    return DelayedFeedback(env, delay) if delay > 1 else env


def _policies(table: Any) -> dict[str, PolicySpec]:
    if not isinstance(table, Mapping) or not table:
        raise ConfigError("policies: expected at least one [policies.NAME] table")
    out = {}
    for name, spec in table.items():
        where = f"policies.{name}"
        if not isinstance(spec, Mapping):
            raise ConfigError(f"{where}: expected a table with a 'type' key")
        if "type" not in spec:
            raise ConfigError(f"{where}.type: required; one of {kinds()}")
        kind = spec["type"]
        options = check_kind_options(kind, {k: v for k, v in spec.items() if k != "type"},
                                     where)
        out[name] = PolicySpec(kind, options)
    return out


def _reference(table: Any, names: list[str]) -> dict[str, dict[str, float]]:
    if not isinstance(table, Mapping):
        raise ConfigError("reference: expected tables [reference.LABEL] of policy = number")
    out = {}
    for label, values in table.items():
        if not isinstance(values, Mapping):
            raise ConfigError(f"reference.{label}: expected a table of policy = number")
        out[label] = {}
        for policy, value in values.items():
            if policy not in names:
                raise ConfigError(f"reference.{label}.{policy}: not a policy of this experiment")
            try:
                out[label][policy] = _number(value)
            except ValueError as exc:
                raise ConfigError(f"reference.{label}.{policy}: {exc}") from None
    return out


def _try_policies(environment, policies: dict[str, PolicySpec], horizon: int) -> None:
    """Build every policy once on the configured instance, so that a policy the environment
    cannot support (e.g. MeTS without a prior) fails here, with its name, not in a worker."""
    rng = np.random.default_rng(0)
    for name, spec in policies.items():
        try:
            spec.with_horizon(horizon)(environment, rng)
        except (ConfigError, ValidationError) as exc:
            raise ConfigError(f"policies.{name}: {exc}") from None


def load_experiment(
    source: str | Path | Mapping[str, Any], environment: Mapping[str, Any] | None = None
) -> Experiment:
    """Read and validate an experiment from a TOML file or an equivalent dict.

    ``environment`` overrides keys of the file's ``[environment]`` table (the CLI's ``--data``);
    ``None`` values are ignored.

    Examples
    --------
    >>> exp = load_experiment({"horizon": 10, "runs": 2,
    ...                        "environment": {"n_actions": 5, "n_effects": 2},
    ...                        "policies": {"meTS": {"type": "MeTS"}}})
    >>> exp.environment.n_actions, list(exp.policies)
    (5, ['meTS'])
    >>> load_experiment({"horizon": 10, "runs": 2, "environment": {"n_actoins": 5},
    ...                  "policies": {"meTS": {"type": "MeTS"}}})
    Traceback (most recent call last):
    ...
    mixedts.policies.registry.ConfigError: environment.n_actoins: unknown key; ...
    """
    base = None
    where = None
    if isinstance(source, Mapping):
        data = dict(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise ConfigError(f"{path}: no such experiment file")
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        base, where = path.parent, str(path)
    for key in REQUIRED_TOP:
        if key not in data:
            raise ConfigError(f"{key}: required")
    top = _check(data, TOP, "", skip=("environment", "policies", "reference"))
    env = _environment(data["environment"], base, environment)
    policies = _policies(data["policies"])
    reference = _reference(data.get("reference", {}), list(policies))
    _try_policies(env, policies, top["horizon"])
    name = top.get("name") or (Path(where).stem if where else "experiment")
    return Experiment(
        name=name,
        environment=env,
        policies=policies,
        horizon=top["horizon"],
        runs=top["runs"],
        seed=top.get("seed", 0),
        jobs=top.get("jobs", 1),
        resample=top.get("resample", True),
        vectorize=top.get("vectorize", True),
        description=top.get("description", ""),
        title=top.get("title", ""),
        reference=reference,
        source=where,
        reference_horizon=top["horizon"],
    )
