"""A site's stored events as import lines (NDJSON): importing the output (`funnel import` or
the import API) rebuilds the same events, ids included, in another store or under another
site. For backups, moving to a ClickHouse server, or analysis elsewhere.

Events are read in chunks of whole hours, each at most about CHUNK events (one busier hour is
a chunk of its own), in time order: memory stays bounded however long the history is, and
the file reads as a timeline.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any

import orjson

from tracker.clickhouse import Store
from tracker.reports.query import ReportQuery

CHUNK = 50_000
HOUR_MS = 3_600_000

# Stored column -> import field, for the plain text fields (left out when empty).
_TEXT_FIELDS = (
    ("name", "name"),
    ("url", "url"),
    ("referrer", "referrer"),
    ("title", "title"),
    ("visitor_id", "visitor"),
    ("session_id", "session"),
    ("user_id", "user"),
    ("language", "language"),
)
_ELEMENT = (
    ("element_tag", "tag"),
    ("element_text", "text"),
    ("element_href", "href"),
    ("element_id", "id"),
    ("element_selector", "selector"),
)
# Where the event came from, as stored: an import takes these instead of enriching anew
# (the address and the user agent were never stored).
_CONTEXT = (
    ("country", "country"),
    ("region", "region"),
    ("city", "city"),
    ("device", "device"),
    ("browser", "browser"),
    ("os", "os"),
)
_COLUMNS = (
    "toString(event_id)",
    "type",
    "toInt64(toUnixTimestamp64Milli(ts))",
    *(column for column, _ in _TEXT_FIELDS),
    "props",
    "value",
    "screen_width",
    "outbound",
    *(column for column, _ in _ELEMENT),
    *(column for column, _ in _CONTEXT),
)
_WHERE = (
    "site_id = {site:String}"
    " AND ts >= fromUnixTimestamp64Milli({start:Int64}, 'UTC')"
    " AND ts < fromUnixTimestamp64Milli({end:Int64}, 'UTC')"
)


def hour_counts(store: Store, site_key: str, start_ms: int, end_ms: int) -> list[tuple[int, int]]:
    """(hour start in epoch ms, events) for every hour of [start_ms, end_ms) with events."""
    rows = store.rows(
        "SELECT toInt64(toUnixTimestamp(toStartOfHour(ts))) * 1000 AS hour, count()"
        f" FROM events WHERE {_WHERE} GROUP BY hour ORDER BY hour",
        {"site": site_key, "start": start_ms, "end": end_ms},
    )
    return [(int(hour), int(n)) for hour, n in rows]


def chunks(hours: list[tuple[int, int]], start_ms: int, end_ms: int) -> list[tuple[int, int, int]]:
    """Consecutive hours merged into [start, end) spans of at most CHUNK events (an hour
    holding more is a span of its own), clipped to the range: (start, end, events)."""
    spans: list[tuple[int, int, int]] = []
    for hour, n in hours:
        lo, hi = max(hour, start_ms), min(hour + HOUR_MS, end_ms)
        if spans and spans[-1][2] + n <= CHUNK:
            first, _, total = spans[-1]
            spans[-1] = (first, hi, total + n)
        else:
            spans.append((lo, hi, n))
    return spans


def iter_span(store: Store, site_key: str, start_ms: int, end_ms: int) -> Iterator[dict[str, Any]]:
    """The events of one span in time order (then by id), one import object each. An event
    stored twice (an insert retried before the merge that collapses it) is given once."""
    rows = store.rows(
        f"SELECT {', '.join(_COLUMNS)} FROM events WHERE {_WHERE}"
        " ORDER BY ts, event_id LIMIT 1 BY event_id",
        {"site": site_key, "start": start_ms, "end": end_ms},
    )
    for row in rows:
        yield to_import(row)


def to_import(row: tuple[Any, ...]) -> dict[str, Any]:
    """One stored row (in _COLUMNS order) as an object the import accepts."""
    event_id, type_, ts_ms = row[0], row[1], int(row[2])
    at = datetime.fromtimestamp(ts_ms / 1000, UTC)
    out: dict[str, Any] = {
        "id": event_id,
        "type": type_,
        "ts": at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
    }
    pos = 3
    for _, field in _TEXT_FIELDS:
        if row[pos]:
            out[field] = row[pos]
        pos += 1
    props, value, screen_width, outbound = row[pos : pos + 4]
    pos += 4
    if props:
        out["props"] = dict(props)
    if value:
        out["value"] = float(value)
    if screen_width:
        out["screen_width"] = int(screen_width)
    if outbound:
        out["outbound"] = True
    element = {}
    for _, field in _ELEMENT:
        if row[pos]:
            element[field] = row[pos]
        pos += 1
    if element:
        out["element"] = element
    context = {}
    for _, field in _CONTEXT:
        if row[pos]:
            context[field] = row[pos]
        pos += 1
    if context:
        out["context"] = context
    return out


def iter_events(
    store: Store, site_key: str, start_ms: int, end_ms: int
) -> Iterator[dict[str, Any]]:
    """Every event of [start_ms, end_ms) in time order, chunk by chunk."""
    for lo, hi, _ in chunks(hour_counts(store, site_key, start_ms, end_ms), start_ms, end_ms):
        yield from iter_span(store, site_key, lo, hi)


def bounds(timezone: str, date_from: date | None, date_to: date | None) -> tuple[int, int]:
    """[start, end) in epoch ms for whole days in the site's time zone; an open end is all
    history on that side."""
    if date_from and date_to and date_from > date_to:
        raise ValueError(f"from ({date_from}) is after to ({date_to})")
    start = ReportQuery(date_from, date_from, timezone=timezone).start_ms if date_from else 0
    end = ReportQuery(date_to, date_to, timezone=timezone).end_ms if date_to else END_OF_TIME
    return start, end


END_OF_TIME = 7_258_118_400_000  # 2200-01-01: the import refuses anything later


def ndjson_line(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event) + b"\n"
