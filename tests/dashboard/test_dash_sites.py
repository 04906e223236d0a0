"""The site settings form: every field is saved, and a bad one changes nothing and says why."""

from __future__ import annotations

import gzip
import json
import re
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import pytest
from dash_helpers import insert_events, journey_events
from flask.testing import FlaskClient

from tracker.clickhouse import Store
from tracker.configdb import db
from tracker.models import Site

GOOD = {
    "name": "Shoe shop",
    "domains": "https://shop.example/, www.shop.example",
    "timezone": "America/New_York",
    "retention_days": "90",
    "currency": " usd ",
}


def flashes(client: FlaskClient, site: Site) -> list[str]:
    html = client.get(f"/sites/{site.key}/setup").data.decode()
    return [unescape(m) for m in re.findall(r'class="flash[^"]*"[^>]*>\s*(.*?)\s*<', html, re.S)]


def test_every_setting_is_saved(logged_in: FlaskClient, my_site: Site) -> None:
    response = logged_in.post(f"/sites/{my_site.key}/settings", data=GOOD)
    assert response.status_code == 302
    assert response.location.endswith(f"/sites/{my_site.key}/setup#settings")
    db.session.expire_all()
    site = db.session.get(Site, my_site.id)
    assert site is not None
    assert (site.name, site.domains, site.timezone, site.retention_days, site.currency) == (
        "Shoe shop",
        ["shop.example", "www.shop.example"],
        "America/New_York",
        90,
        "USD",
    )
    html = logged_in.get(f"/sites/{my_site.key}/setup").data.decode()
    assert "Site settings saved." in html
    assert 'id="s-currency" name="currency" value="USD"' in html
    # No currency again: an empty field clears it.
    logged_in.post(f"/sites/{my_site.key}/settings", data={**GOOD, "currency": ""})
    db.session.expire_all()
    assert db.session.get(Site, my_site.id).currency == ""  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("currency", "euro", "currency must be a three-letter ISO 4217 code"),
        ("currency", "E1R", "currency must be a three-letter ISO 4217 code"),
        ("timezone", "Mars/Base", "unknown time zone"),
        ("retention_days", "-5", "retention must be a number of days"),
        ("retention_days", "40000", "retention must be a number of days"),
        ("name", "   ", "site name must be 1 to 200 characters"),
        ("domains", "not a domain!", "not a valid domain"),
    ],
)
def test_a_bad_setting_changes_nothing_and_says_why(
    logged_in: FlaskClient, my_site: Site, field: str, value: str, message: str
) -> None:
    before = _settings(my_site)
    response = logged_in.post(f"/sites/{my_site.key}/settings", data={**GOOD, field: value})
    assert response.status_code == 302
    assert any(message in text for text in flashes(logged_in, my_site)), message
    db.session.expire_all()
    assert _settings(db.session.get(Site, my_site.id)) == before


def _settings(site: Any) -> tuple[Any, ...]:
    return (site.name, site.domains, site.timezone, site.retention_days, site.currency)


def _cells(html: str, site: Site) -> dict[str, str]:
    """The activity cells of a site's row in the sites list, as text."""
    row = html[html.index(f"<code>{site.key}</code>") :]
    row = row[: row.index("</tr>")]
    return {
        name: re.sub(r"<[^>]+>", "", unescape(text)).strip()
        for name, text in re.findall(r"<td[^>]* data-(\w+)>(.*?)</td>", row, re.S)
    }


def test_sites_list_shows_recent_traffic(
    logged_in: FlaskClient, my_site: Site, store: Store
) -> None:
    """Visitors and events of the last 30 days, and how long ago the newest event arrived:
    at a glance, which site's snippet is sending."""
    empty = _cells(logged_in.get("/sites").data.decode(), my_site)
    assert empty == {"visitors": "0", "events": "0", "newest": "None in the last 30 days"}
    now = datetime.now(UTC)
    recent = [
        {"site_id": my_site.key, "visitor_id": v, "ts": now - timedelta(days=d)}
        for v, d in (("a", 1), ("a", 2), ("b", 29), ("c", 3))
    ]
    recent[0]["received_at"] = now - timedelta(minutes=12)
    for e in recent[1:]:
        e["received_at"] = now - timedelta(hours=5)
    # Older than 30 days: not counted, and not the newest, although it arrived last (an import).
    old = {"site_id": my_site.key, "visitor_id": "d", "ts": now - timedelta(days=40)}
    old["received_at"] = now
    insert_events(store, [*recent, old])
    cells = _cells(logged_in.get("/sites").data.decode(), my_site)
    assert cells["visitors"] == "3" and cells["events"] == "4"
    assert re.fullmatch(r"12 min( \d+ s)? ago", cells["newest"]), cells["newest"]


def test_a_sites_address_opens_its_report(logged_in: FlaskClient, my_site: Site) -> None:
    res = logged_in.get(f"/sites/{my_site.key}?campaign=spring&range=7d")
    assert res.status_code == 302
    assert res.location == f"/sites/{my_site.key}/report?campaign=spring&range=7d"
    assert logged_in.get(f"/sites/{my_site.key}").location == f"/sites/{my_site.key}/report"
    assert logged_in.get("/sites/no-such-site").status_code == 404


def test_sites_list_works_without_the_event_store(
    logged_in: FlaskClient, my_site: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ClickHouse server that does not answer costs the figures, not the page."""
    from dashboard import recent

    def refuse(*_: Any) -> None:
        raise ConnectionError("connection refused")

    monkeypatch.setattr(recent, "site_activity", refuse)
    res = logged_in.get("/sites")
    assert res.status_code == 200
    assert "Traffic figures unavailable" in res.data.decode() and my_site.key in res.data.decode()


def test_setup_page_downloads_every_event(
    logged_in: FlaskClient, my_site: Site, store: Store
) -> None:
    """The "Your data" card's download: gzipped NDJSON in the import format, of every event
    however old, visitor by visitor."""
    now = datetime.now(UTC)
    insert_events(
        store,
        [
            {"site_id": my_site.key, "visitor_id": "b", "ts": now - timedelta(days=400)},
            {"site_id": my_site.key, "visitor_id": "a", "ts": now, "type": "click"},
            {"site_id": "elsewhere", "visitor_id": "z", "ts": now},
        ],
    )
    setup = logged_in.get(f"/sites/{my_site.key}/setup").data.decode()
    link = re.search(r'id="export-events" href="([^"]+)"', setup)
    assert link is not None and link.group(1) == f"/sites/{my_site.key}/events.ndjson.gz"
    res = logged_in.get(link.group(1))
    assert res.status_code == 200 and res.mimetype == "application/gzip"
    assert f'filename="{my_site.key}-events.ndjson.gz"' in res.headers["Content-Disposition"]
    lines = [json.loads(line) for line in gzip.decompress(res.data).splitlines()]
    assert [(e["visitor"], e["type"]) for e in lines] == [("a", "click"), ("b", "pageview")]


def test_setup_page_says_when_nothing_arrived_yet(
    logged_in: FlaskClient, my_site: Site, store: Store
) -> None:
    """An empty 'last events' table would look broken: it says nothing has arrived yet, and
    the row goes once events are there."""
    empty = logged_in.get(f"/sites/{my_site.key}/setup").data.decode()
    assert "Nothing received yet: events show here within seconds" in empty
    insert_events(store, journey_events(my_site.key, [{"id": "v1", "depth": 2}]))
    filled = logged_in.get(f"/sites/{my_site.key}/setup").data.decode()
    assert "Nothing received yet" not in filled
    assert filled.count("<td>google</td>") == 2
