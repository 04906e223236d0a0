"""The engine against the reference oracle on hypothesis-generated event sets.

Each hypothesis example draws one definition and one query and a batch of independent event
sets; every set is stored under its own site key and the engine evaluates the whole batch in
one query (`funnel_reports_by_site`). Every figure must match the oracle exactly.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.stages import oracle
from tests.stages.conftest import load
from tracker.clickhouse import Store
from tracker.reports.exits import funnel_exits
from tracker.reports.persons import funnel_persons, person_progress
from tracker.reports.pipeline import funnel_pipeline
from tracker.reports.query import ReportQuery
from tracker.reports.report import funnel_reports_by_site
from tracker.stages.definitions import validate_definition

DAY = date(2026, 3, 10)
BASE = datetime(2026, 3, 10, tzinfo=UTC)
BATCH = 15
# A longer hunt on demand: ORACLE_EXAMPLES_SCALE=10 pytest tests/stages/test_oracle.py
# (not a FUNNEL_ variable: the test session clears those).
SCALE = max(1, int(os.environ.get("ORACLE_EXAMPLES_SCALE", "1")))

RULES = [
    {"type": "pageview"},
    {"type": "click"},
    {"type": "event", "name": "signup"},
    {"type": "event", "name": "buy"},
    {"type": "any", "conditions": [{"field": "path", "op": "starts_with", "value": "/b"}]},
    {"type": "pageview", "conditions": [{"field": "path", "op": "equals", "value": "/a"}]},
    {"type": "any", "conditions": [{"field": "prop.n", "op": "gt", "value": 2}]},
    {"type": "any", "conditions": [{"field": "campaign", "op": "exists"}]},
    {"type": "click", "conditions": [{"field": "path", "op": "glob", "value": "/?*"}]},
    {"type": "any", "conditions": [{"field": "value", "op": "gt", "value": 5}]},
    # Boundary values: prop.n is 0..5 and value 0 or 10, so lt 2 and lt 10 meet equality;
    # "b" ends "/b" but not "/b/c"; the pattern is one RE2 and Python's re read alike.
    {"type": "any", "conditions": [{"field": "prop.n", "op": "lt", "value": 2}]},
    {"type": "any", "conditions": [{"field": "value", "op": "lt", "value": 10}]},
    {"type": "pageview", "conditions": [{"field": "path", "op": "ends_with", "value": "b"}]},
    {"type": "any", "conditions": [{"field": "path", "op": "regex", "value": "^/(a|b/c)$"}]},
    {"type": "click", "conditions": [{"field": "path", "op": "not_contains", "value": "/b"}]},
]
EVENT_FILTERS = [
    [],
    [],
    [{"field": "prop.n", "op": "exists", "value": True}],
    [{"field": "path", "op": "not_equals", "value": "/b/c"}],
    [{"field": "prop.n", "op": "lt", "value": 3}],
    [{"field": "path", "op": "not_contains", "value": "/b/"}],
    [{"field": "path", "op": "ends_with", "value": "/b"}],
    [{"field": "path", "op": "regex", "value": "^/[ab]?$"}],
]
PERSON_FILTERS = [
    [],
    [],
    [{"field": "campaign", "op": "equals", "value": "c1"}],
    [{"field": "device", "op": "in", "value": ["mobile"]}],
    [{"field": "landing", "op": "starts_with", "value": "/a"}],
]


def oracle_settings(examples: int) -> settings:
    """No deadline: one example stores and evaluates a whole batch on the real engine."""
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


# Offsets in minutes: coarse steps make equal timestamps common; the range is day 0.
minutes = st.one_of(
    st.integers(-180, 1440 + 180).map(lambda m: m - m % 30),
    st.sampled_from([-1, 0, 1, 1439, 1440, 1441]),
)


@st.composite
def event(draw: st.DrawFn, i: int) -> dict[str, Any]:
    type_ = draw(st.sampled_from(["pageview", "pageview", "click", "event"]))
    e: dict[str, Any] = {
        "event_id": uuid.UUID(int=draw(st.integers(0, 2**64 - 1)) * 2**64 + i),
        "type": type_,
        "name": draw(st.sampled_from(["signup", "buy"])) if type_ == "event" else "",
        "ts": BASE
        + timedelta(minutes=draw(minutes), milliseconds=draw(st.sampled_from([0, 0, 1]))),
        "visitor_id": draw(st.sampled_from(["v0", "v1", "v2", "v3"])),
        "user_id": draw(st.sampled_from(["", "", "", "u0", "u1"])),
        "path": draw(st.sampled_from(["/", "/a", "/b/c", "/b"])),
        "utm_campaign": draw(st.sampled_from(["", "", "c1", "other"])),
        "source": draw(st.sampled_from(["", "google"])),
        "device": draw(st.sampled_from(["mobile", "desktop"])),
        "country": draw(st.sampled_from(["US", "DE"])),
        "value": draw(st.sampled_from([0.0, 0.0, 10.0])),
    }
    if draw(st.booleans()):
        e["props"] = {"n": str(draw(st.integers(0, 5)))}
    return e


@st.composite
def event_set(draw: st.DrawFn) -> list[dict[str, Any]]:
    size = draw(st.integers(0, 10))
    return [draw(event(i)) for i in range(size)]


# Dense sets: two visitors, events on a 10-minute grid in the first three hours of the range,
# nudged by a millisecond either way. With 30- and 60-minute windows, attempts run into their
# window's end often, and exactly onto it: the general sets above are too sparse for that.
@st.composite
def dense_event_set(draw: st.DrawFn) -> list[dict[str, Any]]:
    events = []
    for i in range(draw(st.integers(2, 12))):
        e = draw(event(i))
        e["ts"] = BASE + timedelta(
            minutes=10 * draw(st.integers(0, 18)),
            milliseconds=draw(st.sampled_from([0, 0, 1, -1])),
        )
        e["visitor_id"] = draw(st.sampled_from(["v0", "v1"]))
        events.append(e)
    return events


# Crowded sets: eight visitors, so a breakdown has several groups and a top-N remainder.
# "other" is also a campaign: a real value of that name must stay apart from the remainder.
@st.composite
def crowded_event_set(draw: st.DrawFn) -> list[dict[str, Any]]:
    events = []
    for i in range(draw(st.integers(8, 30))):
        e = draw(event(i))
        e["visitor_id"] = draw(st.sampled_from([f"v{j}" for j in range(8)]))
        events.append(e)
    return events


@st.composite
def definition(draw: st.DrawFn) -> dict[str, Any]:
    n = draw(st.integers(2, 4))
    stages = []
    for k in range(n):
        rules = draw(st.lists(st.sampled_from(RULES), min_size=1, max_size=2))
        stages.append({"key": f"s{k}", "rules": rules})
    return validate_definition(
        {
            "stages": stages,
            "mode": draw(st.sampled_from(["ordered", "strict", "any"])),
            "window": draw(st.sampled_from([60, 1800, 3600, 86400])),
        }
    )


def compare(engine: dict[str, Any], expected: dict[str, Any], context: str) -> None:
    assert engine["persons"] == expected["persons"], context
    _compare_stages(engine["stages"], expected["stages"], context)
    if "breakdown" in expected:
        got = {(b["value"], b["other"]): b["stages"] for b in engine["breakdown"]}
        assert set(got) == set(expected["breakdown"]), context
        for value, stages in expected["breakdown"].items():
            _compare_stages(got[value], stages, f"{context} breakdown={value!r}")
        merged = [b.get("values") for b in engine["breakdown"] if b["other"]]
        assert merged == ([expected["other_values"]] if "other_values" in expected else [])


def _compare_stages(got: list[dict[str, Any]], want: list[dict[str, Any]], context: str) -> None:
    for g, w in zip(got, want, strict=True):
        where = f"{context} stage={w['key']}"
        assert g["persons"] == w["persons"], where
        assert g["conversion_from_previous"] == w["conversion_from_previous"], where
        assert g["conversion_from_start"] == w["conversion_from_start"], where
        assert g["dropoff"] == w["dropoff"], where
        assert g["skipped"] == w["skipped"], where
        assert g["time_from_previous"]["mean_s"] == w["prev_mean_s"], where
        assert g["time_from_previous"]["median_s"] == w["prev_median_s"], where
        assert g["time_from_first_click"]["median_s"] == w["first_median_s"], where
        assert g["time_from_first_click"]["p90_s"] == w["first_p90_s"], where
        assert [b["persons"] for b in g["time_from_first_click"]["histogram"]] == w["histogram"], (
            where
        )


@oracle_settings(150)
@given(
    d=definition(),
    sets=st.lists(event_set(), min_size=BATCH, max_size=BATCH),
    event_filters=st.sampled_from(EVENT_FILTERS),
    person_filters=st.sampled_from(PERSON_FILTERS),
    breakdown=st.sampled_from([None, None, "campaign", "device", "landing", "source", "prop.n"]),
    limit=st.sampled_from([1, 2, 10]),
    window_override=st.sampled_from([None, None, 600]),
)
def test_engine_matches_oracle(
    store: Store,
    d: dict[str, Any],
    sets: list[list[dict[str, Any]]],
    event_filters: list[dict[str, Any]],
    person_filters: list[dict[str, Any]],
    breakdown: str | None,
    limit: int,
    window_override: int | None,
) -> None:
    query = ReportQuery(
        DAY,
        DAY,
        window=window_override,
        event_filters=event_filters,
        person_filters=person_filters,
        breakdown=breakdown,
        breakdown_limit=limit,
    )
    check(store, d, sets, query)


@oracle_settings(60)
@given(
    d=definition(),
    sets=st.lists(dense_event_set(), min_size=BATCH, max_size=BATCH),
    breakdown=st.sampled_from([None, "campaign", "landing", "prop.n"]),
    window=st.sampled_from([1800, 3600]),
)
def test_engine_matches_oracle_at_window_edges(
    store: Store,
    d: dict[str, Any],
    sets: list[list[dict[str, Any]]],
    breakdown: str | None,
    window: int,
) -> None:
    check(store, d, sets, ReportQuery(DAY, DAY, window=window, breakdown=breakdown))


@oracle_settings(40)
@given(
    d=definition(),
    sets=st.lists(crowded_event_set(), min_size=BATCH, max_size=BATCH),
    breakdown=st.sampled_from(["campaign", "campaign", "prop.n"]),
    limit=st.sampled_from([1, 2]),
)
def test_breakdown_remainder_matches_oracle(
    store: Store,
    d: dict[str, Any],
    sets: list[list[dict[str, Any]]],
    breakdown: str,
    limit: int,
) -> None:
    query = ReportQuery(DAY, DAY, breakdown=breakdown, breakdown_limit=limit)
    check(store, d, sets, query)


def check(
    store: Store, d: dict[str, Any], sets: list[list[dict[str, Any]]], query: ReportQuery
) -> None:
    """Store each set under its own site, evaluate all in one query, compare with the oracle."""
    keys = [f"or{uuid.uuid4().hex[:12]}" for _ in sets]
    rows = []
    for key, events in zip(keys, sets, strict=True):
        for e in events:
            e["site_id"] = key
            rows.append(e)
    load(store, rows)
    reports = funnel_reports_by_site(store, keys, d, query)
    window = query.window or d["window"]
    for key, events in zip(keys, sets, strict=True):
        expected = oracle.report(
            events,
            d,
            mode=d["mode"],
            window_s=window,
            start=query.start_ms,
            end=query.end_ms,
            event_filters=query.event_filters,
            person_filters=query.person_filters,
            breakdown=query.breakdown,
            limit=query.breakdown_limit,
        )
        compare(reports[key], expected, f"mode={d['mode']} window={window} site={key}")


def iso_ms(t: int | None) -> str | None:
    if t is None:
        return None
    return datetime.fromtimestamp(t / 1000, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


@oracle_settings(25)
@given(
    d=definition(),
    events=st.integers(4, 24).flatmap(lambda n: st.tuples(*[event(i) for i in range(n)])),
    event_filters=st.sampled_from(EVENT_FILTERS),
    person_filters=st.sampled_from(PERSON_FILTERS),
    # A breakdown group's persons (its funnel's drill-down): "" is the group without a value.
    segment=st.sampled_from(
        [None, None, ("campaign", "c1"), ("campaign", ""), ("prop.n", "3"), ("prop.n", "")]
    ),
)
def test_persons_lists_match_oracle(
    store: Store,
    d: dict[str, Any],
    events: tuple[dict[str, Any], ...],
    event_filters: list[dict[str, Any]],
    person_filters: list[dict[str, Any]],
    segment: tuple[str, str] | None,
) -> None:
    """The drill-down behind every figure: who reached, dropped at or skipped each stage,
    with their last stage, stage time, first event, sale value and attribution, exactly as
    the oracle."""
    site = SimpleNamespace(key=f"op{uuid.uuid4().hex[:12]}", timezone="UTC")
    rows = [{**e, "site_id": site.key} for e in events]
    load(store, rows)
    query = ReportQuery(DAY, DAY, event_filters=event_filters, person_filters=person_filters)
    if segment:
        query.breakdown, query.segment = segment
    outs = oracle.outcomes(
        rows, d, d["mode"], d["window"], query.start_ms, query.end_ms, event_filters
    )
    selected = {
        pid: o
        for pid, o in outs.items()
        if o.in_funnel
        and oracle.person_filter_ok(o, person_filters)
        and (segment is None or oracle.breakdown_value(o, segment[0]) == segment[1])
    }
    events_of = oracle.persons_of(rows)
    keys = [s["key"] for s in d["stages"]]
    n = len(keys)
    for k, key in enumerate(keys):
        for status in ("reached", "dropped", "skipped"):
            want = {
                pid: o
                for pid, o in selected.items()
                if (
                    o.skipped[k]
                    if status == "skipped"
                    # Dropped: reached k but not k + 1; at the last stage nobody (converted).
                    else o.hit[k] and (status == "reached" or (k < n - 1 and not o.hit[k + 1]))
                )
            }
            got = funnel_persons(store, site, d, query, key, status, per_page=1000)  # type: ignore[arg-type]
            where = f"mode={d['mode']} stage={key} status={status}"
            assert got["total"] == len(want), where
            assert {p["id"] for p in got["persons"]} == set(want), where
            for p in got["persons"]:
                o = want[p["id"]]
                last = max((i for i, h in enumerate(o.hit) if h), default=None)
                assert p["last_stage"] == (keys[last] if last is not None else None), where
                assert p["first_seen"] == iso_ms(o.first_t), where
                if status != "skipped":
                    assert p["reached_at"] == iso_ms(o.tk[k]), where
                # What a converted person spent: the value on the event that filled the
                # last stage (the pipeline's sale value); None for everyone else.
                converted = o.hit[n - 1]
                assert p["sale_value"] == (o.sale_value if converted else None), where
                if status == "dropped":
                    want_exit = oracle.exit_path(events_of[p["id"]], o, k, d["window"])
                    assert p["exit_page"] == want_exit, f"{where} person={p['id']}"
                for field, value in o.attrs.items():
                    assert str(p[field]) == value, f"{where} person={p['id']} {field}"
            if status == "dropped":
                # Where they left: each dropped person's last page view, counted by path.
                paths = Counter(
                    oracle.exit_path(events_of[pid], o, k, d["window"]) for pid, o in want.items()
                )
                exits = funnel_exits(store, site, d, query, key, limit=1000)  # type: ignore[arg-type]
                assert exits["persons"] == len(want), where
                assert exits["no_page_view"] == paths.pop(None, 0), where
                assert {e["path"]: e["persons"] for e in exits["exits"]} == paths, where
    # One person's verdict (the journey's): the same engine, for a handful of persons.
    unfiltered = oracle.outcomes(rows, d, d["mode"], d["window"], query.start_ms, query.end_ms, [])
    for pid in sorted(events_of)[:6]:
        progress = person_progress(store, site, d, query, pid)  # type: ignore[arg-type]
        where = f"mode={d['mode']} person={pid}"
        if pid in selected:
            o = selected[pid]
            assert progress["status"] == "in_funnel", where
            assert progress["reached"] == [key for key, h in zip(keys, o.hit, strict=True) if h], (
                where
            )
            assert progress["stage_times"] == {
                key: iso_ms(t) for key, h, t in zip(keys, o.hit, o.tk, strict=True) if h
            }, where
            assert progress["skipped"] == [
                key for key, s in zip(keys, o.skipped, strict=True) if s
            ], where
            assert progress["first_seen"] == iso_ms(o.first_t), where
        else:
            entered = pid in unfiltered and unfiltered[pid].in_funnel
            assert progress["status"] == ("filtered_out" if entered else "no_entry"), where
            assert progress["reached"] == [] and progress["stage_times"] == {}, where


@st.composite
def valued_events(draw: st.DrawFn) -> list[dict[str, Any]]:
    """Dense sets (see `dense_event_set`) whose values mostly differ, so that summing the
    wrong event's value shows: several attempts per person, open and closed at `now`."""
    events = draw(dense_event_set())
    for e in events:
        e["value"] = draw(st.sampled_from([0.0, 2.5, 10.0, 40.0, 75.25]))
    return events


