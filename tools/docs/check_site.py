#!/usr/bin/env python
"""Check the built site (``make docs`` runs this after ``mkdocs build --strict``).

1. **Reference coverage.** Every public name of mixedts (``tools/docs/gen_reference.py``'s
   :func:`public_names`) has an entry in the site's ``objects.inv`` (what mkdocstrings
   rendered), under its own or its canonical name.
2. **Links.** LinkChecker crawls ``site/index.html`` and every page it reaches: each internal
   link, anchor-free, and each image must resolve (external URLs are not fetched: the site
   must work offline).
3. **A real browser.** ``site/`` is served on 127.0.0.1 (a free port) and headless Chromium
   (Debian's ``chromium``, driven by Playwright with ``executable_path``; no browser download)
   opens the home page, one tutorial and one API page. A page fails on a JavaScript console
   error or uncaught exception, a blank body, or an image that did not load. Screenshots are
   kept in ``site/_checks/`` as build output.

Usage: ``python tools/docs/check_site.py [--site site] [--skip-browser]``. Exit status 1 with
one line per failure.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import socket
import subprocess
import sys
import threading
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAGES = ("index.html", "tutorials/clicks/index.html", "reference/api/policies/index.html")
CHROMIUM = ("/usr/bin/chromium", "/usr/bin/chromium-browser")
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def inventory(site: Path) -> set[str]:
    """The object names of a Sphinx v2 ``objects.inv`` (mkdocstrings writes one)."""
    raw = (site / "objects.inv").read_bytes()
    body = raw.split(b"\n", 4)[4]  # four header lines, then zlib
    return {line.split(" ", 1)[0] for line in zlib.decompress(body).decode().splitlines()
            if line.strip()}  # fmt: skip


def check_reference(site: Path) -> list[str]:
    sys.path.insert(0, str(HERE))
    from gen_reference import _same, public_names

    names = inventory(site)
    by_short: dict[str, list[str]] = {}
    for n in names:
        by_short.setdefault(n.rsplit(".", 1)[-1], []).append(n)
    missing = []
    for full in sorted(public_names()):
        short = full.rsplit(".", 1)[1]
        if full in names or any(_same(o, full) for o in by_short.get(short, ())):
            continue
        missing.append(f"reference: {full} has no entry in the API reference")
    return missing


def check_links(site: Path) -> list[str]:
    cmd = [sys.executable, "-m", "linkcheck", "--no-status", "--no-warnings", "--recursion-level",
           "-1", "--ignore-url", r"^https?://", "--ignore-url", r"^mailto:",
           str(site / "index.html")]  # fmt: skip
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except FileNotFoundError:
        return ["links: LinkChecker is not installed (pip install linkchecker)"]
    if out.returncode == 0:
        return []
    return [f"links: {line}" for line in (out.stdout + out.stderr).splitlines()
            if line.startswith(("URL", "Parent URL", "Result", "Real URL"))] or [
        f"links: linkchecker exited {out.returncode}:\n{out.stdout[-2000:]}{out.stderr[-2000:]}"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_browser(site: Path) -> list[str]:
    chromium = next((c for c in CHROMIUM if Path(c).is_file()), None)
    if chromium is None:
        return ["browser: no Chromium at /usr/bin/chromium (apt-get install chromium)"]
    from playwright.sync_api import sync_playwright

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args) -> None:  # no access log on the console
            pass

    handler = functools.partial(Quiet, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", _free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}/"
    shots = site / "_checks"
    shots.mkdir(exist_ok=True)
    failures: list[str] = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=FLAGS, headless=True)
            for page_path in PAGES:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                errors: list[str] = []
                page.on("console", lambda m, e=errors: e.append(m.text)
                        if m.type == "error" else None)  # fmt: skip
                page.on("pageerror", lambda exc, e=errors: e.append(str(exc)))
                page.on("requestfailed", lambda r, e=errors: e.append(f"failed request {r.url}"))
                url = base + page_path.removesuffix("index.html")
                page.goto(url, wait_until="networkidle", timeout=30_000)
                text = page.inner_text("body").strip()
                broken = page.eval_on_selector_all(
                    "img", "els => els.filter(i => !i.complete || i.naturalWidth === 0)"
                           ".map(i => i.getAttribute('src'))")  # fmt: skip
                name = page_path.replace("/", "_").removesuffix(".html")
                page.screenshot(path=str(shots / f"{name}.png"), full_page=False)
                if len(text) < 200:
                    failures.append(f"browser: {url} looks blank ({len(text)} characters)")
                failures += [f"browser: {url} image did not load: {src}" for src in broken]
                failures += [f"browser: {url} console: {e}" for e in errors]
                page.close()
            browser.close()
    finally:
        server.shutdown()
    return failures


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--site", type=Path, default=Path("site"))
    ap.add_argument("--skip-browser", action="store_true")
    args = ap.parse_args(argv)
    if not (args.site / "index.html").is_file():
        print(f"no {args.site}/index.html: run mkdocs build first", file=sys.stderr)
        return 1
    failures = check_reference(args.site) + check_links(args.site)
    if not args.skip_browser:
        failures += check_browser(args.site)
    for f in failures:
        print(f, file=sys.stderr)
    print(f"site check: {'FAILED' if failures else 'ok'} ({len(failures)} problem(s); "
          f"screenshots in {args.site / '_checks'})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
