"""Table tests pinning the edges of the semantics, through the JSON API."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.stages.conftest import load
from tracker.clickhouse import Store
from tracker.models import Site

DAY = datetime(2026, 4, 10, tzinfo=UTC)
RANGE = {"from": "2026-04-10", "to": "2026-04-10"}
THREE = {
    "name": "three",
    "window": "1h",
    "stages": [
        {"key": "visit", "rules": [{"type": "pageview"}]},
        {"key": "click", "rules": [{"type": "click"}]},
        {"key": "buy", "rules": [{"type": "event", "name": "buy"}]},
    ],
}


def ev(site: Site, visitor: str, type_: str, at: timedelta, **extra: Any) -> dict[str, Any]:
    return {
        "site_id": site.key,
        "event_id": uuid.uuid4(),
        "visitor_id": visitor,
        "type": type_,
        "name": "buy" if type_ == "event" else "",
        "ts": DAY + at,
        **extra,
    }


def report(client: FlaskClient, site: Site, auth: dict, events: list, **args: Any) -> dict:
    res = client.post(f"/api/v1/sites/{site.key}/funnels", json=THREE, headers=auth)
    fid = res.get_json()["id"]
    if events:
        load(client.application.extensions["funnel_store"], events)
    res = client.get(
        f"/api/v1/sites/{site.key}/funnels/{fid}/report",
        query_string={**RANGE, **args},
        headers=auth,
    )
    assert res.status_code == 200, res.get_json()
    return res.get_json()


def last_funnel_id(client: FlaskClient, site: Site, auth: dict) -> int:
    """The funnel that `report` created last."""
    return client.get(f"/api/v1/sites/{site.key}/funnels", headers=auth).get_json()["funnels"][-1][
        "id"
    ]


def persons(body: dict) -> list[int]:
    return [s["persons"] for s in body["stages"]]


M = timedelta(minutes=1)


def test_empty_range(client: FlaskClient, site: Site, auth: dict) -> None:
    body = report(client, site, auth, [])
    assert persons(body) == [0, 0, 0]
    assert body["stages"][1]["conversion_from_previous"] == 0.0
    assert body["stages"][0]["time_from_first_click"]["median_s"] is None
    assert body["range"] == RANGE


def test_out_of_order_insert(client: FlaskClient, site: Site, auth: dict) -> None:
    events = [
        ev(site, "a", "event", 3 * M),
        ev(site, "a", "click", 2 * M),
        ev(site, "a", "pageview", M),
    ]
    body = report(client, site, auth, events)
    assert persons(body) == [1, 1, 1]
    assert body["stages"][1]["time_from_previous"]["median_s"] == 60.0
    assert body["stages"][2]["time_from_first_click"]["median_s"] == 120.0


def test_same_millisecond_fills_consecutive_stages(
    client: FlaskClient, site: Site, auth: dict
) -> None:
    at = timedelta(hours=1, milliseconds=5)
    events = [ev(site, "a", "click", at), ev(site, "a", "pageview", at)]
    body = report(client, site, auth, events)
    assert persons(body) == [1, 1, 0]
    assert body["stages"][1]["time_from_previous"]["median_s"] == 0.0


def test_one_event_never_fills_two_stages(client: FlaskClient, site: Site, auth: dict) -> None:
    both = {
        **THREE,
        "stages": [
            {"key": "any1", "rules": [{"type": "any"}]},
            {"key": "any2", "rules": [{"type": "any"}]},
            THREE["stages"][2],
        ],
    }
    res = client.post(
        f"/api/v1/sites/{site.key}/funnel-report", query_string=RANGE, json=both, headers=auth
    )
    assert persons(res.get_json()) == [0, 0, 0]
    load(client.application.extensions["funnel_store"], [ev(site, "a", "pageview", M)])
    res = client.post(
        f"/api/v1/sites/{site.key}/funnel-report", query_string=RANGE, json=both, headers=auth
    )
    assert persons(res.get_json()) == [1, 0, 0]


@pytest.mark.parametrize("mode", ["ordered", "strict", "any"])
@pytest.mark.parametrize(("extra_ms", "reached"), [(0, 1), (1, 0)])
def test_window_boundary_is_inclusive(
    client: FlaskClient, site: Site, auth: dict, mode: str, extra_ms: int, reached: int
) -> None:
    events = [
        ev(site, "a", "pageview", M),
        ev(site, "a", "click", M + timedelta(hours=1, milliseconds=extra_ms)),
        # Later stages are measured from the stage-1 event too, not from the previous stage.
        ev(site, "b", "pageview", M),
        ev(site, "b", "click", 31 * M),
        ev(site, "b", "event", M + timedelta(hours=1, milliseconds=extra_ms)),
    ]
    assert persons(report(client, site, auth, events, mode=mode)) == [2, 1 + reached, reached]


@pytest.mark.parametrize("mode", ["ordered", "strict", "any"])
@pytest.mark.parametrize(("extra_ms", "skipped"), [(0, 1), (1, 0)])
def test_skipped_counts_later_stages_up_to_the_window_end(
    client: FlaskClient, site: Site, auth: dict, mode: str, extra_ms: int, skipped: int
) -> None:
    events = [
        ev(site, "a", "pageview", M),
        ev(site, "a", "event", M + timedelta(hours=1, milliseconds=extra_ms)),
    ]
    body = report(client, site, auth, events, mode=mode)
    # In `any` mode the buy inside the window reaches its stage without the click.
    assert persons(body) == [1, 0, skipped if mode == "any" else 0]
    assert [s["skipped"] for s in body["stages"]] == [0, skipped, 0]


def test_repeated_stages_count_once_and_time_from_earliest_attempt(
    client: FlaskClient, site: Site, auth: dict
) -> None:
    events = [
        ev(site, "a", "pageview", 0 * M),
        ev(site, "a", "pageview", 10 * M),
        ev(site, "a", "pageview", 70 * M),
        ev(site, "a", "click", 75 * M),
    ]
    body = report(client, site, auth, events)
    assert persons(body) == [1, 1, 0]
    # Neither the 0m nor the 10m attempt reaches the click inside 1h; the 70m one does.
    assert body["stages"][1]["time_from_previous"]["median_s"] == 5 * 60
    assert body["stages"][1]["time_from_first_click"]["median_s"] == 75 * 60


def test_skipped_stage(client: FlaskClient, site: Site, auth: dict) -> None:
    events = [ev(site, "a", "pageview", M), ev(site, "a", "event", 2 * M)]
    body = report(client, site, auth, events)
    assert persons(body) == [1, 0, 0]
    assert [s["skipped"] for s in body["stages"]] == [0, 1, 0]
    assert [s["dropoff"] for s in body["stages"]] == [1, 0, 0]


def test_entry_before_range_does_not_count(client: FlaskClient, site: Site, auth: dict) -> None:
    events = [ev(site, "a", "pageview", -M), ev(site, "a", "click", M)]
    assert persons(report(client, site, auth, events)) == [0, 0, 0]


def test_conversion_after_range_end_counts(client: FlaskClient, site: Site, auth: dict) -> None:
    last = timedelta(hours=23, minutes=50)
    events = [ev(site, "a", "pageview", last), ev(site, "a", "click", last + 30 * M)]
    assert persons(report(client, site, auth, events)) == [1, 1, 0]


def test_strict_mode_breaks_on_other_events(client: FlaskClient, site: Site, auth: dict) -> None:
    events = [
        ev(site, "a", "pageview", M),
        ev(site, "a", "event", 2 * M, name="other"),
        ev(site, "a", "click", 3 * M),
        ev(site, "b", "pageview", M),
        ev(site, "b", "click", 2 * M),
    ]
    assert persons(report(client, site, auth, events, mode="strict")) == [2, 1, 0]
    assert persons(report(client, site, auth, [], mode="ordered")) == [2, 2, 0]


def test_identity_stitches_devices(client: FlaskClient, site: Site, auth: dict) -> None:
    events = [
        ev(site, "phone", "pageview", M),
        ev(site, "phone", "click", 2 * M, user_id="u1"),
        ev(site, "laptop", "pageview", 5 * M, user_id="u1"),
        ev(site, "laptop", "event", 6 * M, user_id="u1"),
    ]
    body = report(client, site, auth, events)
    assert persons(body) == [1, 1, 1]
    res = client.get(f"/api/v1/sites/{site.key}/persons/u1/journey", headers=auth)
    journey = res.get_json()
    assert [e["visitor_id"] for e in journey["events"]] == ["phone", "phone", "laptop", "laptop"]
    assert journey["events"][0]["stages"] == ["trace"]
    # Opened with one device's visitor id: the same stitched journey, and whose it is.
    by_device = client.get(f"/api/v1/sites/{site.key}/persons/laptop/journey", headers=auth)
    assert by_device.get_json()["person"] == "u1"
    assert by_device.get_json()["events"] == journey["events"]
    # With the funnel and the report's range: the verdict of that report, and which events
    # it counted (the laptop's page view is a second visit, not a stage of the attempt).
    fid = last_funnel_id(client, site, auth)
    res = client.get(
        f"/api/v1/sites/{site.key}/persons/laptop/journey",
        query_string={"funnel": fid, **RANGE},
        headers=auth,
    )
    body = res.get_json()
    assert body["progress"]["status"] == "in_funnel"
    assert body["progress"]["reached"] == ["visit", "click", "buy"]
    assert body["progress"]["converted"] is True and body["progress"]["skipped"] == []
    assert [e["filled"] for e in body["events"]] == ["visit", "click", None, "buy"]
    assert [e["in_range"] for e in body["events"]] == ["in"] * 4
    assert body["progress"]["stage_times"]["buy"] == body["events"][3]["ts"]
    # A range before any event: not in that report; a bad range is a 400 with the reason.
    res = client.get(
        f"/api/v1/sites/{site.key}/persons/u1/journey",
        query_string={"funnel": fid, "from": "2025-01-01", "to": "2025-01-31"},
        headers=auth,
    )
    assert res.get_json()["progress"]["status"] == "no_entry"
    assert {e["in_range"] for e in res.get_json()["events"]} == {"after"}
    res = client.get(
        f"/api/v1/sites/{site.key}/persons/u1/journey",
        query_string={"funnel": fid, "window": "0m"},
        headers=auth,
    )
    assert res.status_code == 400 and "window" in res.get_json()["detail"]


def test_filters_and_breakdown(client: FlaskClient, site: Site, auth: dict) -> None:
    events = [
        ev(site, "a", "pageview", M, utm_campaign="spring", device="mobile"),
        ev(site, "a", "click", 2 * M),
        ev(site, "b", "pageview", M, utm_campaign="fall", device="desktop"),
        ev(site, "c", "pageview", M, device="mobile", props={"plan": "pro"}),
        ev(site, "c", "click", 2 * M),
    ]
    body = report(client, site, auth, events, breakdown="campaign")
    assert {b["value"]: persons(b) for b in body["breakdown"]} == {
        "spring": [1, 1, 0],
        "fall": [1, 0, 0],
        "": [1, 1, 0],
    }
    assert persons(report(client, site, auth, [], campaign="spring")) == [1, 1, 0]
    assert persons(report(client, site, auth, [], device="mobile")) == [2, 2, 0]
    assert persons(report(client, site, auth, [], filter="prop.plan:equals:pro")) == [1, 0, 0]
    body = report(client, site, auth, [], breakdown="device", limit="1")
    assert {b["value"]: persons(b) for b in body["breakdown"]} == {
        "mobile": [2, 2, 0],
        "other": [1, 0, 0],
    }


def test_a_value_named_other_is_not_the_remainder(
    client: FlaskClient, site: Site, auth: dict
) -> None:
    """A campaign literally called "other" keeps its own group; the top-N remainder is flagged
    and says how many values it merges, in the JSON and in the CSV."""
    events = [
        ev(site, "a", "pageview", M, utm_campaign="other"),
        ev(site, "a", "click", 2 * M),
        ev(site, "b", "pageview", M, utm_campaign="other"),
        ev(site, "c", "pageview", M, utm_campaign="spring"),
        ev(site, "c", "click", 2 * M),
        ev(site, "c", "event", 3 * M, name="buy"),
        ev(site, "d", "pageview", M, utm_campaign="fall"),
    ]
    body = report(client, site, auth, events, breakdown="campaign", limit="1")
    groups = [(b["value"], b["other"], b.get("values"), persons(b)) for b in body["breakdown"]]
    assert groups == [("other", False, None, [2, 1, 0]), ("other", True, 2, [2, 1, 1])]
    fid = last_funnel_id(client, site, auth)
    csv = client.get(
        f"/api/v1/sites/{site.key}/funnels/{fid}/report.csv",
        query_string={**RANGE, "breakdown": "campaign", "limit": "1"},
        headers=auth,
    ).get_data(as_text=True)
    lines = csv.splitlines()
    assert lines[0].endswith(",segment_kind")
    kinds = [(line.split(",")[0], line.split(",")[-1]) for line in lines[1:]]
    assert kinds == [("all", "total")] * 3 + [("other", "value")] * 3 + [("other", "other")] * 3
    # The persons of the real "other" campaign are its own.
    res = client.get(
        f"/api/v1/sites/{site.key}/funnels/{fid}/persons",
        query_string={
            **RANGE,
            "stage": "visit",
            "status": "reached",
            "breakdown": "campaign",
            "segment": "other",
        },
        headers=auth,
    ).get_json()
    assert sorted(p["id"] for p in res["persons"]) == ["a", "b"]


def test_breakdown_by_a_property(client: FlaskClient, site: Site, auth: dict) -> None:
    """A property breakdown takes the value on the person's first event in range that carries
    the property (the first product looked at), whichever stage that event matches."""
    events = [
        # a: lands without a product, then looks at boots, then at shoes, and buys.
        ev(site, "a", "pageview", M),
        ev(site, "a", "click", 2 * M, props={"product": "boots"}),
        ev(site, "a", "event", 3 * M, props={"product": "shoes"}),
        # b: shoes from the start (an empty value still counts as carrying the property).
        ev(site, "b", "pageview", M, props={"product": "shoes", "plan": "pro"}),
        ev(site, "b", "click", 2 * M, props={"product": "boots"}),
        # c: a product only before the range: it is not c's attribution.
        ev(site, "c", "pageview", -M, props={"product": "socks"}),
        ev(site, "c", "pageview", M),
        # d: an empty product value carried on its first event.
        ev(site, "d", "pageview", M, props={"product": ""}),
        ev(site, "d", "click", 2 * M, props={"product": "hats"}),
    ]
    body = report(client, site, auth, events, breakdown="prop.product")
    assert body["breakdown_field"] == "prop.product"
    assert {b["value"]: persons(b) for b in body["breakdown"]} == {
        "boots": [1, 1, 1],
        "shoes": [1, 1, 0],
        "": [2, 1, 0],
    }
    # `product` is the dashboard's name for the same dimension.
    again = report(client, site, auth, [], breakdown="product")
    assert again["breakdown"] == body["breakdown"]
    # Top N and "other" work as for any field; the CSV carries the values.
    top = report(client, site, auth, [], breakdown="prop.product", limit="1")
    assert {b["value"]: persons(b) for b in top["breakdown"]} == {
        "": [2, 1, 0],
        "other": [2, 2, 1],
    }
    fid = last_funnel_id(client, site, auth)
    csv = client.get(
        f"/api/v1/sites/{site.key}/funnels/{fid}/report.csv",
        query_string={**RANGE, "breakdown": "prop.product"},
        headers=auth,
    ).get_data(as_text=True)
    assert "\nboots,buy," in csv
    # Each person listed carries the property's attributed value.
    res = client.get(
        f"/api/v1/sites/{site.key}/funnels/{fid}/persons",
        query_string={**RANGE, "stage": "visit", "status": "reached", "breakdown": "product"},
        headers=auth,
    )
    listed = {p["id"]: p["prop.product"] for p in res.get_json()["persons"]}
    assert listed == {"a": "boots", "b": "shoes", "c": "", "d": ""}


def test_persons_of_one_breakdown_group(client: FlaskClient, site: Site, auth: dict) -> None:
    """`segment` narrows to one breakdown group: the persons list behind that group's funnel."""
    events = [
        ev(site, "a", "pageview", M, utm_campaign="spring"),
        ev(site, "a", "click", 2 * M),
        ev(site, "b", "pageview", M, utm_campaign="spring"),
        ev(site, "c", "pageview", M, utm_campaign="fall"),
        ev(site, "c", "click", 2 * M),
        ev(site, "d", "pageview", M),
        ev(site, "d", "click", 2 * M),
    ]
    body = report(client, site, auth, events, breakdown="campaign")
    groups = {b["value"]: persons(b) for b in body["breakdown"]}
    assert groups == {"spring": [2, 1, 0], "fall": [1, 1, 0], "": [1, 1, 0]}
    fid = last_funnel_id(client, site, auth)
    base = f"/api/v1/sites/{site.key}/funnels/{fid}"

    def ids(**args: str) -> list[str]:
        res = client.get(f"{base}/persons", query_string={**RANGE, **args}, headers=auth)
        assert res.status_code == 200, res.get_json()
        return sorted(p["id"] for p in res.get_json()["persons"])

    assert ids(stage="visit", status="reached", breakdown="campaign", segment="spring") == [
        "a",
        "b",
    ]
    assert ids(stage="visit", status="dropped", breakdown="campaign", segment="spring") == ["b"]
    assert ids(stage="click", status="reached", breakdown="campaign", segment="") == ["d"]
    assert ids(stage="click", status="reached", breakdown="campaign", segment="winter") == []
    # The report narrowed to one group has that group's figures.
    one = report(client, site, auth, [], breakdown="campaign", segment="fall")
    assert persons(one) == [1, 1, 0]
    res = client.get(
        f"{base}/persons", query_string={**RANGE, "stage": "visit", "segment": "x"}, headers=auth
    )
    assert res.status_code == 400
    assert "segment needs a breakdown" in res.get_json()["detail"]


