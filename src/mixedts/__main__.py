"""``mixedts`` / ``python -m mixedts``: the full command line where its extra is installed,
else the core one (``--help``, ``version``, ``demo``) that needs numpy and scipy alone."""

from __future__ import annotations

import importlib.util
import sys

#: what the full command line needs (the 'experiments' extra)
FULL = ("typer", "rich", "pandas", "pyarrow", "joblib", "matplotlib")


def has_extra() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in FULL)


def main(argv: list[str] | None = None) -> int:
    if has_extra():
        from .cli import app

        app(args=argv)
        return 0
    from .cli_core import main as core_main

    return core_main(sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
