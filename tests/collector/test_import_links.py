"""Historical import (API and CLI) is idempotent by event id; tracked links record a click
and redirect only to their stored target."""

from __future__ import annotations

import gzip
import hashlib
import json
import uuid
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner

from tests.collector.conftest import CHROME, flush, stored
from tracker import links
from tracker.accounts import AccountError
from tracker.app import MAX_FORM_BODY_BYTES
from tracker.cli import main
from tracker.clickhouse import Store
from tracker.configdb import db
from tracker.ingest.limits import MAX_IMPORT_BODY_BYTES
from tracker.models import Site


def history(n: int) -> list[dict[str, object]]:
    return [
        {
            "id": str(uuid.uuid4()),
            "type": "pageview",
            "ts": f"2024-03-{1 + i % 28:02d}T10:00:00Z",
            "url": f"https://example.test/p{i}?utm_campaign=old",
            "visitor": f"v{i % 7}",
            "context": {
                "ip": "203.0.113.8",
                "user_agent": CHROME,
                "country": "SE",
                "city": "Malmö",
            },
        }
        for i in range(n)
    ]


def test_import_api_is_idempotent_and_keeps_history(
    client: FlaskClient, store: Store, site: Site, token: str
) -> None:
    events = history(40)
    events.append({"type": "event", "ts": "2024-01-01T00:00:00Z"})  # no name: dropped
    url = f"/api/v1/sites/{site.key}/events:import"
    auth = {"Authorization": f"Bearer {token}"}
    first = client.post(url, json=events, headers=auth)
    assert first.status_code == 200, first.json
    assert first.json["imported"] == 40 and first.json["dropped"] == {"missing_name": 1}
    ndjson = "\n".join(json.dumps(e) for e in events[:40]).encode()
    again = client.post(url, data=ndjson, headers={**auth, "Content-Type": "application/x-ndjson"})
    assert again.status_code == 200
    assert again.json["imported"] == 0 and again.json["existing"] == 40
    rows = stored(store, site.key, "event_id, ts, country, city, utm_campaign, clock_skewed")
    assert len(rows) == 40
    assert {r["ts"].year for r in rows} == {2024}
    assert {(r["country"], r["city"], r["utm_campaign"]) for r in rows} == {("SE", "Malmö", "old")}
    assert {r["clock_skewed"] for r in rows} == {0}


def test_import_without_ids_is_still_idempotent(
    client: FlaskClient, store: Store, site: Site, token: str
) -> None:
    events = history(5)
    for e in events:
        del e["id"]
    url = f"/api/v1/sites/{site.key}/events:import"
    auth = {"Authorization": f"Bearer {token}"}
    assert client.post(url, json=events, headers=auth).json["imported"] == 5
    assert client.post(url, json=events, headers=auth).json["imported"] == 0
    assert len(stored(store, site.key, "event_id")) == 5