@pytest.mark.parametrize(
    "args",
    [
        {"from": "yesterday"},
        {"to": "0001-01-01"},
        {"from": "9999-12-31", "to": "9999-12-31"},
        {"mode": "fast"},
        {"window": "5y"},
        {"filter": "url"},
        {"breakdown": "url"},
        {"breakdown": "prop." + "x" * 201},
        {"breakdown": "prop."},
        {"filter": "nope:equals:x"},
    ],
)
def test_bad_query_is_400(client: FlaskClient, site: Site, auth: dict, args: dict) -> None:
    fid = client.get(f"/api/v1/sites/{site.key}/funnels", headers=auth).get_json()["funnels"][0][
        "id"
    ]
    res = client.get(
        f"/api/v1/sites/{site.key}/funnels/{fid}/report", query_string=args, headers=auth
    )
    assert res.status_code == 400
    assert res.get_json()["error"] == "invalid_query"


def test_exit_pages_of_dropped_persons(client: FlaskClient, site: Site, auth: dict) -> None:
    """Where those who dropped off left: the last page view from their first event in range
    to one window (1 h) after reaching the stage, inclusive, else the page they reached it
    on; earlier history and page views after the window do not count."""
    hour = timedelta(hours=1)
    events = [
        # a: clicks, then views a page exactly one window later: that is where a left.
        ev(site, "a", "pageview", M, path="/a"),
        ev(site, "a", "click", 2 * M),
        ev(site, "a", "pageview", 2 * M + hour, path="/later"),
        # b: the page after the click comes 1 ms too late, so b left from /b.
        ev(site, "b", "pageview", M, path="/b"),
        ev(site, "b", "click", 2 * M),
        ev(site, "b", "pageview", 2 * M + hour + timedelta(milliseconds=1), path="/too-late"),
        # c: history before the range does not count; c drops at the visit stage.
        ev(site, "c", "pageview", -M, path="/before"),
        ev(site, "c", "pageview", M, path="/c"),
        ev(site, "c", "pageview", 3 * M, path="/c2"),
        # d: converts, so it is nobody's exit.
        ev(site, "d", "pageview", M, path="/b"),
        ev(site, "d", "click", 2 * M),
        ev(site, "d", "event", 3 * M),
    ]
    report(client, site, auth, events)
    fid = last_funnel_id(client, site, auth)
    url = f"/api/v1/sites/{site.key}/funnels/{fid}/exits"

    def exits(**args: str) -> dict:
        res = client.get(url, query_string={**RANGE, **args}, headers=auth)
        assert res.status_code == 200, res.get_json()
        return res.get_json()

    body = exits(stage="click")
    assert body["persons"] == 2 and body["no_page_view"] == 0
    assert body["exits"] == [
        {"path": "/b", "persons": 1, "share": 0.5},
        {"path": "/later", "persons": 1, "share": 0.5},
    ]
    assert body["other"] == {"paths": 0, "persons": 0}
    assert [e["path"] for e in exits(stage="visit")["exits"]] == ["/c2"]
    assert exits(stage="buy")["persons"] == 0  # the last stage: nobody drops after it
    top = exits(stage="click", limit="1")
    assert top["exits"] == [{"path": "/b", "persons": 1, "share": 0.5}]
    assert top["other"] == {"paths": 1, "persons": 1}
    # The dropped persons' list gives each one's exit page, as counted above.
    listed = client.get(
        f"/api/v1/sites/{site.key}/funnels/{fid}/persons",
        query_string={**RANGE, "stage": "click", "status": "dropped"},
        headers=auth,
    ).get_json()["persons"]
    assert {p["id"]: p["exit_page"] for p in listed} == {"a": "/later", "b": "/b"}
    # The report's filters apply (nobody here is on a tablet).
    assert exits(stage="click", device="tablet")["persons"] == 0
    for bad in ({}, {"stage": "nope"}, {"stage": "click", "limit": "0"}):
        res = client.get(url, query_string={**RANGE, **bad}, headers=auth)
        assert res.status_code == 400 and res.get_json()["detail"], bad


