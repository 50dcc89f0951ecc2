#!/usr/bin/env python3
"""Draws scripts/bench-scale.sh's figures as an SVG, with the standard library only.

    python3 scripts/bench-scale-plot.py SCALE_JSON OUT_SVG

SCALE_JSON is the <work dir>/scale.json that bench-scale.sh writes: {"stamp", "sizes": [users...],
"results": [{"server": "baton"|"keystone", "measure": "cached"|"cold"|"coldheavy"|"issue"|"list_ra"|
"list_auth"|"list_user"|"count_..", "users", "value", ...}]} (rates in per second, list_* the p50
in ms). A rate of 0 is drawn as an x on the bottom edge of the right panel. Two panels, 900x420, x = users on a log scale:
  left:  Baton, each measure as % of its value at the smallest size (listings as 1/p50, so
         "higher is better" everywhere);
  right: requests/s on a log scale, Baton solid and Keystone 30 dashed (cached and cold
         validation, issue).
"""

from __future__ import annotations

import json
import math
import sys
from html import escape

W, H = 900, 420
PANEL_W, PANEL_H = 330, 270
LEFT_X, RIGHT_X, TOP_Y = 70, 520, 45
COLORS = {
    "cached": "#1f77b4", "cold": "#ff7f0e", "coldheavy": "#bcbd22", "issue": "#2ca02c",
    "list_ra": "#d62728", "list_auth": "#9467bd", "list_user": "#8c564b",
}
LABELS = {
    "cached": "cached validation", "cold": "cold validation",
    "coldheavy": "cold validation, 2,000 groups", "issue": "issue",
    "list_ra": "role_assignments (1/p50)", "list_auth": "auth/projects (1/p50)",
    "list_user": "users/…/projects (1/p50)",
}


def fmt_users(n: float) -> str:
    if n >= 1e6 and n % 1e6 == 0:
        return f"{n / 1e6:g}M"
    if n >= 1e3 and n % 1e3 == 0:
        return f"{n / 1e3:g}k"
    return f"{n:g}"


def nice_ticks(lo: float, hi: float, count: int = 5) -> list[float]:
    span = hi - lo or 1.0
    step = 10 ** math.floor(math.log10(span / count))
    for m in (1, 2, 2.5, 5, 10):
        if span / (step * m) <= count:
            step *= m
            break
    start = math.floor(lo / step) * step
    ticks, t = [], start
    while t <= hi + step * 1e-9:
        if t >= lo - step * 1e-9:
            ticks.append(round(t, 10))
        t += step
    return ticks


class Panel:
    def __init__(self, x0: float, y0: float, xs: list[float], ylo: float, yhi: float, ylog: bool):
        self.x0, self.y0, self.ylog = x0, y0, ylog
        self.xlo, self.xhi = math.log10(min(xs)), math.log10(max(xs))
        if self.xhi == self.xlo:
            self.xlo, self.xhi = self.xlo - 0.5, self.xhi + 0.5
        pad = (self.xhi - self.xlo) * 0.06
        self.xlo, self.xhi = self.xlo - pad, self.xhi + pad
        self.ylo, self.yhi = ylo, yhi

    def x(self, users: float) -> float:
        return self.x0 + (math.log10(users) - self.xlo) / (self.xhi - self.xlo) * PANEL_W

    def y(self, v: float) -> float:
        if self.ylog:
            f = (math.log10(v) - math.log10(self.ylo)) / (math.log10(self.yhi) - math.log10(self.ylo))
        else:
            f = (v - self.ylo) / (self.yhi - self.ylo)
        return self.y0 + PANEL_H - f * PANEL_H


