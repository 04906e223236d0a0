"""Export (CLI and API): every stored event as an import line, so that importing the output
under another site stores the same rows and gives the same reports."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from tests.collector.conftest import CHROME, event, flush, post, stored
from tracker import accounts
from tracker.cli import main
from tracker.clickhouse import Store
from tracker.configdb import db
from tracker.events import COLUMN_NAMES, to_row
from tracker.export import bounds, iter_lines, plan
from tracker.models import Site, User
from tracker.reports import funnel_report
from tracker.reports.query import ReportQuery
from tracker.stages.templates import template_definition

# What the copy must hold identically: everything but the site and the arrival time.
SAME = ", ".join(c for c in COLUMN_NAMES if c not in ("site_id", "received_at"))


def new_site(admin: User, timezone: str = "UTC") -> Site:
    site = accounts.create_site(
        db.session, "Copy", [], owner=admin, key=f"x{uuid.uuid4().hex[:12]}", timezone=timezone
    )
    db.session.commit()
    return site


def rows_of(store: Store, key: str) -> list[tuple[Any, ...]]:
    return [
        tuple(r.values())
        for r in stored(store, key, SAME)  # ordered by ts, event_id
    ]


def varied_history() -> list[dict[str, Any]]:
    """Imported events using every field the import takes, including the context's device,
    browser and os (which win over the user agent) and an event stored at .999 ms."""
    return [
        {
            "id": str(uuid.uuid4()),
            "type": "pageview",
            "ts": "2025-06-01T09:59:59.999Z",
            "url": "https://shop.example/landing?utm_source=news&utm_medium=email"
            "&utm_campaign=june&utm_term=red+shoes&utm_content=a&gclid=abc",
            "referrer": "https://mail.example/inbox",
            "title": 'Landing \u2018quotes\u2019 " \\ {}',
            "visitor": "v1",
            "session": "s1",
            "screen_width": 390,
            "language": "fr-FR",
            "props": {
                "product": "boot",
                "size": "42",
                "note": 'a\nb\t"c" \\ \U0001f600 \u2028 \x01',
            },
            "context": {"country": "FR", "region": "Île-de-France", "city": "Paris"},
        },
        {
            "id": str(uuid.uuid4()),
            "type": "click",
            "ts": "2025-06-01T10:00:00.000Z",
            "url": "https://shop.example/landing",
            "visitor": "v1",
            "element": {"tag": "a", "text": "Buy", "href": "https://out.example/", "id": "b"},
            "outbound": True,
            "context": {"user_agent": CHROME, "device": "tablet"},
        },
        {
            "id": str(uuid.uuid4()),
            "type": "event",
            "name": "purchase",
            "ts": "2025-06-02T23:30:00.5Z",
            "url": "https://shop.example/thanks",
            "visitor": "v2",
            "user": "u-7",
            "value": 129.95,
            "context": {"device": "mobile", "browser": "Firefox", "os": "Android"},
        },
        {
            "id": str(uuid.uuid4()),
            "type": "pageview",
            "ts": "2025-07-15T12:00:00Z",
            "url": "https://shop.example/",
            "visitor": "v3",
        },
    ]


def test_api_export_imports_back_to_the_same_rows(
    client: FlaskClient, store: Store, site: Site, admin: User, auth: dict[str, str]
) -> None:
    imported = client.post(
        f"/api/v1/sites/{site.key}/events:import", json=varied_history(), headers=auth
    )
    assert imported.json == {"imported": 4, "accepted": 4, "existing": 0, "dropped": {}}
    res = client.get(f"/api/v1/sites/{site.key}/events:export", headers=auth)
    assert res.status_code == 200 and res.mimetype == "application/x-ndjson"
    assert res.headers["X-Event-Count"] == "4"
    lines = [json.loads(line) for line in res.data.decode().splitlines()]
    assert [e["ts"] for e in lines] == [
        "2025-06-01T09:59:59.999Z",
        "2025-06-01T10:00:00.000Z",
        "2025-06-02T23:30:00.500Z",
        "2025-07-15T12:00:00.000Z",
    ]
    # The user agent is not stored; what it said is, and the context's device won over it.
    assert lines[1]["context"] == {"device": "tablet", "browser": "Chrome", "os": "Windows"}
    copy = new_site(admin)
    again = client.post(
        f"/api/v1/sites/{copy.key}/events:import", data=res.data, headers=auth,
        content_type="application/x-ndjson",
    )  # fmt: skip
    assert again.json["imported"] == 4, again.json
    assert rows_of(store, copy.key) == rows_of(store, site.key)
    # Importing the export into the site it came from adds nothing: the ids are kept.
    same = client.post(
        f"/api/v1/sites/{site.key}/events:import", data=res.data, headers=auth,
        content_type="application/x-ndjson",
    )  # fmt: skip
    assert same.json["existing"] == 4 and same.json["imported"] == 0


def test_collected_events_survive_the_round_trip(
    app: Flask, client: FlaskClient, store: Store, site: Site, admin: User, auth: dict[str, str]
) -> None:
    """Events from the snippet (user agent, cookieless visitor hash, referrer, UTM, click
    element) come back identical, although the import never sees the user agent."""
    body = {
        "site": site.key,
        "events": [
            event(
                url="https://example.test/a?utm_source=Newsletter&utm_campaign=spring",
                referrer="https://www.google.com/",
                visitor=None,
            ),
            event(type="click", element={"tag": "BUTTON", "text": "Go"}, visitor=None),
            event(type="event", name="signup", props={"plan": "pro", "n": 3}, value=9.5),
        ],
    }
    for e in body["events"]:
        if e["visitor"] is None:
            del e["visitor"]  # the collector derives the cookieless hash
    assert post(client, body, ip="203.0.113.9").status_code == 202
    flush(app)
    export = client.get(f"/api/v1/sites/{site.key}/events:export", headers=auth)
    copy = new_site(admin)
    client.post(
        f"/api/v1/sites/{copy.key}/events:import", data=export.data, headers=auth,
        content_type="application/x-ndjson",
    )  # fmt: skip
    original = rows_of(store, site.key)
    assert len(original) == 3 and rows_of(store, copy.key) == original


def test_cli_export_to_file_and_stdout(
    runner: FlaskCliRunner, store: Store, site: Site, admin: User, tmp_path: Path
) -> None:
    site.timezone = "America/New_York"
    db.session.commit()
    store.insert(
        "events",
        [
            to_row({"site_id": site.key, "visitor_id": "a", "ts": ts})
            for ts in (
                "2025-03-01 04:59:59.000",  # Feb 28th in New York
                "2025-03-01 05:00:00.000",  # March 1st, midnight there
                "2025-03-02 12:00:00.000",
                "2025-03-04 12:00:00.000",  # March 4th: after --to
            )
        ],
        COLUMN_NAMES,
        deduplicate=False,
    )
    folder = tmp_path / "exports"
    folder.mkdir()
    out = folder / "march.ndjson.gz"
    result = runner.invoke(
        main,
        [
            "export",
            "--site",
            site.key,
            "--from",
            "2025-03-01",
            "--to",
            "2025-03-03",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"Exported 2 events of {site.key}" in result.output
    lines = [json.loads(line) for line in gzip.decompress(out.read_bytes()).splitlines()]
    assert [e["ts"] for e in lines] == ["2025-03-01T05:00:00.000Z", "2025-03-02T12:00:00.000Z"]
    assert list(folder.iterdir()) == [out]  # no temporary file left beside it
    everything = runner.invoke(main, ["export", "--site", site.key])
    assert everything.exit_code == 0
    assert len([x for x in everything.stdout.splitlines() if x.startswith("{")]) == 4
    # The copy's funnel report over the same days equals the original's.
    copy = new_site(admin, timezone="America/New_York")
    imported = runner.invoke(main, ["import", str(out), "--site", copy.key])
    assert "Imported 2 events" in imported.output, imported.output
    query = ReportQuery(date(2025, 3, 1), date(2025, 3, 3), timezone="America/New_York")
    first = funnel_report(store, site, template_definition(), query)
    second = funnel_report(store, copy, template_definition(), query)
    assert [s["persons"] for s in first["stages"]] == [s["persons"] for s in second["stages"]]
    assert first["stages"][0]["persons"] == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--site", "nope"], "no site with key 'nope'"),
        (["--from", "2025-03-05", "--to", "2025-03-01"], "is after to"),
        (["--from", "March"], "Invalid value for '--from'"),
    ],
)
def test_cli_export_refuses_bad_arguments(
    runner: FlaskCliRunner, site: Site, tmp_path: Path, args: list[str], message: str
) -> None:
    folder = tmp_path / "exports"
    folder.mkdir()
    out = folder / "x.ndjson"
    base = ["export", "--site", site.key, "-o", str(out)]
    result = runner.invoke(main, [*base, *args])
    assert result.exit_code != 0 and message in result.output, result.output
    assert list(folder.iterdir()) == []


def test_api_export_range_and_errors(
    client: FlaskClient, store: Store, site: Site, auth: dict[str, str]
) -> None:
    row = to_row({"site_id": site.key, "visitor_id": "a", "ts": "2025-03-02 12:00:00.000"})
    # Stored twice (an insert retried before the merge that collapses it): exported once.
    store.insert("events", [row, row], COLUMN_NAMES, deduplicate=False)
    url = f"/api/v1/sites/{site.key}/events:export"
    assert len(client.get(url, headers=auth).data.splitlines()) == 1
    assert client.get(f"{url}?from=2025-03-03", headers=auth).data == b""
    assert len(client.get(f"{url}?to=2025-03-02", headers=auth).data.splitlines()) == 1
    for query, reason in (
        ("from=soon", "from must be a date"),
        ("from=2025-03-05&to=2025-03-01", "is after to"),
    ):
        bad = client.get(f"{url}?{query}", headers=auth)
        assert bad.status_code == 400 and reason in bad.json["detail"], bad.json
    assert client.get(url).status_code == 401


def test_export_chunks_by_visitor_range(store: Store, site: Site) -> None:
    """Chunks of about `chunk` events by visitor id range, a visitor never split; the lines
    of all chunks together are every event in range once, each visitor's in time order."""
    day = "2025-03-02 "
    counts = {"a": 3, "b": 1, "c": 4, "d": 2, "e": 1}
    rows = [
        to_row({"site_id": site.key, "visitor_id": v, "ts": f"{day}{10 + i:02d}:00:00.000"})
        for v, n in counts.items()
        for i in range(n)
    ]
    rows.append(to_row({"site_id": site.key, "visitor_id": "f", "ts": "2025-04-01 00:00:00.000"}))
    store.insert("events", rows, COLUMN_NAMES, deduplicate=False)
    start, end = bounds("UTC", date(2025, 3, 1), date(2025, 3, 31))  # leaves f out
    # Cumulative counts before each visitor: a 0, b 3, c 4, d 8, e 10 -> parts of 4 events.
    assert plan(store, site.key, start, end, chunk=4) == [
        ("a", "b", 4),
        ("c", "c", 4),
        ("d", "e", 3),
    ]
    assert plan(store, site.key, start, end, chunk=100) == [("a", "e", 11)]
    assert plan(store, site.key, start, start + 1) == []
    lines = b"".join(
        iter_lines(store, site.key, start, end, plan(store, site.key, start, end, chunk=4))
    )
    got = [(e["visitor"], e["ts"]) for e in map(json.loads, lines.splitlines())]
    assert got == [
        (v, f"2025-03-02T{10 + i:02d}:00:00.000Z") for v, n in counts.items() for i in range(n)
    ]