def test_exit_pages_are_ranked_by_persons_and_the_rest_is_other(
    client: FlaskClient, site: Site, auth: dict
) -> None:
    """Exit pages come most persons first (ties by path), and past `limit` the remaining
    paths and their persons are summed as `other`. The paths' alphabetical order is the
    reverse of their counts, so neither order can pass for the other (kills the mutation
    of `persons DESC` into `persons ASC` in exits.py)."""
    counts = {"/z": 3, "/m": 2, "/b": 2, "/a": 1}
    events = [
        ev(site, f"{path}-{n}", "pageview", M, path=path)
        for path, count in counts.items()
        for n in range(count)
    ]
    report(client, site, auth, events)
    url = f"/api/v1/sites/{site.key}/funnels/{last_funnel_id(client, site, auth)}/exits"

    def exits(limit: int) -> dict:
        query = {**RANGE, "stage": "visit", "limit": str(limit)}
        res = client.get(url, query_string=query, headers=auth)
        assert res.status_code == 200, res.get_json()
        body = res.get_json()
        assert body["persons"] == 8 and body["no_page_view"] == 0
        return body

    ranked = [("/z", 3), ("/b", 2), ("/m", 2), ("/a", 1)]
    for limit in (10, 4, 3, 2, 1):
        body = exits(limit)
        top = ranked[:limit]
        assert [(e["path"], e["persons"]) for e in body["exits"]] == top, limit
        assert [e["share"] for e in body["exits"]] == [c / 8 for _, c in top], limit
        rest = ranked[limit:]
        assert body["other"] == {"paths": len(rest), "persons": sum(c for _, c in rest)}, limit


