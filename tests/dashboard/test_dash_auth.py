"""Login, logout, rate limit, session rotation, safe redirects, security headers, CSRF."""

from __future__ import annotations

import hashlib
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from dash_helpers import PASSWORD, csrf_token_from, login
from flask import Flask
from flask.testing import FlaskClient
from itsdangerous import URLSafeTimedSerializer
from sqlalchemy import func, select, update

from tracker import accounts, create_app
from tracker.app import MAX_FORM_BODY_BYTES
from tracker.configdb import db, upgrade
from tracker.models import LoginFailure, LoginSession, Site, User, utcnow


def test_pages_need_login(client: FlaskClient) -> None:
    response = client.get("/settings")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/settings")


def test_json_endpoints_answer_401_without_login(client: FlaskClient) -> None:
    response = client.get("/sites/whatever/events/recent.json")
    assert response.status_code == 401
    assert response.get_json()["error"] == "unauthorized"


def test_login_wrong_password_is_rejected(client: FlaskClient, marketer: User) -> None:
    response = login(client, marketer.email, "not-the-password")
    assert response.status_code == 401
    assert b"Wrong email or password" in response.data
    assert client.get("/settings").status_code == 302


def test_login_redirects_only_to_local_next(client: FlaskClient, marketer: User) -> None:
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        response = client.post(
            "/login", data={"email": marketer.email, "password": PASSWORD, "next": target}
        )
        assert response.status_code == 302
        assert response.headers["Location"] == "/", target
    response = client.post(
        "/login", data={"email": marketer.email, "password": PASSWORD, "next": "/settings"}
    )
    assert response.headers["Location"] == "/settings"


def test_login_rotates_the_session(client: FlaskClient, marketer: User) -> None:
    with client.session_transaction() as sess:
        sess["planted"] = "by an attacker"
    login(client, marketer.email)
    with client.session_transaction() as sess:
        assert "planted" not in sess
        assert sess["_user_id"].startswith(f"{marketer.id}:")


def test_password_change_ends_other_sessions(
    app: Flask, client: FlaskClient, marketer: User
) -> None:
    login(client, marketer.email)
    assert client.get("/settings").status_code == 200
    user = db.session.get(User, marketer.id)
    assert user is not None
    accounts.set_password(user, "another-password-1")
    db.session.commit()
    assert client.get("/settings").status_code == 302


def test_login_rate_limit(app: Flask, client: FlaskClient, marketer: User) -> None:
    limit = app.config["DASHBOARD_LOGIN_MAX_FAILURES"]
    for _ in range(limit):
        assert login(client, marketer.email, "wrong-password").status_code == 401
    response = login(client, marketer.email, PASSWORD)  # even the right password waits
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0


def test_an_unknown_email_costs_one_password_check_like_a_known_one(
    app: Flask, marketer: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Response time must not tell which emails have accounts: both paths run scrypt once."""
    calls = []
    real_scrypt = hashlib.scrypt

    def counting_scrypt(*args: Any, **kwargs: Any) -> bytes:
        calls.append(1)
        return real_scrypt(*args, **kwargs)

    accounts.authenticate(db.session, "nobody@test.example", "a-password")  # the dummy is made
    monkeypatch.setattr(hashlib, "scrypt", counting_scrypt)
    costs = {}
    for email in (marketer.email, "nobody@test.example", "someone-else@test.example"):
        calls.clear()
        assert accounts.authenticate(db.session, email, "wrong-password") is None
        costs[email] = len(calls)
    assert set(costs.values()) == {1}, costs


def test_login_limit_behind_a_proxy_takes_the_address_the_proxy_saw(
    app: Flask, marketer: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With one trusted proxy, only the hop it appended names the client: hops the client
    wrote itself (a new one per guess) must not give each guess a fresh limit."""
    monkeypatch.setenv("FUNNEL_TRUSTED_PROXIES", "1")
    proxied = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False}).test_client()
    limit = app.config["DASHBOARD_LOGIN_MAX_FAILURES"]
    statuses = []
    for attempt in range(limit + 3):
        response = proxied.post(
            "/login",
            data={"email": f"guess{attempt}@test.example", "password": "wrong-password"},
            headers={"X-Forwarded-For": f"198.51.100.{attempt}, 203.0.113.7"},
        )
        statuses.append(response.status_code)
    assert statuses == [401] * limit + [429] * 3
    # Another client behind the same proxy is not held up by that one.
    other = proxied.post(
        "/login",
        data={"email": marketer.email, "password": PASSWORD},
        headers={"X-Forwarded-For": "203.0.113.8"},
    )
    assert other.status_code == 302


