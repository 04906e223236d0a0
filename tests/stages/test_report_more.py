"""Reports over events loaded through the import API, site time zones, and trends agreeing
with per-period reports."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, date, datetime, time, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from flask.testing import FlaskClient

from tests.stages.conftest import load
from tracker.clickhouse import Store
from tracker.configdb import db
from tracker.models import Site
from tracker.reports import funnel_report, funnel_trends, parse_report_query
from tracker.stages.templates import template_definition


def test_report_over_imported_events(client: FlaskClient, site: Site, auth: dict) -> None:
    t0 = datetime(2026, 5, 4, 10, tzinfo=UTC)
    events = [
        {
            "id": str(uuid.uuid4()),
            "type": "pageview",
            "url": "https://example.test/",
            "visitor": "a",
            "ts": t0.isoformat(),
        },
        {
            "id": str(uuid.uuid4()),
            "type": "click",
            "url": "https://example.test/",
            "visitor": "a",
            "ts": (t0 + timedelta(minutes=1)).isoformat(),
            "element": {"tag": "button", "text": "Go"},
        },
        {
            "id": str(uuid.uuid4()),
            "type": "event",
            "name": "signup",
            "url": "https://example.test/s",
            "visitor": "a",
            "user": "u9",
            "ts": (t0 + timedelta(minutes=2)).isoformat(),
        },
        {
            "id": str(uuid.uuid4()),
            "type": "event",
            "name": "purchase",
            "url": "https://example.test/t",
            "visitor": "b",
            "user": "u9",
            "value": 42.5,
            "ts": (t0 + timedelta(hours=3)).isoformat(),
        },
    ]
    res = client.post(f"/api/v1/sites/{site.key}/events:import", json=events, headers=auth)
    # The import is synchronous: the events are stored when it answers (200, not 202).
    assert res.status_code == 200, res.get_data(as_text=True)
    assert res.get_json() == {
        "imported": len(events),
        "accepted": len(events),
        "existing": 0,
        "dropped": {},
    }
    fid = client.get(f"/api/v1/sites/{site.key}/funnels", headers=auth).get_json()["funnels"][0][
        "id"
    ]
    body = client.get(
        f"/api/v1/sites/{site.key}/funnels/{fid}/report",
        query_string={"from": "2026-05-04", "to": "2026-05-04"},
        headers=auth,
    ).get_json()
    assert [s["persons"] for s in body["stages"]] == [1, 1, 1, 1]
    assert body["engagement"]["median_s"] == 120.0
    pipe = client.get(
        f"/api/v1/sites/{site.key}/funnels/{fid}/pipeline",
        query_string={"from": "2026-05-04", "to": "2026-05-04"},
        headers=auth,
    ).get_json()
    assert pipe["sale_value"] == {"sum": 42.5, "average": 42.5}
    assert pipe["currency"] is None  # the site has none set
    assert pipe["breakdown"] == [] and pipe["breakdown_field"] is None
    # By landing page (the person's first event): one group, the same figures as the total.
    by = client.get(
        f"/api/v1/sites/{site.key}/funnels/{fid}/pipeline",
        query_string={"from": "2026-05-04", "to": "2026-05-04", "breakdown": "landing"},
        headers=auth,
    ).get_json()
    assert by["breakdown_field"] == "landing"
    assert [(b["value"], b["other"]) for b in by["breakdown"]] == [("/", False)]
    group = by["breakdown"][0]
    assert group["sale_value"] == by["sale_value"] and group["entered"] == by["entered"] == 1
    assert group["average_time_to_close_s"] == 3 * 3600.0
    bad = client.get(
        f"/api/v1/sites/{site.key}/funnels/{fid}/pipeline",
        query_string={"breakdown": "nope"},
        headers=auth,
    )
    assert bad.status_code == 400 and "breakdown" in bad.get_json()["detail"]


def test_range_uses_the_site_time_zone(store: Store, site: Site) -> None:
    site.timezone = "America/New_York"
    db.session.commit()
    # 2026-06-01 02:00 UTC is still May 31st in New York (UTC-4).
    load(
        store,
        [
            {
                "site_id": site.key,
                "visitor_id": "a",
                "type": "pageview",
                "ts": datetime(2026, 6, 1, 2, tzinfo=UTC),
            }
        ],
    )
    may31 = parse_report_query({"from": "2026-05-31", "to": "2026-05-31"}, site)
    june1 = parse_report_query({"from": "2026-06-01", "to": "2026-06-01"}, site)
    definition = template_definition()
    assert funnel_report(store, site, definition, may31)["stages"][0]["persons"] == 1
    assert funnel_report(store, site, definition, june1)["stages"][0]["persons"] == 0


def test_trends_agree_with_per_day_reports(store: Store) -> None:
    rng = random.Random(7)
    key = f"tr{uuid.uuid4().hex[:10]}"
    site = SimpleNamespace(key=key, timezone="UTC")
    start = datetime(2026, 2, 1, tzinfo=UTC)
    events = []
    for v in range(60):
        t = start + timedelta(hours=rng.randrange(0, 24 * 6))
        for type_, name in (
            ("pageview", ""),
            ("click", ""),
            ("event", "signup"),
            ("event", "purchase"),
        ):
            if rng.random() < 0.3:
                break
            t += timedelta(hours=rng.choice((1, 5, 20, 40)))
            events.append(
                {"site_id": key, "visitor_id": f"v{v % 45}", "type": type_, "name": name, "ts": t}
            )
    load(store, events)
    definition = dict(template_definition(), window=2 * 86400)
    query = parse_report_query({"from": "2026-02-01", "to": "2026-02-06"}, site)  # type: ignore[arg-type]
    trends = funnel_trends(store, site, definition, query, "day")  # type: ignore[arg-type]
    assert len(trends["periods"]) == 6
    assert all(p["complete"] and p["settled"] for p in trends["periods"])  # February is over
    assert trends["window"] == 2 * 86400
    previous = None
    for period in trends["periods"]:
        day = date.fromisoformat(period["start"])
        single = parse_report_query({"from": day.isoformat(), "to": day.isoformat()}, site)  # type: ignore[arg-type]
        report = funnel_report(store, site, definition, single)  # type: ignore[arg-type]
        counts = [s["persons"] for s in report["stages"]]
        assert [s["persons"] for s in period["stages"]] == counts
        if previous and previous[0]:
            assert period["stages"][0]["change"] == (counts[0] - previous[0]) / previous[0]
        previous = counts
    assert sum(p["stages"][0]["persons"] for p in trends["periods"]) > 10


def test_trend_periods_are_clipped_to_the_range(store: Store) -> None:
    """A range from a Wednesday to the next Tuesday: the weekly periods are Wed-Sun and
    Mon-Tue, each exactly the report of those days; the Wednesday after the range (same
    calendar week) never counts."""
    key = f"tc{uuid.uuid4().hex[:10]}"
    site = SimpleNamespace(key=key, timezone="UTC")
    days = [date(2026, 2, d) for d in (2, 4, 8, 9, 10, 11)]  # Mon, Wed, Sun, Mon, Tue, Wed
    load(
        store,
        [
            {"site_id": key, "visitor_id": f"v{d.day}-{n}", "type": "pageview", "name": "",
             "ts": datetime(d.year, d.month, d.day, 12, tzinfo=UTC)}
            for d in days for n in range(d.day)
        ],
    )  # fmt: skip
    definition = template_definition()
    query = parse_report_query({"from": "2026-02-04", "to": "2026-02-10"}, site)  # type: ignore[arg-type]
    trends = funnel_trends(store, site, definition, query, "week")  # type: ignore[arg-type]
    spans = [(p["start"], p["end"], p["partial"]) for p in trends["periods"]]
    assert spans == [("2026-02-04", "2026-02-08", True), ("2026-02-09", "2026-02-10", True)]
    assert [p["stages"][0]["persons"] for p in trends["periods"]] == [4 + 8, 9 + 10]
    assert trends["range"] == {"from": "2026-02-04", "to": "2026-02-10"}
    for period in trends["periods"]:
        alone = parse_report_query({"from": period["start"], "to": period["end"]}, site)  # type: ignore[arg-type]
        report = funnel_report(store, site, definition, alone)  # type: ignore[arg-type]
        assert [s["persons"] for s in period["stages"]] == [s["persons"] for s in report["stages"]]
    aligned = parse_report_query({"from": "2026-02-02", "to": "2026-02-15"}, site)  # type: ignore[arg-type]
    whole = funnel_trends(store, site, definition, aligned, "week")  # type: ignore[arg-type]
    assert [p["partial"] for p in whole["periods"]] == [False, False]
    assert [p["stages"][0]["persons"] for p in whole["periods"]] == [2 + 4 + 8, 9 + 10 + 11]


def test_every_period_equals_its_own_report_in_every_mode(store: Store) -> None:
    """Trends evaluate all periods in one query, grouping each person's events once for all
    periods; each period must still be exactly the report of that period alone, for every
    stage figure (persons, skipped, times, histogram) and breakdown row, in every mode, with
    identity stitching, attribution filters and event (prop) filters."""
    from tracker.reports.common import ReportTimer
    from tracker.reports.query import epoch_ms
    from tracker.reports.report import stage_counts_by_period
    from tracker.reports.trends import periods_between
    from tracker.stages.definitions import validate_definition

    rng = random.Random(11)
    key = f"tp{uuid.uuid4().hex[:10]}"
    site = SimpleNamespace(key=key, timezone="UTC")
    start = datetime(2026, 3, 1, tzinfo=UTC)
    # pageview (stage 1), pricing pageview (stages 1 and 2), click (2), signup (3), purchase
    # (4) and a scroll event that matches no stage, spread so that windows cross periods.
    kinds = [
        ("pageview", "", "/"),
        ("pageview", "", "/pricing"),
        ("click", "", "/"),
        ("event", "signup", "/"),
        ("event", "purchase", "/"),
        ("event", "scroll", "/"),
    ]
    events = []
    for v in range(80):
        t = start + timedelta(hours=rng.randrange(0, 24 * 7))
        for _ in range(rng.randrange(1, 9)):
            type_, name, path = rng.choice(kinds)
            events.append(
                {
                    "site_id": key,
                    "visitor_id": f"v{v % 60}",
                    # Visitors 0-9 identify as one of three users: stitched across periods.
                    "user_id": f"u{v % 3}" if v % 60 < 10 and rng.random() < 0.3 else "",
                    "type": type_,
                    "name": name,
                    "path": path,
                    "utm_source": rng.choice(["", "", "news"]),
                    "utm_campaign": rng.choice(["", "spring", "fall"]),
                    "props": {"plan": rng.choice(["pro", "free"])},
                    "ts": t,
                }
            )
            t += timedelta(hours=rng.choice((0, 1, 6, 20, 30, 50)))
    load(store, events)
    definition = validate_definition(
        {
            "name": "overlap",
            "mode": "ordered",
            "window": 2 * 86400,
            "stages": [
                {"key": "visit", "name": "Visit", "rules": [{"type": "pageview"}]},
                {
                    "key": "interest",
                    "name": "Interest",
                    "rules": [
                        {
                            "type": "pageview",
                            "conditions": [
                                {"field": "path", "op": "starts_with", "value": "/pricing"}
                            ],
                        },
                        {"type": "click"},
                    ],
                },
                {"key": "signup", "name": "Signup", "rules": [{"type": "event", "name": "signup"}]},
                {"key": "buy", "name": "Buy", "rules": [{"type": "event", "name": "purchase"}]},
            ],
        }
    )
    spans = periods_between(date(2026, 3, 1), date(2026, 3, 7), "day")
    bounds = [(epoch_ms(a, "UTC"), epoch_ms(b, "UTC")) for a, b in spans]
    compared = 0
    for mode in ("ordered", "strict", "any"):
        for extra in (
            {},
            {"source": "news", "breakdown": "campaign"},
            {"landing": "/pricing"},
            {"filter": "prop.plan:equals:pro", "breakdown": "landing"},
        ):
            args = {"from": "2026-03-01", "to": "2026-03-07", "mode": mode, **extra}
            query = parse_report_query(args, site)  # type: ignore[arg-type]
            by_period = stage_counts_by_period(store, key, definition, query, bounds, ReportTimer())
            for (day, _end), (start_ms, _) in zip(spans, bounds, strict=True):
                one = parse_report_query(
                    {**args, "from": day.isoformat(), "to": day.isoformat()},
                    site,  # type: ignore[arg-type]
                )
                alone = funnel_report(store, site, definition, one)  # type: ignore[arg-type]
                period = by_period[start_ms]
                assert period["persons"] == alone["persons"], (mode, extra, day)
                assert period["stages"] == alone["stages"], (mode, extra, day)
                assert period["breakdown"] == alone["breakdown"], (mode, extra, day)
                compared += alone["persons"]
    assert compared > 100  # the periods are not empty


def test_a_period_under_way_is_marked(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """The week (or month) holding today is not complete: its counts are so far only. The
    clock is pinned, 15 days after Auckland's clocks went back: read live, "30 days after a
    local midnight" and "the same time 30 days later" differ by an hour across such a change,
    and the test raced that hour every day for a month."""
    site = SimpleNamespace(key=f"tw{uuid.uuid4().hex[:10]}", timezone="Pacific/Auckland")
    zone = ZoneInfo(site.timezone)
    now = datetime(2026, 4, 20, 10, 0, tzinfo=zone)
    today = now.date()
    monkeypatch.setattr("tracker.reports.query.today_in", lambda tz: today)
    monkeypatch.setattr("tracker.reports.trends.today_in", lambda tz: today)
    monkeypatch.setattr("tracker.reports.trends.time", SimpleNamespace(time=now.timestamp))
    query = parse_report_query(
        {"from": (today - timedelta(days=40)).isoformat(), "to": today.isoformat()},
        site,  # type: ignore[arg-type]
    )
    for interval in ("day", "week", "month"):
        periods = funnel_trends(store, site, template_definition(), query, interval)["periods"]  # type: ignore[arg-type]
        assert [p["complete"] for p in periods] == [True] * (len(periods) - 1) + [False]
        assert date.fromisoformat(periods[-1]["start"]) <= today
    # Settled: the 30-day window after the period's end (local midnight) has passed, so no
    # attempt that started in it can still reach a later stage.
    days = funnel_trends(store, site, template_definition(), query, "day")["periods"]  # type: ignore[arg-type]
    settled = [p["settled"] for p in days]
    ends = [
        datetime.combine(date.fromisoformat(p["end"]) + timedelta(days=1), time(0), zone)
        for p in days
    ]
    assert settled == [end.astimezone(UTC) + timedelta(days=30) <= now for end in ends]
    assert True in settled and False in settled
