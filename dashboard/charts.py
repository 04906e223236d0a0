"""Server-rendered SVG charts: geometry computed here, markup in templates/_charts.html.

No charting dependency and no script: the SVG is part of the page, works offline and under a
strict CSP, and Jinja escapes every label. Every mark carries its number as text.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from dashboard.editor_form import PALETTE, safe_color
from dashboard.formatting import number, percent

FUNNEL_WIDTH = 760
LABEL_W = 150
BAR_X = LABEL_W + 10
BAR_MAX_W = 380
ROW_H = 44
GAP_H = 26


def _num(value: Any) -> float:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return 0.0
    return result if math.isfinite(result) else 0.0


# The compact funnel (breakdown cards, phones): names above the bars in a narrow viewBox, so
# that its text stays readable where the wide chart would be scaled down to a few pixels.
COMPACT_WIDTH = 420
COMPACT_BAR_MAX_W = 270
COMPACT_ROW_H = 46
COMPACT_GAP_H = 22
# Text size in compact charts (viewBox units): 10 px where a phone shows the 420-unit viewBox
# 280 px wide (a 340 px screen).
COMPACT_FONT = 15
COMPACT_LINE_H = 18


def funnel_geometry(stages: list[dict[str, Any]], compact: bool = False) -> dict[str, Any]:
    """Horizontal bars, one per stage, with the drop-off between consecutive stages.

    Each stage dict needs name, color, persons; optional conversion_from_start, dropoff,
    dropoff_rate, skipped, and drill-down links (`href_reached`, `href_dropped`,
    `href_skipped`).
    `compact`: the stage name on its own line above its bar, in a viewBox about half as wide.
    """
    peak = max((_num(s.get("persons")) for s in stages), default=0.0) or 1.0
    bar_x, bar_max = (0, COMPACT_BAR_MAX_W) if compact else (BAR_X, BAR_MAX_W)
    row_h, gap_h = (COMPACT_ROW_H, COMPACT_GAP_H) if compact else (ROW_H, GAP_H)
    rows = []
    y = 8.0
    for i, stage in enumerate(stages):
        persons = _num(stage.get("persons"))
        width = max(2.0, bar_max * persons / peak) if persons else 0.0
        # Compact: the name takes the row's first 18 units, the bar the rest.
        bar_y = y + 18 if compact else y
        rows.append(
            {
                "y": bar_y,
                "h": row_h - (22 if compact else 10),
                "width": round(width, 1),
                "color": safe_color(stage.get("color"), i),
                "name": stage.get("name", ""),
                "name_x": 0 if compact else bar_x - 10,
                "name_y": y + 13 if compact else bar_y + (row_h - 10) / 2 + 5,
                "label": f"{number(persons)} · {percent(stage.get('conversion_from_start'))}",
                "label_x": bar_x + width + 8,
                "href": stage.get("href_reached"),
                "drop": None,
            }
        )
        y += row_h
        if i < len(stages) - 1:
            dropped = stage.get("dropoff")
            if dropped is not None:
                parts: list[dict[str, Any]] = [
                    {
                        "text": f"▼ {number(dropped)} dropped "
                        f"({percent(stage.get('dropoff_rate'))})",
                        "href": stage.get("href_dropped"),
                        "newline": False,
                    }
                ]
                skipped = _num(stages[i + 1].get("skipped"))
                if skipped:
                    # Compact: the larger text would not fit one line, so the skipped count
                    # takes a second line and the gap grows by one line height.
                    parts.append(
                        {
                            "text": f"{number(skipped)} skipped the next stage",
                            "href": stages[i + 1].get("href_skipped"),
                            "newline": compact,
                        }
                    )
                rows[-1]["drop"] = {
                    "y": y + 4,
                    "text": " · ".join(p["text"] for p in parts),
                    "parts": parts,
                    "href": stage.get("href_dropped"),
                }
                y += sum(p["newline"] for p in parts) * COMPACT_LINE_H
            y += gap_h
    return {
        "width": COMPACT_WIDTH if compact else FUNNEL_WIDTH,
        "height": round(y + 4),
        "rows": rows,
        "bar_x": bar_x,
        "name_anchor": "start" if compact else "end",
        "drop_font": COMPACT_FONT if compact else 13,
        "line_h": COMPACT_LINE_H,
        "compact": compact,
    }


def histogram_geometry(buckets: list[dict[str, Any]], color: str = PALETTE[2]) -> dict[str, Any]:
    """Vertical bars with the count above each bar and the bucket label below."""
    width, height, top, bottom = 760, 190, 24, 40
    n = max(1, len(buckets))
    slot = (width - 20) / n
    peak = max((_num(b.get("count", b.get("persons"))) for b in buckets), default=0.0) or 1.0
    bars = []
    for i, bucket in enumerate(buckets):
        count = _num(bucket.get("count", bucket.get("persons")))
        bar_h = (height - top - bottom) * count / peak
        x = 10 + i * slot + slot * 0.12
        bars.append(
            {
                "x": round(x, 1),
                "y": round(height - bottom - bar_h, 1),
                "w": round(slot * 0.76, 1),
                "h": round(bar_h, 1),
                "cx": round(x + slot * 0.38, 1),
                "count": number(count),
                "label": str(bucket.get("label", bucket.get("bucket", ""))),
            }
        )
    return {
        "width": width,
        "height": height,
        "base": height - bottom,
        "bars": bars,
        "color": safe_color(color),
    }


def nice_scale(peak: float, whole: bool = True) -> tuple[float, float]:
    """(top, step) of a value axis: 2-4 steps of 1, 2, 2.5 or 5 times a power of ten, the top
    at or above `peak`; whole-number steps for counts (no "1,314.50" gridline)."""
    if peak <= 0:
        return 1.0, 1.0
    raw = peak / 3
    magnitude = 10 ** math.floor(math.log10(raw))
    step = 10 * magnitude
    for m in (1, 2, 2.5, 5):
        if m * magnitude >= raw and not (whole and m == 2.5 and magnitude < 10):
            step = m * magnitude
            break
    if whole:
        step = float(max(1, math.ceil(step)))
    return step * math.ceil(peak / step), step


LABEL_GAP = 15  # px between the baselines of two end labels (12 px text)


def _tick_indexes(n: int, max_ticks: int, span: float, need: float) -> list[int]:
    """Which of n evenly spaced periods get a date under the axis: every step-th one counted
    back from the latest (which a reader looks for first), at most max_ticks of them, with the
    smallest step that keeps neighbours `need` units apart."""
    if n <= 1:
        return list(range(n))
    for step in range(1, n):
        if (n - 1) // step + 1 <= max_ticks and step * span / (n - 1) >= need:
            return list(range(n - 1, -1, -step))[::-1]
    return [n - 1]  # not even two dates fit


def line_geometry(
    periods: list[str],
    series: list[dict[str, Any]],
    value_format: str = "number",
    open_end: bool = False,
    compact: bool = False,
) -> dict[str, Any]:
    """One polyline per series over the periods; the last value of each is written out.

    `open_end`: the last period is still under way (or cut by the range), so its segment is
    drawn dashed: its lower values are not a fall yet.
    `compact` (phones): a viewBox about half as wide with larger text, three date ticks and
    shorter end labels, so nothing shrinks to an unreadable size."""
    if compact:
        left, right, top, bottom, width = 50, 135, 16, 40, COMPACT_WIDTH
        font, small, label_chars, max_ticks = COMPACT_FONT, COMPACT_FONT, 13, 3
    else:
        left, right, top, bottom, width = 56, 130, 16, 40, 760
        font, small, label_chars, max_ticks = 12, 11, 24, 8
    # Baselines of two end labels at least a line apart, so larger text does not collide.
    gap = max(LABEL_GAP, font + 3)
    # Every end label must fit beside the plot, however many stages there are.
    height = max(240, top + bottom + gap * len(series))
    fmt = percent if value_format == "percent" else number
    highest = max((_num(v) for s in series for v in s.get("values", [])), default=0.0)
    peak, grid_step = nice_scale(highest, whole=value_format != "percent")
    levels = [grid_step * i for i in range(round(peak / grid_step) + 1)]
    # The axis labels ("12,000") sit left of the plot: room for the widest at 0.64 em a
    # character, the width of a digit in the dashboard's sans-serif font.
    left = max(left, math.ceil(max(len(fmt(v)) for v in levels) * 0.64 * small) + 8)
    n = len(periods)
    span_x = width - left - right

    def x_at(i: int) -> float:
        return left + (span_x * i / (n - 1) if n > 1 else span_x / 2)

    def y_at(v: Any) -> float:
        return top + (height - top - bottom) * (1 - _num(v) / peak)

    dashed = open_end and n > 1
    lines = []
    for k, item in enumerate(series):
        values = item.get("values", [])
        points = [(round(x_at(i), 1), round(y_at(v), 1)) for i, v in enumerate(values)]
        last = points[-1] if points else (left, height - bottom)
        solid, tail = (points[:-1], points[-2:]) if dashed and len(points) > 1 else (points, [])
        lines.append(
            {
                "name": item.get("name", ""),
                "color": safe_color(item.get("color"), k),
                "points": " ".join(f"{x},{y}" for x, y in solid),
                "tail": " ".join(f"{x},{y}" for x, y in tail),
                "dots": [
                    {
                        "x": x,
                        "y": y,
                        "title": f"{periods[i]}: {fmt(values[i])}",
                        "open": dashed and i == len(points) - 1,
                    }
                    for i, (x, y) in enumerate(points)
                ],
                "last_x": last[0] + 8,
                "last_y": last[1] + 4,
                "last_text": f"{fmt(values[-1]) if values else ''} {item.get('name', '')}",
            }
        )
    # End labels of lines that finish close together are pushed apart so none overlap, and
    # then up where they would fall below the axis, into the dates or out of the chart.
    ordered = sorted(lines, key=lambda item: item["last_y"])
    for above, line in itertools.pairwise(ordered):
        line["last_y"] = max(line["last_y"], above["last_y"] + gap)
    floor = height - bottom + 4  # a label's baseline level with the axis
    for line in reversed(ordered):
        line["last_y"] = round(min(line["last_y"], floor), 1)
        floor = line["last_y"] - gap
    need = max((len(p) for p in periods), default=0) * 0.64 * small + 8
    ticks = [
        {"x": round(x_at(i), 1), "label": periods[i]}
        for i in _tick_indexes(n, max_ticks, span_x, need)
    ]
    gridlines = [{"y": round(y_at(v), 1), "label": fmt(v)} for v in levels]
    return {
        "width": width,
        "height": height,
        "left": left,
        "base": height - bottom,
        "right_edge": width - right,
        "lines": lines,
        "ticks": ticks,
        "gridlines": gridlines,
        "open_end": dashed,
        "font": font,
        "font_small": small,
        "label_chars": label_chars,
        "compact": compact,
    }


def bars_geometry(items: list[dict[str, Any]], compact: bool = False) -> dict[str, Any]:
    """Small horizontal bar list (e.g. persons per stage now) with numbers as labels.

    `compact` (phones): "name · label" on its own line above a bar as wide as the viewBox,
    which is about half as wide, so the text keeps a readable size when scaled down."""
    if compact:
        row, max_w, bar_x, width, font = 42, COMPACT_WIDTH, 0, COMPACT_WIDTH, COMPACT_FONT
    else:
        row, max_w, bar_x, width, font = 30, 360, 160, 760, 13
    peak = max((_num(i.get("value")) for i in items), default=0.0) or 1.0
    rows = []
    for k, item in enumerate(items):
        value = _num(item.get("value"))
        w = round(max(2.0, max_w * value / peak) if value else 0.0, 1)
        label = item.get("label") or number(value)
        y = 4 + k * row
        rows.append(
            {
                # The bar's box; below its text line when compact.
                "y": y + 19 if compact else y,
                "w": w,
                "name": item.get("name", ""),
                "color": safe_color(item.get("color"), k),
                "label": label,
                "name_x": 0 if compact else bar_x - 8,
                "text_y": y + 14 if compact else y + 16,
                "label_x": None if compact else bar_x + w + 6,
            }
        )
    return {
        "width": width,
        "height": 8 + len(items) * row,
        "rows": rows,
        "bar_x": bar_x,
        "bar_h": 18 if compact else 22,
        "font": font,
        "name_anchor": "start" if compact else "end",
        "name_chars": 28 if compact else 20,
        "compact": compact,
    }


def histogram_bars(buckets: list[dict[str, Any]], color: str = PALETTE[2]) -> dict[str, Any]:
    """The histogram for phones: one compact horizontal bar per bucket, in bucket order."""
    items = [
        {
            "name": str(b.get("label", b.get("bucket", ""))),
            "value": _num(b.get("count", b.get("persons"))),
            "color": color,
        }
        for b in buckets
    ]
    return bars_geometry(items, compact=True)


def trend_geometry(
    trends: dict[str, Any], stages: list[dict[str, Any]], compact: bool = False
) -> dict[str, Any]:
    """Persons per stage over the trend's periods, one line per stage in its colour."""
    periods = trends.get("periods") or []
    colors = {s.get("key"): s.get("color") for s in stages}
    series = []
    for index, stage in enumerate(periods[0]["stages"] if periods else []):
        series.append(
            {
                "name": stage["name"],
                "color": colors.get(stage["key"]) or PALETTE[index % len(PALETTE)],
                "values": [p["stages"][index]["persons"] for p in periods],
            }
        )
    last = periods[-1] if periods else {}
    open_end = last.get("complete") is False or bool(last.get("partial"))
    return line_geometry([p["start"] for p in periods], series, open_end=open_end, compact=compact)
