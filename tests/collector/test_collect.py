"""POST /api/collect end to end on the real chDB engine: accepted events land in ClickHouse,
bad input gets its documented 4xx and reason, CORS and origins behave."""

from __future__ import annotations

import gzip
import json
import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.collector.conftest import CHROME, event, flush, post, stored
from tracker import create_app
from tracker.clickhouse import Store
from tracker.collector.sites import SiteInfo
from tracker.ingest.limits import MAX_BODY_BYTES


def test_batch_is_accepted_and_stored_with_enrichment(
    app: Flask, client: FlaskClient, store: Store, key: str
) -> None:
    ids = [str(uuid.uuid4()) for _ in range(3)]
    body = {
        "site": key,
        "events": [
            event(
                id=ids[0],
                url="https://example.test/landing?utm_source=Newsletter&utm_medium=email"
                "&utm_campaign=spring",
                referrer="",
                title="Landing",
                screen_width=1280,
                language="de-DE",
            ),
            event(
                id=ids[1],
                type="click",
                element={"tag": "A", "text": "Buy", "href": "/buy", "id": "b", "selector": "a#b"},
                outbound=True,
            ),
            event(
                id=ids[2],
                type="event",
                name="purchase",
                value=49.5,
                props={"sku": "X1", "n": 2, "gift": True},
            ),
        ],
    }
    resp = post(client, body)
    assert resp.status_code == 202, resp.json
    assert resp.json == {"accepted": 3, "dropped": {}}
    assert resp.headers["Access-Control-Allow-Origin"] == "https://example.test"
    flush(app)
    rows = {str(r["event_id"]): r for r in stored(store, key)}
    assert set(rows) == set(ids)
    landing = rows[ids[0]]
    assert landing["utm_campaign"] == "spring"
    assert (landing["source"], landing["medium"]) == ("newsletter", "email")
    assert (landing["host"], landing["path"]) == ("example.test", "/landing")
    assert (landing["browser"], landing["os"], landing["device"]) == (
        "Chrome",
        "Windows",
        "desktop",
    )
    assert landing["screen_width"] == 1280 and landing["language"] == "de-DE"
    click = rows[ids[1]]
    assert (click["type"], click["element_tag"], click["element_text"], click["outbound"]) == (
        "click",
        "a",
        "Buy",
        1,
    )
    purchase = rows[ids[2]]
    assert purchase["name"] == "purchase" and purchase["value"] == 49.5
    assert purchase["props"] == {"sku": "X1", "n": "2", "gift": "true"}


def test_single_event_gzip_and_sendbeacon_text_plain(
    app: Flask, client: FlaskClient, store: Store, key: str
) -> None:
    one, two, three = (event(site=key) for _ in range(3))
    assert post(client, one, gz=True).status_code == 202
    assert post(client, two, content_type="text/plain;charset=UTF-8").status_code == 202
    # sendBeacon cannot set Content-Encoding: gzip bytes are recognised by their magic number.
    raw = gzip.compress(json.dumps(three).encode())
    assert post(client, raw, content_type="text/plain").status_code == 202
    flush(app)
    assert {str(r["event_id"]) for r in stored(store, key)} == {one["id"], two["id"], three["id"]}


