"""POST /api/collect?tidy, how t.js posts: what the snippet leaves to the collector. A detail
the collector cannot store is left out or cut, never the whole event; half a surrogate pair
becomes U+FFFD; the CSS selector, the outbound flag and the language are derived. Every
assertion reads the stored rows back from ClickHouse, and the same bodies without ?tidy keep
their documented drop reasons (test_collect.py)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.collector.conftest import event, flush, post, stored
from tracker.clickhouse import Store
from tracker.ingest.validate import css_escape

TIDY = "?tidy"
PAGE = "https://example.test/shop?utm_source=ads"


def snippet_event(**fields: Any) -> dict[str, Any]:
    """An event as t.js writes it: ts first, no language, selector or outbound."""
    base: dict[str, Any] = {
        "ts": 1_800_000_000_000,
        "id": str(uuid.uuid4()),
        "type": "event",
        "url": PAGE,
        "referrer": "",
        "title": "Shop",
        "screen_width": 1440,
        "visitor": str(uuid.uuid4()),
        "session": str(uuid.uuid4()),
    }
    base.update(fields)
    return base


def send(client: FlaskClient, key: str, *events: dict[str, Any], **kwargs: Any) -> Any:
    return post(client, {"site": key, "events": list(events)}, query=TIDY, **kwargs)


def rows(store: Store, key: str, columns: str) -> dict[str, dict[str, Any]]:
    return {str(r["event_id"]): r for r in stored(store, key, "event_id, " + columns)}


def test_bad_prop_entries_are_left_out_and_the_event_is_kept(
    app: Flask, client: FlaskClient, store: Store, key: str
) -> None:
    """What funnel('event', name, props) hands over as it is: lists, null, nested objects,
    NaN (null in JSON), over-long keys, entries past the 50th, long strings."""
    props: dict[str, Any] = {"items": ["a"], "coupon": None, "sku": "A1", "qty": 2}
    props.update({"gift": False, "nan": None, "at": {"x": 1}, "k" * 129: "long key", "": "no key"})
    props.update({"price": 49.9, "huge": 10**2000, "note": "x" * 2000})
    many = {f"p{i}": i for i in range(60)}
    events = [
        snippet_event(name="purchase", props=props, value="49.90"),
        snippet_event(name="no_props", props="not props", value="49,90"),
        snippet_event(name="array_props", props=["a"], value=1e16),
        snippet_event(name="many", props=many, value="Infinity"),
        snippet_event(name="negative", props={}, value=-12.5),
        *(snippet_event(name=f"odd{i}", value=v) for i, v in enumerate([True, [5], {}, " 7 "])),
    ]
    resp = send(client, key, *events)
    assert resp.status_code == 202, resp.json
    assert resp.json == {"accepted": len(events), "dropped": {}}
    flush(app)
    got = {r["name"]: r for r in stored(store, key, "name, props, value")}
    purchase = {"sku": "A1", "qty": "2", "gift": "false", "price": "49.9", "note": "x" * 1024}
    assert (got["purchase"]["props"], got["purchase"]["value"]) == (purchase, 49.9)
    assert (got["no_props"]["props"], got["no_props"]["value"]) == ({}, 0.0)
    assert (got["array_props"]["props"], got["array_props"]["value"]) == ({}, 0.0)
    assert got["many"]["props"] == {f"p{i}": str(i) for i in range(50)}
    assert got["many"]["value"] == 0.0
    assert got["negative"]["value"] == -12.5
    assert [got[f"odd{i}"]["value"] for i in range(4)] == [0.0, 0.0, 0.0, 7.0]


def test_without_tidy_the_same_props_still_drop_the_event(client: FlaskClient, key: str) -> None:
    """The API's documented contract is unchanged for every other client."""
    for bad, reason in (
        ({"props": {"items": ["a"], "sku": "A1"}}, "invalid_props"),
        ({"props": {f"p{i}": i for i in range(51)}}, "too_many_props"),
        ({"value": "49.90"}, "invalid_field"),
        ({"user": "u" * 129}, "invalid_field"),
        ({"title": "t" * 20_000}, "invalid_field"),
    ):
        resp = post(client, {"site": key, "events": [snippet_event(name="x", **bad)]})
        assert (resp.status_code, resp.json["error"]) == (400, reason), bad


def test_text_of_any_length_is_cut_to_its_cap(
    app: Flask, client: FlaskClient, store: Store, key: str
) -> None:
    """t.js no longer cuts url, referrer and title: the collector reads the campaign from the
    first 16,384 characters of the URL, stores 2,048 of it and of the referrer, 1,000 of the
    title, whatever their length."""
    url = PAGE + "&f=" + "a" * 20_000 + "&utm_campaign=late"
    long = snippet_event(
        type="pageview",
        url=url,
        referrer="https://r.example/" + "r" * 20_000,
        title="t" * 20_000,
        element={"tag": "a", "text": "x" * 20_000, "href": "https://example.test/" + "h" * 9000},
    )
    resp = send(client, key, long)
    assert resp.json == {"accepted": 1, "dropped": {}}
    flush(app)
    columns = "url, utm_source, utm_campaign, referrer, title, element_text, element_href"
    (row,) = stored(store, key, columns)
    assert row["url"] == url[:2048] and row["utm_source"] == "ads" and row["utm_campaign"] == ""
    assert (len(row["referrer"]), len(row["title"])) == (2048, 1000)
    assert (len(row["element_text"]), len(row["element_href"])) == (100, 2048)


def test_element_text_is_collapsed_trimmed_and_cut_at_100(
    app: Flask, client: FlaskClient, store: Store, key: str
) -> None:
    """t.js sends a clicked element's text as the page has it (up to 200 UTF-16 units):
    the collector collapses its whitespace, trims it and keeps 100 characters, an emoji
    counting as one."""
    texts = ["  Partner\n\n   deal ", "\t" + "a" * 99 + "\U0001f600 more"]
    events = [
        snippet_event(type="click", element={"tag": "a", "text": t, "href": PAGE}) for t in texts
    ]
    assert send(client, key, *events).json == {"accepted": 2, "dropped": {}}
    flush(app)
    got = {r["element_text"] for r in stored(store, key, "element_text")}
    assert got == {"Partner deal", "a" * 99 + "\U0001f600"}


def test_a_user_id_the_collector_cannot_take_is_left_out(
    app: Flask, client: FlaskClient, store: Store, key: str
) -> None:
    """A user id stored by an earlier version (too long, not text) no longer costs every
    event of the visitor: the event is kept without it."""
    ok, long, odd = (snippet_event(type="pageview", user=u) for u in (" u-7 ", "x" * 129, {"a": 1}))
    resp = send(client, key, ok, long, odd)
    assert resp.json == {"accepted": 3, "dropped": {}}
    flush(app)
    got = rows(store, key, "user_id")
    assert [got[e["id"]]["user_id"] for e in (ok, long, odd)] == ["u-7", "", ""]


def test_half_surrogate_pairs_become_the_replacement_character(
    app: Flask, client: FlaskClient, store: Store, key: str
) -> None:
    """t.js cuts link text at 100 UTF-16 units, which can fall inside an emoji, and a page's
    title or props may hold half a pair: JSON.stringify escapes it ("\\ud83d"), and the
    collector stores U+FFFD in its place instead of dropping the event as invalid_encoding."""
    cut = snippet_event(
        type="click",
        element={"tag": "a", "text": "a" * 99 + "\ud83d", "href": PAGE},
        title="Half \ud83d pair",
        props={"k\udc00": "v\ud800"},
        user="u\ud800",
    )
    whole = snippet_event(type="pageview", title="Whole \U0001f600")
    body = json.dumps({"site": key, "events": [cut, whole]})  # ASCII with \\u escapes
    assert "\\ud83d" in body
    resp = post(client, body.encode(), query=TIDY)
    assert resp.json == {"accepted": 2, "dropped": {}}
    # Without ?tidy such text still drops the event, as the API documents.
    strict = post(client, body.replace(cut["id"], str(uuid.uuid4())).encode())
    assert strict.json["dropped"] == {"invalid_encoding": 1}
    flush(app)
    got = rows(store, key, "element_text, title, props, user_id")
    assert got[cut["id"]]["element_text"] == "a" * 99 + "\ufffd"
    assert got[cut["id"]]["title"] == "Half \ufffd pair"
    assert got[cut["id"]]["props"] == {"k\ufffd": "v\ufffd"}
    assert got[cut["id"]]["user_id"] == "u\ufffd"
    assert got[whole["id"]]["title"] == "Whole \U0001f600"


def test_the_selector_and_outbound_flag_are_derived_from_the_element(
    app: Flask, client: FlaskClient, store: Store, key: str
) -> None:
    """'#id', else the tag and its first two classes, CSS-escaped; a link to another host is
    outbound. An href that is not text (an SVG link's object) is left out."""
    clicks = [
        ({"tag": "a", "id": "p", "class": "btn", "href": "https://partner.example.org/x"}, "#p", 1),
        ({"tag": "a", "class": "btn  cta   hero", "href": PAGE + "#top"}, "a.btn.cta", 0),
        ({"tag": "a", "href": "https://example.test:8443/"}, "a", 1),  # another port
        ({"tag": "a", "href": "mailto:hi@example.test"}, "a", 0),
        ({"tag": "div", "id": "1st item"}, "#\\31 st\\ item", 0),
        ({"tag": "a", "class": "md:px-4 w-1/2", "href": {}}, "a.md\\:px-4.w-1\\/2", 0),
        ({"tag": "button", "selector": "#given", "id": "b"}, "#given", 0),
        ({"tag": "form", "id": None, "class": None}, "form", 0),
    ]
    events = [snippet_event(type="click", element=element) for element, _, _ in clicks]
    assert send(client, key, *events).json == {"accepted": len(events), "dropped": {}}
    flush(app)
    got = rows(store, key, "element_selector, outbound, element_href")
    assert [(got[e["id"]]["element_selector"], got[e["id"]]["outbound"]) for e in events] == [
        (selector, outbound) for _, selector, outbound in clicks
    ]
    assert got[events[5]["id"]]["element_href"] == ""


@pytest.mark.parametrize(
    ("text", "escaped"),
    [
        ("buy", "buy"),
        ("1st item", "\\31 st\\ item"),
        ("-1x", "-\\31 x"),
        ("-", "\\-"),
        ("md:px-4", "md\\:px-4"),
        ("w-1/2", "w-1\\/2"),
        ("a\x00b\x7f", "a\ufffdb\\7f "),
        ("café_€", "café_€"),
    ],
)
def test_css_escape_matches_the_browsers(text: str, escaped: str) -> None:
    """CSS.escape() as the CSSOM specifies it (the values Chromium gives)."""
    assert css_escape(text) == escaped


def test_the_language_is_the_first_of_accept_language(
    app: Flask, client: FlaskClient, store: Store, key: str
) -> None:
    plain, given = snippet_event(type="pageview"), snippet_event(type="pageview", language="fr")
    headers = {"Accept-Language": "de-DE,de;q=0.9,en;q=0.8"}
    assert send(client, key, plain, given, headers=headers).json["accepted"] == 2
    bare = snippet_event(type="pageview")
    assert send(client, key, bare, headers={"Accept-Language": "*"}).json["accepted"] == 1
    flush(app)
    got = rows(store, key, "language")
    assert [got[e["id"]]["language"] for e in (plain, given, bare)] == ["de-DE", "fr", ""]


def test_entries_of_a_backlog_that_are_not_events_are_dropped_the_rest_kept(
    app: Flask, client: FlaskClient, store: Store, key: str
) -> None:
    """t.js sends a stored backlog as it finds it: a null or a number among the events is
    dropped with its reason, the events are stored."""
    kept = snippet_event(name="kept")
    resp = send(client, key, None, 5, kept)  # type: ignore[arg-type]
    assert resp.json == {"accepted": 1, "dropped": {"invalid_event": 2}}
    flush(app)
    assert list(rows(store, key, "name")) == [kept["id"]]


def test_strict_fields_still_drop_the_event_with_tidy(client: FlaskClient, key: str) -> None:
    """Tidy cleans details; an event that is not one still has its reason."""
    for bad, reason in (
        ({"type": "signup"}, "invalid_type"),
        ({"name": None}, "missing_name"),
        ({"url": "file:///home/me/page.html"}, "invalid_url"),
        ({"id": "not-a-uuid"}, "invalid_id"),
    ):
        resp = send(client, key, snippet_event(**{"name": "x", **bad}))
        assert (resp.status_code, resp.json["error"]) == (400, reason), bad


def test_tidy_needs_its_own_query_parameter(client: FlaskClient, key: str) -> None:
    """Only a `tidy` parameter turns it on (t.js posts to /api/collect?tidy)."""
    body = {"site": key, "events": [snippet_event(name="x", value="49.90")]}
    assert post(client, body, query="?tidy").status_code == 202
    assert post(client, body, query="?tidy=1&x=2").status_code == 202
    assert post(client, body, query="?untidy").status_code == 400
    assert post(client, event(site=key), query="?tidy").json["accepted"] == 1