def test_trends_csv_holds_the_trends_table(client: FlaskClient, site: Site, auth: dict) -> None:
    """One row per day and stage, the same numbers as the trends JSON, cells a spreadsheet
    would run as formulas quoted, and bad arguments answered with a JSON reason."""
    day = timedelta(days=1)
    events = [
        ev(site, "a", "pageview", M),
        ev(site, "a", "click", 2 * M),
        ev(site, "b", "pageview", M),
        ev(site, "c", "pageview", day + M),
        ev(site, "d", "pageview", day + M),
        ev(site, "d", "click", day + 2 * M),
        ev(site, "d", "event", day + 3 * M),
    ]
    report(client, site, auth, events)
    fid = last_funnel_id(client, site, auth)
    base = f"/api/v1/sites/{site.key}/funnels/{fid}"
    args = {"from": "2026-04-10", "to": "2026-04-11", "interval": "day"}
    trends = client.get(f"{base}/trends", query_string=args, headers=auth).get_json()
    res = client.get(f"{base}/trends.csv", query_string=args, headers=auth)
    assert res.status_code == 200 and res.mimetype == "text/csv"
    assert f"funnel-{fid}-trends.csv" in res.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(res.get_data(as_text=True))))
    assert [
        (r["period_start"], r["stage"], r["persons"], r["previous"], r["change"]) for r in rows
    ] == [
        ("2026-04-10", "visit", "2", "", ""),
        ("2026-04-10", "click", "1", "", ""),
        ("2026-04-10", "buy", "0", "", ""),
        ("2026-04-11", "visit", "2", "2", "0.0"),
        ("2026-04-11", "click", "1", "1", "0.0"),
        ("2026-04-11", "buy", "1", "0", ""),  # from none: no rate of change
    ]
    assert rows[4]["conversion_from_start"] == "0.5"
    assert {(r["complete"], r["partial"], r["settled"]) for r in rows} == {
        ("true", "false", "true")
    }
    for period, row in zip(
        [p for p in trends["periods"] for _ in p["stages"]], rows, strict=True
    ):  # the JSON says the same
        assert row["period_end"] == period["end"]
    # A stage named like a formula is quoted.
    client.put(
        f"/api/v1/sites/{site.key}/funnels/{fid}",
        json={
            **THREE,
            "stages": [{**THREE["stages"][0], "name": "=HYPERLINK(1)"}, *THREE["stages"][1:]],
        },
        headers=auth,
    )
    text = client.get(f"{base}/trends.csv", query_string=args, headers=auth).get_data(as_text=True)
    assert ",'=HYPERLINK(1)," in text
    for bad in ({"interval": "year"}, {"from": "nope"}):
        res = client.get(f"{base}/trends.csv", query_string={**args, **bad}, headers=auth)
        assert res.status_code == 400 and res.get_json()["detail"], bad


