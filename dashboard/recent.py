"""The last events a site received, for the "verify installation" check."""

from __future__ import annotations

from datetime import date
from typing import Any

from tracker.clickhouse import Store
from tracker.models import Site

_COLUMNS = (
    "received_at",
    "ts",
    "type",
    "name",
    "url",
    "title",
    "element_text",
    "source",
    "medium",
    "utm_campaign",
    "utm_term",
    "device",
    "country",
)


def recent_events(store: Store, site: Site, limit: int = 10) -> list[dict[str, Any]]:
    # Bounded to the last week so the scan touches at most the newest partitions.
    rows = store.rows(
        f"SELECT {', '.join(_COLUMNS)} FROM events"
        " WHERE site_id = {site:String} AND received_at >= now() - INTERVAL 7 DAY"
        " ORDER BY received_at DESC LIMIT {limit:UInt32}",
        {"site": site.key, "limit": limit},
    )
    return [dict(zip(_COLUMNS, row, strict=True)) for row in rows]


def event_count(store: Store, site: Site) -> int:
    return int(
        store.scalar("SELECT count() FROM events WHERE site_id = {site:String}", {"site": site.key})
        or 0
    )


def first_event_day(store: Store, site: Site) -> date | None:
    """The day (in the site's time zone) of the site's earliest stored event, or None."""
    first = store.scalar(
        "SELECT toDate(min(ts), {tz:String}) FROM events WHERE site_id = {site:String}"
        " HAVING count() > 0",
        {"site": site.key, "tz": site.timezone},
    )
    return first if isinstance(first, date) else None


ACTIVITY_DAYS = 30


def site_activity(store: Store, keys: list[str]) -> dict[str, dict[str, Any]]:
    """Per site key: visitors and events of the last 30 days, and when the newest of those
    events arrived (`received_at`, UTC). Sites without any are left out. Bounded by event
    time so that the scan stays within the newest partitions, however long the history."""
    if not keys:
        return {}
    rows = store.rows(
        "SELECT site_id, uniqExact(visitor_id), count(), max(received_at) FROM events"
        " WHERE site_id IN {keys:Array(String)}"
        " AND ts >= now64(3) - INTERVAL {days:UInt32} DAY"
        " GROUP BY site_id",
        {"keys": keys, "days": ACTIVITY_DAYS},
    )
    return {
        str(key): {"visitors": int(visitors), "events": int(events), "newest": newest}
        for key, visitors, events, newest in rows
    }
