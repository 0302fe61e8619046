"""The status page at ``/``: plain server-rendered HTML with an inline SVG chart, no front-end
build, refreshing itself every few seconds.

It shows what this process counted since it started: decisions and rewards in the last minute,
decisions and the mean reward per 10-second slot over the last 10 minutes (the chart), the most
chosen actions with their posterior mean score and 95 % interval at the mean recent context,
pending events, model version and last snapshot.
"""

from __future__ import annotations

import datetime
import html
import time

import numpy as np

from ..models.base import Draw

REFRESH_SECONDS = 5
WIDTH, HEIGHT, PAD = 640, 220, 36
#: slots the chart shows (60 ten-second slots: the last 10 minutes)
CHART_SLOTS = 60


def gather(state) -> dict:
    """The page's numbers (run in the state thread: it reads the posterior)."""
    now = time.time()
    slots = state.stats.slots(now, CHART_SLOTS)
    per_minute = state.stats.last_minute(now)
    top = state.stats.most_chosen(10)
    model = state.core.model
    x = None if state.core.dim == 0 else state.stats.mean_context()
    rows = []
    if top and Draw.MEAN_STD in model.draws and (x is not None or state.core.dim == 0):
        mean, std = np.asarray(model.mean_scores(x)), np.asarray(model.score_std(x))
        rows = [(a, n, float(mean[a]), float(mean[a] - 1.96 * std[a]),
                 float(mean[a] + 1.96 * std[a])) for a, n in top if a < len(mean)]
    else:
        rows = [(a, n, None, None, None) for a, n in top]
    info = state.store.snapshot_info()
    return {
        "now": now, "slots": slots, "slot": state.stats.slot, "top": rows,
        "role": state.settings.role,
        "policy": type(state.policy).__name__, "n_actions": int(state.core.n_actions),
        "active": int(np.count_nonzero(state.core.active)), "version": state.version,
        "pending": len(state.pending), "decisions_per_minute": per_minute[0],
        "rewards_per_minute": per_minute[1], "decisions": state.stats.total_decisions,
        "rewards": state.stats.total_rewards,
        "snapshot": None if info is None else {"lsn": info[0], "created": info[1]},
        "context": None if x is None else [round(float(v), 3) for v in x],
    }