@oracle_settings(80)
@given(
    d=definition(),
    events=valued_events(),
    event_filters=st.sampled_from(EVENT_FILTERS),
    person_filters=st.sampled_from(PERSON_FILTERS),
    window=st.sampled_from([1800, 3600]),
    data=st.data(),
)
def test_pipeline_matches_oracle(
    store: Store,
    d: dict[str, Any],
    events: list[dict[str, Any]],
    event_filters: list[dict[str, Any]],
    person_filters: list[dict[str, Any]],
    window: int,
    data: st.DataObject,
) -> None:
    """Sitting persons per stage, sale value, close rate, time to close and the forecast."""
    site = SimpleNamespace(key=f"pp{uuid.uuid4().hex[:12]}", timezone="UTC")
    rows = [{**e, "site_id": site.key} for e in events]
    load(store, rows)
    query = ReportQuery(
        DAY, DAY, window=window, event_filters=event_filters, person_filters=person_filters
    )
    outs = oracle.outcomes(rows, d, d["mode"], window, query.start_ms, query.end_ms, event_filters)
    selected = [
        o for o in outs.values() if o.in_funnel and oracle.person_filter_ok(o, person_filters)
    ]
    # "Now": on the events' 10-minute grid up to two hours past the last of them, or exactly
    # one window after a start that decides whether someone sits (or any event), give or
    # take a millisecond: windows open, closed and at their very end.
    starts = sorted({o.last_start for o in selected} | {oracle.ms(e["ts"]) for e in events})
    anchored = st.sampled_from(starts).flatmap(
        lambda t: st.sampled_from([-1, 0, 0, 1]).map(lambda d: t + window * 1000 + d)
    )
    grid = st.integers(0, 30).map(lambda m: oracle.ms(BASE + timedelta(minutes=10 * m)))
    now = data.draw(st.one_of(grid, anchored), label="now")
    n = len(d["stages"])
    got = funnel_pipeline(store, site, d, query, now_ms=now)  # type: ignore[arg-type]
    where = f"mode={d['mode']} window={window} now={now}"
    assert got["breakdown"] == [], where
    compare_pipeline(got, oracle.pipeline(selected, n, window, now), where)


