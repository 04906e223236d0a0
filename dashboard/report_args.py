"""Report URL arguments: date presets, the named filters and `filter=field:op:value` chips.

Everything a report shows is in its query string, so a report can be bookmarked and shared.
This module turns those arguments into what `parse_report_query` takes and back into links.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from werkzeug.datastructures import MultiDict

from dashboard.formatting import zone
from tracker.reports.query import QueryError

PRESETS: tuple[tuple[str, str], ...] = (
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
    ("90d", "Last 90 days"),
    ("this_month", "This month"),
    ("last_month", "Last month"),
    ("12m", "Last 12 months"),
    ("custom", "Custom range"),
)
DEFAULT_PRESET = "30d"
# Named filters (query argument -> label). `product` is the event property prop.product.
NAMED_FILTERS: tuple[tuple[str, str], ...] = (
    ("campaign", "Campaign"),
    ("keyword", "Keyword"),
    ("source", "Source"),
    ("medium", "Medium"),
    ("country", "Country"),
    ("region", "Region"),
    ("device", "Device"),
    ("landing", "Landing page"),
    ("product", "Product"),
)
BREAKDOWNS: tuple[tuple[str, str], ...] = (
    ("campaign", "Campaign"),
    ("keyword", "Keyword"),
    ("source", "Source"),
    ("medium", "Medium"),
    ("content", "Ad content"),
    ("country", "Country"),
    ("region", "Region"),
    ("city", "City"),
    ("device", "Device"),
    ("browser", "Browser"),
    ("os", "Operating system"),
    ("landing", "Landing page"),
    ("referrer", "Referrer"),
    ("prop.product", "Product"),
)
INTERVALS = ("day", "week", "month")


def auto_interval(first: date, last: date) -> str:
    """The trend interval when none is chosen: days up to a month, weeks up to half a year,
    else months (a readable number of points for the report's own range)."""
    span = (last - first).days + 1
    return "day" if span <= 31 else "week" if span <= 183 else "month"


# Arguments that belong in shared links (everything else, like csrf or paging, is dropped).
KEPT = (
    "funnel", "range", "from", "to", "compare", "mode", "window", "breakdown", "segment",
    "limit", "interval", "filter",
    *(name for name, _ in NAMED_FILTERS),
)  # fmt: skip


def preset_range(preset: str, tz: str, today: date | None = None) -> tuple[date, date] | None:
    today = today or datetime.now(zone(tz)).date()
    if preset.endswith("d") and preset[:-1].isdecimal():
        # Capped so date arithmetic cannot overflow; the query's range check explains the rest.
        days = min(int(preset[:-1]), 100_000)
        return today - timedelta(days=days - 1), today
    if preset == "12m":
        return today - timedelta(days=364), today
    if preset == "this_month":
        return today.replace(day=1), today
    if preset == "last_month":
        last_day = today.replace(day=1) - timedelta(days=1)
        return last_day.replace(day=1), last_day
    return None


def clean_args(args: MultiDict[str, str]) -> MultiDict[str, str]:
    """The report's own arguments, without empty values."""
    out: MultiDict[str, str] = MultiDict()
    for key in KEPT:
        for value in args.getlist(key):
            if key == "segment":
                out.add(key, value)  # a breakdown value as it is: "" is the "(none)" group
            elif value.strip():
                out.add(key, value.strip())
    return out


def fold_new_filter(args: MultiDict[str, str]) -> MultiDict[str, str] | None:
    """The "add a filter" row (f_field, f_op, f_value) as one more `filter` argument, or None
    when the row was not filled in."""
    field = args.get("f_field", "").strip()
    if not field:
        return None
    out = clean_args(args)
    out.add("filter", f"{field}:{args.get('f_op', 'equals').strip()}:{args.get('f_value', '')}")
    return out


def form_problems(args: MultiDict[str, str]) -> dict[str, str]:
    """Slips in the filter form that the service would take literally, by form field: a
    filter row without a value (it would keep only persons whose field is empty) and a
    custom range without dates or ending before it starts."""
    problems: dict[str, str] = {}
    field = args.get("f_field", "").strip()
    if field and not args.get("f_value", "").strip():
        problems["f_value"] = f"Enter a value to filter {field[:60]} by; the filter was not added."
    preset = args.get("range", "")
    start, end = args.get("from", "").strip(), args.get("to", "").strip()
    if preset == "custom" and not (start or end):
        problems["from"] = "Choose a start and an end date for a custom range."
    elif start and end and start > end and (preset in ("", "custom")):
        problems["from"] = (
            f"The range starts ({start}) after it ends ({end}): swap the dates or pick a preset."
        )
    return problems


def service_args(args: MultiDict[str, str], tz: str) -> MultiDict[str, str]:
    """What `parse_report_query` takes: the preset resolved to from/to, product as a filter."""
    out = clean_args(args)
    preset = out.get("range") or ("custom" if out.get("from") or out.get("to") else DEFAULT_PRESET)
    resolved = preset_range(preset, tz)
    if resolved is None and preset != "custom":
        raise QueryError(
            f"unknown date range {preset[:40]!r}: use one of the presets, Nd (the last N days) "
            "or custom with from and to"
        )
    interval = out.get("interval")
    if interval and interval not in INTERVALS:
        raise QueryError(f"interval must be one of {', '.join(INTERVALS)}")
    if resolved is not None:
        out.setlist("from", [resolved[0].isoformat()])
        out.setlist("to", [resolved[1].isoformat()])
    for product in out.poplist("product"):
        out.add("filter", f"prop.product:equals:{product}")
    for key in ("range", "interval", "funnel"):
        out.poplist(key)
    return out


def url_with(base: str, args: MultiDict[str, str], **changes: Any) -> str:
    """`base` with the report arguments, some replaced (a None value removes the argument).
    Arguments come out in one fixed order, so equal reports have equal URLs."""
    out = clean_args(args)
    for key, value in changes.items():
        if value is None:
            out.poplist(key)
        elif isinstance(value, list | tuple):
            out.setlist(key, [str(v) for v in value])
        else:
            out.setlist(key, [str(value)])
    if "breakdown" not in out:
        out.poplist("segment")  # a breakdown value means nothing without its breakdown
    order = {key: i for i, key in enumerate(KEPT)}
    items = sorted(out.items(multi=True), key=lambda kv: order.get(kv[0], len(order)))
    query = urlencode(items)
    return f"{base}?{query}" if query else base


def file_tag(args: MultiDict[str, str], limit: int = 80) -> str:
    """What sets an export apart from the plain report, for its file name: filters,
    breakdown, comparison, mode and window ("by-country-campaign-spring_sale"). Only
    letters, digits, "_" and "-", so it is safe in a Content-Disposition header."""
    words: list[str] = []
    for key, value in clean_args(args).items(multi=True):
        if key in ("funnel", "range", "from", "to", "interval", "limit"):
            continue
        label = {"breakdown": "by", "compare": "vs"}.get(key, "" if key == "filter" else key)
        parts = value.split(":") if value else ["none"]  # segment "": the "(none)" group
        words += [label, *parts] if label else parts
    slug = "-".join(w for w in (re.sub(r"[^A-Za-z0-9_]+", "_", w).strip("_") for w in words) if w)
    return slug[:limit].rstrip("-_")


def chips(args: MultiDict[str, str], base: str, **keep: Any) -> list[dict[str, str]]:
    """Active filters, each with a link that removes just that one (`keep`: arguments of the
    page itself that the links carry along, such as the persons list's stage)."""
    labels = dict(NAMED_FILTERS)
    result = []
    for key, label in labels.items():
        for value in args.getlist(key):
            remaining = [v for v in args.getlist(key) if v != value]
            result.append(
                {
                    "label": f"{label}: {value}",
                    "remove": url_with(base, args, **keep, **{key: remaining}),
                }
            )
    for spec in args.getlist("filter"):
        remaining = [v for v in args.getlist("filter") if v != spec]
        field, _, rest = spec.partition(":")
        op, _, value = rest.partition(":")
        result.append(
            {
                "label": f"{field} {op.replace('_', ' ')} {value}".strip(),
                "remove": url_with(base, args, **keep, filter=remaining),
            }
        )
    if "segment" in args and args.get("breakdown"):
        field = args["breakdown"]
        label = dict(BREAKDOWNS).get(field, field)
        result.append(
            {
                "label": f"{label}: {args['segment'] or '(none)'}",
                "remove": url_with(base, args, **keep, segment=None),
            }
        )
    return result