def test_other_endpoints(client: FlaskClient, site: Site, auth: dict, store: Store) -> None:
    events = [
        ev(site, "a", "pageview", M, utm_campaign="=cmd|calc", url="https://x.test/a"),
        ev(site, "a", "click", 2 * M, element_text="Buy"),
        ev(site, "a", "event", 3 * M, value=25.0),
        ev(site, "b", "pageview", M),
    ]
    body = report(client, site, auth, events)
    fid = last_funnel_id(client, site, auth)
    base = f"/api/v1/sites/{site.key}/funnels/{fid}"
    assert persons(body) == [2, 1, 1]

    trends = client.get(
        f"{base}/trends", query_string={**RANGE, "interval": "day"}, headers=auth
    ).get_json()
    assert [p["start"] for p in trends["periods"]] == ["2026-04-10"]
    assert [s["persons"] for s in trends["periods"][0]["stages"]] == [2, 1, 1]

    pipe = client.get(f"{base}/pipeline", query_string=RANGE, headers=auth).get_json()
    assert pipe["converted"] == 1 and pipe["sale_value"]["sum"] == 25.0
    assert pipe["close_rate"] == 0.5
    assert pipe["average_time_to_close_s"] == 120.0

    res = client.get(
        f"{base}/persons",
        query_string={**RANGE, "stage": "visit", "status": "dropped"},
        headers=auth,
    )
    assert [p["id"] for p in res.get_json()["persons"]] == ["b"]
    res = client.get(f"{base}/persons.csv", query_string={**RANGE, "stage": "visit"}, headers=auth)
    assert res.mimetype == "text/csv"
    assert "'=cmd|calc" in res.get_data(as_text=True)
    res = client.get(
        f"{base}/report.csv", query_string={**RANGE, "breakdown": "campaign"}, headers=auth
    )
    text = res.get_data(as_text=True)
    assert text.splitlines()[1].startswith("all,visit,Visit,2,")
    assert "'=cmd|calc,visit" in text
    res = client.get(f"{base}/persons", query_string={**RANGE, "stage": "nope"}, headers=auth)
    assert res.status_code == 400

    prev = client.get(f"{base}/preview", query_string={"days": 3650}, headers=auth).get_json()
    assert [s["persons"] for s in prev["stages"]] == [2, 1, 1]
    assert prev["stages"][1]["sample_elements"] == ["Buy"]
    vals = client.get(f"/api/v1/sites/{site.key}/values/campaign", query_string=RANGE, headers=auth)
    assert vals.get_json()["values"] == [
        {"value": "", "persons": 1},
        {"value": "=cmd|calc", "persons": 1},
    ]


CSV_FORMULAS = ["=1+1", "+1", "-1", "@A1", "\t=1+1", "\r=1"]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv_cells(res: Any) -> list[list[str]]:
    assert res.status_code == 200 and res.mimetype == "text/csv", res.get_data(as_text=True)
    # newline="": a "\r" inside a quoted cell is the cell's, as a spreadsheet reads it.
    return list(csv.reader(io.StringIO(res.get_data(as_text=True), newline="")))


def test_api_csv_exports_quote_every_formula_start(
    client: FlaskClient, site: Site, auth: dict
) -> None:
    """Campaigns and a property that a spreadsheet would run as formulas, a leading tab or
    carriage return included, are quoted in the API's report CSV (breakdown by campaign,
    by the property, one segment) and persons CSV. Kills the mutation that drops "\t" and
    "\r" from csv_export._FORMULA_START."""
    events = [
        ev(site, f"p{i}", "pageview", M, utm_campaign=value, props={"plan": value})
        for i, value in enumerate(CSV_FORMULAS)
    ]
    report(client, site, auth, events)
    base = f"/api/v1/sites/{site.key}/funnels/{last_funnel_id(client, site, auth)}"
    quoted = {"'" + value for value in CSV_FORMULAS}
    for breakdown in ("campaign", "prop.plan"):
        rows = _csv_cells(
            client.get(
                f"{base}/report.csv", query_string={**RANGE, "breakdown": breakdown}, headers=auth
            )
        )
        assert quoted <= {row[0] for row in rows[1:]}, breakdown
        assert not any(c.startswith(FORMULA_START) for row in rows for c in row), breakdown
    for value in ("\t=1+1", "\r=1"):
        args = {**RANGE, "breakdown": "prop.plan", "segment": value}
        rows = _csv_cells(client.get(f"{base}/report.csv", query_string=args, headers=auth))
        assert {row[0] for row in rows[1:]} == {"'" + value}
    rows = _csv_cells(
        client.get(f"{base}/persons.csv", query_string={**RANGE, "stage": "visit"}, headers=auth)
    )
    header = rows[0]
    assert {row[header.index("campaign")] for row in rows[1:]} == quoted
    assert not any(c.startswith(FORMULA_START) for row in rows for c in row)


def test_attribution_ties_break_by_event_id(client: FlaskClient, site: Site, auth: dict) -> None:
    # Same time, same stages: the first event is the one with the smaller event id, in
    # ClickHouse's UUID order (second half first).
    at = timedelta(hours=2)
    events = [
        ev(
            site,
            "a",
            "pageview",
            at,
            device="mobile",
            event_id=uuid.UUID("00000000-0000-0000-0000-000000000002"),
        ),
        ev(
            site,
            "a",
            "pageview",
            at,
            device="desktop",
            event_id=uuid.UUID("ffffffff-ffff-ffff-0000-000000000001"),
        ),
    ]
    assert persons(report(client, site, auth, events, device="desktop")) == [1, 0, 0]
    assert persons(report(client, site, auth, [], device="mobile")) == [0, 0, 0]