def test_guessing_an_email_elsewhere_does_not_lock_out_its_owners_browser(
    app: Flask, marketer: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The email's limit holds up browsers that never logged in as it, not the owner's."""
    monkeypatch.setenv("FUNNEL_TRUSTED_PROXIES", "1")
    proxied = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False})
    owner, attacker, new_laptop = (proxied.test_client() for _ in range(3))

    def attempt(client: FlaskClient, address: str, password: str) -> int:
        response = client.post(
            "/login",
            data={"email": marketer.email, "password": password},
            headers={"X-Forwarded-For": address},
        )
        return int(response.status_code)

    assert attempt(owner, "203.0.113.8", PASSWORD) == 302
    device = owner.get_cookie("funnel_device")
    assert device is not None and device.http_only and marketer.email not in device.value
    owner.post("/logout", headers={"X-Forwarded-For": "203.0.113.8"})
    limit = app.config["DASHBOARD_LOGIN_MAX_FAILURES"]
    guesses = [attempt(attacker, f"198.51.100.{i % 3}", "wrong-password") for i in range(limit)]
    assert guesses == [401] * limit
    assert attempt(attacker, "198.51.100.9", PASSWORD) == 429  # the email is locked for them
    assert attempt(new_laptop, "192.0.2.4", PASSWORD) == 429  # and for any unknown browser
    assert attempt(owner, "203.0.113.8", PASSWORD) == 302  # not for the owner's browser
    # A device cookie signed with another key (another instance, a forgery) counts for nothing.
    digest = device.value.split(".")[0]
    forged = URLSafeTimedSerializer("another-key", salt="login-device").dumps([digest])
    attacker.set_cookie("funnel_device", forged)
    assert attempt(attacker, "198.51.100.10", PASSWORD) == 429


def test_parallel_guesses_get_no_more_password_checks_than_the_limit(
    app: Flask, marketer: User
) -> None:
    """Guesses sent at once (threads of one server, as gunicorn's gthread runs them) must not
    all pass the limit's check during the password checks before any of them is counted."""
    limit = app.config["DASHBOARD_LOGIN_MAX_FAILURES"]

    def guess(_: int) -> int:
        with app.app_context():
            status = login(app.test_client(), marketer.email, "wrong-password").status_code
            db.remove()
        return int(status)

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(guess, range(3 * limit)))
    assert set(statuses) <= {401, 429}
    assert statuses.count(401) <= limit
    assert statuses.count(429) >= 2 * limit


def test_login_limit_is_shared_by_every_serving_process(
    app: Flask, client: FlaskClient, marketer: User
) -> None:
    """Two apps on one config database stand for two gunicorn workers (or hosts): guesses
    spread over both still meet one limit, and the table keeps neither email nor address."""
    other_app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": False})
    other = other_app.test_client()
    limit = app.config["DASHBOARD_LOGIN_MAX_FAILURES"]
    for attempt in range(limit):
        target = client if attempt % 2 else other
        assert login(target, marketer.email, "wrong-password").status_code == 401
    assert login(client, marketer.email, PASSWORD).status_code == 429
    assert login(other, marketer.email, PASSWORD).status_code == 429
    keys = [row.key for row in db.session.scalars(select(LoginFailure))]
    assert len(keys) == 2 * limit  # one per attempt for the address, one for the email
    assert all(len(k) == 64 and marketer.email not in k and "127.0.0.1" not in k for k in keys)


def test_login_failures_expire_and_a_success_clears_the_email(
    app: Flask, client: FlaskClient, marketer: User
) -> None:
    limit = app.config["DASHBOARD_LOGIN_MAX_FAILURES"]
    for _ in range(limit):
        login(client, marketer.email, "wrong-password")
    assert login(client, marketer.email, PASSWORD).status_code == 429
    # Sixteen minutes later the failures no longer count, and the next failure deletes them.
    db.session.execute(update(LoginFailure).values(at=LoginFailure.at - timedelta(minutes=16)))
    db.session.commit()
    assert login(client, marketer.email, "wrong-password").status_code == 401
    assert db.session.scalar(select(func.count()).select_from(LoginFailure)) == 2
    assert login(client, marketer.email, PASSWORD).status_code == 302
    # The success forgave the email; the address keeps its one failure.
    assert db.session.scalar(select(func.count()).select_from(LoginFailure)) == 1


def test_an_oversized_form_is_refused_before_it_is_read(client: FlaskClient) -> None:
    """Nobody logged in may make the server read (and spool to disk) a body of any size."""
    body = {"email": "a@b.test", "password": "x" * (MAX_FORM_BODY_BYTES + 1)}
    response = client.post("/login", data=body)
    assert response.status_code == 413
    assert b"Traceback" not in response.data


def test_logout_needs_post(client: FlaskClient, marketer: User) -> None:
    login(client, marketer.email)
    assert client.get("/logout").status_code == 200  # a confirmation button, not a logout
    assert client.get("/settings").status_code == 200
    response = client.post("/logout")
    assert response.status_code == 302
    assert client.get("/settings").status_code == 302


def test_logout_ends_the_session_even_for_a_copy_of_its_cookie(
    app: Flask, client: FlaskClient, marketer: User
) -> None:
    login(client, marketer.email)
    cookie = client.get_cookie("session")
    assert cookie is not None
    elsewhere = app.test_client()  # the same user on another device
    login(elsewhere, marketer.email)
    copy = app.test_client()
    copy.set_cookie("session", cookie.value)
    assert copy.get("/settings").status_code == 200  # the copy works while the session lives
    assert client.post("/logout").status_code == 302
    assert copy.get("/settings").status_code == 302
    assert elsewhere.get("/settings").status_code == 200  # other sessions go on
    # A session older than the session lifetime is refused even if its cookie is replayed.
    expired = utcnow() - app.permanent_session_lifetime - timedelta(minutes=1)
    db.session.execute(update(LoginSession).values(created_at=expired))
    db.session.commit()
    assert elsewhere.get("/settings").status_code == 302


def test_security_headers_and_cookie_flags(client: FlaskClient, marketer: User) -> None:
    response = login(client, marketer.email)
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    page = client.get("/settings")
    csp = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert b"<script>" not in page.data  # no inline script anywhere in the layout


def test_data_pages_and_api_answers_are_never_cached(
    client: FlaskClient, marketer: User, token: str
) -> None:
    assert "no-store" not in client.get("/login").headers.get("Cache-Control", "")
    login(client, marketer.email)
    assert client.get("/settings").headers["Cache-Control"] == "no-store"
    asset = client.get("/static/dashboard/app.css")
    assert asset.status_code == 200 and "no-store" not in asset.headers.get("Cache-Control", "")
    api = client.get("/api/v1/sites", headers={"Authorization": f"Bearer {token}"})
    assert api.status_code == 200 and api.headers["Cache-Control"] == "no-store"


def test_secure_cookie_setting(
    store: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'secure.db'}"
    monkeypatch.setenv("FUNNEL_DATABASE_URL", url)
    upgrade(url)
    app = create_app({"TESTING": True, "secure_cookies": True})
    with app.app_context():
        accounts.create_user(db.session, "s@test.example", PASSWORD)
        db.session.commit()
        client = app.test_client()
        token = csrf_token_from(client.get("/login").data.decode())
        response = client.post(
            "/login", data={"email": "s@test.example", "password": PASSWORD, "csrf_token": token}
        )
        assert response.status_code == 302
        assert "Secure" in response.headers["Set-Cookie"]
    db.remove()


@pytest.fixture
def csrf_app(store: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Flask:
    """An app with CSRF protection on, as in production."""
    url = f"sqlite:///{tmp_path / 'csrf.db'}"
    monkeypatch.setenv("FUNNEL_DATABASE_URL", url)
    upgrade(url)
    app = create_app({"TESTING": True, "WTF_CSRF_ENABLED": True})
    with app.app_context():
        user = accounts.create_user(db.session, "c@test.example", PASSWORD)
        accounts.create_site(
            db.session, "CSRF site", [], owner=user, key=f"c{uuid.uuid4().hex[:12]}"
        )
        db.session.commit()
    return app


def test_post_without_csrf_token_is_rejected(csrf_app: Flask) -> None:
    with csrf_app.app_context():
        client = csrf_app.test_client()
        # Even the login form needs the token.
        response = client.post("/login", data={"email": "c@test.example", "password": PASSWORD})
        assert response.status_code == 400
        token = csrf_token_from(client.get("/login").data.decode())
        response = client.post(
            "/login", data={"email": "c@test.example", "password": PASSWORD, "csrf_token": token}
        )
        assert response.status_code == 302
        page = client.get("/sites")
        response = client.post("/sites", data={"name": "No token", "timezone": "UTC"})
        assert response.status_code == 400
        assert b"form expired" in response.data
        assert b"No token" not in client.get("/sites").data
        token = csrf_token_from(page.data.decode())
        response = client.post(
            "/sites", data={"name": "With token", "timezone": "UTC", "csrf_token": token}
        )
        assert response.status_code == 302
        assert b"With token" in client.get("/sites").data
    db.remove()


def test_collector_and_api_are_exempt_from_csrf(csrf_app: Flask) -> None:
    with csrf_app.app_context():
        site = db.session.scalar(select(Site))
        assert site is not None
        client = csrf_app.test_client()
        response = client.post(
            "/api/collect",
            json={
                "site": site.key,
                "type": "pageview",
                "url": "https://example.test/",
                "id": str(uuid.uuid4()),
            },
            headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36"},
        )
        assert (response.status_code, response.json) == (202, {"accepted": 1, "dropped": {}})
        assert csrf_app.extensions["funnel_writer"].flush(timeout=20)
        api = client.post(
            f"/api/v1/sites/{site.key}/funnels", json={}, headers={"Authorization": "Bearer no"}
        )
        assert api.status_code == 401  # token auth answered, not a CSRF failure
    db.remove()


def test_templates_have_no_inline_script_or_style() -> None:
    """The CSP forbids inline code; a template that slipped some in would break in browsers."""
    import re

    templates = Path(__file__).resolve().parents[2] / "dashboard" / "templates"
    for path in templates.glob("*.html"):
        html = path.read_text()
        for tag in re.findall(r"<script\b[^>]*>", html):
            assert "src=" in tag, f"{path.name}: inline <script>"
        assert not re.search(r"\sstyle=", html), f"{path.name}: style attribute"
        assert "<style" not in html, f"{path.name}: <style> element"
        assert not re.search(r"\son[a-z]+=", html), f"{path.name}: inline event handler"
