"""The /api/v1 funnel definition resources: CRUD, validation errors, access."""

from __future__ import annotations

from flask.testing import FlaskClient

from tracker.models import Site

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


def test_auth_and_site_access(client: FlaskClient, site: Site, auth: dict) -> None:
    assert client.get(f"/api/v1/sites/{site.key}/funnels").status_code == 401
    assert client.get("/api/v1/sites/nosuchsite/funnels", headers=auth).status_code == 404
    assert client.get(f"/api/v1/sites/{site.key}/funnels/99999", headers=auth).status_code == 404
