"""The /api/v1 funnel definition resources: CRUD, validation errors, access."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient

from tests.stages.conftest import load
from tracker import accounts
from tracker.app import digits_up_to
from tracker.clickhouse import Store
from tracker.configdb import db
from tracker.funnels import funnel_to_dict, list_funnels
from tracker.models import Funnel, Site, User

VALID = {
    "name": "Newsletter",
    "mode": "strict",
    "window": "7d",
    "stages": [
        {"key": "visit", "name": "Visit", "rules": [{"type": "pageview"}]},
        {
            "key": "subscribe",
            "name": "Subscribe",
            "rules": [
                {
                    "type": "click",
                    "conditions": [{"field": "element text", "op": "contains", "value": "Sub"}],
                }
            ],
        },
    ],
}


def test_new_site_has_the_template(client: FlaskClient, site: Site, auth: dict) -> None:
    res = client.get(f"/api/v1/sites/{site.key}/funnels", headers=auth)
    assert res.status_code == 200
    funnels = res.get_json()["funnels"]
    assert len(funnels) == 1
    assert [s["key"] for s in funnels[0]["stages"]] == ["trace", "response", "engagement", "sale"]
    assert funnels[0]["engagement_stage"] == "engagement"
    assert funnels[0]["window"] == 30 * 86400


def test_crud_round_trip(client: FlaskClient, site: Site, auth: dict) -> None:
    base = f"/api/v1/sites/{site.key}/funnels"
    res = client.post(base, json=VALID, headers=auth)
    assert res.status_code == 201, res.get_json()
    created = res.get_json()
    fid = created["id"]
    assert created["mode"] == "strict" and created["window"] == 604800
    assert created["stages"][1]["rules"][0]["conditions"][0]["field"] == "element_text"
    assert created["stages"][1]["description"].startswith("A click where element text contains")

    assert client.get(f"{base}/{fid}", headers=auth).get_json()["name"] == "Newsletter"
    edited = dict(
        VALID,
        name="Renamed",
        stages=[*VALID["stages"], {"key": "done", "rules": [{"type": "event", "name": "x"}]}],
    )
    res = client.put(f"{base}/{fid}", json=edited, headers=auth)
    assert res.status_code == 200
    assert [s["key"] for s in res.get_json()["stages"]] == ["visit", "subscribe", "done"]
    assert res.get_json()["name"] == "Renamed"

    assert client.delete(f"{base}/{fid}", headers=auth).status_code == 204
    assert client.get(f"{base}/{fid}", headers=auth).status_code == 404
    # The deleted funnel was the newest: its id is not handed to the next one, so a stale
    # client's DELETE or a bookmark cannot reach the new funnel.
    again = client.post(base, json=VALID, headers=auth).get_json()["id"]
    assert again > fid
    assert client.delete(f"{base}/{fid}", headers=auth).status_code == 404


def test_duplicate_copies_the_definition_and_leaves_the_original(
    client: FlaskClient, site: Site, auth: dict
) -> None:
    base = f"/api/v1/sites/{site.key}/funnels"
    original = client.post(base, json=dict(VALID, name="N" * 200), headers=auth).get_json()
    res = client.post(f"{base}/{original['id']}/duplicate", headers=auth)
    assert res.status_code == 201
    copy = res.get_json()
    assert copy["id"] != original["id"]
    assert copy["name"] == "N" * 193 + " (copy)"  # still within the 200-character limit
    same = ("mode", "window", "engagement_stage", "stages")
    assert {k: copy[k] for k in same} == {k: original[k] for k in same}
    # Editing the copy leaves the original as it was.
    client.put(f"{base}/{copy['id']}", json=dict(VALID, mode="any"), headers=auth)
    assert client.get(f"{base}/{original['id']}", headers=auth).get_json()["mode"] == "strict"
    assert client.post(f"{base}/999999/duplicate", headers=auth).status_code == 404
    assert client.post(f"{base}/{original['id']}/duplicate").status_code == 401


def test_bad_rule_is_a_400_with_a_reason(client: FlaskClient, site: Site, auth: dict) -> None:
    bad = {
        "stages": [
            VALID["stages"][0],
            {
                "key": "x",
                "rules": [
                    {
                        "type": "click",
                        "conditions": [{"field": "secret", "op": "equals", "value": 1}],
                    }
                ],
            },
        ]
    }
    res = client.post(f"/api/v1/sites/{site.key}/funnels", json=bad, headers=auth)
    assert res.status_code == 400
    body = res.get_json()
    assert body["error"] == "invalid_definition"
    assert "unknown field 'secret'" in body["detail"]
    assert body["errors"][0]["path"] == "stages.1.rules.0.conditions.0.field"
    res = client.post(f"/api/v1/sites/{site.key}/funnels", data="nope", headers=auth)
    assert res.status_code == 400


HUGE = "9" * 400


@pytest.mark.parametrize(
    ("method", "path", "body", "error"),
    [
        # Numbers beyond float range, infinities, NaN: a 400 naming the problem, no overflow.
        ("get", "/funnels/{fid}/report?window=" + HUGE, None, "invalid_query"),
        ("get", "/funnels/{fid}/trends?window=" + HUGE + "d", None, "invalid_query"),
        ("post", "/funnels", '{"window": Infinity, "stages": []}', "invalid_definition"),
        ("post", "/funnels", '{"window": 1e400, "stages": []}', "invalid_definition"),
        ("post", "/funnels", '{"window": NaN, "stages": []}', "invalid_definition"),
        ("post", "/funnels", '{"window": ' + HUGE + ', "stages": []}', "invalid_definition"),
        (
            "post",
            "/funnels",
            '{"stages": [{"key": "a", "rules": [{"type": "any"}]}, {"key": "b", "rules": '
            '[{"type": "any", "conditions": [{"field": "value", "op": "gt", "value": '
            + HUGE
            + "}]}]}]}",
            "invalid_definition",
        ),
        ("post", "/funnels", "[" * 100_000 + "]" * 100_000, "invalid_json"),
        ("post", "/funnel-report", '{"a": ' * 5000 + "1" + "}" * 5000, "invalid_json"),
        # Not ASCII digits: "²".isdigit() is true, but it is no id.
        ("get", "/persons/abc/journey?funnel=%C2%B2", None, "invalid_query"),
        (
            "get",
            "/funnels/{fid}/persons?stage=trace&page=18446744073709551617",
            None,
            "invalid_query",
        ),
    ],
)
def test_extreme_input_is_a_400_not_a_crash(
    client: FlaskClient,
    site: Site,
    auth: dict,
    method: str,
    path: str,
    body: str | None,
    error: str,
) -> None:
    fid = client.get(f"/api/v1/sites/{site.key}/funnels", headers=auth).get_json()["funnels"][0]
    url = f"/api/v1/sites/{site.key}" + path.format(fid=fid["id"])
    headers = {**auth, "Content-Type": "application/json"}
    res = getattr(client, method)(url, data=body, headers=headers)
    assert (res.status_code, res.get_json()["error"]) == (400, error), res.get_json()


def test_auth_and_site_access(client: FlaskClient, site: Site, auth: dict) -> None:
    assert client.get(f"/api/v1/sites/{site.key}/funnels").status_code == 401
    assert client.get("/api/v1/sites/nosuchsite/funnels", headers=auth).status_code == 404
    assert client.get(f"/api/v1/sites/{site.key}/funnels/99999", headers=auth).status_code == 404


def test_another_sites_funnel_id_is_not_found_under_ones_own_site(
    client: FlaskClient, store: Store, site: Site, admin: User
) -> None:
    """A funnel is addressed by (site, id): user A, a member of site A only, naming site B's
    funnel id under site A's key gets a 404 on every funnel resource, and B's funnel is as it
    was. (Kills the mutation that finds a funnel by its id alone in `get_funnel`.)"""
    site_b = site  # the admin's; user A is no member of it
    user_a = accounts.create_user(db.session, "a@test.example", "member-pass-123")
    site_a = accounts.create_site(db.session, "Site A", owner=user_a, key=f"a{site_b.key}")
    _, plain = accounts.create_token(db.session, user_a, "script")
    db.session.commit()
    auth_a = {"Authorization": f"Bearer {plain}"}
    theirs = list_funnels(db.session, site_b)[0]
    before = funnel_to_dict(theirs)
    own_id = list_funnels(db.session, site_a)[0].id
    assert own_id != theirs.id
    # An event of a person of site A, so the journey would answer if the funnel were found.
    now = datetime.now(UTC) - timedelta(hours=1)
    load(store, [{"site_id": site_a.key, "visitor_id": "pa", "type": "pageview", "ts": now,
                  "event_id": uuid.uuid4(), "path": "/"}])  # fmt: skip
    base = f"/api/v1/sites/{site_a.key}"
    stage = "?stage={stage}"  # A's funnel becomes VALID (PUT), B's is the template
    for method, path in [
        ("put", "/funnels/{fid}"),
        ("get", "/funnels/{fid}"),
        ("delete", "/funnels/{fid}"),
        ("post", "/funnels/{fid}/duplicate"),
        ("get", "/funnels/{fid}/report"),
        ("get", "/funnels/{fid}/report.csv"),
        ("get", "/funnels/{fid}/trends"),
        ("get", "/funnels/{fid}/trends.csv"),
        ("get", "/funnels/{fid}/pipeline"),
        ("get", "/funnels/{fid}/exits" + stage),
        ("get", "/funnels/{fid}/persons" + stage),
        ("get", "/funnels/{fid}/persons.csv" + stage),
        ("get", "/funnels/{fid}/preview"),
        ("get", "/persons/pa/journey?funnel={fid}"),
    ]:
        # The same request on A's own funnel answers: only the site of the id differs.
        own = getattr(client, method)(
            base + path.format(fid=own_id, stage="visit"),
            headers=auth_a,
            json=VALID if method == "put" else None,
        )
        assert own.status_code < 300, (method, path, own.status_code)
        if method == "delete":  # keep one funnel of A's for the next requests
            own_id = client.post(f"{base}/funnels", json=VALID, headers=auth_a).get_json()["id"]
        res = getattr(client, method)(
            base + path.format(fid=theirs.id, stage="trace"),
            headers=auth_a,
            json=dict(VALID, name="Taken over") if method == "put" else None,
        )
        assert res.status_code == 404, (method, path, res.status_code)
        assert res.get_json()["error"] == "not_found", (method, path)
    db.session.expire_all()
    kept = db.session.get(Funnel, theirs.id)
    assert kept is not None and kept.site_id == site_b.id
    assert funnel_to_dict(kept) == before
    assert [f.id for f in list_funnels(db.session, site_b)] == [theirs.id]  # no copy made


def test_a_deactivated_users_token_is_refused(client: FlaskClient, site: Site) -> None:
    """Deactivating a user ends their API tokens too; activating them again restores them
    (kills the mutation that drops `not token.user.active` in `user_for_token`)."""
    user = accounts.create_user(db.session, "leaver@test.example", "member-pass-123")
    accounts.add_member(db.session, user, site)
    _, plain = accounts.create_token(db.session, user, "script")
    db.session.commit()
    headers = {"Authorization": f"Bearer {plain}"}
    url = f"/api/v1/sites/{site.key}/funnels"
    assert client.get(url, headers=headers).status_code == 200
    user.active = False
    db.session.commit()
    for res in (client.get(url, headers=headers), client.get("/api/v1/sites", headers=headers)):
        assert res.status_code == 401
        assert res.get_json()["error"] == "unauthorized"
    assert client.post(url, json=VALID, headers=headers).status_code == 401
    assert [f.name for f in list_funnels(db.session, site)] == ["Trace to sale"]
    user.active = True
    db.session.commit()
    assert client.get(url, headers=headers).status_code == 200


@pytest.mark.parametrize("scheme", ["Token", "Basic", "Bearer:", "Bearerx", ""])
def test_only_the_bearer_scheme_carries_a_token(
    client: FlaskClient, site: Site, token: str, scheme: str
) -> None:
    """A valid token under any scheme but Bearer is a 401 (kills the mutation that drops
    the scheme check in `require_token`); the scheme's case does not matter."""
    url = f"/api/v1/sites/{site.key}/funnels"
    res = client.get(url, headers={"Authorization": f"{scheme} {token}"})
    assert res.status_code == 401
    assert res.get_json()["error"] == "unauthorized"
    for good in ("Bearer", "bearer", "BEARER"):
        assert client.get(url, headers={"Authorization": f"{good} {token}"}).status_code == 200


