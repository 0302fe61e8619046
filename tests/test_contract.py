"""The one policy contract and the one registry.

* every registered model satisfies the :class:`~mixedts.models.base.Model` protocol and
  really offers every summary it declares;
* every registered policy is built from an experiment-file option set, runs, and round-trips
  save/load with every option value (Literal choices, both booleans, a number other than the
  default), continuing exactly;
* a policy written in one new file with one ``@register`` line runs through ``simulate``, an
  experiment file and save/load;
* rules never probe models, and ``src/mixedts`` has no import cycle.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import typing
from pathlib import Path

import numpy as np
import pytest

import mixedts
from builders import assert_same_state, snapshot
from mixedts.environments import MixedEffectEnvironment
from mixedts.evaluation import PolicySpec, load_experiment, simulate
from mixedts.models.base import MODELS, Draw, Model, summarise
from mixedts.policies import POLICIES, ContextFreeBandit, ContextualBandit
from mixedts.policies.registry import ConfigError, options_of, policy_class

SRC = Path(mixedts.__file__).resolve().parent
HORIZON = 30


def env_for(kind: str) -> MixedEffectEnvironment:
    """A small Bernoulli environment: 0/1 rewards suit every registered policy."""
    return MixedEffectEnvironment(6, 2, 2, reward="logistic", contexts="pool", seed=4)


def play(policy, env, rng, n=8):
    spec_policy = policy
    for _ in range(n):
        x = env.context(rng)
        if isinstance(spec_policy, ContextFreeBandit):
            a = spec_policy.select()
            spec_policy.update(a, env.draw_reward(x, a, rng))
        else:
            a = spec_policy.select(x)
            spec_policy.update(x, a, env.draw_reward(x, a, rng))


def option_values(cls) -> list[dict]:
    """One option set per value worth trying: every Literal choice, both booleans, and a
    number that is not the default; options whose default is None are also set."""
    hints = typing.get_type_hints(cls.from_environment, include_extras=True)
    out = [{}]
    for name, (_, default) in options_of(cls).items():
        tp = hints[name]
        while typing.get_origin(tp) is typing.Annotated:
            tp = typing.get_args(tp)[0]
        args = typing.get_args(tp) if typing.get_origin(tp) in (typing.Union,
                                                                 __import__("types").UnionType) \
            else (tp,)
        values = []
        for t in args:
            t0 = typing.get_args(t)[0] if typing.get_origin(t) is typing.Annotated else t
            if typing.get_origin(t0) is typing.Literal:
                values += list(typing.get_args(t0))
            elif t0 is bool:
                values += [True, False]
            elif t0 in (int, float):
                base = default if isinstance(default, (int, float)) and default else 1
                values.append(t0(base * 2) if t0 is int else 0.5 * base)
        for v in values:
            if v != default:
                out.append({name: v})
    return out


def special(kind: str, options: dict) -> dict:
    """Options that need a partner to be valid (the rest come from option_values)."""
    if kind == "LinUCB" and options.get("width") == "abbasi-yadkori":
        return {**options, "prior": "ridge"}
    if kind == "DiffusionTS" and options.get("prior") == "fitted":
        return {**options, "fit_steps": 20, "fit_layers": 4, "fit_hidden": 8}
    if kind == "HierTS" and options.get("structure"):
        return {}
    if options.get("structure"):
        return {k: v for k, v in options.items() if k != "structure"}
    return options


CASES = [(kind, opts) for kind in sorted(POLICIES) if kind in (
    "BernoulliTS", "DiffusionTS", "EXP4", "EpsilonGreedyExperts", "FactoredMeTS", "GLMTS",
    "GaussianTS", "GeneralizedTS", "HierTS", "JointTS", "KLUCB", "LinTS", "LinUCB", "MeTS",
    "UCB1", "UCBGLM")
    for opts in option_values(POLICIES[kind])]


def test_every_builtin_policy_is_registered_and_covered():
    builtin = {"BernoulliTS", "DiffusionTS", "EXP4", "EpsilonGreedyExperts", "FactoredMeTS",
               "GLMTS", "GaussianTS", "GeneralizedTS", "HierTS", "JointTS", "KLUCB", "LinTS",
               "LinUCB", "MeTS", "UCB1", "UCBGLM"}
    assert builtin <= set(POLICIES)
    assert {kind for kind, _ in CASES} == builtin
    for kind in builtin:  # the public names are the registered classes
        assert getattr(mixedts, kind) is POLICIES[kind]


@pytest.mark.parametrize("kind,options", CASES,
                         ids=[f"{k}-{'-'.join(f'{a}={b}' for a, b in o.items()) or 'default'}"
                              for k, o in CASES])
def test_save_load_round_trip_for_every_option_value(kind, options, tmp_path):
    env = env_for(kind)
    options = special(kind, options)
    spec = PolicySpec(kind, options, horizon=HORIZON)
    policy = spec(env, np.random.default_rng(1))
    assert type(policy) is POLICIES[kind]
    rng = np.random.default_rng(2)
    play(policy, env, rng)
    path = tmp_path / "p.npz"
    policy.save(path)
    loaded = mixedts.load(path)
    assert type(loaded) is type(policy)
    assert_same_state(snapshot(policy), snapshot(loaded))
    # both continue identically: the same decisions and the same posterior afterwards
    play(policy, env, np.random.default_rng(3))
    play(loaded, env, np.random.default_rng(3))
    assert_same_state(snapshot(policy), snapshot(loaded))


def test_option_values_cover_the_known_choices():
    kinds = {k for k, _ in CASES}
    seen = {(k, name, v) for k, o in CASES for name, v in o.items()}
    assert ("UCBGLM", "score", "probability") in seen
    assert ("LinTS", "laplace_at", "likelihood") in seen
    assert ("BernoulliTS", "optimistic", True) in seen
    assert "GeneralizedTS" in kinds


def test_options_come_from_the_signature():
    opts = options_of(POLICIES["HierTS"])
    assert {"effect_cov_scale", "action_cov", "likelihood", "structure"} <= set(opts)
    with pytest.raises(ConfigError, match=r"^policy\.action_cov: expected one of"):
        PolicySpec("HierTS", {"action_cov": "joint"})
    with pytest.raises(ConfigError, match=r"^policy\.ridge: expected a positive number"):
        PolicySpec("MeTS", {"ridge": 0})
    with pytest.raises(ConfigError, match=r"^policy\.alpha: expected"):
        PolicySpec("LinUCB", {"alpha": "wide"})
    with pytest.raises(ConfigError, match=r"^policy\.type: unknown policy 'Nope'"):
        policy_class("Nope")
    with pytest.raises(ConfigError, match=r"^policy\.n_experts: expected an integer >= 1"):
        PolicySpec("GeneralizedTS", {"n_experts": 0})


# ---------------------------------------------------------------------------- models
def _models():
    env = env_for("any")
    rng = np.random.default_rng(0)
    seen = {}
    for kind in sorted(POLICIES):
        for opts in ({}, {"diagonal": True}) if kind == "GLMTS" else ({},):
            policy = PolicySpec(kind, opts, horizon=HORIZON)(env, rng)
            play(policy, env, rng, 3)
            seen.setdefault(type(policy.model).__name__, policy)
    # MeTS on a general linear effect structure (no environment offers one): sDM's prior
    loadings = np.random.default_rng(1).uniform(-1, 1, (env.n_actions, env.dim, 3))
    linear = mixedts.MeTS(mixedts.LinearEffectPrior(np.zeros(3), np.eye(3), loadings,
                                                    np.eye(env.dim)), seed=0)
    play(linear, env, rng, 3)
    seen.setdefault(type(linear.model).__name__, linear)
    return seen


def test_every_registered_model_satisfies_the_protocol_and_its_draws():
    built = _models()
    assert set(MODELS) <= set(built), f"no policy builds {set(MODELS) - set(built)}"
    env = env_for("any")
    for name, policy in built.items():
        model = policy.model
        assert MODELS[name] is type(model)
        assert isinstance(model, Model), name
        for method in ("update", "update_batch"):  # the protocol's rng keyword is accepted
            assert "rng" in inspect.signature(getattr(model, method)).parameters, (name, method)
        assert callable(type(model).from_state)
        K = model.n_actions
        x = None if model.dim == 0 else env.context(np.random.default_rng(1))
        active = np.ones(K, dtype=bool)
        for draw in model.draws:  # every declared summary works and has its shape
            out = summarise(model, draw, x, np.random.default_rng(2), 5, active)
            if draw in (Draw.SAMPLE, Draw.MEAN, Draw.LEADER):
                assert np.shape(out) == (K,), (name, draw)
            elif draw in (Draw.MEAN_STD, Draw.MEAN_STD_COUNT, Draw.INDEX):
                assert all(np.shape(p) == (K,) for p in out), (name, draw)
            elif draw is Draw.SAMPLES:
                assert np.shape(out) == (5, K), (name, draw)
            elif draw is Draw.SAMPLES_MEAN:
                assert np.shape(out[0]) == (5, K) and np.shape(out[1]) == (K,)
            elif draw is Draw.ARGMAX:
                assert np.shape(out) == (5,) and np.all((out >= 0) & (out < K))
        cfg, arrays = model.get_state()
        again = type(model).from_state(cfg, arrays)
        assert again.get_state()[0] == cfg


def test_a_rule_the_model_cannot_serve_is_refused():
    from mixedts.rules import ThompsonSampling

    ucbglm = mixedts.UCBGLM(3, 2)
    with pytest.raises(mixedts.ValidationError, match="needs the 'sample' summary"):
        ContextualBandit(ucbglm.model, ThompsonSampling())


# ---------------------------------------------------------------------------- one new file
TOY = '''
"""A toy policy: the greedy rule on a per-action Gaussian posterior (one file)."""
import numpy as np

from mixedts import ContextualBandit, register
from mixedts.models.independent import IndependentGaussianModel
from mixedts.rules import Greedy


@register
class ToyGreedy(ContextualBandit):
    def __init__(self, n_actions, dim, prior_var=1.0, seed=None):
        model = IndependentGaussianModel(np.zeros((n_actions, dim)), prior_var * np.eye(dim))
        super().__init__(model, Greedy(), seed)

    @classmethod
    def from_environment(cls, environment, seed=None, horizon=None, *, prior_var: float = 1.0):
        return cls(environment.n_actions, environment.dim, prior_var, seed)
'''


def test_a_policy_in_one_new_file_with_one_registration_line(tmp_path):
    path = tmp_path / "toy_policy.py"
    path.write_text(TOY)
    spec = importlib.util.spec_from_file_location("toy_policy", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        assert POLICIES["ToyGreedy"] is module.ToyGreedy
        env = MixedEffectEnvironment(8, 2, 2, contexts="pool", seed=0)
        # simulate
        res = simulate(env, {"toy": PolicySpec("ToyGreedy", {"prior_var": 2.0}),
                             "lin": PolicySpec("LinTS")}, 40, 2, seed=0, quiet=True)
        assert set(res.policies) == {"toy", "lin"} and res.horizon == 40
        # an experiment file
        (tmp_path / "toy.toml").write_text(
            'horizon = 20\nruns = 2\n[environment]\ntype = "mixed-effect"\nn_actions = 5\n'
            'dim = 2\n[policies.toy]\ntype = "ToyGreedy"\nprior_var = 0.5\n')
        exp = load_experiment(tmp_path / "toy.toml")
        assert exp.run(quiet=True).n_runs == 2
        (tmp_path / "bad.toml").write_text(
            (tmp_path / "toy.toml").read_text().replace("prior_var = 0.5", 'prior_var = "x"'))
        with pytest.raises(ConfigError, match=r"^policies\.toy\.prior_var: expected a number"):
            load_experiment(tmp_path / "bad.toml")
        # save/load
        policy = PolicySpec("ToyGreedy")(env, np.random.default_rng(0))
        play(policy, env, np.random.default_rng(1))
        policy.save(tmp_path / "toy.npz")
        loaded = mixedts.load(tmp_path / "toy.npz")
        assert type(loaded) is module.ToyGreedy
        assert_same_state(snapshot(policy), snapshot(loaded))
    finally:
        POLICIES.pop("ToyGreedy", None)


# ---------------------------------------------------------------------------- structure
def test_rules_never_probe_a_model():
    tree = ast.parse((SRC / "rules.py").read_text())
    calls = {n.func.id for n in ast.walk(tree)
             if isinstance(n, ast.Call) and isinstance(n.func, ast.Name)}
    assert not {"hasattr", "getattr"} & calls
    imports = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)]
    assert all(not (n.module or "").startswith(("policies", "evaluation")) for n in imports)


def _import_graph(root: Path) -> dict[str, set[str]]:
    """Module-level imports among the package's modules (function-level ones are lazy)."""
    mods = {}
    for f in root.rglob("*.py"):
        parts = f.relative_to(root.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        mods[name] = f
    graph = {m: set() for m in mods}
    for m, f in mods.items():
        package = m if f.name == "__init__.py" else m.rsplit(".", 1)[0]
        stack = list(ast.parse(f.read_text()).body)
        while stack:
            node = stack.pop()
            if isinstance(node, (ast.If, ast.Try)):
                stack.extend(ast.iter_child_nodes(node))
            if not isinstance(node, (ast.Import, ast.ImportFrom)):
                continue
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            else:
                base = package
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
                target = f"{base}.{node.module}" if node.level and node.module else \
                    (base if node.level else node.module or "")
                targets = [target] + [f"{target}.{a.name}" for a in node.names]
            for t in targets:
                if t in mods and t != m and not m.startswith(t + "."):
                    graph[m].add(t)
    return graph


def test_no_import_cycle():
    graph = _import_graph(SRC)
    state: dict[str, int] = {}
    cycles = []

    def visit(m, path):
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycles.append([*path[path.index(t):], t])
            elif t not in state:
                visit(t, [*path, t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert not cycles, cycles
    # the layers run one way: models never import rules or policies, rules never policies
    for m, targets in graph.items():
        if m.startswith("mixedts.models"):
            assert not {t for t in targets if t.startswith(("mixedts.rules",
                                                              "mixedts.policies"))}, m
        if m == "mixedts.rules":
            assert not {t for t in targets if t.startswith("mixedts.policies")}
