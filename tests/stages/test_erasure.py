"""Erasing a person (a request to be forgotten): the API, the CLI and the dashboard all delete
exactly the person a report counts, plus every event carrying the user id, and nothing else."""

from __future__ import annotations

import json
import logging
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from tests.collector.conftest import event as browser_event
from tests.collector.conftest import post
from tests.stages.conftest import load
from tracker import accounts, erasure
from tracker.cli import main
from tracker.clickhouse import Store
from tracker.configdb import db
from tracker.models import Site
from tracker.spool import Spool

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def ev(site: Site, visitor: str, minute: int, user: str = "", **extra: Any) -> dict[str, Any]:
    return {
        "site_id": site.key,
        "visitor_id": visitor,
        "user_id": user,
        "type": "pageview",
        "path": f"/{visitor}/{minute}",
        "ts": T0 + timedelta(minutes=minute),
        **extra,
    }


def history(site: Site) -> list[dict[str, Any]]:
    """u1 uses a phone and a laptop; the shared tablet first logged in as u0, later once as u1;
    `other` is unrelated."""
    return [
        ev(site, "phone", 0),
        ev(site, "phone", 1, "u1"),
        ev(site, "laptop", 5, "u1"),
        ev(site, "laptop", 6),
        ev(site, "tablet", 2, "u0"),
        ev(site, "tablet", 3),
        ev(site, "tablet", 7, "u1"),
        ev(site, "other", 4),
    ]


def remaining(store: Store, site: Site, raw: bool = False) -> list[tuple[str, str, str]]:
    # raw: also rows that a lightweight delete only hid, i.e. still on disk
    settings = " SETTINGS apply_deleted_mask = 0" if raw else ""
    return [
        (str(v), str(u), str(p))
        for v, u, p in store.rows(
            "SELECT visitor_id, user_id, path FROM events WHERE site_id = {s:String}"
            f" ORDER BY ts{settings}",
            {"s": site.key},
        )
    ]


@pytest.mark.parametrize(
    ("given", "person"),
    [
        ("phone", "u1"),  # identified later on the same device
        ("laptop", "u1"),  # another device of the same user
        ("u1", "u1"),  # a person itself, although the tablet also carried it once
        ("tablet", "u0"),  # the tablet's first login decides
        ("u0", "u0"),
        ("other", "other"),  # never identified here (only on another site)
        ("nobody", "nobody"),  # no event carries it: unchanged
    ],
)
def test_an_id_resolves_to_the_person_reports_count(
    store: Store, site: Site, admin: Any, given: str, person: str
) -> None:
    from tracker.reports import resolve_person

    other_site = accounts.create_site(db.session, "Other", owner=admin, key=f"o{site.key}")
    load(store, history(site))
    # The same ids on another site identify differently; they must not leak into this one.
    load(store, [ev(other_site, "other", 0, "u9"), ev(other_site, "phone", 0, "u7")])
    assert resolve_person(store, site, given) == person


KEPT = [
    ("tablet", "u0", "/tablet/2"),
    ("tablet", "", "/tablet/3"),
    ("other", "", "/other/4"),
]


@pytest.mark.parametrize("given", ["phone", "laptop", "u1"])
def test_api_erases_the_whole_stitched_person(
    client: FlaskClient, store: Store, site: Site, auth: dict, given: str
) -> None:
    load(store, history(site))
    res = client.delete(f"/api/v1/sites/{site.key}/persons/{given}", headers=auth)
    assert res.status_code == 200, res.get_json()
    body = res.get_json()
    assert body["person"] == "u1"
    assert body["visitors"] == ["laptop", "phone"]
    assert body["events"] == 5  # phone 2, laptop 2, and the tablet's one event as u1
    assert (body["first_seen"], body["last_seen"]) == (
        "2026-03-02T09:00:00.000Z",
        "2026-03-02T09:07:00.000Z",
    )
    assert body["erased"] is True and body["purged"] is False
    assert remaining(store, site) == KEPT
    # The person is gone from reports and journeys too.
    journey = client.get(f"/api/v1/sites/{site.key}/persons/u1/journey", headers=auth)
    assert journey.status_code == 404 and journey.get_json()["error"] == "not_found"
    again = client.delete(f"/api/v1/sites/{site.key}/persons/{given}", headers=auth)
    assert again.status_code == 404 and again.get_json()["error"] == "not_found"


def test_erasing_the_earlier_user_keeps_the_later_users_other_devices(
    client: FlaskClient, store: Store, site: Site, auth: dict
) -> None:
    load(store, history(site))
    res = client.delete(f"/api/v1/sites/{site.key}/persons/u0", headers=auth)
    assert res.status_code == 200
    # The tablet belongs to u0 (its first login), so all of it goes, including the event it
    # sent as u1; u1's own devices stay.
    assert res.get_json()["visitors"] == ["tablet"] and res.get_json()["events"] == 3
    assert [v for v, _, _ in remaining(store, site)] == [
        "phone",
        "phone",
        "other",
        "laptop",
        "laptop",
    ]