@pytest.mark.parametrize("funnel_id", ["0", "007", "2147483648", "99999999999999999999999"])
@pytest.mark.parametrize(
    ("method", "suffix"),
    [("get", ""), ("get", "/report"), ("get", "/persons.csv"), ("put", ""), ("delete", ""),
     ("post", "/duplicate")],
)  # fmt: skip
def test_out_of_range_ids_are_a_json_404(
    client: FlaskClient, site: Site, auth: dict, funnel_id: str, method: str, suffix: str
) -> None:
    # Beyond the config store's INTEGER key: a 404, not an overflow inside the database driver,
    # and for every method (werkzeug checks methods before converters: this was a 405 on PUT).
    url = f"/api/v1/sites/{site.key}/funnels/{funnel_id}{suffix}"
    res = getattr(client, method)(url, headers=auth, json=VALID if method == "put" else None)
    assert res.status_code == 404
    assert res.get_json()["error"] == "not_found"


@pytest.mark.parametrize("limit", [1, 9, 10, 57, 100, 999, 3000, 2**31 - 1])
def test_row_id_pattern_matches_exactly_one_to_the_limit(limit: int) -> None:
    pattern = re.compile(digits_up_to(limit) + r"\Z")
    candidates = {*range(0, min(limit, 4000) + 30), limit - 1, limit, limit + 1, 10 * limit}
    for n in candidates:
        assert bool(pattern.match(str(n))) == (1 <= n <= limit), n
    assert not pattern.match("0" + str(limit)) and not pattern.match("-1")


@pytest.mark.parametrize(
    ("method", "path", "status", "error"),
    [
        ("get", "/api/v1/nothing-here", 404, "not_found"),
        ("get", "/api/v1/sites/x/funnels/abc", 404, "not_found"),
        ("patch", "/api/v1/sites/x/funnels", 405, "method_not_allowed"),
    ],
)
def test_unrouted_api_urls_answer_json(
    client: FlaskClient, method: str, path: str, status: int, error: str
) -> None:
    res = getattr(client, method)(path)
    assert res.status_code == status
    assert res.is_json and res.get_json()["error"] == error
