"""Funnel engine benchmark: the service's report against a hand-written windowFunnel query.

Generates N events for N/10 persons inside ClickHouse (numbers() and hash functions, no
Python loops) into a throwaway chDB data directory outside the repository, then times:

- the service's 4-stage ordered report with two filters and a campaign breakdown, exactly as
  the API runs it (funnel_report);
- a single hand-written `windowFunnel` query over the same data, filters and breakdown
  (the baseline; it lacks the exact semantics: distinct events per stage, skipped, times);
- trends, pipeline, persons, exits and stage preview through the service.

    python bench/funnel.py [--events 10000000] [--data-dir DIR] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

BASE = "2026-01-01 00:00:00"
DAYS = 30
SITE = "bench"

DEFINITION: dict[str, Any] = {
    "name": "bench",
    "mode": "ordered",
    "window": "7d",
    "stages": [
        {
            "key": "trace",
            "rules": [
                {
                    "type": "pageview",
                    "conditions": [{"field": "path", "op": "starts_with", "value": "/landing"}],
                }
            ],
        },
        {"key": "response", "rules": [{"type": "click"}]},
        {"key": "engagement", "rules": [{"type": "event", "name": "signup"}]},
        {"key": "sale", "rules": [{"type": "event", "name": "purchase"}]},
    ],
}
REPORT_ARGS = {
    "from": "2026-01-01",
    "to": "2026-01-30",
    "breakdown": "campaign",
    "device": "mobile",
    "filter": ["country:in:US,DE,FR"],
}

BASELINE = """
SELECT campaign, level, count()
FROM (
    SELECT visitor_id,
        argMin(utm_campaign, ts) AS campaign,
        argMin(device, ts) AS dev,
        argMin(country, ts) AS ctry,
        windowFunnel(604800000)(toUInt64(toUnixTimestamp64Milli(ts)),
            type = 'pageview' AND startsWith(path, '/landing'),
            type = 'click',
            type = 'event' AND name = 'signup',
            type = 'event' AND name = 'purchase') AS level
    FROM events
    WHERE site_id = 'bench'
      AND ts >= toDateTime64('2026-01-01 00:00:00', 3, 'UTC')
      AND ts < toDateTime64('2026-01-31 00:00:00', 3, 'UTC') + INTERVAL 7 DAY
    GROUP BY visitor_id
    HAVING dev = 'mobile' AND ctry IN ('US', 'DE', 'FR') AND level > 0
)
GROUP BY campaign, level
ORDER BY campaign, level
"""


def generate_sql(events: int, offset: int = 0, count: int | None = None) -> str:
    persons = max(1, events // 10)
    count = events if count is None else count
    # Event i of person p: p = number % persons, i = number / persons (0..9). The first event
    # is a landing page view; later ones are page views, clicks, signups and purchases that
    # move forward in time, so every stage has realistic drop-off.
    return f"""
    INSERT INTO events (site_id, event_id, type, name, ts, received_at, visitor_id, session_id,
        user_id, url, host, path, source, medium, utm_campaign, utm_source, utm_medium,
        country, device, browser, os, element_tag, element_text, value)
    SELECT
        '{SITE}', generateUUIDv4(number),
        multiIf(i = 0 OR r < 50, 'pageview', r < 78, 'click', 'event') AS type,
        if(type = 'event', if(r < 92, 'signup', 'purchase'), '') AS name,
        toDateTime64('{BASE}', 3, 'UTC') + toIntervalMillisecond(
            (h % ({DAYS} * 86400)) * 1000 + i * 1800000 + (cityHash64(number, 7) % 1800000)
        ) AS ts,
        ts AS received_at,
        concat('v', toString(p)) AS visitor_id,
        concat('s', toString(p)) AS session_id,
        '' AS user_id,
        concat('https://shop.example', path) AS url,
        'shop.example' AS host,
        if(i = 0 OR r % 7 = 0, concat('/landing/', toString(h % 5)),
           concat('/p/', toString(r))) AS path,
        ['google', 'facebook', 'newsletter', 'direct'][1 + h % 4] AS source,
        ['paid', 'social', 'email', 'direct'][1 + h % 4] AS medium,
        if(i = 0, ['spring_sale', 'black_friday', 'newsletter_nov', '', 'brand', 'retarget',
            'summer', 'launch'][1 + intDiv(h, 7) % 8], '') AS utm_campaign,
        '' AS utm_source, '' AS utm_medium,
        ['US', 'DE', 'FR', 'GB', 'IN'][1 + intDiv(h, 3) % 5] AS country,
        ['mobile', 'desktop', 'tablet'][1 + intDiv(h, 11) % 3] AS device,
        'Chrome' AS browser, 'Android' AS os,
        if(type = 'click', 'button', '') AS element_tag,
        if(type = 'click', 'Add to cart', '') AS element_text,
        if(name = 'purchase', toFloat64(20 + h % 180), 0) AS value
    FROM (
        SELECT number, number % {persons} AS p, intDiv(number, {persons}) AS i,
            cityHash64(number % {persons}) AS h, cityHash64(number, 42) % 100 AS r
        FROM numbers({offset}, {count})
    )
    """


def _cpu() -> float:
    # chDB runs in this process, so its CPU time is ours: steadier than wall time on a
    # shared machine.
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(fn: Callable[[], Any], runs: int) -> tuple[float, float, Any]:
    """Median wall seconds, median CPU seconds and the last result, after a warm-up run."""
    fn()  # warm-up: caches, JIT
    walls, cpus = [], []
    result = None
    for _ in range(runs):
        cpu, started = _cpu(), time.perf_counter()
        result = fn()
        walls.append(time.perf_counter() - started)
        cpus.append(_cpu() - cpu)
    return statistics.median(walls), statistics.median(cpus), result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--data-dir", default=None, help="chDB data dir (default: temp dir)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    data_dir = Path(args.data_dir or Path(tempfile.gettempdir()) / f"funnel-bench-{args.events}")
    os.environ["FUNNEL_DATA_DIR"] = str(data_dir)
    # Generation and the 100M-event runs take longer than the default report timeout.
    os.environ.setdefault("FUNNEL_QUERY_TIMEOUT", "3600")
    from tracker import create_app
    from tracker.app import store_of
    from tracker.ch_migrations import migrate
    from tracker.reports import (
        funnel_exits,
        funnel_persons,
        funnel_pipeline,
        funnel_report,
        funnel_trends,
        parse_report_query,
        person_journey,
        stage_preview,
    )
    from tracker.stages.definitions import validate_definition

    app = create_app({})
    store = store_of(app)
    migrate(store)
    have = store.scalar("SELECT count() FROM events WHERE site_id = {s:String}", {"s": SITE})
    if have != args.events:
        store.command("TRUNCATE TABLE events")
        print(
            f"generating {args.events:,} events for {args.events // 10:,} persons in {data_dir} ..."
        )
        started = time.perf_counter()
        chunk = 2_000_000
        for offset in range(0, args.events, chunk):
            count = min(chunk, args.events - offset)
            store.command(generate_sql(args.events, offset, count))
            print(f"  {offset + count:,} / {args.events:,}", flush=True)
        store.command("OPTIMIZE TABLE events FINAL")
        print(f"  generated in {time.perf_counter() - started:.1f}s")
    else:
        print(f"reusing {have:,} events in {data_dir}")

    site = SimpleNamespace(key=SITE, timezone="UTC")
    definition = validate_definition(DEFINITION)

    class Args(dict):  # a MultiDict-like view for the repeatable `filter`
        def getlist(self, key: str) -> list[Any]:
            value = self.get(key)
            return value if isinstance(value, list) else ([] if value is None else [value])

    query = parse_report_query(Args(REPORT_ARGS), site)  # type: ignore[arg-type]
    base_s, base_cpu, base_rows = timed(lambda: store.rows(BASELINE), args.runs)
    svc_s, svc_cpu, report = timed(lambda: funnel_report(store, site, definition, query), args.runs)  # type: ignore[arg-type]

    # Same persons at stage 1 as windowFunnel's level >= 1 (a sanity check, not a test).
    wf_stage1 = sum(int(c) for _, level, c in base_rows if int(level) >= 1)
    print(
        f"\nreport persons per stage: {[s['persons'] for s in report['stages']]}"
        f" (windowFunnel stage 1: {wf_stage1})"
    )
    print(f"breakdown values: {[b['value'] for b in report['breakdown']]}")
    print(f"\n{'query':<48}{'wall s':>9}{'cpu s':>9}")
    print(f"{'baseline: single windowFunnel query':<48}{base_s:>9.3f}{base_cpu:>9.3f}")
    print(f"{'service: report, 2 filters, campaign breakdown':<48}{svc_s:>9.3f}{svc_cpu:>9.3f}")
    print(
        f"{'ratio service / baseline':<48}{svc_s / base_s:>8.2f}x"
        f"{svc_cpu / base_cpu if base_cpu else 0:>8.2f}x"
    )

    # The VM's speed drifts between the two blocks above, so also time them interleaved:
    # baseline, service, baseline, service... Each sees the same conditions.
    pairs: dict[str, list[float]] = {"baseline": [], "service": []}
    for _ in range(args.runs):
        for label, fn in (
            ("baseline", lambda: store.rows(BASELINE)),
            ("service", lambda: funnel_report(store, site, definition, query)),  # type: ignore[arg-type]
        ):
            started = time.perf_counter()
            fn()
            pairs[label].append(time.perf_counter() - started)
    base_i, svc_i = statistics.median(pairs["baseline"]), statistics.median(pairs["service"])
    print(
        f"{'interleaved medians: baseline / service':<48}{base_i:>9.3f}{svc_i:>9.3f}"
        f"  ratio {svc_i / base_i:.2f}x"
    )

    others: list[tuple[str, Callable[[], Any]]] = [
        (
            "report, no filters",
            lambda: funnel_report(
                store,
                site,
                definition,
                parse_report_query({"from": "2026-01-01", "to": "2026-01-30"}, site),
            ),
        ),  # type: ignore[arg-type]
        (
            "report, strict mode",
            lambda: funnel_report(
                store,
                site,
                definition,
                parse_report_query(
                    {"from": "2026-01-01", "to": "2026-01-30", "mode": "strict"}, site
                ),
            ),
        ),  # type: ignore[arg-type]
        ("trends (day)", lambda: funnel_trends(store, site, definition, query, "day")),  # type: ignore[arg-type]
        ("trends (week)", lambda: funnel_trends(store, site, definition, query, "week")),  # type: ignore[arg-type]
        ("trends (month)", lambda: funnel_trends(store, site, definition, query, "month")),  # type: ignore[arg-type]
        ("pipeline", lambda: funnel_pipeline(store, site, definition, query)),  # type: ignore[arg-type]
        (
            "persons (dropped at response, page 1)",
            lambda: funnel_persons(store, site, definition, query, "response", "dropped"),
        ),  # type: ignore[arg-type]
        (
            "exits (dropped at response)",
            lambda: funnel_exits(store, site, definition, query, "response"),
        ),  # type: ignore[arg-type]
        ("stage preview (30 days)", lambda: stage_preview(store, site, definition, days=3650)),  # type: ignore[arg-type]
    ]
    # A journey with the report's verdict: one person of the dropped-off list, as the
    # dashboard opens it from there.
    listed = funnel_persons(store, site, definition, query, "response", "dropped", per_page=1)  # type: ignore[arg-type]
    if listed["persons"]:
        person = listed["persons"][0]["id"]
        others.append(
            (
                "journey with the report's verdict (one person)",
                lambda: person_journey(store, site, definition, person, query),  # type: ignore[arg-type]
            )
        )
    for label, fn in others:
        wall, cpu, _ = timed(fn, max(1, args.runs - 1))
        print(f"{label:<48}{wall:>9.3f}{cpu:>9.3f}")
    print(f"\n{args.events:,} events, {args.events // 10:,} persons, {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