def test_persons_list_pages_and_stitched_attributes(
    client: FlaskClient, site: Site, auth: dict
) -> None:
    """The list is built in two passes (the page, then its persons' attributes read by visitor
    id); a stitched person's attributes must still come from all of its visitors."""
    events = [
        # u1: first seen anonymously as v1 on a phone, later identified on v2 (desktop),
        # where the campaign arrives: the first marketing touch is on the second visitor.
        ev(site, "v1", "pageview", M, path="/a", device="mobile", user_id=""),
        ev(site, "v1", "pageview", 2 * M, path="/b", device="mobile", user_id="u1"),
        ev(site, "v2", "pageview", 3 * M, path="/c", device="desktop", user_id="u1"),
        ev(site, "v2", "click", 4 * M, utm_campaign="spring", device="desktop", user_id="u1"),
        # Two anonymous persons who only visit, later in the day.
        ev(site, "v3", "pageview", 10 * M, path="/x", device="tablet", utm_campaign="fall"),
        ev(site, "v4", "pageview", 20 * M, path="/y", device="desktop"),
    ]
    body = report(client, site, auth, events)
    assert persons(body) == [3, 1, 0]
    fid = last_funnel_id(client, site, auth)
    base = f"/api/v1/sites/{site.key}/funnels/{fid}/persons"
    seen = []
    for page in (1, 2, 3):
        res = client.get(
            base,
            query_string={
                **RANGE,
                "stage": "visit",
                "status": "reached",
                "per_page": 1,
                "page": page,
            },
            headers=auth,
        )
        body = res.get_json()
        assert body["total"] == 3
        seen += body["persons"]
    assert [p["id"] for p in seen] == ["u1", "v3", "v4"]
    u1, v3, v4 = seen
    assert (u1["landing"], u1["device"], u1["campaign"]) == ("/a", "mobile", "spring")
    assert u1["last_stage"] == "click"
    assert (v3["landing"], v3["device"], v3["campaign"]) == ("/x", "tablet", "fall")
    assert (v4["landing"], v4["device"], v4["campaign"]) == ("/y", "desktop", "")
    res = client.get(
        base,
        query_string={**RANGE, "stage": "visit", "status": "reached", "per_page": 1, "page": 4},
        headers=auth,
    )
    assert res.get_json()["persons"] == [] and res.get_json()["total"] == 3


def test_compare_with_the_previous_period(client: FlaskClient, site: Site, auth: dict) -> None:
    """compare=previous adds the same report over the days just before the range."""
    day_before = -timedelta(days=1)
    events = [
        # The range (one day): a and b enter, a clicks.
        ev(site, "a", "pageview", M),
        ev(site, "a", "click", 2 * M),
        ev(site, "b", "pageview", M),
        # The day before: c, d and e enter, c and d click, c buys.
        ev(site, "c", "pageview", day_before + M),
        ev(site, "c", "click", day_before + 2 * M),
        ev(site, "c", "event", day_before + 3 * M),
        ev(site, "d", "pageview", day_before + M),
        ev(site, "d", "click", day_before + 2 * M),
        ev(site, "e", "pageview", day_before + M),
    ]
    body = report(client, site, auth, events, compare="previous")
    assert persons(body) == [2, 1, 0]
    compare = body["compare"]
    assert compare["range"] == {"from": "2026-04-09", "to": "2026-04-09"}
    assert compare["persons"] == 3
    assert [s["persons"] for s in compare["stages"]] == [3, 2, 1]
    assert [s["change"] for s in compare["stages"]] == [-1 / 3, -0.5, -1.0]
    # Rates change in points: from start 1, 1/2, 0 against 1, 2/3, 1/3; from the previous
    # stage 1, 1/2, 0 against 1, 2/3, 1/2.
    assert [s["conversion_from_start_change"] for s in compare["stages"]] == pytest.approx(
        [0.0, -1 / 6, -1 / 3]
    )
    assert [s["conversion_from_previous_change"] for s in compare["stages"]] == pytest.approx(
        [0.0, -1 / 6, -0.5]
    )
    # The previous period is exactly the report of that period on its own.
    alone = report(client, site, auth, [], **{"from": "2026-04-09", "to": "2026-04-09"})
    assert [s["conversion_from_start"] for s in compare["stages"]] == [
        s["conversion_from_start"] for s in alone["stages"]
    ]
    # A week compares with the week before; no comparison unless asked for.
    week = report(client, site, auth, [], **{"from": "2026-04-04", "to": "2026-04-10"})
    assert "compare" not in week
    weekly = report(
        client, site, auth, [], **{"from": "2026-04-04", "to": "2026-04-10", "compare": "previous"}
    )
    assert weekly["compare"]["range"] == {"from": "2026-03-28", "to": "2026-04-03"}
    assert weekly["compare"]["stages"][0]["change"] is None  # nobody the week before


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        ({"compare": "yes"}, "compare must be 'previous'"),
        ({"compare": "previous", "from": "1970-01-01", "to": "1970-01-10"}, "before 1970-01-01"),
    ],
)
def test_bad_compare_is_400(
    client: FlaskClient, site: Site, auth: dict, args: dict, reason: str
) -> None:
    fid = client.get(f"/api/v1/sites/{site.key}/funnels", headers=auth).get_json()["funnels"][0][
        "id"
    ]
    res = client.get(
        f"/api/v1/sites/{site.key}/funnels/{fid}/report",
        query_string={**RANGE, **args},
        headers=auth,
    )
    assert res.status_code == 400
    assert reason in res.get_json()["detail"]


@pytest.mark.parametrize(
    ("interval", "first", "count"),
    [("month", "2025-12-01", 12), ("week", "2026-09-07", 12), ("day", "2026-10-27", 30)],
)
def test_default_trends_range_starts_at_a_period_start(
    client: FlaskClient,
    site: Site,
    auth: dict,
    monkeypatch: pytest.MonkeyPatch,
    interval: str,
    first: str,
    count: int,
) -> None:
    """Without from/to: the last 12 months or weeks (or 30 days), each whole but the one under
    way, not a one-day sliver of the month or week before."""
    today = date(2026, 11, 25)  # a Wednesday
    monkeypatch.setattr("tracker.reports.query.today_in", lambda tz: today)
    monkeypatch.setattr("tracker.reports.trends.today_in", lambda tz: today)
    fid = last_funnel_id(client, site, auth)
    res = client.get(
        f"/api/v1/sites/{site.key}/funnels/{fid}/trends",
        query_string={"interval": interval},
        headers=auth,
    )
    body = res.get_json()
    assert body["range"] == {"from": first, "to": "2026-11-25"}
    periods = body["periods"]
    assert len(periods) == count and periods[0]["start"] == first
    assert not any(p["partial"] for p in periods[:-1])
    assert [p["complete"] for p in periods] == [True] * (count - 1) + [False]  # under way


