"""API tokens that only read, and tokens with an end date: through the API, the CLI and the
dashboard's Settings."""

from __future__ import annotations

from datetime import timedelta

from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import select

from tracker import accounts
from tracker.cli import main
from tracker.configdb import db
from tracker.funnels import list_funnels
from tracker.models import ApiToken, Site, User, utcnow

EVENT = {"type": "pageview", "ts": "2026-03-01T10:00:00Z", "url": "https://example.test/"}


def bearer(plain: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {plain}"}


def test_a_read_only_token_reads_everything_and_changes_nothing(
    client: FlaskClient, site: Site, admin: User
) -> None:
    _, plain = accounts.create_token(db.session, admin, "bi tool", read_only=True)
    db.session.commit()
    auth = bearer(plain)
    funnel = list_funnels(db.session, site)[0]
    base = f"/api/v1/sites/{site.key}"
    definition = client.get(f"{base}/funnels/{funnel.id}", headers=auth).get_json()
    reads = [
        client.get(f"{base}/funnels", headers=auth),
        client.get(f"{base}/funnels/{funnel.id}/report", headers=auth),
        client.get(f"{base}/funnels/{funnel.id}/report.csv", headers=auth),
        client.get(f"{base}/funnels/{funnel.id}/trends", headers=auth),
        client.get(f"{base}/funnels/{funnel.id}/persons?stage=trace&status=reached", headers=auth),
        client.post(f"{base}/funnel-report", json=definition, headers=auth),
        client.post(f"{base}/funnel-preview", json=definition, headers=auth),
    ]
    assert [r.status_code for r in reads] == [200] * len(reads)
    writes = [
        client.post(f"{base}/funnels", json={**definition, "name": "New"}, headers=auth),
        client.put(f"{base}/funnels/{funnel.id}", json={**definition, "name": "X"}, headers=auth),
        client.post(f"{base}/funnels/{funnel.id}/duplicate", headers=auth),
        client.delete(f"{base}/funnels/{funnel.id}", headers=auth),
        client.post(f"{base}/events:import", json=[EVENT], headers=auth),
        client.delete(f"{base}/persons/someone", headers=auth),
    ]
    for response in writes:
        assert response.status_code == 403, response.request.path
        assert response.get_json()["error"] == "read_only_token"
    assert [f.name for f in list_funnels(db.session, site)] == [funnel.name]


def test_an_expired_token_is_refused_and_says_so(
    client: FlaskClient, site: Site, admin: User
) -> None:
    token, plain = accounts.create_token(db.session, admin, "week", expires_in_days=7)
    db.session.commit()
    assert client.get("/api/v1/sites", headers=bearer(plain)).status_code == 200
    token.expires_at = utcnow() - timedelta(seconds=1)
    db.session.commit()
    refused = client.get("/api/v1/sites", headers=bearer(plain))
    assert refused.status_code == 401
    assert refused.get_json()["error"] == "token_expired"
    assert "expired at" in refused.get_json()["detail"]


def test_the_cli_makes_read_only_and_expiring_tokens(
    runner: FlaskCliRunner, client: FlaskClient, site: Site, admin: User
) -> None:
    made = runner.invoke(
        main,
        ["create-token", "--email", admin.email, "--read-only", "--expires-days", "30"],
    )
    assert made.exit_code == 0, made.output
    plain = made.output.strip()
    token = db.session.scalar(select(ApiToken).where(ApiToken.prefix == plain[:10]))
    assert token is not None and token.read_only and token.expires_at is not None
    assert timedelta(days=29) < token.expires_at - utcnow() <= timedelta(days=30)
    assert client.get("/api/v1/sites", headers=bearer(plain)).status_code == 200
    bad = runner.invoke(main, ["create-token", "--email", admin.email, "--expires-days", "0"])
    assert bad.exit_code != 0 and "Traceback" not in bad.output


def test_settings_create_read_only_expiring_tokens(client: FlaskClient, admin: User) -> None:
    client.post("/login", data={"email": admin.email, "password": "admin-pass-123"})
    page = client.post(
        "/settings/tokens", data={"name": "dash", "read_only": "yes", "expires_days": "90"}
    ).get_data(as_text=True)
    assert "read only" in page and 'id="new-token"' in page
    token = db.session.scalar(select(ApiToken).where(ApiToken.name == "dash"))
    assert token is not None and token.read_only
    assert token.expires_at is not None
    assert timedelta(days=89) < token.expires_at - utcnow() <= timedelta(days=90)
    for days in ("soon", "0", "99999"):
        refused = client.post("/settings/tokens", data={"name": "x", "expires_days": days})
        assert refused.status_code == 422, days
    full = client.post("/settings/tokens", data={"name": "full"})
    assert full.status_code == 200 and "read and change" in full.get_data(as_text=True)