def test_dry_run_and_wait(client: FlaskClient, store: Store, site: Site, auth: dict) -> None:
    load(store, history(site))
    url = f"/api/v1/sites/{site.key}/persons/other"
    dry = client.delete(url + "?dry_run=true", headers=auth)
    assert dry.status_code == 200
    assert dry.get_json()["events"] == 1 and dry.get_json()["erased"] is False
    assert len(remaining(store, site)) == 8
    done = client.delete(url + "?wait=1", headers=auth)
    assert done.status_code == 200 and done.get_json()["purged"] is True
    # Not only hidden: the rows are rewritten off disk before the answer.
    assert [v for v, _, _ in remaining(store, site, raw=True)].count("other") == 0
    assert len(remaining(store, site, raw=True)) == 7


def test_the_daily_run_rewrites_erased_rows_off_disk(
    runner: FlaskCliRunner, client: FlaskClient, store: Store, site: Site, auth: dict
) -> None:
    load(store, history(site))
    res = client.delete(f"/api/v1/sites/{site.key}/persons/u1", headers=auth)
    assert res.status_code == 200 and res.get_json()["purged"] is False
    assert remaining(store, site) == KEPT
    assert len(remaining(store, site, raw=True)) == 8  # hidden at once, still on disk
    result = runner.invoke(main, ["prune"])
    assert result.exit_code == 0, result.output
    assert "Erased persons: their data is now rewritten off disk" in result.output
    assert remaining(store, site, raw=True) == KEPT
    assert "Erased persons" not in runner.invoke(main, ["prune"]).output  # nothing left


def test_events_still_in_the_spool_are_erased_too(
    app: Flask, client: FlaskClient, store: Store, site: Site, auth: dict
) -> None:
    load(store, [ev(site, "phone", 0)])
    # Acknowledged by the collector, maybe not yet written: must not reappear after erasure.
    body = {"site": site.key, "events": [browser_event(visitor="phone") for _ in range(3)]}
    assert post(client, body).status_code == 202
    res = client.delete(f"/api/v1/sites/{site.key}/persons/phone", headers=auth)
    assert res.status_code == 200 and res.get_json()["events"] == 4
    writer = app.extensions["funnel_writer"]
    assert writer.flush(timeout=30)
    assert remaining(store, site) == []
    # Nor do the raw events stay in the spool on disk: their segment was sealed and deleted.
    assert b'"phone"' not in spool_bytes(writer.spool_root)


def spool_bytes(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.glob("slot-*/seg-*.log")))


def test_events_in_another_processs_spool_are_waited_for(
    app: Flask, client: FlaskClient, store: Store, site: Site, auth: dict
) -> None:
    """Another serving process (a gunicorn worker) accepted events of the person and has not
    stored them yet: erasing now would let them arrive after the delete."""
    load(store, [ev(site, "phone", 0)])
    writer = app.extensions["funnel_writer"]
    writer.start()
    other = Spool(writer.spool_root, 10 << 20)
    other.open()  # a live process's slot, which this process must not drain
    row = {
        "site_id": site.key,
        "event_id": str(uuid.uuid4()),
        "type": "pageview",
        "ts": "2026-03-02 09:30:00.000",
        "received_at": "2026-03-02 09:30:00.000",
        "visitor_id": "phone",
    }
    other.append(json.dumps(row).encode() + b"\n", 1)
    with pytest.raises(erasure.PendingEventsError):
        erasure.flush_spool(app, timeout=1.0)
    assert len(remaining(store, site)) == 1
    other.close()  # that process is gone: its slot is adopted and drained by this one
    res = client.delete(f"/api/v1/sites/{site.key}/persons/phone", headers=auth)
    assert res.status_code == 200 and res.get_json()["events"] == 2
    assert writer.flush(timeout=30)
    assert remaining(store, site) == []
    assert b'"phone"' not in spool_bytes(writer.spool_root)


@pytest.mark.parametrize(
    "person, status, error",
    [
        ("nobody", 404, "not_found"),
        ("x" * 513, 400, "invalid_person"),
        ("a\x00b", 400, "invalid_person"),
        ("%20", 400, "invalid_person"),
        ("o'clock\\'); DROP TABLE events; --", 404, "not_found"),
        ("phone?dry_run=maybe", 400, "invalid_query"),
    ],
)
def test_bad_requests(
    client: FlaskClient, store: Store, site: Site, auth: dict, person: str, status: int, error: str
) -> None:
    load(store, history(site))
    res = client.delete(f"/api/v1/sites/{site.key}/persons/{person}", headers=auth)
    assert (res.status_code, res.get_json()["error"]) == (status, error)
    assert len(remaining(store, site)) == 8