def _csv_rows(client: FlaskClient, site: Site, auth: dict, **args: Any) -> list[dict[str, str]]:
    fid = last_funnel_id(client, site, auth)
    res = client.get(
        f"/api/v1/sites/{site.key}/funnels/{fid}/report.csv",
        query_string={**RANGE, **args},
        headers=auth,
    )
    assert res.status_code == 200, res.get_data(as_text=True)
    return list(csv.DictReader(io.StringIO(res.get_data(as_text=True))))


def test_report_csv_holds_the_comparison(client: FlaskClient, site: Site, auth: dict) -> None:
    day_before = -timedelta(days=1)
    events = [
        ev(site, "a", "pageview", M, country="US"),
        ev(site, "a", "click", 2 * M),
        ev(site, "b", "pageview", M, country="DE"),
        ev(site, "c", "pageview", day_before + M, country="US"),
        ev(site, "d", "pageview", day_before + M, country="US"),
        ev(site, "d", "click", day_before + 2 * M),
        ev(site, "d", "event", day_before + 3 * M),
    ]
    body = report(client, site, auth, events, compare="previous", breakdown="country")
    rows = _csv_rows(client, site, auth, compare="previous", breakdown="country")
    assert list(rows[0])[-6:] == [
        "period", "from", "to", "change", "conversion_from_start_change",
        "conversion_from_previous_change",
    ]  # fmt: skip
    # The current totals with their change, the current groups, then the previous totals.
    assert [(r["period"], r["segment"], r["segment_kind"], r["stage"]) for r in rows] == [
        *[("current", "all", "total", s) for s in ("visit", "click", "buy")],
        *[("current", g, "value", s) for g in ("DE", "US") for s in ("visit", "click", "buy")],
        *[("previous", "all", "total", s) for s in ("visit", "click", "buy")],
    ]
    current, previous = rows[:3], rows[-3:]
    assert {(r["from"], r["to"]) for r in current} == {("2026-04-10", "2026-04-10")}
    assert {(r["from"], r["to"]) for r in previous} == {("2026-04-09", "2026-04-09")}
    assert [int(r["persons"]) for r in current] == [2, 1, 0]
    assert [int(r["persons"]) for r in previous] == [2, 1, 1]
    assert [r["dropoff"] for r in previous] == ["1", "0", "0"]
    assert [r["name"] for r in previous] == ["Visit", "Click", "Buy"]
    assert [r["change"] for r in current] == ["0.0", "0.0", "-1.0"]
    assert [float(r["conversion_from_start_change"]) for r in current] == pytest.approx(
        [c["conversion_from_start_change"] for c in body["compare"]["stages"]]
    )
    assert all(r["change"] == "" for r in rows[3:])
    # Without compare the table is as before: segment_kind is the last column.
    plain = _csv_rows(client, site, auth, breakdown="country")
    assert list(plain[0])[-1] == "segment_kind" and len(plain) == 9


def test_report_csv_labels_a_segment_as_such(client: FlaskClient, site: Site, auth: dict) -> None:
    events = [
        ev(site, "a", "pageview", M, country="US"),
        ev(site, "a", "click", 2 * M),
        ev(site, "b", "pageview", M, country="DE"),
        ev(site, "c", "pageview", M, country="US"),
    ]
    body = report(client, site, auth, events, breakdown="country", segment="US")
    assert body["segment"] == "US" and persons(body) == [2, 1, 0]
    rows = _csv_rows(client, site, auth, breakdown="country", segment="US")
    firsts = [(r["segment"], r["segment_kind"], r["persons"]) for r in rows[:3]]
    assert firsts == [("US", "segment", "2"), ("US", "segment", "1"), ("US", "segment", "0")]
    assert not any(r["segment_kind"] == "total" for r in rows)
    # Without a segment the totals are everyone's, labelled as before.
    rows = _csv_rows(client, site, auth, breakdown="country")
    assert [(r["segment"], r["segment_kind"], r["persons"]) for r in rows[:1]] == [
        ("all", "total", "3")
    ]


def _persons_csv(client: FlaskClient, site: Site, auth: dict, **args: Any) -> Any:
    fid = last_funnel_id(client, site, auth)
    return client.get(
        f"/api/v1/sites/{site.key}/funnels/{fid}/persons.csv",
        query_string={**RANGE, "stage": "visit", **args},
        headers=auth,
    )


@pytest.mark.parametrize("status", ["reached", "dropped", "skipped"])
def test_persons_csv_header_does_not_depend_on_the_rows(
    client: FlaskClient, site: Site, auth: dict, status: str
) -> None:
    # At the click stage: a skipped it (bought without), b reached it and dropped there.
    events = [
        ev(site, "a", "pageview", M, country="US", props={"plan": "pro"}),
        ev(site, "a", "event", 2 * M),
        ev(site, "b", "pageview", M, country="US"),
        ev(site, "b", "click", 2 * M),
    ]
    report(client, site, auth, events)
    for args in ({"stage": "click"}, {"stage": "click", "breakdown": "prop.plan"}):
        # Streamed: each body is read before the next request.
        full = _persons_csv(client, site, auth, status=status, **args).get_data(as_text=True)
        empty = _persons_csv(client, site, auth, status=status, country="XX", **args)
        header = full.splitlines()[0]
        assert empty.get_data(as_text=True).splitlines() == [header]
        assert len(full.splitlines()) == 2  # a or b: one each
        assert header.startswith("id,first_seen,last_stage,reached_at,sale_value,")
        assert ("exit_page" in header) == (status == "dropped")
        assert header.endswith(",prop.plan") == ("breakdown" in args)
        assert "landing" in header and "campaign" in header


