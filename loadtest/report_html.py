"""A self-contained HTML report: the summary and line charts as inline SVG. No scripts, no CDN."""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from typing import Any

from .options import game_line
from .runner import summary_table

W, H = 720, 220  # chart size
ML, MR, MT, MB = 64, 16, 28, 30  # margins: left, right, top, bottom
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd")

Series = tuple[str, Sequence[tuple[float, float | None]]]


def nice_max(value: float) -> float:
    """A round axis maximum at or above ``value``."""
    if value <= 0:
        return 1.0
    scale = 10 ** len(str(int(value))) / 10
    for step in (1, 2, 2.5, 5, 10):
        if value <= step * scale:
            return step * scale
    return 10 * scale  # pragma: no cover


def line_chart(title: str, unit: str, series: Sequence[Series],
               shade: tuple[float, float] | None = None) -> str:
    """One SVG chart. ``None`` values leave gaps; ``shade`` marks the measurement window."""
    xs = [x for _, pts in series for x, _ in pts]
    ys = [y for _, pts in series for _, y in pts if y is not None]
    x0, x1 = (min(xs), max(xs)) if xs else (0.0, 1.0)
    x1 = max(x1, x0 + 1)
    ymax = nice_max(max(ys) if ys else 1.0)
    pw, ph = W - ML - MR, H - MT - MB

    def px(x: float) -> float:
        return ML + (x - x0) / (x1 - x0) * pw

    def py(y: float) -> float:
        return MT + ph - y / ymax * ph

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'viewBox="0 0 {W} {H}" role="img" aria-label="{html.escape(title)}">',
           f'<text x="{ML}" y="16" class="title">{html.escape(title)} ({html.escape(unit)})'
           '</text>']
    if shade is not None:
        a, b = max(shade[0], x0), min(shade[1], x1)
        if b > a:
            out.append(f'<rect x="{px(a):.1f}" y="{MT}" width="{px(b) - px(a):.1f}" '
                       f'height="{ph}" class="window"/>')
    for i in range(5):  # horizontal grid and y labels
        y = ymax * i / 4
        out.append(f'<line x1="{ML}" x2="{W - MR}" y1="{py(y):.1f}" y2="{py(y):.1f}" '
                   'class="grid"/>')
        out.append(f'<text x="{ML - 6}" y="{py(y) + 4:.1f}" text-anchor="end">{_num(y)}</text>')
    for i in range(6):  # x labels (seconds)
        x = x0 + (x1 - x0) * i / 5
        out.append(f'<text x="{px(x):.1f}" y="{H - 10}" text-anchor="middle">{x:.0f}s</text>')
    for n, (name, pts) in enumerate(series):
        color = COLORS[n % len(COLORS)]
        for run in _runs(pts):
            path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in run)
            if len(run) == 1:
                x, y = run[0]
                out.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2" fill="{color}"/>')
            else:
                out.append(f'<polyline points="{path}" fill="none" stroke="{color}" '
                           'stroke-width="1.6"/>')
        lx = W - MR - (len(series) - n) * 120  # legend: the title row, right-aligned
        out.append(f'<rect x="{lx}" y="7" width="10" height="10" fill="{color}"/>'
                   f'<text x="{lx + 14}" y="16">{html.escape(name)}</text>')
    out.append("</svg>")
    return "".join(out)


def _runs(pts: Sequence[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in pts:
        if y is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((x, y))
    return [r for r in runs if r]


def _num(v: float) -> str:
    if v >= 1e6:
        return f"{v / 1e6:g}M"
    if v >= 1e3:
        return f"{v / 1e3:g}k"
    return f"{v:g}"


def render(report: dict[str, Any]) -> str:
    tl = report.get("timeline", [])

    def s(key: str, scale: float = 1.0) -> list[tuple[float, float | None]]:
        return [(p["t"], None if p.get(key) is None else p[key] * scale) for p in tl]

    window = [p["t"] for p in tl if p["phase"] == "window"]
    # a point at second k covers (k-1, k]: shade from the first window point's start
    shade = (window[0] - 1, window[-1]) if window else None
    charts = [
        line_chart("Connected players", "bots", [("connected", s("connected")),
                                                 ("failed", s("failed"))], shade),
        line_chart("Input-to-ack latency", "ms", [("p50", s("latency_p50")),
                                                  ("p90", s("latency_p90")),
                                                  ("p99", s("latency_p99"))], shade),
        line_chart("Updates received per client", "updates/s",
                   [("per client", s("updates_per_client_s"))], shade),
        line_chart("Bytes per second, all bots", "kB/s",
                   [("in", s("bytes_in_per_s", 1e-3)), ("out", s("bytes_out_per_s", 1e-3))],
                   shade),
        line_chart("Server tick time", "ms", [("p50", s("tick_p50")), ("p99", s("tick_p99"))],
                   shade),
        line_chart("Load generator", "% of a core / ms",
                   [("worst worker CPU %", s("loadgen_cpu_percent")),
                    ("input timer lag ms", s("send_lag_ms"))], shade),
    ]
    opts = {k: v for k, v in report.get("options", {}).items()}
    brief = {k: v for k, v in report.items() if k != "timeline"}
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>gameserver load test: {opts.get("players")} players</title>
<style>
body {{ font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 760px; }}
pre {{ background: #f6f6f6; padding: 10px; overflow-x: auto; font-size: 12px; }}
svg {{ display: block; margin: 12px 0 20px; font-size: 11px; }}
svg .title {{ font-size: 13px; font-weight: 600; }}
svg .grid {{ stroke: #e4e4e4; }}
svg .window {{ fill: #f2f7ff; }}
details summary {{ cursor: pointer; }}
</style></head><body>
<h1>Load test: {opts.get("players")} players on {html.escape(str(opts.get("url")))}</h1>
<p>Game: {html.escape(game_line(str(opts.get("game")), opts.get("game_options")))}</p>
<p>The shaded band is the measurement window ({report.get("duration_s")} s); the summary
numbers come from it. Points are one second each.</p>
<pre>{html.escape(summary_table(report))}</pre>
{"".join(charts)}
<details><summary>Report JSON (without the timeline)</summary>
<pre>{html.escape(json.dumps(brief, indent=2))}</pre></details>
</body></html>
"""