def main() -> int:
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    data = json.load(open(sys.argv[1]))
    sizes = sorted(data["sizes"])
    res: dict[tuple[str, str], dict[int, float]] = {}
    for r in data["results"]:
        res.setdefault((r["server"], r["measure"]), {})[r["users"]] = r["value"]
    out: list[str] = []
    add = out.append
    add(f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" '
        'font-family="DejaVu Sans, Arial, sans-serif" font-size="11">')
    add(f'<rect width="{W}" height="{H}" fill="white"/>')

    def axes(p: Panel, title: str, ylabel: str, yticks: list[float], ylab) -> None:
        add(f'<text x="{p.x0 + PANEL_W / 2}" y="{p.y0 - 12}" text-anchor="middle" font-size="13" '
            f'font-weight="bold">{escape(title)}</text>')
        add(f'<rect x="{p.x0}" y="{p.y0}" width="{PANEL_W}" height="{PANEL_H}" fill="none" stroke="#444"/>')
        for t in yticks:
            yy = p.y(t)
            add(f'<line x1="{p.x0}" y1="{yy:.1f}" x2="{p.x0 + PANEL_W}" y2="{yy:.1f}" stroke="#ddd"/>')
            add(f'<text x="{p.x0 - 5}" y="{yy + 4:.1f}" text-anchor="end">{escape(ylab(t))}</text>')
        for n in sizes:
            xx = p.x(n)
            add(f'<line x1="{xx:.1f}" y1="{p.y0}" x2="{xx:.1f}" y2="{p.y0 + PANEL_H}" stroke="#eee"/>')
            add(f'<text x="{xx:.1f}" y="{p.y0 + PANEL_H + 15}" text-anchor="middle">{fmt_users(n)}</text>')
        add(f'<text x="{p.x0 + PANEL_W / 2}" y="{p.y0 + PANEL_H + 32}" text-anchor="middle">users (log scale)</text>')
        cx, cy = p.x0 - 48, p.y0 + PANEL_H / 2
        add(f'<text x="{cx}" y="{cy}" text-anchor="middle" transform="rotate(-90 {cx} {cy})">{escape(ylabel)}</text>')

    def line(p: Panel, pts: list[tuple[float, float]], color: str, dashed: bool) -> None:
        if not pts:
            return
        dash = ' stroke-dasharray="6,4"' if dashed else ""
        if len(pts) > 1:
            d = " ".join(f"{p.x(u):.1f},{p.y(v):.1f}" for u, v in pts)
            add(f'<polyline points="{d}" fill="none" stroke="{color}" stroke-width="2"{dash}/>')
        for u, v in pts:
            fill = "white" if dashed else color
            add(f'<circle cx="{p.x(u):.1f}" cy="{p.y(v):.1f}" r="3" fill="{fill}" stroke="{color}" stroke-width="1.5"/>')

    # ---- left: Baton, % of the smallest size ----------------------------------------------------
    left: dict[str, list[tuple[float, float]]] = {}
    for m in ("cached", "cold", "coldheavy", "issue", "list_ra", "list_auth", "list_user"):
        vals = res.get(("baton", m), {})
        base = vals.get(sizes[0])
        if not base:
            continue
        pts = []
        for n in sizes:
            v = vals.get(n)
            if v is None or (m.startswith("list_") and v <= 0):
                continue
            pts.append((n, 100 * (base / v if m.startswith("list_") else v / base)))
        left[m] = pts
    all_pct = [v for pts in left.values() for _, v in pts] or [100]
    hi = max(110.0, max(all_pct) * 1.08)
    lp = Panel(LEFT_X, TOP_Y, sizes, 0.0, hi, False)
    axes(lp, "Baton, % of the smallest size", "% of the smallest size (higher is better)",
         nice_ticks(0, hi), lambda t: f"{t:g} %")
    add(f'<line x1="{lp.x0}" y1="{lp.y(100):.1f}" x2="{lp.x0 + PANEL_W}" y2="{lp.y(100):.1f}" stroke="#888" stroke-dasharray="2,2"/>')
    for m, pts in left.items():
        line(lp, [(u, max(v, 0.0)) for u, v in pts], COLORS[m], False)

    # ---- right: requests/s, Baton vs Keystone ------------------------------------------------------
    right = {(s, m): sorted((u, v) for u, v in res.get((s, m), {}).items() if v > 0)
             for s in ("baton", "keystone") for m in ("cached", "cold", "coldheavy", "issue")}
    # A rate of 0 (nothing answered in the phase) cannot sit on a log axis: an x on the bottom edge.
    zeros = [(s, m, u) for s in ("baton", "keystone") for m in ("cached", "cold", "coldheavy", "issue")
             for u, v in res.get((s, m), {}).items() if v <= 0]
    vals = [v for pts in right.values() for _, v in pts] or [1, 10]
    ylo = 10 ** math.floor(math.log10(min(vals) * 0.8))  # room below the lowest point for the zeros
    yhi = 10 ** math.ceil(math.log10(max(vals) * 1.2))
    if yhi <= ylo:
        yhi = ylo * 10
    rp = Panel(RIGHT_X, TOP_Y, sizes, ylo, yhi, True)
    decades = [10 ** k for k in range(round(math.log10(ylo)), round(math.log10(yhi)) + 1)]
    axes(rp, "requests/s, Baton vs Keystone 30", "requests/s (log scale)", decades,
         lambda t: f"{t:,.0f}" if t >= 1 else f"{t:g}")
    for (s, m), pts in right.items():
        line(rp, pts, COLORS[m], s == "keystone")
    for s, m, u in zeros:
        xx, yy = rp.x(u), rp.y0 + PANEL_H
        add(f'<path d="M{xx - 5:.1f},{yy - 5:.1f} l10,10 m0,-10 l-10,10" stroke="{COLORS[m]}" stroke-width="2.5"/>')
        left_side = xx > rp.x0 + PANEL_W / 2
        add(f'<text x="{xx - 8 if left_side else xx + 8:.1f}" y="{yy - 6:.1f}" fill="{COLORS[m]}" '
            f'text-anchor="{"end" if left_side else "start"}">{"Baton" if s == "baton" else "Keystone"} {LABELS[m]}: 0/s</text>')

    # ---- legend (below the panels) ----------------------------------------------------------------
    ly = TOP_Y + PANEL_H + 52
    items = [(LABELS[m], COLORS[m], False) for m in ("cached", "cold", "coldheavy", "issue", "list_ra", "list_auth", "list_user")]
    items += [("Baton (solid)", "#333", False), ("Keystone 30 (dashed)", "#333", True)]
    col_w = W / 4
    for i, (label, color, dashed) in enumerate(items):
        x = 20 + (i % 4) * col_w
        y = ly + (i // 4) * 18
        dash = ' stroke-dasharray="6,4"' if dashed else ""
        add(f'<line x1="{x}" y1="{y - 4}" x2="{x + 26}" y2="{y - 4}" stroke="{color}" stroke-width="2"{dash}/>')
        add(f'<text x="{x + 32}" y="{y}">{escape(label)}</text>')
    add("</svg>")
    with open(sys.argv[2], "w") as f:
        f.write("\n".join(out) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
