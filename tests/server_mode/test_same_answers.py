"""Every report, export and erasure gives the same answer through a ClickHouse server (the
HTTP client: bound parameters in the URL or a form, settings, compression) as through the
embedded engine, on the same events. The embedded path is held to the reference oracle
elsewhere; this holds the server path to it."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, time, timedelta
from itertools import chain
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.server_mode.conftest import ClickHouseServer
from tests.stages.conftest import load
from tracker.ch_migrations import migrate
from tracker.clickhouse import Store
from tracker.demo import generate
from tracker.erasure import erase_person, find_person
from tracker.export import iter_lines, plan
from tracker.reports import (
    funnel_exits,
    funnel_persons,
    funnel_pipeline,
    funnel_report,
    funnel_reports_by_site,
    funnel_trends,
    parse_report_query,
    person_journey,
    top_values,
)
from tracker.settings import Settings
from tracker.stages.templates import template_definition

END = datetime(2026, 6, 1, tzinfo=UTC)
RANGE = {"from": "2026-04-01", "to": "2026-05-31"}
# Report queries as the API receives them: filters of each kind, breakdowns, modes, windows.
QUERIES: list[dict[str, Any]] = [
    {},
    {"campaign": "spring_sale"},
    {"device": "mobile", "breakdown": "campaign"},
    {"breakdown": "product", "mode": "strict"},
    {"mode": "any", "window": "2d", "breakdown": "source"},
    {"filter": ["path:starts_with:/pro", "country:in:US,DE,FR"], "breakdown": "country"},
    # May against April: the demo traffic covers both.
    {"keyword": "running shoes", "compare": "previous", "from": "2026-05-01"},
    {"filter": ["prop.product:exists:"], "window": "90m"},
]


def strip_timing(value: Any) -> Any:
    """The answer without `sql_ms`, the only field that may differ between two runs."""
    if isinstance(value, dict):
        return {k: strip_timing(v) for k, v in value.items() if k != "sql_ms"}
    if isinstance(value, list):
        return [strip_timing(v) for v in value]
    return value


@pytest.fixture(scope="module")
def server_store(clickhouse_server: ClickHouseServer, tmp_path_factory: pytest.TempPathFactory):
    settings = Settings.from_env(
        overrides={
            "clickhouse_dsn": clickhouse_server.dsn(),
            "data_dir": tmp_path_factory.mktemp("server-app"),
        }
    )
    the_store = Store(settings)
    migrate(the_store)
    yield the_store
    the_store.close()


@pytest.fixture(scope="module")
def both(store: Store, server_store: Store) -> tuple[SimpleNamespace, list[Store]]:
    """The same 400 demo visitors (two months, campaigns, products, identified users) in the
    embedded store and on the server."""
    site = SimpleNamespace(key=f"srv{uuid.uuid4().hex[:10]}", timezone="Europe/Berlin")
    events = list(chain.from_iterable(generate(400, seed=11, days=61, site_id=site.key, end=END)))
    assert len(events) > 1000 and any(e.get("user_id") for e in events)
    for target in (store, server_store):
        load(target, events)
    return site, [store, server_store]


def export(store: Store, site_key: str, start: int, end: int) -> bytes:
    spans = plan(store, site_key, start, end)
    return b"".join(iter_lines(store, site_key, start, end, spans))


def same(stores: list[Store], call: Any, *args: Any, **kwargs: Any) -> Any:
    """`call(store, *args)` on both stores: the answers must be equal (timings aside)."""
    embedded, server = (strip_timing(call(s, *args, **kwargs)) for s in stores)
    assert server == embedded
    return embedded


@pytest.mark.parametrize("args", QUERIES, ids=lambda a: ",".join(a) or "plain")
def test_report_pipeline_and_trends_match(both: tuple[Any, list[Store]], args: dict) -> None:
    site, stores = both
    definition = template_definition()
    query = parse_report_query({**RANGE, **args}, site)
    report = same(stores, funnel_report, site, definition, query)
    # Two empty answers would be equal too: every query must find persons, each breakdown
    # several groups, and a comparison a previous period with persons.
    assert report["persons"] > 0, args
    if not args:
        # The comparison means something only if the funnel has traffic at every stage.
        assert all(stage["persons"] > 0 for stage in report["stages"]), report["stages"]
    if "breakdown" in args:
        assert len([b for b in report["breakdown"] if b["stages"][0]["persons"]]) >= 2, args
    if "compare" in args:
        assert report["compare"]["persons"] > 0, args
    same(stores, funnel_pipeline, site, definition, query)
    same(stores, funnel_trends, site, definition, query, "week")


@pytest.mark.parametrize("status", ["reached", "dropped", "skipped"])
def test_persons_exits_and_journeys_match(both: tuple[Any, list[Store]], status: str) -> None:
    site, stores = both
    definition = template_definition()
    query = parse_report_query({**RANGE, "breakdown": "campaign"}, site)
    listed = same(
        stores, funnel_persons, site, definition, query, "engagement", status, per_page=20
    )
    same(stores, funnel_exits, site, definition, query, "engagement")
    for person in listed["persons"][:3]:
        same(stores, person_journey, site, definition, person["id"], query)
    if status == "reached":
        assert listed["persons"], "no person reached engagement: nothing was compared"


def test_trends_values_and_multi_site_reports_match(both: tuple[Any, list[Store]]) -> None:
    site, stores = both
    definition = template_definition()
    query = parse_report_query(RANGE, site)
    for interval in ("day", "month"):
        same(stores, funnel_trends, site, definition, query, interval)
    for field in ("campaign", "keyword", "prop.product", "path"):
        values = same(stores, top_values, site, field, query)
        assert values, field
    same(stores, funnel_reports_by_site, [site.key, "nosuchsite"], definition, query)


def test_export_and_erasure_match(both: tuple[Any, list[Store]]) -> None:
    site, stores = both
    start, end = (
        int(datetime(2026, 3, 1, tzinfo=UTC).timestamp() * 1000),
        int(END.timestamp() * 1000),
    )

    exported = same(stores, export, site.key, start, end)
    assert exported.count(b"\n") > 1000
    # Erase an identified person on both: the same events go, from every later answer.
    query = parse_report_query(RANGE, site)
    person = next(
        p["id"]
        for p in funnel_persons(
            stores[0], site, template_definition(), query, "sale", "reached", per_page=50
        )["persons"]
        if p["id"].startswith("user-")
    )
    found = same(stores, lambda s: vars(find_person(s, site, person)))
    assert found["events"] > 0
    same(stores, lambda s: vars(erase_person(s, site, person, wait=True)))
    after = same(stores, export, site.key, start, end)
    assert after.count(b"\n") == exported.count(b"\n") - found["events"]


def test_server_answers_days_in_the_site_time_zone(both: tuple[Any, list[Store]]) -> None:
    """A range boundary is midnight in the site's zone on both (the engine's own zone is UTC
    on the server, the host's zone in process): each day has persons, each of them entered
    between that day's local midnights, the two days' persons together are the two-day
    range's, and the day-by-day trend says the same as each day's report."""
    site, stores = both
    definition = template_definition()
    zone = ZoneInfo(site.timezone)
    first_stage = definition["stages"][0]["key"]
    days = (date(2026, 4, 30), date(2026, 5, 1))
    entered: list[set[str]] = []
    for day in days:
        query = parse_report_query({"from": day.isoformat(), "to": day.isoformat()}, site)
        report = same(stores, funnel_report, site, definition, query)
        assert report["persons"] > 0, day
        listed = same(
            stores, funnel_persons, site, definition, query, first_stage, "reached", per_page=1000
        )
        assert listed["total"] == report["persons"] == len(listed["persons"]), day
        start = datetime.combine(day, time(0), zone)
        end = datetime.combine(day + timedelta(days=1), time(0), zone)
        for person in listed["persons"]:
            at = datetime.fromisoformat(person["reached_at"].replace("Z", "+00:00"))
            assert start <= at < end, (day, person)
        entered.append({p["id"] for p in listed["persons"]})
    span = {"from": days[0].isoformat(), "to": days[1].isoformat()}
    query = parse_report_query(span, site)
    listed = same(
        stores, funnel_persons, site, definition, query, first_stage, "reached", per_page=1000
    )
    assert {p["id"] for p in listed["persons"]} == entered[0] | entered[1]
    trends = same(stores, funnel_trends, site, definition, query, "day")
    assert [p["stages"][0]["persons"] for p in trends["periods"]] == [len(e) for e in entered]

    # Half an hour either side of local midnight: both on 30 April in UTC, one per day here.
    edge = SimpleNamespace(key=f"tz{uuid.uuid4().hex[:10]}", timezone=site.timezone)
    midnight = datetime.combine(days[1], time(0), zone)
    for target in stores:
        load(target, [
            {"site_id": edge.key, "event_id": uuid.UUID(int=n + 1), "visitor_id": who,
             "type": "pageview", "ts": midnight + offset}
            for n, (who, offset) in enumerate(
                [("before", -timedelta(minutes=30)), ("after", timedelta(minutes=30))]
            )
        ])  # fmt: skip
    for day, who in zip(days, ("before", "after"), strict=True):
        query = parse_report_query({"from": day.isoformat(), "to": day.isoformat()}, edge)
        listed = same(
            stores, funnel_persons, edge, definition, query, first_stage, "reached", per_page=10
        )
        assert [p["id"] for p in listed["persons"]] == [who], day
