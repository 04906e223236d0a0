"""/api/v1/sites: the sites a token may read, and one site's settings and funnels."""

from __future__ import annotations

from flask.testing import FlaskClient

from tracker import accounts
from tracker.configdb import db
from tracker.models import Site, User


def _member_with_token(email: str) -> tuple[User, dict[str, str]]:
    user = accounts.create_user(db.session, email, "member-pass-123")
    _, plain = accounts.create_token(db.session, user, "script")
    db.session.commit()
    return user, {"Authorization": f"Bearer {plain}"}


def test_sites_list_what_the_token_may_read(client: FlaskClient, site: Site, auth: dict) -> None:
    other = accounts.create_site(db.session, "Other shop", ["other.example"], currency="EUR")
    db.session.commit()
    # The admin's token: every site, by name, each with its funnels (the template here).
    listed = client.get("/api/v1/sites", headers=auth).get_json()["sites"]
    assert [s["key"] for s in listed] == [other.key, site.key]  # "Other shop" < "Test site"
    mine = listed[1]
    assert mine["name"] == "Test site" and mine["timezone"] == "UTC"
    assert mine["domains"] == ["example.test", "localhost", "127.0.0.1"]
    assert mine["currency"] is None and mine["retention_days"] is None
    assert [f["name"] for f in mine["funnels"]] == ["Trace to sale"]
    assert listed[0]["currency"] == "EUR"
    one = client.get(f"/api/v1/sites/{site.key}", headers=auth).get_json()
    assert one == mine
    funnel_id = mine["funnels"][0]["id"]
    got = client.get(f"/api/v1/sites/{site.key}/funnels/{funnel_id}", headers=auth)
    assert got.status_code == 200  # the ids address the funnel resources

    # A member's token: only the sites they belong to; the others do not exist for it.
    user, member = _member_with_token("member@test.example")
    assert client.get("/api/v1/sites", headers=member).get_json() == {"sites": []}
    accounts.add_member(db.session, user, other)
    db.session.commit()
    listed = client.get("/api/v1/sites", headers=member).get_json()["sites"]
    assert [s["key"] for s in listed] == [other.key]
    hidden = client.get(f"/api/v1/sites/{site.key}", headers=member)
    assert hidden.status_code == 404 and hidden.get_json()["error"] == "not_found"
    assert client.get("/api/v1/sites").status_code == 401
    assert client.get("/api/v1/sites/nosuchsite", headers=auth).status_code == 404
