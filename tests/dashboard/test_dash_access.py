"""Each user sees only the sites they are members of; admin pages are for admins."""

from __future__ import annotations

import gzip
import uuid

import pytest
from dash_helpers import PASSWORD, insert_events, journey_events, login
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from tracker import accounts
from tracker.clickhouse import Store
from tracker.configdb import db
from tracker.funnels import funnel_to_dict, list_funnels
from tracker.models import ApiToken, Site, User


@pytest.fixture
def other_site(app: Flask) -> Site:
    owner = accounts.create_user(db.session, "other@test.example", PASSWORD)
    site = accounts.create_site(
        db.session, "Not yours", [], owner=owner, key=f"o{uuid.uuid4().hex[:12]}"
    )
    db.session.commit()
    return site


def _site_urls(site: Site) -> list[str]:
    funnel_id = list_funnels(db.session, site)[0].id
    return [
        f"/sites/{site.key}/report",
        f"/sites/{site.key}/report.csv",
        f"/sites/{site.key}/setup",
        f"/sites/{site.key}/events/recent.json",
        f"/sites/{site.key}/events.ndjson.gz",
        f"/sites/{site.key}/links",
        f"/sites/{site.key}/funnels",
        f"/sites/{site.key}/funnels/{funnel_id}/edit",
        f"/sites/{site.key}/funnels/{funnel_id}/summary",
        f"/sites/{site.key}/persons?stage=trace&status=dropped",
        f"/sites/{site.key}/persons/someone",
        f"/sites/{site.key}/values/campaign.json",
    ]


def test_another_users_site_is_not_found(
    logged_in: FlaskClient, my_site: Site, other_site: Site
) -> None:
    for url in _site_urls(other_site):
        response = logged_in.get(url)
        assert response.status_code == 404, url
        assert b"Not yours" not in response.data
    assert logged_in.get(f"/sites/{other_site.key}").status_code == 404  # no redirect either
    for url, data in (
        (f"/sites/{other_site.key}/settings", {"name": "Taken", "timezone": "UTC"}),
        (f"/sites/{other_site.key}/links", {"target_url": "https://x.example/"}),
        (f"/sites/{other_site.key}/funnels", {}),
    ):
        assert logged_in.post(url, data=data).status_code == 404, url
    assert db.session.get(Site, other_site.id).name == "Not yours"  # type: ignore[union-attr]
    # The site list and switcher show only the user's own site.
    page = logged_in.get("/sites").data
    assert b"Marketer site" in page
    assert b"Not yours" not in page


def test_another_sites_funnel_id_is_not_found_under_ones_own_site(
    logged_in: FlaskClient, my_site: Site, other_site: Site
) -> None:
    """A funnel is the site's: the other site's funnel id under one's own site key is a 404
    on every page that takes a funnel id, and that funnel is as it was (kills the mutation
    that finds a funnel by its id alone in `get_funnel`)."""
    own = list_funnels(db.session, my_site)[0].id
    theirs = list_funnels(db.session, other_site)[0]
    before = funnel_to_dict(theirs)
    base = f"/sites/{my_site.key}"
    drill = "&stage=trace&status=dropped"
    gets = [
        "/report?funnel={fid}",
        "/report/trends?funnel={fid}",
        "/report/pipeline?funnel={fid}",
        "/report.csv?funnel={fid}",
        "/trends.csv?funnel={fid}",
        "/persons?funnel={fid}" + drill,
        "/exits?funnel={fid}" + drill,
        "/persons.csv?funnel={fid}" + drill,
        "/persons/someone?funnel={fid}",
        "/funnels/{fid}",
        "/funnels/{fid}/edit",
        "/funnels/{fid}/summary",
    ]
    for path in gets:
        assert logged_in.get(base + path.format(fid=own)).status_code in (200, 302), path
        response = logged_in.get(base + path.format(fid=theirs.id))
        assert response.status_code == 404, path
        assert b"Not yours" not in response.data, path
    save = {
        "action": "save",
        "name": "Taken over",
        "mode": "ordered",
        "window": "7d",
        "stages-0-key": "x",
        "stages-0-name": "X",
        "stages-0-rules-0-type": "pageview",
    }
    for path, data in (
        ("/funnels/{fid}/edit", save),
        ("/funnels/{fid}/edit", {"action": "add_stage"}),
        ("/funnels/{fid}/duplicate", {}),
        ("/funnels/{fid}/delete", {}),
    ):
        response = logged_in.post(base + path.format(fid=theirs.id), data=data)
        assert response.status_code == 404, path
    db.session.expire_all()
    assert [f.id for f in list_funnels(db.session, other_site)] == [theirs.id]
    assert funnel_to_dict(list_funnels(db.session, other_site)[0]) == before
    assert [f.id for f in list_funnels(db.session, my_site)] == [own]  # no copy made here