def test_preflight_allows_the_post(client: FlaskClient) -> None:
    resp = client.options(
        "/api/collect",
        headers={
            "Origin": "https://example.test",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert resp.status_code == 204
    assert "POST" in resp.headers["Access-Control-Allow-Methods"]
    assert "Content-Type" in resp.headers["Access-Control-Allow-Headers"]
    assert "Set-Cookie" not in resp.headers
    assert "Content-Type" not in resp.headers and resp.data == b""


def test_collect_sets_no_cookie_and_needs_no_csrf(client: FlaskClient, key: str) -> None:
    resp = post(client, event(site=key))
    assert resp.status_code == 202
    assert "Set-Cookie" not in resp.headers


def test_clock_skew_is_replaced_and_flagged(
    app: Flask, client: FlaskClient, store: Store, key: str
) -> None:
    skewed = event(site=key, ts="2001-01-01T00:00:00Z")
    fine = event(site=key, ts=1_000)  # also more than a day off
    assert post(client, {"site": key, "events": [skewed, fine]}).status_code == 202
    flush(app)
    rows = stored(store, key, "event_id, clock_skewed, toYear(ts) AS year")
    assert {r["clock_skewed"] for r in rows} == {1}
    assert all(r["year"] >= 2024 for r in rows)


def test_cookieless_visitors_get_a_stable_hash(
    app: Flask, client: FlaskClient, store: Store, key: str
) -> None:
    a1, a2, b1 = (event(site=key, visitor=None) for _ in range(3))
    for body, ua in ((a1, CHROME), (a2, CHROME), (b1, CHROME.replace("126", "125"))):
        del body["visitor"]
        assert post(client, body, ua=ua).status_code == 202
    flush(app)
    visitors = {str(r["event_id"]): r["visitor_id"] for r in stored(store, key)}
    assert visitors[a1["id"]] == visitors[a2["id"]] != visitors[b1["id"]]
    assert visitors[a1["id"]].startswith("h") and len(visitors[a1["id"]]) == 25


def _metric(client: FlaskClient, sample: str) -> float:
    """The value of one sample line of /metrics (0 while the series has no sample yet). The
    registry is the process's, shared by every test: compare before and after."""
    for line in client.get("/metrics").data.decode().splitlines():
        name, _, value = line.rpartition(" ")
        if name == sample:
            return float(value)
    return 0.0


def test_bots_and_headless_browsers_are_dropped_and_counted(
    app: Flask, client: FlaskClient, store: Store, key: str
) -> None:
    bots = 'funnel_events_dropped_total{reason="bot"}'
    before = _metric(client, bots)
    agents = (
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/126.0 Safari/537.36",
        "curl/8.5.0",
        "",
    )
    for ua in agents:
        resp = post(client, event(site=key), ua=ua)
        assert resp.status_code == 202, ua
        assert resp.json == {"accepted": 0, "dropped": {"bot": 1}}, ua
    # Two events in one request from a bot count twice.
    resp = post(client, {"site": key, "events": [event(), event()]}, ua="curl/8.5.0")
    assert resp.json == {"accepted": 0, "dropped": {"bot": 2}}
    assert _metric(client, bots) == before + len(agents) + 2
    flush(app)
    assert stored(store, key) == []


def test_mixed_batch_reports_drops_per_reason(client: FlaskClient, key: str) -> None:
    good = event()
    body = {
        "site": key,
        "events": [
            good,
            {"type": "event"},
            {"type": "signup"},
            event(props={f"k{i}": i for i in range(51)}),
            good,
        ],
    }
    resp = post(client, body)
    assert resp.status_code == 202
    assert resp.json == {
        "accepted": 1,
        "dropped": {
            "missing_name": 1,
            "invalid_type": 1,
            "too_many_props": 1,
            "duplicate": 1,
        },
    }


def test_a_long_url_is_stored_cut_and_its_campaign_still_counts(
    app: Flask, client: FlaskClient, store: Store, key: str
) -> None:
    """A page URL over 2,048 characters used to drop every event of the page (purchases
    too): the event is stored with the URL cut to 2,048, and its campaign parameters and
    click id are read from the whole URL (up to 16,384 characters), even past the cut."""
    filler = "f=" + "a" * 3000
    long_url = f"https://example.test/checkout?{filler}&utm_source=ads&utm_campaign=spring&gclid=G7"
    # Over 16,384: read as far as that, stored cut like the other.
    huge_url = f"https://example.test/p?utm_campaign=early&{'b' * 20_000}&utm_source=late"
    ids = [str(uuid.uuid4()) for _ in range(3)]
    body = {
        "site": key,
        "events": [
            event(id=ids[0], url=long_url),
            event(id=ids[1], url=long_url, type="event", name="purchase", value=49.9),
            event(id=ids[2], url=huge_url),
        ],
    }
    resp = post(client, body)
    assert resp.status_code == 202, resp.json
    assert resp.json == {"accepted": 3, "dropped": {}}
    flush(app)
    columns = "event_id, name, url, path, query, utm_source, utm_campaign, click_id, value"
    rows = {str(r["event_id"]): r for r in stored(store, key, columns)}
    for event_id in ids[:2]:
        row = rows[event_id]
        assert row["url"] == long_url[:2048]
        assert row["path"] == "/checkout"
        assert row["query"] == long_url.split("?", 1)[1][:2048]
        assert (row["utm_source"], row["utm_campaign"], row["click_id"]) == ("ads", "spring", "G7")
    assert (rows[ids[1]]["name"], rows[ids[1]]["value"]) == ("purchase", 49.9)
    huge = rows[ids[2]]
    assert huge["url"] == huge_url[:2048]
    assert (huge["utm_campaign"], huge["utm_source"]) == ("early", "")


BOMB = gzip.compress(b"{" + b" " * (20 * MAX_BODY_BYTES) + b"}")


@pytest.mark.parametrize(
    ("body", "kwargs", "status", "code"),
    [
        (b"{not json", {}, 400, "invalid_json"),
        (b"[1, 2]", {}, 400, "invalid_body"),
        (b'{"events": []}', {}, 400, "missing_site"),
        (b"\xff\xfe{}", {}, 400, "invalid_encoding"),
        (b'{"site": "x", "url": "\xc3\x28"}', {}, 400, "invalid_encoding"),
        (b"\x1f\x8b\x08\x00garbage", {}, 400, "invalid_encoding"),
        (b"{}", {"headers": {"Content-Encoding": "br"}}, 400, "invalid_encoding"),
        (
            b"{}",
            {"content_type": "application/x-www-form-urlencoded"},
            400,
            "unsupported_content_type",
        ),
        (b"{}", {"content_type": "text/plain; charset=latin-1"}, 400, "invalid_encoding"),
        (b"[" * 100_000, {}, 400, "invalid_json"),
        (b'{"site": "x", "n": NaN}', {}, 400, "invalid_json"),
        (b" " * (MAX_BODY_BYTES + 1), {}, 413, "body_too_large"),
        (BOMB, {"headers": {"Content-Encoding": "gzip"}}, 413, "body_too_large"),
        (
            json.dumps({"site": "nope-no-such-site", "type": "pageview"}).encode(),
            {},
            403,
            "unknown_site",
        ),
    ],
    ids=[
        "bad-json",
        "array",
        "no-site",
        "utf16-bom",
        "invalid-utf8",
        "bad-gzip",
        "unknown-encoding",
        "form-content-type",
        "latin1-charset",
        "deep-nesting",
        "nan",
        "oversized",
        "gzip-bomb",
        "unknown-site",
    ],
)
def test_malformed_bodies_get_their_documented_error(
    client: FlaskClient, body: bytes, kwargs: dict[str, Any], status: int, code: str
) -> None:
    resp = post(client, body, **kwargs)
    assert resp.status_code == status, resp.data[:200]
    assert resp.json["error"] == code
    assert "detail" in resp.json


@pytest.mark.parametrize(
    ("bad", "code"),
    [
        ({"type": 5}, "invalid_type"),
        ({"url": 12}, "invalid_field"),
        ({"url": "javascript:alert(1)"}, "invalid_url"),
        ({"title": ["x"]}, "invalid_field"),
        ({"title": "t" * 20_000}, "invalid_field"),
        ({"referrer": "https://r.example/" + "r" * 20_000}, "invalid_field"),
        ({"ts": "yesterday"}, "invalid_ts"),
        ({"ts": True}, "invalid_ts"),
        ({"ts": 10**400}, "invalid_ts"),  # beyond float range: no overflow inside the check
        ({"value": 10**400}, "invalid_field"),
        ({"props": {"n": 10**2000}}, "invalid_props"),
        ({"id": "not-a-uuid"}, "invalid_id"),
        ({"props": {"a": {"nested": 1}}}, "invalid_props"),
        ({"props": {"k" * 200: "v"}}, "invalid_props"),
        ({"props": {"k": "v" * 5000}}, "invalid_props"),
        ({"value": "12"}, "invalid_field"),
        ({"element": "a"}, "invalid_field"),
        ({"screen_width": -1}, "invalid_field"),
        ({"visitor": "v" * 500}, "invalid_field"),
        ({"title": "\ud800"}, "invalid_encoding"),
    ],
)
def test_a_request_whose_only_event_is_invalid_is_a_400_naming_the_reason(
    client: FlaskClient, key: str, bad: dict[str, Any], code: str
) -> None:
    body = json.dumps({**event(site=key), **bad}).encode()
    resp = post(client, body)
    assert resp.status_code == 400
    assert resp.json["error"] == code
    assert resp.json["detail"]["dropped"] == {code: 1}


def test_too_many_events(client: FlaskClient, key: str) -> None:
    resp = post(client, {"site": key, "events": [event() for _ in range(101)]})
    assert resp.status_code == 400 and resp.json["error"] == "too_many_events"


def test_origin_outside_the_sites_domains_is_refused(client: FlaskClient, key: str) -> None:
    resp = post(client, event(site=key), origin="https://evil.example")
    assert resp.status_code == 403 and resp.json["error"] == "origin_not_allowed"
    assert "Access-Control-Allow-Origin" not in resp.headers
    assert post(client, event(site=key), origin="http://127.0.0.1:5000").status_code == 202
    assert post(client, event(site=key), origin="https://www.example.test").status_code == 202


@pytest.mark.parametrize(
    ("domains", "origin", "allowed"),
    [
        (("shop.test",), "https://shop.test", True),
        (("shop.test",), "https://www.shop.test", True),
        (("shop.test",), "http://shop.test:8080", True),  # no port given: any port
        (("shop.test",), "https://blog.shop.test", False),  # subdomains need *.
        (("shop.test",), "https://evilshop.test", False),
        (("*.shop.test",), "https://shop.test", True),
        (("*.shop.test",), "https://blog.shop.test", True),
        (("*.shop.test",), "https://a.b.shop.test", True),
        (("*.shop.test",), "https://evilshop.test", False),
        (("shop.test:8443",), "https://shop.test:8443", True),
        (("shop.test:8443",), "https://shop.test", False),
        (("*.shop.test:8443",), "https://blog.shop.test:8443", True),
        ((), "https://anything.example", True),  # no domains: any origin
        (("shop.test",), None, True),  # no Origin: a server-side sender
        (("shop.test",), "null", False),  # a file: page or a sandboxed frame
    ],
)
def test_site_domains_rule_as_documented(
    domains: tuple[str, ...], origin: str | None, allowed: bool
) -> None:
    """The README's "Site domains" rule: apex and www for a plain domain, every subdomain
    for *.domain, a port only where one is given."""
    site = SiteInfo(id=1, key="k", domains=domains)
    assert site.allows_origin(origin) is allowed


def test_rate_limit_per_site_and_client(app: Flask, key: str) -> None:
    limited = create_app({"TESTING": True, "rate_limit": 3, "trusted_proxies": 1})
    client = limited.test_client()
    codes = [post(client, event(site=key), ip="203.0.113.9").status_code for _ in range(4)]
    assert codes == [202, 202, 202, 429]
    resp = post(client, event(site=key), ip="203.0.113.9")
    assert resp.status_code == 429 and resp.json["error"] == "rate_limited"
    assert int(resp.headers["Retry-After"]) >= 1
    # Another client of the same site has its own bucket.
    assert post(client, event(site=key), ip="198.51.100.1").status_code == 202


def test_spool_full_answers_503_with_retry_after(app: Flask, key: str) -> None:
    writer = app.extensions["funnel_writer"]
    assert post(app.test_client(), event(site=key)).status_code == 202  # the spool holds bytes
    saved = writer.spool.max_bytes
    writer.spool.max_bytes = 0
    try:
        resp = post(app.test_client(), event(site=key))
        ready = app.test_client().get("/readyz")
        assert ready.status_code == 503 and "spool is full" in ready.json["reason"]
    finally:
        writer.spool.max_bytes = saved
    assert resp.status_code == 503 and resp.json["error"] == "spool_full"
    assert resp.headers["Retry-After"]


def test_long_page_text_is_cut_to_its_cap(
    app: Flask, client: FlaskClient, store: Store, key: str
) -> None:
    body = event(site=key, title="T" * 3000, element={"text": "x" * 900})
    assert post(client, body).status_code == 202
    flush(app)
    (row,) = stored(store, key, "length(title) AS t, length(element_text) AS e")
    assert (row["t"], row["e"]) == (1000, 500)