def test_ids_full_of_sql_characters_are_matched_literally(
    client: FlaskClient, store: Store, site: Site, auth: dict
) -> None:
    odd = "v'\"\\{x}%--ü"
    load(store, [ev(site, odd, 0), ev(site, "v", 1), ev(site, "v'", 2)])
    res = client.delete(f"/api/v1/sites/{site.key}/persons/{odd}", headers=auth)
    assert res.status_code == 200 and res.get_json()["visitors"] == [odd]
    assert [v for v, _, _ in remaining(store, site)] == ["v", "v'"]


def test_access(client: FlaskClient, store: Store, site: Site, auth: dict) -> None:
    load(store, history(site))
    assert client.delete(f"/api/v1/sites/{site.key}/persons/u1").status_code == 401
    other = accounts.create_user(db.session, "other@test.example", "other-pass-123")
    _, token = accounts.create_token(db.session, other, "t")
    db.session.commit()
    res = client.delete(
        f"/api/v1/sites/{site.key}/persons/u1", headers={"Authorization": f"Bearer {token}"}
    )
    assert res.status_code == 404  # not a member: the site is not revealed
    assert len(remaining(store, site)) == 8


def test_cli(runner: FlaskCliRunner, store: Store, site: Site) -> None:
    load(store, history(site))
    dry = runner.invoke(main, ["erase-person", "laptop", "--site", site.key, "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert "Person u1: 5 events" in dry.output and "laptop, phone" in dry.output
    declined = runner.invoke(main, ["erase-person", "u1", "--site", site.key], input="n\n")
    assert declined.exit_code == 1 and "Aborted" in declined.output
    assert len(remaining(store, site)) == 8
    done = runner.invoke(main, ["erase-person", "u1", "--site", site.key], input="y\n")
    assert done.exit_code == 0, done.output
    assert "Erased 5 events of person u1" in done.output
    assert remaining(store, site, raw=True) == KEPT  # the CLI waits for the rewrite
    assert "rewriting" in done.stderr and "parts" in done.stderr  # on a progress bar
    missing = runner.invoke(main, ["erase-person", "u1", "--site", site.key, "--yes"])
    assert missing.exit_code == 1 and "no stored events for 'u1'" in missing.output
    no_site = runner.invoke(main, ["erase-person", "u1", "--site", "nope", "--yes"])
    assert no_site.exit_code == 1 and "no site with key 'nope'" in no_site.output


def audit_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("erasure by")]


def test_the_audit_line_names_who_erased_and_not_whom(
    client: FlaskClient,
    runner: FlaskCliRunner,
    store: Store,
    site: Site,
    auth: dict,
    caplog: pytest.LogCaptureFixture,
) -> None:
    load(store, history(site))
    with caplog.at_level(logging.INFO, logger="tracker.erasure"):
        api = client.delete(f"/api/v1/sites/{site.key}/persons/phone", headers=auth)
        assert api.status_code == 200
        client.post("/login", data={"email": "admin@test.example", "password": "admin-pass-123"})
        client.post(f"/sites/{site.key}/erase", data={"person": "tablet", "confirm": "yes"})
        done = runner.invoke(main, ["erase-person", "other", "--site", site.key, "--yes"])
        assert done.exit_code == 0, done.output
    lines = audit_lines(caplog)
    assert len(lines) == 3, lines
    assert lines[0].startswith("erasure by admin@test.example (API token): site ")
    assert lines[1].startswith("erasure by admin@test.example (dashboard): site ")
    assert "(command line): site " in lines[2]
    assert not any(
        person in line for line in lines for person in ("phone", "u1", "tablet", "u0", "other")
    )


def test_dashboard(client: FlaskClient, store: Store, site: Site) -> None:
    load(store, history(site))
    client.post("/login", data={"email": "admin@test.example", "password": "admin-pass-123"})
    page = client.get(f"/sites/{site.key}/erase?person=phone")
    text = page.get_data(as_text=True)
    assert page.status_code == 200 and "Erase 5 events" in text
    assert 'Person <span class="wrap">u1</span>' in text
    unknown = client.get(f"/sites/{site.key}/erase?person=nobody").get_data(as_text=True)
    assert "no stored events for &#39;nobody&#39;" in unknown
    # Without the confirmation box nothing happens.
    res = client.post(f"/sites/{site.key}/erase", data={"person": "phone"}, follow_redirects=True)
    assert "Tick the box" in res.get_data(as_text=True)
    assert len(remaining(store, site)) == 8
    res = client.post(
        f"/sites/{site.key}/erase",
        data={"person": "phone", "confirm": "yes"},
        follow_redirects=True,
    )
    assert "Erased 5 events of person u1" in res.get_data(as_text=True)
    assert remaining(store, site) == KEPT
    journey = client.get(f"/sites/{site.key}/persons/tablet").get_data(as_text=True)
    assert f"/sites/{site.key}/erase?person=u0" in journey  # the journey links here
    assert client.get("/sites/not-a-site/erase").status_code == 404
