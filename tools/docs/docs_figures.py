"""Figures of the tutorials: ``show(fig, name)`` in a page's executed code (markdown-exec).

The site's hooks (``tools/docs/hooks.py``) set :data:`SITE_DIR` and :data:`PAGE_URL` before a
page is rendered; ``show`` writes the matplotlib figure to ``site/figures/NAME.png`` and prints
the ``<img>`` tag that points at it from the page, so every tutorial's figure is a real file of
the built site, made while its code ran. The tag goes through the *calling page's* ``print``
(markdown-exec captures a page's output by giving its code its own ``print``).
"""

from __future__ import annotations

import posixpath
import sys
from pathlib import Path

SITE_DIR = Path("site")
PAGE_URL = ""


def show(fig, name: str, alt: str = "") -> None:
    """Save ``fig`` as ``figures/NAME.png`` in the site and print its ``<img>`` tag."""
    import matplotlib.pyplot as plt

    target = SITE_DIR / "figures" / f"{name}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(target, dpi=110, bbox_inches="tight")
    plt.close(fig)
    _emit(name, alt)


def _emit(name: str, alt: str) -> None:
    src = posixpath.relpath(f"figures/{name}.png", PAGE_URL or ".")
    page_print = sys._getframe(2).f_globals.get("print", print)
    page_print(f'<img src="{src}" alt="{alt or name}" class="tutorial-figure">')


def show_file(path, name: str, alt: str = "") -> None:
    """Copy a PNG the code wrote (``Results.plot``, …) into the site and print its tag."""
    import shutil

    target = SITE_DIR / "figures" / f"{name}.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(path, target)
    _emit(name, alt)