def test_persons_csv_holds_every_person_page_by_page(
    client: FlaskClient, site: Site, auth: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 23 persons one second apart, exported in pages of 5 (ordered by first event, id).
    events = [ev(site, f"p{i:02}", "pageview", M + timedelta(seconds=i)) for i in range(23)]
    events.append(ev(site, "p99", "pageview", M))  # the same time as p00: the id orders them
    report(client, site, auth, events)
    monkeypatch.setattr("tracker.reports.persons.EXPORT_PAGE", 5)
    res = _persons_csv(client, site, auth)
    assert res.status_code == 200 and res.is_streamed
    assert (res.headers["X-Total-Count"], res.headers["X-Truncated"]) == ("24", "false")
    ids = [row["id"] for row in csv.DictReader(io.StringIO(res.get_data(as_text=True)))]
    assert ids == ["p00", "p99", *[f"p{i:02}" for i in range(1, 23)]]
    # One page when asked for one, as before.
    res = _persons_csv(client, site, auth, page=2, per_page=10)
    ids = [row["id"] for row in csv.DictReader(io.StringIO(res.get_data(as_text=True)))]
    assert ids == [f"p{i:02}" for i in range(9, 19)] and res.headers["X-Total-Count"] == "24"
    # Past the cap the export says it is cut.
    monkeypatch.setattr("tracker.reports.persons.MAX_EXPORT_PERSONS", 12)
    res = _persons_csv(client, site, auth)
    assert (res.headers["X-Total-Count"], res.headers["X-Truncated"]) == ("24", "true")
    assert len(res.get_data(as_text=True).splitlines()) == 1 + 12
    # An unknown stage is still a 400 before any byte.
    assert _persons_csv(client, site, auth, stage="nope").status_code == 400


def test_preview_days_are_the_reports_calendar_days(
    client: FlaskClient, site: Site, auth: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`days=1` is today in the site's time zone, as a report's "last 1 day" is, not the
    last 24 hours: an event just before local midnight belongs to yesterday. "Today" is
    pinned, as a real Auckland midnight between two reads of the clock would race."""
    from zoneinfo import ZoneInfo

    site.timezone = "Pacific/Auckland"
    from tracker.configdb import db

    db.session.commit()
    tz = ZoneInfo(site.timezone)
    today = date(2026, 4, 20)
    monkeypatch.setattr("tracker.reports.query.today_in", lambda zone: today)
    monkeypatch.setattr("tracker.reports.explore.today_in", lambda zone: today)
    midnight = datetime.combine(today, time(0), tz)
    events = [
        {**ev(site, "yesterday", "pageview", M), "ts": midnight - M},
        {**ev(site, "today", "pageview", M), "ts": midnight + M},
    ]
    load(client.application.extensions["funnel_store"], events)
    fid = client.post(f"/api/v1/sites/{site.key}/funnels", json=THREE, headers=auth).get_json()
    base = f"/api/v1/sites/{site.key}/funnels/{fid['id']}"
    one = client.get(f"{base}/preview", query_string={"days": 1}, headers=auth).get_json()
    two = client.get(f"{base}/preview", query_string={"days": 2}, headers=auth).get_json()
    assert one["stages"][0]["persons"] == 1
    assert two["stages"][0]["persons"] == 2
    today = client.get(
        f"{base}/report",
        query_string={"from": midnight.date().isoformat(), "to": midnight.date().isoformat()},
        headers=auth,
    ).get_json()
    assert today["stages"][0]["persons"] == one["stages"][0]["persons"]


# Each operator on boundary values, on the real engine: the candidate values are carried by
# one person each (as prop.p, or as the sale value); None is an event without the property.
TEXT = ["ab", "abc", "xab", "AB", "", None]
NUMBERS = ["-1", "1", "2", "2.5", "3", "x", "", None]
VALUES = [0.0, 5.0, 10.0]  # 0 is no sale value


@pytest.mark.parametrize(
    ("field", "op", "value", "candidates", "matched"),
    [
        ("prop.p", "equals", "ab", TEXT, ["ab"]),
        ("prop.p", "not_equals", "ab", TEXT, ["abc", "xab", "AB", "", None]),
        ("prop.p", "contains", "ab", TEXT, ["ab", "abc", "xab"]),
        ("prop.p", "not_contains", "ab", TEXT, ["AB", "", None]),
        ("prop.p", "starts_with", "ab", TEXT, ["ab", "abc"]),
        ("prop.p", "ends_with", "ab", TEXT, ["ab", "xab"]),
        ("prop.p", "regex", "b$", TEXT, ["ab", "xab"]),
        ("prop.p", "regex", "^a.c$", TEXT, ["abc"]),
        ("prop.p", "glob", "?ab", TEXT, ["xab"]),
        ("prop.p", "glob", "ab*", TEXT, ["ab", "abc"]),
        ("prop.p", "in", ["ab", "xab"], TEXT, ["ab", "xab"]),
        ("prop.p", "gt", 2, NUMBERS, ["2.5", "3"]),
        ("prop.p", "lt", 2, NUMBERS, ["-1", "1"]),
        ("prop.p", "exists", True, TEXT, ["ab", "abc", "xab", "AB", ""]),
        ("prop.p", "exists", False, TEXT, [None]),
        ("value", "equals", 5, VALUES, [5.0]),
        ("value", "gt", 5, VALUES, [10.0]),
        ("value", "lt", 10, VALUES, [5.0]),
        ("value", "lt", 5, VALUES, []),
    ],
)
def test_each_operator_on_boundary_values(
    client: FlaskClient,
    site: Site,
    auth: dict,
    field: str,
    op: str,
    value: Any,
    candidates: list[Any],
    matched: list[Any],
) -> None:
    """Who enters a funnel whose first stage is one condition: exactly the persons whose
    value the operator accepts. Equality is the boundary of gt and lt (2 is neither above
    nor below 2), absent and non-numeric values match no comparison."""
    events = []
    for j, candidate in enumerate(candidates):
        extra: dict[str, Any] = {"path": f"/{j}"}
        if field == "value":
            extra["value"] = candidate
        elif candidate is not None:
            extra["props"] = {"p": candidate}
        events.append(ev(site, f"v{j}", "pageview", M, **extra))
    load(client.application.extensions["funnel_store"], events)
    definition = {
        "stages": [
            {"key": "hit", "rules": [{"type": "pageview", "conditions": [
                {"field": field, "op": op, "value": value}]}]},
            {"key": "never", "rules": [{"type": "event", "name": "never"}]},
        ]
    }  # fmt: skip
    res = client.post(
        f"/api/v1/sites/{site.key}/funnel-report",
        query_string={**RANGE, "breakdown": "landing", "limit": "1000"},
        json=definition,
        headers=auth,
    )
    assert res.status_code == 200, res.get_json()
    body = res.get_json()
    entered = {b["value"] for b in body["breakdown"] if b["stages"][0]["persons"] == 1}
    assert entered == {f"/{candidates.index(m)}" for m in matched}
    assert body["stages"][0]["persons"] == len(matched)
