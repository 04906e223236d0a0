"""A site's stored events as import lines (NDJSON): importing the output (`funnel import` or
the import API) rebuilds the same events, ids included, in another store or under another
site. For backups, moving to a ClickHouse server, or analysis elsewhere.

ClickHouse writes the lines itself (toJSONString escapes every string), so no event becomes
a Python object on the way out: Python only passes bytes along. Events are read in chunks of
about CHUNK events by visitor id range (see `plan`), so memory stays bounded however long
the history is; each visitor's events come together, in time order. Empty fields are left
out, as the import defaults them.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from datetime import date
from pathlib import Path

from tracker.clickhouse import Store
from tracker.reports.query import ReportQuery

CHUNK = 200_000
END_OF_TIME = 7_258_118_400_000  # 2200-01-01: the import refuses anything later

# (import field, stored column) for the plain text fields.
_TEXT_FIELDS = (
    ("name", "name"),
    ("url", "url"),
    ("referrer", "referrer"),
    ("title", "title"),
    ("visitor", "visitor_id"),
    ("session", "session_id"),
    ("user", "user_id"),
    ("language", "language"),
)
_ELEMENT = (
    ("tag", "element_tag"),
    ("text", "element_text"),
    ("href", "element_href"),
    ("id", "element_id"),
    ("selector", "element_selector"),
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
_WHERE = (
    "site_id = {site:String}"
    " AND ts >= fromUnixTimestamp64Milli({start:Int64}, 'UTC')"
    " AND ts < fromUnixTimestamp64Milli({end:Int64}, 'UTC')"
)


def _member(field: str, value_sql: str, present_sql: str | None = None) -> str:
    """SQL for `"field":<json>`, or '' when the value is absent (empty by default). Field
    names are the constants above: no input ever reaches this text."""
    present = present_sql or f"{value_sql} != ''"
    return f"if({present}, concat('\"{field}\":', {value_sql}), '')"


def _object(members: list[str]) -> str:
    """SQL for `{members}` without the empty ones."""
    kept = f"arrayFilter(x -> x != '', [{', '.join(members)}])"
    return f"concat('{{', arrayStringConcat({kept}, ','), '}}')"


def _nested(field: str, pairs: tuple[tuple[str, str], ...]) -> str:
    inner = _object([_member(name, f"toJSONString({col})", f"{col} != ''") for name, col in pairs])
    return _member(field, inner, " OR ".join(f"{col} != ''" for _, col in pairs))


LINE_SQL = _object(
    [
        _member("id", "toJSONString(toString(event_id))", "1"),
        _member("type", "toJSONString(type)", "1"),
        _member("ts", "toJSONString(concat(replaceOne(toString(ts, 'UTC'), ' ', 'T'), 'Z'))", "1"),
        *(_member(f, f"toJSONString({c})", f"{c} != ''") for f, c in _TEXT_FIELDS),
        _member("props", "toJSONString(props)", "notEmpty(props)"),
        _member("value", "toJSONString(value)", "value != 0"),
        _member("screen_width", "toString(screen_width)", "screen_width != 0"),
        _member("outbound", "'true'", "outbound != 0"),
        _nested("element", _ELEMENT),
        _nested("context", _CONTEXT),
    ]
)


def bounds(timezone: str, date_from: date | None, date_to: date | None) -> tuple[int, int]:
    """[start, end) in epoch ms for whole days in the site's time zone; an open end is all
    history on that side."""
    if date_from and date_to and date_from > date_to:
        raise ValueError(f"from ({date_from}) is after to ({date_to})")
    start = ReportQuery(date_from, date_from, timezone=timezone).start_ms if date_from else 0
    end = ReportQuery(date_to, date_to, timezone=timezone).end_ms if date_to else END_OF_TIME
    return start, end


def plan(
    store: Store, site_key: str, start_ms: int, end_ms: int, chunk: int = CHUNK
) -> list[tuple[str, str, int]]:
    """The export's chunks: (first visitor id, last visitor id, events) for consecutive
    visitor ranges of about `chunk` events each (a visitor is never split). Visitor ranges
    follow the table's sort key, so each chunk reads only its own part of the table, where a
    time slice would read every part that holds one of its events: all of them."""
    rows = store.rows(
        f"""
        SELECT min(visitor_id), max(visitor_id), sum(n)
        FROM (
            SELECT visitor_id, n,
                intDiv(sum(n) OVER (ORDER BY visitor_id ROWS UNBOUNDED PRECEDING) - n,
                    {{chunk:UInt64}}) AS part
            FROM (SELECT visitor_id, count() AS n FROM events WHERE {_WHERE} GROUP BY visitor_id)
        )
        GROUP BY part ORDER BY part
        """,
        {"site": site_key, "start": start_ms, "end": end_ms, "chunk": chunk},
    )
    return [(str(first), str(last), int(n)) for first, last, n in rows]


def span_lines(
    store: Store, site_key: str, start_ms: int, end_ms: int, first: str, last: str
) -> bytes:
    """The NDJSON lines of the events of visitors `first`..`last` in [start_ms, end_ms),
    visitor by visitor, each in time order (then by id). An event stored twice (an insert
    retried before the merge that collapses it) is given once."""
    return store.raw(
        f"SELECT {LINE_SQL} FROM events WHERE {_WHERE}"
        " AND visitor_id >= {first:String} AND visitor_id <= {last:String}"
        " ORDER BY visitor_id, ts, event_id LIMIT 1 BY event_id",
        {"site": site_key, "start": start_ms, "end": end_ms, "first": first, "last": last},
    )


def iter_lines(
    store: Store, site_key: str, start_ms: int, end_ms: int, spans: list[tuple[str, str, int]]
) -> Iterator[bytes]:
    """Every event of [start_ms, end_ms) as NDJSON, one chunk of lines at a time, along a
    `plan` its callers make first (to size a progress bar, or to fail before any output)."""
    for first, last, _ in spans:
        yield span_lines(store, site_key, start_ms, end_ms, first, last)


def create_beside(target: Path) -> tuple[int, Path]:
    """A new file next to `target` (open for writing) that the export is written into and
    renamed over `target` once complete. Mode 0666 less the umask, as for any file a command
    creates (mkstemp's 0600 would hide the export from the group). OSError when the folder
    cannot take it."""
    while True:
        tmp = target.with_name(f".{target.name}.{secrets.token_hex(6)}")
        try:
            return os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue
