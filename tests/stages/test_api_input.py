"""How the JSON API reads what it is sent: text that is not valid Unicode, body sizes, the
types of report arguments, repeated parameters, person ids and HTTP details (Allow, 204)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.stages.conftest import load
from tracker import funnels as funnel_service
from tracker.clickhouse import Store
from tracker.configdb import db
from tracker.models import Site

TWO = '[{"key": "a", "rules": [{"type": "any"}]}, {"key": "b", "rules": [{"type": "any"}]}]'
JSON = {"Content-Type": "application/json"}
BROWSER = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"


def _post(client: FlaskClient, site: Site, auth: dict, path: str, body: str) -> Any:
    return client.post(f"/api/v1/sites/{site.key}{path}", data=body, headers={**auth, **JSON})


# Bodies as raw text: "\\ud800" is the JSON escape of a lone surrogate, which json.loads
# accepts and no UTF-8 store can hold.
LONE_SURROGATES = [
    ("/funnels", '{"name": "\\ud800", "stages": ' + TWO + "}", "name"),
    (
        "/funnels",
        '{"stages": [{"key": "a", "rules": [{"type": "any", "conditions": [{"field": "path", '
        '"op": "equals", "value": "\\udc00"}]}]}, {"key": "b", "rules": [{"type": "any"}]}]}',
        "stages.0.rules.0.conditions.0.value",
    ),
    ("/funnel-report", '{"stages": ' + TWO + ', "query": {"filter": "path:contains:\\ud800"}}',
     "query.filter"),
    ("/funnel-report", '{"stages": ' + TWO + ', "query": {"country": "\\ud800"}}',
     "query.country"),
    ("/funnel-report", '{"stages": ' + TWO + ', "query": {"breakdown": "prop.\\ud800"}}',
     "query.breakdown"),
    ("/funnel-report",
     '{"stages": ' + TWO + ', "query": {"breakdown": "country", "segment": "\\ud800"}}',
     "query.segment"),
    ("/funnel-report", '{"stages": ' + TWO + ', "query": {"\\ud800": "x"}}', "query"),
    (
        "/funnel-preview",
        '{"definition": {"stages": [{"key": "a", "rules": [{"type": "event", "name": '
        '"\\ud800"}]}, {"key": "b", "rules": [{"type": "any"}]}]}}',
        "definition.stages.0.rules.0.name",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("path", "body", "where"), LONE_SURROGATES)
def test_lone_surrogates_are_a_400_where_the_body_is_read(
    client: FlaskClient, site: Site, auth: dict, path: str, body: str, where: str
) -> None:
    res = _post(client, site, auth, path, body)
    assert res.status_code == 400, res.get_data(as_text=True)
    answer = res.get_json()
    assert answer["error"] == "invalid_encoding"
    assert "valid Unicode" in answer["detail"] and answer["detail"].endswith(where)
    # Nothing was stored on the way.
    funnels = client.get(f"/api/v1/sites/{site.key}/funnels", headers=auth).get_json()
    assert len(funnels["funnels"]) == 1


def test_a_stored_funnel_with_such_text_is_a_400_not_an_outage(
    client: FlaskClient, site: Site, auth: dict
) -> None:
    # As a funnel saved before the check could be: the rules column holds JSON, which keeps
    # the escape.
    funnel = funnel_service.list_funnels(db.session, site)[0]
    funnel.stages[1].rules = [
        {"type": "any", "name": None,
         "conditions": [{"field": "path", "op": "equals", "value": "\udc00"}]}
    ]  # fmt: skip
    db.session.commit()
    base = f"/api/v1/sites/{site.key}/funnels/{funnel.id}"
    for url in (
        f"{base}/report",
        f"{base}/persons?stage=trace",
        f"{base}/preview",
        f"/api/v1/sites/{site.key}/persons/v1/journey?funnel={funnel.id}",
    ):
        res = client.get(url, headers=auth)
        assert res.status_code == 400, (url, res.get_data(as_text=True))
        answer = res.get_json()
        assert answer["error"] == "invalid_definition"
        assert answer["errors"][0]["path"] == "stages.1.rules.0.conditions.0.value"
        assert "valid Unicode" in answer["errors"][0]["message"]


def test_collector_refuses_a_site_key_that_is_not_unicode(client: FlaskClient, site: Site) -> None:
    headers = {"User-Agent": BROWSER, **JSON}
    body = '{"site": "\\ud800", "type": "pageview", "url": "https://example.test/"}'
    res = client.post("/api/collect", data=body, headers=headers)
    assert res.status_code == 400
    assert res.get_json()["error"] == "invalid_encoding"
    # Within an event such text drops the event with its reason, as before.
    body = (
        f'{{"site": "{site.key}", "type": "pageview", "url": "https://example.test/", '
        '"visitor": "\\ud800"}'
    )
    res = client.post("/api/collect", data=body, headers=headers)
    assert (res.status_code, res.get_json()["error"]) == (400, "invalid_encoding")


def test_import_drops_events_with_such_text(client: FlaskClient, site: Site, auth: dict) -> None:
    body = '[{"ts": 1700000000000, "visitor": "\\ud800", "type": "pageview", "url": "https://x.test/"}]'
    res = _post(client, site, auth, "/events:import", body)
    assert res.status_code == 200
    assert res.get_json()["dropped"] == {"invalid_encoding": 1}


VALID = '{"name": "Sized", "stages": ' + TWO + "}"


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("post", "/funnels", 201), ("put", "/funnels/{fid}", 200), ("post", "/funnel-report", 200),
     ("post", "/funnel-preview", 200)],
)  # fmt: skip
def test_json_bodies_are_capped_at_one_mebibyte(
    client: FlaskClient, site: Site, auth: dict, method: str, path: str, status: int
) -> None:
    fid = client.get(f"/api/v1/sites/{site.key}/funnels", headers=auth).get_json()["funnels"][0]
    url = f"/api/v1/sites/{site.key}" + path.format(fid=fid["id"])
    call = getattr(client, method)
    # Padding (JSON whitespace) up to exactly the limit still parses.
    at_limit = VALID + " " * ((1 << 20) - len(VALID))
    assert call(url, data=at_limit, headers={**auth, **JSON}).status_code == status
    res = call(url, data=at_limit + " ", headers={**auth, **JSON})
    assert (res.status_code, res.get_json()["error"]) == (413, "body_too_large")
    assert "1048576 bytes" in res.get_json()["detail"]
    res = call(url, data="x" * (3 << 20), headers={**auth, **JSON})
    assert (res.status_code, res.get_json()["error"]) == (413, "body_too_large")
    # A streamed body (no Content-Length) stops at the limit too.
    res = call(
        url,
        input_stream=io.BytesIO((at_limit + " " * 4096).encode()),
        headers={**auth, **JSON},
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert (res.status_code, res.get_json()["error"]) == (413, "body_too_large")


def test_import_bodies_keep_their_own_larger_limit(
    client: FlaskClient, site: Site, auth: dict
) -> None:
    line = '{"ts": 1700000000000, "visitor": "v%d", "type": "pageview", "url": "https://x.test/%s"}'
    body = "\n".join(line % (i, "p" * 200) for i in range(6000))
    assert len(body) > 3 << 20 >> 1  # well past the JSON API's 1 MiB
    res = client.post(
        f"/api/v1/sites/{site.key}/events:import",
        data=body,
        headers={**auth, "Content-Type": "application/x-ndjson"},
    )
    assert res.status_code == 200, res.get_data(as_text=True)
    assert res.get_json()["imported"] == 6000


def _inline(query: Any) -> str:
    return json.dumps({"stages": json.loads(TWO), "query": query})


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ({"mode": {}}, "query.mode must be text, got an object"),
        ("mode=strict", "query must be an object"),
        (["from"], "query must be an object"),
        ({"from": 20261101}, "query.from must be text, got a number"),
        ({"to": True}, "query.to must be text, got true/false"),
        ({"country": {"a": 1}}, "query.country must be text or a list of texts, got an object"),
        ({"country": 5}, "query.country must be text or a list of texts, got a number"),
        ({"filter": ["path:contains:/a", 7]}, "query.filter must be text or a list"),
        ({"limit": 2.5}, "query.limit must be text, got a number"),
        ({"contry": "US"}, "query.contry is not a report argument"),
    ],
)
def test_inline_report_arguments_of_the_wrong_type_are_a_400(
    client: FlaskClient, site: Site, auth: dict, query: Any, reason: str
) -> None:
    res = _post(client, site, auth, "/funnel-report", _inline(query))
    assert res.status_code == 400, res.get_data(as_text=True)
    assert res.get_json()["error"] == "invalid_query"
    assert reason in res.get_json()["detail"]


def test_inline_report_arguments_of_the_right_types(
    client: FlaskClient, site: Site, auth: dict
) -> None:
    query = {
        "from": "2026-04-01", "to": "2026-04-10", "mode": "any", "window": 3600, "limit": 5,
        "country": ["US", "DE"], "filter": "path:contains:/", "breakdown": None,
    }  # fmt: skip
    res = _post(client, site, auth, "/funnel-report", _inline(query))
    assert res.status_code == 200, res.get_data(as_text=True)
    body = res.get_json()
    assert (body["mode"], body["window"]) == ("any", 3600)
    assert body["range"] == {"from": "2026-04-01", "to": "2026-04-10"}
    # The URL and the body may both give an argument if they agree; filters add up.
    url = f"/api/v1/sites/{site.key}/funnel-report?mode=any&filter=path:contains:/b"
    res = client.post(url, data=_inline(query), headers={**auth, **JSON})
    assert res.status_code == 200
    res = client.post(url.replace("any", "strict"), data=_inline(query), headers={**auth, **JSON})
    assert res.status_code == 400
    assert "query.mode is 'any' but the URL says mode='strict'" in res.get_json()["detail"]


@pytest.mark.parametrize(
    ("method", "path"),
    [("post", "/funnel-report"), ("get", "/funnels/{fid}/report"),
     ("get", "/funnels/{fid}/trends"), ("get", "/funnels/{fid}/persons"),
     ("get", "/persons/v1/journey"), ("get", "/funnels/{fid}/preview")],
)  # fmt: skip
def test_conflicting_repeats_of_one_valued_parameters_are_a_400(
    client: FlaskClient, store: Store, site: Site, auth: dict, method: str, path: str
) -> None:
    load(store, [{"site_id": site.key, "visitor_id": "v1", "type": "pageview",
                  "ts": datetime(2026, 4, 10, tzinfo=UTC)}])  # fmt: skip
    fid = client.get(f"/api/v1/sites/{site.key}/funnels", headers=auth).get_json()["funnels"][0]
    url = f"/api/v1/sites/{site.key}" + path.format(fid=fid["id"])
    body = {"data": _inline(None), "headers": {**auth, **JSON}}
    call = getattr(client, method)
    for query in ("mode=ordered&mode=strict", "mode=ordered&mode=bogus", "to=2026-04-10&to="):
        res = call(f"{url}?{query}&stage=trace&days=3&days=4", **body)
        assert res.status_code == 400, (query, res.get_data(as_text=True))
        assert res.get_json()["error"] == "invalid_query"
        assert "given 2 times" in res.get_json()["detail"]
    # The same value twice is no conflict; filters and shorthands repeat by design.
    query = "mode=strict&mode=strict&stage=trace&filter=path:contains:/&filter=path:contains:a"
    res = call(f"{url}?{query}&country=US&country=DE", **body)
    assert res.status_code == 200, res.get_data(as_text=True)


@pytest.mark.parametrize(
    ("person", "status", "error"),
    [("nosuch", 404, "not_found"), ("%20", 400, "invalid_person"), ("%00", 400, "invalid_person"),
     ("a%00b", 400, "invalid_person"), ("%09%20", 400, "invalid_person"),
     ("x" * 513, 400, "invalid_person")],
)  # fmt: skip
def test_journey_and_erasure_agree_on_unknown_and_invalid_ids(
    client: FlaskClient, store: Store, site: Site, auth: dict, person: str, status: int, error: str
) -> None:
    load(store, [{"site_id": site.key, "visitor_id": "v1", "type": "pageview",
                  "ts": datetime(2026, 4, 10, tzinfo=UTC)}])  # fmt: skip
    base = f"/api/v1/sites/{site.key}/persons/{person}"
    for res in (
        client.get(f"{base}/journey", headers=auth),
        client.get(f"{base}/journey?from=2026-04-01&to=2026-04-30", headers=auth),
        client.delete(f"{base}?dry_run=true", headers=auth),
    ):
        assert (res.status_code, res.get_json()["error"]) == (status, error)
    # A stored id answers, with or without spaces around it, as DELETE takes it.
    for given in ("v1", "%20v1%20"):
        res = client.get(f"/api/v1/sites/{site.key}/persons/{given}/journey", headers=auth)
        assert res.status_code == 200 and res.get_json()["person"] == "v1"


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("patch", "/api/v1/sites/{site}/funnels", {"GET", "POST"}),
        ("delete", "/api/v1/sites/{site}/funnel-report", {"POST"}),
        ("post", "/api/v1/sites/{site}/funnels/{fid}/report", {"GET"}),
        ("put", "/api/v1/sites/{site}/persons/v1", {"DELETE"}),
        ("get", "/api/collect", {"POST", "OPTIONS"}),
        ("put", "/api/openapi.json", {"GET"}),
    ],
)
def test_405_says_which_methods_are_allowed(
    client: FlaskClient, site: Site, auth: dict, method: str, path: str, allowed: set[str]
) -> None:
    fid = client.get(f"/api/v1/sites/{site.key}/funnels", headers=auth).get_json()["funnels"][0]
    res = getattr(client, method)(path.format(site=site.key, fid=fid["id"]), headers=auth)
    assert res.status_code == 405
    assert res.is_json and res.get_json()["error"] == "method_not_allowed"
    assert allowed <= {m.strip() for m in res.headers["Allow"].split(",")}


def test_204_has_no_content_type(client: FlaskClient, site: Site, auth: dict) -> None:
    created = _post(client, site, auth, "/funnels", VALID).get_json()
    res = client.delete(f"/api/v1/sites/{site.key}/funnels/{created['id']}", headers=auth)
    assert res.status_code == 204 and res.data == b""
    assert "Content-Type" not in res.headers


@pytest.mark.parametrize("body", ['{"definition": "x"}', "{}", '{"definition": {"stages": 3}}'])
def test_every_definition_error_says_where(
    client: FlaskClient, site: Site, auth: dict, body: str
) -> None:
    for path in ("/funnel-preview", "/funnel-report", "/funnels"):
        res = _post(client, site, auth, path, body)
        assert res.status_code == 400
        errors = res.get_json()["errors"]
        assert errors and all({"path", "where", "message"} <= set(e) for e in errors), errors


def test_openapi_lists_what_the_readme_describes(client: FlaskClient) -> None:
    paths = client.get("/api/openapi.json").get_json()["paths"]
    assert "422" in paths["/api/v1/sites/{site}/events:import"]["post"]["responses"]
    for path in (
        "/api/v1/sites/{site}/funnel-preview",
        "/api/v1/sites/{site}/funnels/{id}/preview",
    ):
        operation = next(iter(paths[path].values()))
        days = next(p for p in operation["parameters"] if p["name"] == "days")
        assert days["schema"]["maximum"] == 3660


@pytest.mark.parametrize(
    ("args", "status", "range_"),
    [
        # 1830 days counted inclusively is the limit; 1831 is over it.
        ({"from": "2020-01-01", "to": "2025-01-03"}, 200, ("2020-01-01", "2025-01-03")),
        ({"from": "2020-01-01", "to": "2025-01-04"}, 400, None),
        # A default `from` is clamped to the earliest date, as an explicit one must be.
        ({"to": "1970-01-05"}, 200, ("1970-01-01", "1970-01-05")),
        ({"from": "1969-12-07", "to": "1970-01-05"}, 400, None),
    ],
)
def test_range_limits(
    client: FlaskClient, site: Site, auth: dict, args: dict, status: int, range_: Any
) -> None:
    fid = client.get(f"/api/v1/sites/{site.key}/funnels", headers=auth).get_json()["funnels"][0]
    res = client.get(
        f"/api/v1/sites/{site.key}/funnels/{fid['id']}/report", query_string=args, headers=auth
    )
    assert res.status_code == status, res.get_data(as_text=True)
    if range_:
        assert tuple(res.get_json()["range"].values()) == range_
    else:
        assert res.get_json()["error"] == "invalid_query"


def test_preview_days_limit(client: FlaskClient, site: Site, auth: dict) -> None:
    fid = client.get(f"/api/v1/sites/{site.key}/funnels", headers=auth).get_json()["funnels"][0]
    base = f"/api/v1/sites/{site.key}/funnels/{fid['id']}/preview"
    assert client.get(f"{base}?days=3660", headers=auth).status_code == 200
    res = client.get(f"{base}?days=3661", headers=auth)
    assert res.status_code == 400 and "between 1 and 3660" in res.get_json()["detail"]