def _when(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime(
        "%Y-%m-%d %H:%M:%S UTC")


def chart(slots: list, width: float) -> str:
    """Inline SVG: decisions per slot (bars, left scale) and mean reward (line, right scale)
    from the slots (start, decisions, rewards, mean reward or None), oldest first, placed on a
    fixed axis of CHART_SLOTS slots of ``width`` seconds that ends with the newest."""
    n = CHART_SLOTS
    inner_w, inner_h = WIDTH - 2 * PAD, HEIGHT - 2 * PAD
    top_dec = max([*(m[1] for m in slots), 1])
    rates = [m[3] for m in slots if m[3] is not None]
    lo, hi = min([*rates, 0.0]), max([*rates, 1.0])
    hi = hi if hi > lo else lo + 1.0
    bw = inner_w / n
    offset = n - len(slots)
    end_t = slots[-1][0] if slots else 0.0
    parts = [f'<svg id="reward-chart" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
             f'height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
             'aria-label="decisions and mean reward per slot">',
             f'<rect x="{PAD}" y="{PAD}" width="{inner_w}" height="{inner_h}" fill="#fafafa" '
             'stroke="#ccc"/>']
    points = []
    for i, (_, dec, _rew, rate) in enumerate(slots, start=offset):
        h = inner_h * dec / top_dec
        parts.append(f'<rect class="bar" x="{PAD + i * bw + 1:.1f}" y="{PAD + inner_h - h:.1f}" '
                     f'width="{max(bw - 2, 1):.1f}" height="{h:.1f}" fill="#c6dbef"/>')
        if rate is not None:
            y = PAD + inner_h * (1 - (rate - lo) / (hi - lo))
            points.append(f"{PAD + (i + 0.5) * bw:.1f},{y:.1f}")
    if points:
        parts.append(f'<polyline id="reward-rate" points="{" ".join(points)}" fill="none" '
                     'stroke="#d94801" stroke-width="2"/>')
        parts += [f'<circle cx="{p.split(",")[0]}" cy="{p.split(",")[1]}" r="3" '
                  'fill="#d94801"/>' for p in points]
    parts += [f'<text x="4" y="{PAD + 4}" font-size="11">{top_dec}</text>',
              f'<text x="4" y="{PAD + inner_h}" font-size="11">0</text>',
              f'<text x="{WIDTH - PAD + 2}" y="{PAD + 4}" font-size="11" '
              f'fill="#d94801">{hi:.2f}</text>',
              f'<text x="{WIDTH - PAD + 2}" y="{PAD + inner_h}" font-size="11" '
              f'fill="#d94801">{lo:.2f}</text>',
              f'<text x="{PAD}" y="{PAD + inner_h + 14}" font-size="11">'
              f'{_clock(end_t - (n - 1) * width)}</text>',
              f'<text x="{PAD + inner_w}" y="{PAD + inner_h + 14}" font-size="11" '
              f'text-anchor="end">{_clock(end_t)}</text>',
              f'<text x="{PAD}" y="{HEIGHT - 6}" font-size="11">bars: decisions per slot '
              '(left scale); line: mean reward (right scale)</text>', "</svg>"]
    return "".join(parts)


def _clock(t: float) -> str:
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%H:%M:%S")


def _num(v, fmt: str = "{:.3f}") -> str:
    return "—" if v is None else fmt.format(v)


def render(data: dict) -> str:
    """The page's HTML."""
    e = html.escape
    snap = data["snapshot"]
    snap_text = "none" if snap is None else f"version {snap['lsn']} at {_when(snap['created'])}"
    rows = "".join(
        f'<tr><td>{a}</td><td>{n}</td><td class="mean">{_num(m)}</td>'
        f"<td>[{_num(lo)}, {_num(hi)}]</td></tr>" for a, n, m, lo, hi in data["top"]
    ) or '<tr><td colspan="4">no decisions yet</td></tr>'
    at = "" if data["context"] is None else f" at the mean recent context {data['context']}"
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<title>mixedts service: {e(data['policy'])}</title>
<style>body{{font-family:sans-serif;margin:1.5em;color:#222}}
table{{border-collapse:collapse}}td,th{{padding:.2em .8em;border-bottom:1px solid #ddd;
text-align:right}}th{{background:#f0f0f0}}.k{{text-align:left;color:#555}}</style>
</head><body>
<h1>mixedts decision service</h1>
<p>{e(data['policy'])} · role {e(data['role'])} · {data['active']} of {data['n_actions']} actions
active · page of {_when(data['now'])}, refreshes every {REFRESH_SECONDS} s</p>
<table id="numbers">
<tr><td class="k">decisions in the last minute</td><td id="decisions-per-minute">{
    data['decisions_per_minute']}</td></tr>
<tr><td class="k">rewards in the last minute</td><td id="rewards-per-minute">{
    data['rewards_per_minute']}</td></tr>
<tr><td class="k">decisions / rewards since start</td><td id="totals">{data['decisions']} / {
    data['rewards']}</td></tr>
<tr><td class="k">pending events</td><td id="pending">{data['pending']}</td></tr>
<tr><td class="k">model version</td><td id="model-version">{data['version']}</td></tr>
<tr><td class="k">last snapshot</td><td id="snapshot">{e(snap_text)}</td></tr>
</table>
<h2>Decisions and reward rate ({data['slot']:g}-second slots, UTC)</h2>
{chart(data['slots'], data['slot'])}
<h2>Most chosen actions</h2>
<p>Posterior mean score and 95 % interval{e(at)}.</p>
<table id="top-actions"><tr><th>action</th><th>chosen</th><th>mean</th><th>interval</th></tr>
{rows}</table>
</body></html>
"""
