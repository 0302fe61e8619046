"""MkDocs hooks of the mixedts site (mkdocs.yml ``hooks:``).

* Math is rendered at build time: ``pymdownx.arithmatex`` (generic mode) marks every ``$…$``
  and ``$$…$$``, and :func:`on_page_content` replaces each mark by MathML from the
  ``latex2mathml`` library, which browsers draw natively. No math JavaScript is loaded, so the
  site works offline and its pages raise no console error.
* The tutorials' executed code imports ``docs_figures`` (this folder) to save its figures into
  the built site.
* Citations of the derivations in docstrings and pages, ``docs/math.md §3`` (or ``§3``
  after ``math.md``), become links to that section of the Math page.
"""

from __future__ import annotations

import html
import posixpath
import re
from pathlib import Path

from latex2mathml.converter import convert

_INLINE = re.compile(r'<span class="arithmatex">\\\((.+?)\\\)</span>', re.S)
_BLOCK = re.compile(r'<div class="arithmatex">\\\[(.+?)\\\]</div>', re.S)
_CITE = re.compile(r"docs/math\.md §(\d)")
_HEADING = re.compile(r"^## (\d)\. (.+)$", re.M)
_anchors: dict[str, str] = {}


def on_config(config):
    """Read the Math page's anchors; let the tutorials' code import ``docs_figures``."""
    import os
    import sys

    from markdown.extensions.toc import slugify

    here = os.path.dirname(os.path.abspath(__file__))
    if here not in sys.path:
        sys.path.insert(0, here)
    import docs_figures

    docs_figures.SITE_DIR = Path(config["site_dir"])
    os.environ.setdefault("MPLBACKEND", "Agg")

    with open(posixpath.join(config["docs_dir"], "math.md"), encoding="utf-8") as f:
        text = f.read()
    _anchors.clear()
    for number, title in _HEADING.findall(text):
        _anchors[number] = slugify(f"{number}. {title}", "-")
    return config


def on_page_markdown(markdown, page, config, files):
    """Tell ``docs_figures.show`` which page is being rendered (for relative image links)."""
    import docs_figures

    docs_figures.PAGE_URL = page.url
    return markdown


def _math(match: re.Match, display: str) -> str:
    return convert(html.unescape(match.group(1)), display=display)


def on_page_content(content, page, config, files):
    """MathML for the marked math; links for the citations of docs/math.md sections."""
    content = _BLOCK.sub(lambda m: _math(m, "block"), content)
    content = _INLINE.sub(lambda m: _math(m, "inline"), content)
    target = posixpath.relpath("math/", page.url) + "/" if page.url else "math/"

    def link(m: re.Match) -> str:
        anchor = _anchors.get(m.group(1))
        if anchor is None:
            return m.group(0)
        return f'<a href="{target}#{anchor}">{m.group(0)}</a>'

    if page.file.src_uri != "math.md":
        content = _CITE.sub(link, content)
    return content
