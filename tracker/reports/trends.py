"""Trends: stage counts per day, week or month, with the change versus the previous period.

Each period is evaluated as if it were the report's range (attempts starting in it), all in
one query that groups each person's events once for every period (see
`engine._periods_grouped_sql`), so 30 daily periods cost about as much as one monthly one.
"""

from __future__ import annotations

import time
from datetime import date, timedelta
from typing import Any

from tracker.clickhouse import Store
from tracker.models import Site
from tracker.reports.common import ReportTimer, as_definition
from tracker.reports.query import QueryError, ReportQuery, epoch_ms, today_in
from tracker.reports.report import stage_counts_by_period

INTERVALS = ("day", "week", "month")
MAX_PERIODS = 400
DEFAULT_PERIODS = {"day": 30, "week": 12, "month": 12}


def period_start(day: date, interval: str) -> date:
    if interval == "week":
        return day - timedelta(days=day.weekday())  # ISO weeks start on Monday
    if interval == "month":
        return day.replace(day=1)
    return day


def next_period(day: date, interval: str) -> date:
    if interval == "week":
        return day + timedelta(days=7)
    if interval == "month":
        return (day.replace(day=28) + timedelta(days=4)).replace(day=1)
    return day + timedelta(days=1)


def periods_between(first: date, last: date, interval: str) -> list[tuple[date, date]]:
    """[start, end) date pairs covering first..last, aligned to period boundaries."""
    out = []
    cur = period_start(first, interval)
    while cur <= last:
        nxt = next_period(cur, interval)
        out.append((cur, nxt))
        if len(out) > MAX_PERIODS:
            raise QueryError(f"too many {interval}s in the range; use a longer interval")
        cur = nxt
    return out


def default_first_day(last: date, interval: str) -> date:
    """Where the default range (the last 30 days, 12 weeks or 12 months) starts: at the
    start of the period DEFAULT_PERIODS - 1 periods before the one holding `last`, so every
    period but the one under way is whole (not a clipped first day of a month or week)."""
    first = period_start(last, interval)
    for _ in range(DEFAULT_PERIODS[interval] - 1):
        first = period_start(first - timedelta(days=1), interval)
    return first


def funnel_trends(
    store: Store, site: Site, definition: Any, query: ReportQuery, interval: str = "month"
) -> dict[str, Any]:
    if interval not in INTERVALS:
        raise QueryError(f"interval must be one of {', '.join(INTERVALS)}")
    definition = as_definition(definition)
    query = query.totals_only()
    first = query.date_from
    if not query.explicit_range:
        first = default_first_day(query.date_to, interval)
    # Periods align to calendar boundaries, but the first and last are clipped to the range:
    # a day outside the chosen range never counts (such a period is marked "partial").
    whole = periods_between(first, query.date_to, interval)
    last_day = query.date_to + timedelta(days=1)
    spans = [(max(a, first), min(b, last_day)) for a, b in whole]
    tz = query.timezone
    bounds = [(epoch_ms(a, tz), epoch_ms(b, tz)) for a, b in spans]
    timer = ReportTimer()
    reports = stage_counts_by_period(store, site.key, definition, query, bounds, timer)
    today = today_in(tz)
    window_ms = (query.window or int(definition["window"])) * 1000
    now_ms = int(time.time() * 1000)
    periods: list[dict[str, Any]] = []
    previous: list[int] | None = None
    for (start, end), (start_ms, end_ms), span in zip(spans, bounds, whole, strict=True):
        report = reports[start_ms]
        counts = [s["persons"] for s in report["stages"]]
        stages = []
        for idx, stage in enumerate(report["stages"]):
            prev = previous[idx] if previous is not None else None
            stages.append(
                {
                    "key": stage["key"],
                    "name": stage["name"],
                    "persons": stage["persons"],
                    "conversion_from_start": stage["conversion_from_start"],
                    "previous": prev,
                    "change": (stage["persons"] - prev) / prev if prev else None,
                }
            )
        periods.append(
            {
                "start": start.isoformat(),
                "end": (end - timedelta(days=1)).isoformat(),
                # A period still under way (it ends after today) holds only part of its
                # events: comparing it with a whole one would read as a fall.
                "complete": end <= today,
                # Only part of the calendar period lies inside the report's range.
                "partial": (start, end) != span,
                # Until the window after its last attempt start has passed, a period's later
                # stages can still grow (attempts are still converting).
                "settled": end_ms + window_ms <= now_ms,
                "persons": report["persons"],
                "stages": stages,
            }
        )
        previous = counts
    return {
        "interval": interval,
        "window": window_ms // 1000,
        "periods": periods,
        "range": {"from": first.isoformat(), "to": query.date_to.isoformat()},
        "timezone": tz,
        "sql_ms": timer.ms,
    }