@oracle_settings(60)
@given(
    d=definition(),
    events=crowded_event_set(),
    breakdown=st.sampled_from(["campaign", "device", "prop.n"]),
    limit=st.sampled_from([1, 2, 10]),
    now_minute=st.integers(0, 1440 + 180),
)
def test_pipeline_breakdown_matches_oracle(
    store: Store,
    d: dict[str, Any],
    events: list[dict[str, Any]],
    breakdown: str,
    limit: int,
    now_minute: int,
) -> None:
    """Per group (top `limit` by persons entered, then the rest merged as "other"), the same
    pipeline figures as for a funnel of that group's persons alone; groups add up to the
    totals. Crowded sets: eight persons, so there are groups to rank and to merge."""
    site = SimpleNamespace(key=f"pb{uuid.uuid4().hex[:12]}", timezone="UTC")
    for i, e in enumerate(events):
        e["value"] = [0.0, 2.5, 10.0, 75.25][i % 4]
    rows = [{**e, "site_id": site.key} for e in events]
    load(store, rows)
    query = ReportQuery(DAY, DAY, breakdown=breakdown, breakdown_limit=limit)
    window = int(d["window"])
    outs = oracle.outcomes(rows, d, d["mode"], window, query.start_ms, query.end_ms, [])
    selected = [o for o in outs.values() if o.in_funnel]
    now = oracle.ms(BASE + timedelta(minutes=now_minute))
    n = len(d["stages"])
    got = funnel_pipeline(store, site, d, query, now_ms=now)  # type: ignore[arg-type]
    where = f"mode={d['mode']} window={window} now={now} breakdown={breakdown} limit={limit}"
    compare_pipeline(got, oracle.pipeline(selected, n, window, now), where)
    groups: dict[str, list[oracle.Outcome]] = {}
    for o in selected:
        groups.setdefault(oracle.breakdown_value(o, breakdown), []).append(o)
    ranked = sorted(groups, key=lambda v: (-len(groups[v]), v))
    expected = [(v, False, groups[v]) for v in ranked[:limit]]
    if ranked[limit:]:
        expected.append(("other", True, [o for v in ranked[limit:] for o in groups[v]]))
    assert [(b["value"], b["other"]) for b in got["breakdown"]] == [
        (v, other) for v, other, _ in expected
    ], where
    for item, (value, other, members) in zip(got["breakdown"], expected, strict=True):
        compare_pipeline(item, oracle.pipeline(members, n, window, now), f"{where} {value!r}")
        assert item.get("values") == (len(ranked[limit:]) if other else None), where


def compare_pipeline(got: dict[str, Any], want: dict[str, Any], where: str) -> None:
    assert got["entered"] == want["entered"], where
    assert got["converted"] == want["converted"], where
    assert [s["reached"] for s in got["stages"]] == want["reached"], where
    assert [s["sitting"] for s in got["stages"]] == want["sitting"], where
    assert [s["rate_to_close"] for s in got["stages"]] == want["rates"], where
    assert got["close_rate"] == want["close_rate"], where
    assert got["sale_value"]["sum"] == want["value_sum"], where
    assert got["sale_value"]["average"] == want["value_avg"], where
    if want["close_s"] is None:
        assert got["average_time_to_close_s"] is None, where
    else:
        assert got["average_time_to_close_s"] == pytest.approx(want["close_s"], abs=1e-6), where
    assert got["forecast"]["conversions"] == pytest.approx(want["forecast"], abs=1e-9), where
    assert got["forecast"]["value"] == pytest.approx(want["forecast_value"], abs=1e-6), where
