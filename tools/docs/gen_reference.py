"""Generate the site's reference pages at build time (mkdocs-gen-files runs this file).

* ``reference/api/*.md``: one page per part of the package; each public name (the ``__all__``
  of :mod:`mixedts`, of its subpackages and of the modules that declare one) gets a
  mkdocstrings entry. :func:`public_names` and :data:`API_PAGES` are what
  ``tests/test_docs_reference.py`` checks: every public name is on a page.
* ``reference/cli.md``: typer's own Markdown of the ``mixedts`` command line (``typer ... utils
  docs``), from the app itself, not hand-copied.
* ``benchmarks.md``: the reports of ``benchmarks/``, with the date and machine of each.
* ``reference/experiment-files.md``: the experiment-file schema, from the policy registry
  (every registered policy's options, their types and defaults) and from the environment
  tables of :mod:`mixedts.evaluation.config`, so that it cannot drift from the code.

Run directly (``python tools/docs/gen_reference.py``) it prints the pages instead.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
import typing
from collections.abc import Iterator

#: page → (title, introduction, modules whose public names it documents)
API_PAGES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "policies": ("Policies", "What users hold: `select`, `update`, `save`, … "
                 "(`mixedts.policies`).", ("mixedts.policies",)),
    "priors": ("Priors and structure", "Mixed-effect and linear-effect priors, and learning a "
               "structure from data (`mixedts.structure`).",
               ("mixedts.priors", "mixedts.priors_linear", "mixedts.priors_diffusion",
                "mixedts.priors_diffusion_fit",
                "mixedts.structure")),
    "models": ("Models (posteriors)", "Posteriors that never choose (`mixedts.models`).",
               ("mixedts.models",)),
    "rules": ("Decision rules", "Rules turn a posterior summary into scores "
              "(`mixedts.rules`).", ("mixedts.rules",)),
    "offline": ("Logged data", "Off-policy evaluation and learning (`mixedts.offline`).",
                ("mixedts.offline",)),
    "environments": ("Environments", "Simulated and data-driven bandit problems "
                     "(`mixedts.environments`).", ("mixedts.environments",)),
    "evaluation": ("Experiments", "Simulation, experiment files and results "
                   "(`mixedts.evaluation`).", ("mixedts.evaluation",)),
    "datasets": ("Datasets", "MovieLens and the Open Bandit Dataset (`mixedts.datasets`).",
                 ("mixedts.datasets",)),
    "theory": ("Regret bounds", "The papers' bounds as functions (`mixedts.theory`).",
               ("mixedts.theory",)),
    "persistence": ("Save, load and errors", "No-pickle persistence and the error types.",
                    ("mixedts.persistence", "mixedts._validation")),
}
#: top-level names not in a page module's ``__all__``: name → (defining module, page)
HOME = {"load": ("mixedts.persistence", "persistence"),
        "CorruptFileError": ("mixedts.persistence", "persistence"),
        "ValidationError": ("mixedts._validation", "persistence"),
        "MixedEffectPrior": ("mixedts.priors", "priors"),
        "LinearEffectPrior": ("mixedts.priors_linear", "priors"),
        "LogisticExperts": ("mixedts.models.expert_sets", "policies"),
        "TableExperts": ("mixedts.models.expert_sets", "policies")}  # fmt: skip
#: optional parts, documented when their module imports (an extra that may be missing)
OPTIONAL_PAGES = {"service": ("Decision service", "The HTTP service (`mixedts.service`).",
                              ("mixedts.service",))}


def _optional_pages() -> dict[str, tuple[str, str, tuple[str, ...]]]:
    out = {}
    for page, (title, intro, modules) in OPTIONAL_PAGES.items():
        try:
            for m in modules:
                importlib.import_module(m)
        except ImportError:
            continue
        out[page] = (title, intro, modules)
    return out


def _module_names(module: str) -> list[str]:
    mod = importlib.import_module(module)
    names = getattr(mod, "__all__", None)
    if names is not None:
        return list(names)
    return [n for n, obj in vars(mod).items() if not n.startswith("_")
            and (inspect.isclass(obj) or inspect.isfunction(obj))
            and getattr(obj, "__module__", "") == module]  # fmt: skip


def public_names() -> set[str]:
    """Every public name: ``mixedts.X`` and ``mixedts.sub.X`` for each ``__all__`` entry."""
    import mixedts

    out = {f"mixedts.{n}" for n in mixedts.__all__}
    for info in pkgutil.iter_modules(mixedts.__path__, "mixedts."):
        if info.name.rsplit(".", 1)[1].startswith("_"):
            continue
        try:
            mod = importlib.import_module(info.name)
        except ImportError:  # an extra that is not installed
            continue
        out |= {f"{info.name}.{n}" for n in getattr(mod, "__all__", ())}
    return out


def page_entries() -> dict[str, list[str]]:
    """page → the identifiers it documents (``module.name``), in order."""
    pages = {**API_PAGES, **_optional_pages()}
    import mixedts

    out: dict[str, list[str]] = {p: [] for p in pages}
    for page, (_, _, modules) in pages.items():
        for module in modules:
            out[page] += [f"{module}.{n}" for n in _module_names(module)]
    placed = {e.rsplit(".", 1)[1] for entries in out.values() for e in entries}
    for name in mixedts.__all__:  # top-level names documented where they live
        if name not in placed and name in HOME:
            module, page = HOME[name]
            out[page].append(f"{module}.{name}")
    return out


def covered(entries: dict[str, list[str]]) -> set[str]:
    """The public names (as :func:`public_names` spells them) that ``entries`` document."""
    documented = {e for v in entries.values() for e in v}
    short = {e.rsplit(".", 1)[1] for e in documented}
    out = set()
    for full in public_names():
        name = full.rsplit(".", 1)[1]
        same_object = any(e.rsplit(".", 1)[1] == name and _same(e, full) for e in documented)
        if full in documented or (name in short and same_object):
            out.add(full)
    return out


def _resolve(identifier: str):
    module, name = identifier.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def _same(a: str, b: str) -> bool:
    try:
        x, y = _resolve(a), _resolve(b)
    except (ImportError, AttributeError):
        return False
    return x is y or (isinstance(x, (str, int, float, tuple, dict)) and x == y)


def api_pages() -> Iterator[tuple[str, str]]:
    pages = {**API_PAGES, **_optional_pages()}
    entries = page_entries()
    index = ["# API reference", "", "Every public name of `mixedts`, grouped as the package is.",
             ""]  # fmt: skip
    for page, (title, intro, _) in pages.items():
        index.append(f"- [{title}]({page}.md): {intro}")
        body = [f"# {title}", "", intro, ""]
        for identifier in entries[page]:
            body += [f"::: {identifier}", ""]
        yield f"reference/api/{page}.md", "\n".join(body)
    yield "reference/api/index.md", "\n".join(index) + "\n"


def cli_page() -> str:
    import click
    import typer
    from typer.cli import get_docs_for_click

    from mixedts.cli import app

    command = typer.main.get_command(app)
    docs = get_docs_for_click(obj=command, ctx=click.Context(command, info_name="mixedts"),
                              name="mixedts", title="Command line")  # fmt: skip
    note = ("Generated from the typer app at build time (`mixedts --help` prints the same). "
            "`pip install mixedts` alone gives `mixedts --help`, `version` and `demo`; the "
            "other commands need the `experiments` extra.\n\n")
    head, _, rest = docs.partition("\n\n")
    return f"{head}\n\n{note}{rest}"


def _type_name(tp) -> str:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        base, check = typing.get_args(tp)[:2]
        return f"{_type_name(base)}, {_expected(check)}"
    if origin is typing.Literal:
        return " \\| ".join(f'`"{a}"`' if isinstance(a, str) else f"`{a}`"
                            for a in typing.get_args(tp))  # fmt: skip
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        return " or ".join(_type_name(a) for a in typing.get_args(tp))
    if tp is type(None):
        return "unset"
    return getattr(tp, "__name__", str(tp))


def _expected(check) -> str:
    """What a schema checker accepts, in its own words (its error message on a bad value)."""
    for probe in (-10**9, object(), "not-a-value"):
        try:
            check(probe)
        except (ValueError, TypeError) as exc:
            text = str(exc)
            return text.split("expected ", 1)[1].split(", got")[0] if "expected " in text else text
    return "any"


def schema_page() -> str:
    from mixedts.evaluation import config
    from mixedts.evaluation.registry import REFERENCES
    from mixedts.policies.registry import POLICIES, options_of, policy_class

    policy_class("MeTS")  # the built-in policies register on import
    lines = ["# Experiment-file schema", "",
             "Generated at build time from the policy registry and the environment tables of "
             "`mixedts.evaluation.config`: it cannot drift from what `mixedts run` accepts. "
             "How to write and run a file: [Experiment files](../how-to/experiment-files.md).",
             "", "## Top level", "", "| key | accepts | required |", "|---|---|---|"]
    for key, check in config.TOP.items():
        lines.append(f"| `{key}` | {_expected(check)} | "
                     f"{'yes' if key in config.REQUIRED_TOP else ''} |")
    lines += ["| `[environment]` | a table, below | yes |",
              "| `[policies.NAME]` | a table per policy, below | yes |",
              "| `[reference.LABEL]` | policy name = published final regret | |", "",
              "## `[environment]`", "",
              "`type` picks the environment; `delay = δ` wraps it in delayed feedback.", ""]
    for kind, (cls, schema) in config.ENVIRONMENTS.items():
        lines += [f"### `type = \"{kind}\"`", "",
                  f"Builds `{cls.__module__.rsplit('._', 1)[0]}.{cls.__name__}`.", "",
                  "| key | accepts |", "|---|---|"]
        lines += [f"| `{k}` | {_expected(c)} |" for k, c in schema.items()]
        lines.append("")
    lines += ["## `[policies.NAME]`", "",
              "`type` names a registered policy (or a reference: "
              f"{', '.join(f'`{r}`' for r in sorted(REFERENCES))}); the other keys are its "
              "options, the keyword-only parameters of its `from_environment`.", ""]
    for name in sorted(POLICIES):
        cls = POLICIES[name]
        hints = typing.get_type_hints(cls.from_environment, include_extras=True)
        summary = (inspect.getdoc(cls) or "").split("\n\n")[0].replace("\n", " ")
        lines += [f"### `type = \"{name}\"`", "", summary, ""]
        options = options_of(cls)
        if not options:
            lines += ["No options.", ""]
            continue
        lines += ["| option | type | default |", "|---|---|---|"]
        for opt, (_, default) in options.items():
            lines.append(f"| `{opt}` | {_type_name(hints[opt])} | `{default!r}` |")
        lines.append("")
    return "\n".join(lines)


def http_page() -> str:
    intro = ["# HTTP API", "",
             "`mixedts serve` serves its OpenAPI schema at `/docs` (interactive) and "
             "`/openapi.json`. The schema of this version, generated from the app at build "
             "time, is [openapi.json](openapi.json); the guide is "
             "[the service page](../service.md).", ""]
    try:
        from mixedts.service.app import openapi_schema  # type: ignore[attr-defined]
    except ImportError:
        return "\n".join([*intro, "The service extra was not installed when this site was "
                           "built, so the endpoint table is missing.", ""])
    schema = openapi_schema()
    rows = ["| method | path | summary |", "|---|---|---|"]
    for path, ops in schema.get("paths", {}).items():
        for method, op in ops.items():
            rows.append(f"| `{method.upper()}` | `{path}` | {op.get('summary', '')} |")
    return "\n".join(intro + rows + [""])


def _measured(path) -> tuple[str, str]:
    """(date, machine) of a benchmark report: its own header lines, else its last commit."""
    import re
    import subprocess

    text = path.read_text(encoding="utf-8")
    date = re.search(r"^- date: (\S+)", text, re.M)
    machine = re.search(r"^- machine: (.+)$", text, re.M)
    if date is None:
        try:
            out = subprocess.run(["git", "log", "-1", "--format=%cs", "--", str(path)],
                                 capture_output=True, text=True, check=False).stdout.strip()
        except OSError:
            out = ""
        date = out or "unknown"
    else:
        date = date.group(1)[:10]
    return date, machine.group(1) if machine else "this project's 2-core x86_64 machine"


def benchmarks_page() -> str:
    """Every benchmark report of ``benchmarks/``, with the machine and date it was measured on."""
    from pathlib import Path

    reports = sorted(Path("benchmarks").glob("results*.md"))
    lines = ["# Benchmarks", "",
             "Measured with the scripts of `benchmarks/` (never with timed unit tests); ratios "
             "are measured in one run, since machines are noisy. `make bench` installs the peer "
             "libraries in `.venv-bench` only and runs the per-round and GLM benchmarks.", "",
             "| report | measured on | machine |", "|---|---|---|"]
    bodies = []
    for path in reports:
        text = path.read_text(encoding="utf-8")
        title = text.splitlines()[0].lstrip("# ").strip() if text else path.stem
        date, machine = _measured(path)
        anchor = path.stem.replace("_", "-")
        lines.append(f"| [{title}](#{anchor}) | {date} | {machine} |")
        body = "\n".join(("#" + line) if line.startswith("#") else line
                          for line in text.splitlines()[1:])  # fmt: skip
        bodies += [f"## {title} {{#{anchor}}}", "", f"`{path.as_posix()}`, measured on {date}.",
                   "", body, ""]
    return "\n".join([*lines, "", *bodies])


def main() -> None:
    import json

    import mkdocs_gen_files

    for path, text in api_pages():
        with mkdocs_gen_files.open(path, "w") as f:
            f.write(text)
    for path, text in (("reference/cli.md", cli_page()),
                       ("reference/experiment-files.md", schema_page()),
                       ("reference/http.md", http_page()),
                       ("benchmarks.md", benchmarks_page())):  # fmt: skip
        with mkdocs_gen_files.open(path, "w") as f:
            f.write(text)
    try:
        from mixedts.service.app import openapi_schema  # type: ignore[attr-defined]
    except ImportError:
        return
    with mkdocs_gen_files.open("reference/openapi.json", "w") as f:
        json.dump(openapi_schema(), f, indent=1)


if __name__ == "<run_path>":  # mkdocs-gen-files runs the file with runpy.run_path
    main()
elif __name__ == "__main__":
    sys.path.insert(0, "src")
    for path, text in api_pages():
        print(f"==> {path}\n{text}")
    print(cli_page())
    print(schema_page())
