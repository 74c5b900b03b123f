"""``report.html``: the run report for people, one self-contained file rendered from the report dict
(:func:`dos2hl.execution.report.build_report`) by a Jinja2 template (``templates/report.html.j2``).

Tables of the counts per location and object with stacked bars, the requests per minute against the
burst budget as an inline SVG chart, requests by class and step, and the field-level diff. Inline CSS,
no script, no font or file from elsewhere: it opens from a disk, a mail attachment or a printer alike.
Autoescaped: every value is text. It shows what the dict holds, which is ids, codes and counts only.

The chart's geometry is computed here (:func:`chart`), the template only lays it out.
"""

from __future__ import annotations

from typing import Any

import jinja2

__all__ = ["render", "chart", "SEGMENTS"]

#: A row's parts, in the order the stacked bar draws them (they add up to its source rows).
SEGMENTS = ("written", "excluded", "quarantined", "pending", "held", "failed")

# the chart's canvas (SVG user units; the SVG scales to the page's width)
_W, _H, _LEFT, _RIGHT, _TOP, _BOTTOM, _BREAK = 960, 260, 56, 16, 18, 34, 26

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("dos2hl.execution", "templates"),
    autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
)
_ENV.filters["n"] = lambda v: f"{v:,}" if isinstance(v, int) else v  # thousands separated


def _nice(top: float) -> int:
    """A round axis maximum at or above ``top`` (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6 or 8 times a power of
    ten, whole numbers only): little headroom above the tallest bar."""
    step = 1
    while True:
        for m in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8):
            v = step * m
            if v >= top and v == int(v):
                return int(v)
        step *= 10


def chart(req: dict[str, Any]) -> dict[str, Any]:
    """The requests-per-minute chart: one bar per minute that sent requests (minutes without any are
    left out, a gap in time is marked), the burst budget per minute as a line, a y axis with ticks.

    A budget far above the busiest minute (more than 3 times: a demo's raised limits, a run that never
    came near its quota) would flatten the bars; the axis is then broken: the bars keep their scale up
    to the peak and the budget line is drawn above the break, with its own tick."""
    points = [(str(m), int(n)) for m, n in req.get("timeline") or []]
    budget = int(req.get("budget_per_minute") or 0)
    if not points:
        return {"bars": []}
    peak = max(n for _, n in points)
    broken = budget > 3 * peak
    top = _nice((peak if broken else max(budget, peak)) * 1.08)
    plot_top = _TOP + (_BREAK if broken else 0)  # bars and ticks below the break
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - plot_top - _BOTTOM
    step = plot_w / len(points)
    gap = min(step * 0.2, 6.0) if step > 3 else 0.0

    def y(v: float) -> float:
        return round(plot_top + plot_h - v * plot_h / top, 1)

    bars, breaks, labels = [], [], []
    every = max(1, round(len(points) / 8))  # about eight time labels
    for i, (m, n) in enumerate(points):
        x = _LEFT + i * step
        bars.append({"x": round(x + gap / 2, 1), "y": y(n), "w": round(max(step - gap, 0.6), 1),
                     "h": round(plot_top + plot_h - y(n), 1), "minute": m, "n": n,
                     "over": bool(budget) and n > budget})
        if i and not _next_minute(points[i - 1][0], m):
            breaks.append(round(x, 1))
        if i % every == 0 or i == len(points) - 1 and i % every > every // 2:
            labels.append({"x": round(x + step / 2, 1), "text": m[11:16] or m})
    ticks = [{"y": y(v), "v": v} for v in (0, top // 2, top)]
    budget_y = (_TOP if broken else y(budget)) if budget else None
    if broken:
        ticks.append({"y": _TOP, "v": budget})
    return {"bars": bars, "breaks": breaks, "labels": labels, "ticks": ticks, "w": _W, "h": _H,
            "left": _LEFT, "right": _W - _RIGHT, "top": plot_top, "bottom": plot_top + plot_h,
            "budget": budget, "budget_y": budget_y, "broken": round(_TOP + _BREAK / 2, 1) if broken else None,
            "first": points[0][0], "last": points[-1][0], "peak": peak,
            "peak_share": round(100 * peak / budget, 1) if budget else None}


def _next_minute(a: str, b: str) -> bool:
    """Whether minute ``b`` follows minute ``a`` (``YYYY-MM-DDTHH:MMZ``, UTC)."""
    import datetime as dt

    try:
        pa, pb = (dt.datetime.strptime(s, "%Y-%m-%dT%H:%MZ") for s in (a, b))
    except ValueError:
        return True
    return (pb - pa).total_seconds() <= 60


def _rows(rep: dict[str, Any]) -> dict[str, Any]:
    """Per location: its objects' counts and each bar segment's width (% of the location's largest)."""
    out = {}
    for loc, data in (rep.get("locations") or {}).items():
        objects = data.get("objects") or {}
        widest = max((r.get("source", 0) for r in objects.values()), default=0) or 1
        rows = []
        for obj, r in objects.items():
            parts = [(s, int(r.get(s, 0))) for s in SEGMENTS if r.get(s, 0) > 0]
            rows.append({"object": obj, "r": r, "parts": [
                {"kind": s, "n": n, "pct": round(100 * n / widest, 2)} for s, n in parts]})
        out[loc] = {"location_id": data.get("location_id", ""), "rows": rows,
                    "pending": any("pending" in r for r in objects.values()),
                    "waiting": sum(r.get("pending", 0) for r in objects.values())}
    return out


def _diff(rep: dict[str, Any]) -> list[dict[str, Any]]:
    """The field diff per object: its totals and share matched (%), every field's counts, and the fields
    that differ (a mismatch or a missing value), which the page lists first."""
    out = []
    for obj, fields in (rep.get("field_diff") or {}).get("fields", {}).items():
        rows = [{"object": obj, "field": name, "c": c} for name, c in sorted(fields.items())]
        sums = {k: sum(int(c.get(k, 0)) for c in fields.values()) for k in ("match", "mismatch", "missing")}
        compared = sum(sums.values())
        out.append({"object": obj, "fields": rows, "count": len(rows), "compared": compared, **sums,
                    "pct": round(100 * sums["match"] / compared, 1) if compared else 100.0,
                    "differ": [r for r in rows if r["c"].get("mismatch") or r["c"].get("missing")]})
    return out


def render(rep: dict[str, Any]) -> str:
    """The page for one report dict (as ``report.json`` holds it)."""
    req = rep.get("requests") or {}
    by_class = req.get("by_class") or rep.get("requests_by_class") or {}
    top_class = max(by_class.values(), default=0) or 1
    totals = {k: sum(r.get(k, 0) for loc in (rep.get("locations") or {}).values()
                     for r in (loc.get("objects") or {}).values())
              for k in ("source", "written", "created", "failed", "held", "pending", "excluded")}
    return _ENV.get_template("report.html.j2").render(
        rep=rep, req=req, chart=chart(req), locations=_rows(rep), diff=_diff(rep), totals=totals,
        by_class=[{"name": k, "n": v, "pct": round(100 * v / top_class, 2)} for k, v in by_class.items()],
        segments=SEGMENTS)