def test_own_site_pages_open(
    logged_in: FlaskClient, my_site: Site, other_site: Site, store: Store
) -> None:
    """Each page of one's own site opens and is that site's: its name on every page, its
    events in every export and feed, and nothing of the other site's (name, key, data)."""
    for site, name in ((my_site, "mine"), (other_site, "xtheirs")):
        visitor = {"id": f"{name}-1", "campaign": f"{name}-camp", "depth": 4}
        insert_events(store, journey_events(site.key, [visitor]))
    own_data = {
        "/report.csv": b"\r\nall,trace,Trace,1,",
        "/events/recent.json": b'"campaign":"mine-camp"',
        "/events.ndjson.gz": b'"visitor":"mine-1"',
        "/summary": b"<strong data-summary-persons>1</strong>",
        "/values/campaign.json": b'{"persons":1,"value":"mine-camp"}',
    }
    for url in _site_urls(my_site):
        if "persons/someone" in url:
            continue
        response = logged_in.get(url)
        assert response.status_code == 200, url
        body = response.data
        if response.mimetype == "application/gzip":
            body = gzip.decompress(body)
        path = url.removeprefix(f"/sites/{my_site.key}")
        marker = next((m for end, m in own_data.items() if path.endswith(end)), None)
        if marker is not None:
            assert marker in body, url
        else:  # a whole page: it names the site
            assert response.mimetype == "text/html", url
            assert b"Marketer site" in body, url
        for theirs in (b"Not yours", other_site.key.encode(), b"xtheirs"):
            assert theirs not in body, (url, theirs)


def test_admin_sees_every_site(
    client: FlaskClient, admin: User, my_site: Site, other_site: Site
) -> None:
    login(client, admin.email, "admin-pass-123")
    page = client.get("/sites").data
    assert b"Marketer site" in page and b"Not yours" in page
    assert client.get(f"/sites/{other_site.key}/report").status_code == 200


def test_marketer_cannot_manage_users(logged_in: FlaskClient) -> None:
    response = logged_in.post(
        "/settings/users", data={"email": "new@test.example", "password": PASSWORD}
    )
    assert response.status_code == 403
    assert accounts.user_by_email(db.session, "new@test.example") is None
    assert b'id="users"' not in logged_in.get("/settings").data


def test_admin_creates_a_user_with_membership(
    client: FlaskClient, admin: User, my_site: Site
) -> None:
    login(client, admin.email, "admin-pass-123")
    response = client.post(
        "/settings/users",
        data={
            "email": "fresh@test.example",
            "password": PASSWORD,
            "role": "marketer",
            "sites": [my_site.key],
        },
    )
    assert response.status_code == 302
    user = accounts.user_by_email(db.session, "fresh@test.example")
    assert user is not None
    assert accounts.can_access(db.session, user, my_site)
    bad = client.post("/settings/users", data={"email": "not-an-email", "password": "x"})
    assert bad.status_code == 422
    assert b"not a valid email address" in bad.data
    # The safer role is preselected for a new user, and only non-admins are offered sites
    # (an admin sees all of them already).
    page = client.get("/settings").data.decode()
    assert '<option value="marketer" selected>' in page
    assert '<option value="admin" selected>' not in page
    assert f'for="add-site-{user.id}"' in page and f'for="add-site-{admin.id}"' not in page


def test_tokens_are_shown_once_and_can_be_revoked(logged_in: FlaskClient) -> None:
    response = logged_in.post("/settings/tokens", data={"name": "export"})
    assert response.status_code == 200
    html = response.data.decode()
    start = html.index('id="new-token">') + len('id="new-token">')
    plain = html[start : html.index("<", start)]
    assert plain.startswith(accounts.TOKEN_PREFIX)
    assert accounts.user_for_token(db.session, plain) is not None
    again = logged_in.get("/settings").data.decode()
    assert plain not in again
    assert 'href="/api/openapi.json">OpenAPI document</a>' in again  # what the token opens
    token_id = db.session.scalars(select(ApiToken)).one().id
    assert logged_in.post(f"/settings/tokens/{token_id}/revoke").status_code == 302
    assert accounts.user_for_token(db.session, plain) is None


def test_settings_show_geoip_status(logged_in: FlaskClient) -> None:
    page = logged_in.get("/settings").data
    assert b"No GeoIP database configured" in page
