"""The status page at / in a real headless browser (Debian's chromium): the numbers and the
reward-rate chart render against a running service (the screenshot is kept in the test's
folder, and its path printed)."""

from __future__ import annotations

import re
import shutil
import subprocess
import time

import numpy as np
import pytest

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

from mixedts.service import stats  # noqa: E402
from service_helpers import D, ThreadServer, small_policy, sqlite_url  # noqa: E402

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--hide-scrollbars"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("no chromium on this machine (apt-get install -y chromium)")


def browse(tmp_path, url: str, *args: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"profile-{len(list(tmp_path.iterdir()))}"
    return subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *args, url],
                          capture_output=True, text=True, timeout=90)


def test_status_page_renders_numbers_and_chart_in_chromium(tmp_path, monkeypatch):
    monkeypatch.setattr(stats, "SLOT", 0.5)  # half-second slots: a line within the test
    rng = np.random.default_rng(0)
    with ThreadServer(small_policy(), sqlite_url(tmp_path), seed=0) as srv, \
            httpx.Client(base_url=srv.url, timeout=10) as c:
        events = []
        for i in range(12):  # over about two seconds: several slots
            events.append(c.post("/rank", json={"context": rng.normal(size=D).tolist()}).json())
            if i % 2 == 0:
                c.post("/reward", json={"event_id": events[-1]["event_id"],
                                        "reward": float(rng.random())})
            time.sleep(0.2)
        top = max({e["action"] for e in events}, key=[e["action"] for e in events].count)
        dom = browse(tmp_path, srv.url + "/", "--dump-dom")
        shot = tmp_path / "status.png"
        png = browse(tmp_path, srv.url + "/", f"--screenshot={shot}", "--window-size=900,1100")
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    number = lambda key: re.search(rf'id="{key}">([^<]*)<', html).group(1).strip()  # noqa: E731
    assert number("totals") == "12 / 6"
    assert number("pending") == "6" and number("model-version") == "6"
    assert number("decisions-per-minute") == "12" and number("rewards-per-minute") == "6"
    assert re.fullmatch(r"version [0-6] at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC",
                        number("snapshot"))
    assert re.search(r'<meta http-equiv="refresh" content="\d+">', html)
    chart = re.search(r'<svg id="reward-chart".*?</svg>', html, re.S).group(0)
    line = re.search(r'<polyline id="reward-rate" points="([^"]*)"', chart).group(1)
    assert len(line.split()) >= 3 and chart.count('class="bar"') >= 3
    table = re.search(r'<table id="top-actions">.*?</table>', html, re.S).group(0)
    first = re.findall(r"<tr><td>(\d+)</td><td>(\d+)</td><td class=\"mean\">(-?[\d.]+)</td>",
                       table)
    assert int(first[0][0]) == top and float(first[0][2]) == float(first[0][2])  # a number
    # the picture: the reward line's colour is on the rendered page
    assert png.returncode == 0 and shot.exists(), png.stderr[-2000:]
    from matplotlib.image import imread

    pixels = (imread(shot)[..., :3] * 255).round()
    orange = np.all(np.abs(pixels - [217, 72, 1]) < 12, axis=-1)
    blue = np.all(np.abs(pixels - [198, 219, 239]) < 6, axis=-1)
    assert orange.sum() > 50 and blue.sum() > 50, (orange.sum(), blue.sum())
    print(f"screenshot: {shot}")