def test_import_drops_events_without_a_time_or_a_person(
    client: FlaskClient, store: Store, site: Site, token: str
) -> None:
    """History needs its own time and someone it belongs to: `{}` is not a pageview "now" by
    a visitor made up from an empty address, it is dropped with the reason."""
    ts = "2024-05-01T10:00:00Z"
    events = [
        {},
        {"visitor": "v1"},  # no time
        {"ts": ts, "url": "https://example.test/"},  # nobody
        {"ts": ts, "context": {"user_agent": CHROME}},  # a browser alone is nobody either
        {"ts": ts, "visitor": "v1"},
        {"ts": ts, "user": "u1"},
        {"ts": ts, "context": {"ip": "203.0.113.9", "user_agent": CHROME}},
    ]
    res = client.post(
        f"/api/v1/sites/{site.key}/events:import",
        json=events,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert res.status_code == 200
    assert res.json["imported"] == 3
    assert res.json["dropped"] == {"missing_ts": 2, "missing_visitor": 2}
    assert any("needs ts" in d for d in res.json["detail"])
    rows = stored(store, site.key, "visitor_id, user_id, ts")
    assert {r["ts"].year for r in rows} == {2024}
    people = sorted((r["visitor_id"], r["user_id"]) for r in rows)
    assert people[1:] == [("u1", "u1"), ("v1", "")]
    assert people[0][0] not in ("", "u1", "v1")  # the address's cookieless id


def test_import_needs_a_token_and_a_valid_body(client: FlaskClient, site: Site, token: str) -> None:
    url = f"/api/v1/sites/{site.key}/events:import"
    assert client.post(url, json=[]).status_code == 401
    auth = {"Authorization": f"Bearer {token}"}
    bad = client.post(url, data=b"[1,", headers={**auth, "Content-Type": "application/json"})
    assert bad.status_code == 400 and bad.json["error"] == "invalid_json"
    missing = client.post("/api/v1/sites/nope/events:import", json=[], headers=auth)
    assert missing.status_code == 404


def test_import_takes_bodies_beyond_the_apps_form_limit_up_to_its_own(
    client: FlaskClient, site: Site, token: str
) -> None:
    """The app caps bodies at form size; the import endpoint raises that for itself."""
    url = f"/api/v1/sites/{site.key}/events:import"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    padded = b"[" + b" " * (MAX_FORM_BODY_BYTES + 1024) + json.dumps(history(1)[0]).encode() + b"]"
    answer = client.post(url, data=padded, headers=headers)
    assert answer.status_code == 200, answer.json
    assert answer.json["imported"] == 1
    # Declared beyond the import cap: refused before reading, with the collector's reason.
    huge = client.post(
        url,
        data=b"[]",
        headers=headers,
        environ_overrides={"CONTENT_LENGTH": str(MAX_IMPORT_BODY_BYTES + 2)},
    )
    assert huge.status_code == 413 and huge.json["error"] == "body_too_large"


def test_cli_import_twice_stores_each_event_once(
    runner: FlaskCliRunner, store: Store, site: Site, tmp_path: Path
) -> None:
    path = tmp_path / "events.ndjson"
    events = history(25)
    path.write_text("\n".join(json.dumps(e) for e in events) + "\nnot json\n")
    result = runner.invoke(main, ["import", str(path), "--site", site.key])
    assert result.exit_code == 0, result.output
    assert "Imported 25 events" in result.output and "1 invalid_json" in result.output
    result = runner.invoke(main, ["import", str(path), "--site", site.key])
    assert "Imported 0 events" in result.output and "25 already present" in result.output
    assert len(stored(store, site.key, "event_id")) == 25
    # The same events as a gzipped JSON array are recognised as already present.
    packed = tmp_path / "events.json.gz"
    packed.write_bytes(gzip.compress(json.dumps(events).encode()))
    result = runner.invoke(main, ["import", str(packed), "--site", site.key])
    assert result.exit_code == 0 and "25 already present" in result.output, result.output
    unknown = runner.invoke(main, ["import", str(path), "--site", "nope"])
    assert unknown.exit_code != 0 and "no site" in unknown.output


def test_tracked_link_records_a_click_and_redirects(
    app: Flask, client: FlaskClient, store: Store, site: Site
) -> None:
    link = links.create_link(
        db.session,
        site,
        "https://example.test/offer?ref=1&utm_source=old",
        campaign="spring",
        source="newsletter",
        medium="email",
        keyword="boots",
    )
    db.session.commit()
    resp = client.get(f"/r/{link.code}?to=https://evil.example", headers={"User-Agent": CHROME})
    assert resp.status_code == 302
    target = urlsplit(resp.headers["Location"])
    assert (target.scheme, target.netloc, target.path) == ("https", "example.test", "/offer")
    assert parse_qs(target.query) == {
        "ref": ["1"],
        "utm_source": ["newsletter"],
        "utm_medium": ["email"],
        "utm_campaign": ["spring"],
        "utm_term": ["boots"],
    }
    flush(app)
    rows = stored(store, site.key, "type, utm_campaign, source, medium, utm_term, props")
    assert len(rows) == 1
    click = rows[0]
    assert (click["type"], click["utm_campaign"], click["source"], click["medium"]) == (
        "click",
        "spring",
        "newsletter",
        "email",
    )
    assert click["utm_term"] == "boots" and click["props"]["link_code"] == link.code
    listed = links.list_links(db.session, store, site)
    assert listed[0]["clicks"] == 1 and listed[0]["url"] == f"/r/{link.code}"
    links.delete_link(db.session, site, link.code)
    db.session.commit()
    assert client.get(f"/r/{link.code}").status_code == 404


def test_unknown_links_404_and_bad_targets_are_refused(client: FlaskClient, site: Site) -> None:
    resp = client.get("/r/doesnotexist")
    assert resp.status_code == 404 and resp.json["error"] == "not_found"
    for bad in ("javascript:alert(1)", "ftp://example.test/x", "//evil.example", "not a url"):
        with pytest.raises(AccountError):
            links.create_link(db.session, site, bad)


def test_cli_create_link(runner: FlaskCliRunner, site: Site) -> None:
    result = runner.invoke(
        main,
        ["create-link", "--site", site.key, "--url", "https://example.test/x", "--campaign", "c"],
    )
    assert result.exit_code == 0, result.output
    assert "/r/" in result.output and "utm_campaign=c" in result.output
    bad = runner.invoke(main, ["create-link", "--site", site.key, "--url", "javascript:x"])
    assert bad.exit_code != 0 and "Traceback" not in bad.output


def test_snippet_is_served_with_etag_and_304(client: FlaskClient) -> None:
    # js/dist/t.js is committed: the snippet is always there to serve.
    resp = client.get("/t.js")
    assert resp.status_code == 200, resp.data[:200]
    assert resp.mimetype == "application/javascript"
    assert resp.data and resp.headers["ETag"] == f'"{hashlib.sha256(resp.data).hexdigest()[:20]}"'
    assert "max-age" in resp.headers["Cache-Control"]
    etag = resp.headers["ETag"]
    again = client.get("/t.js", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
