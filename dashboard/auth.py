"""Login and logout: scrypt-checked passwords, a failed-login limit, session rotation and a
safe `next` redirect."""

from __future__ import annotations

import hashlib
import hmac

from flask import current_app, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_user, logout_user
from itsdangerous import BadData, URLSafeTimedSerializer
from werkzeug.wrappers import Response

from dashboard.access import SessionUser
from dashboard.blueprint import bp
from dashboard.security import LoginLimiter, safe_next
from tracker import accounts
from tracker.configdb import db
from tracker.ingest.privacy import client_ip
from tracker.models import User, utcnow


def login_limiter() -> LoginLimiter:
    """The failed-login limit; a wrong current password on the password form counts too."""
    limiter: LoginLimiter = current_app.extensions["dashboard_login_limiter"]
    return limiter


def renew_login(user: User) -> None:
    """Log `user` in under a new session: after login, and after a password change (whose new
    fingerprint ends every session, the current one included). Commit afterwards."""
    session.clear()  # nothing set before survives, so a planted session cannot be promoted
    nonce = accounts.start_login_session(db.session, user, current_app.permanent_session_lifetime)
    login_user(SessionUser(user, nonce))


def _client_address() -> str:
    # The collector's rule: X-Forwarded-For counts only through the trusted hops, so a client
    # cannot pick its own address (and its own limit) by writing hops of its own.
    trusted = current_app.config["FUNNEL_SETTINGS"].trusted_proxies
    return client_ip(request.remote_addr, request.headers.get("X-Forwarded-For"), trusted)


# A browser that logged in as an email before carries this signed cookie, and the email's
# failed-login limit does not hold it up: someone guessing that email's password elsewhere
# cannot lock its owner out (their address keeps its own limit). After OWASP's device cookies.
DEVICE_COOKIE = "funnel_device"
DEVICE_COOKIE_DAYS = 180


def _device_serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt="login-device")


def _email_digest(email: str) -> str:
    key = current_app.config["SECRET_KEY"].encode()
    return hmac.new(key, email.lower().encode(), hashlib.sha256).hexdigest()[:32]


def _device_emails() -> list[str]:
    """The email digests this browser's device cookie vouches for (none if absent, forged
    or older than its lifetime)."""
    raw = request.cookies.get(DEVICE_COOKIE)
    if not raw:
        return []
    try:
        known = _device_serializer().loads(raw, max_age=DEVICE_COOKIE_DAYS * 86400)
    except BadData:
        return []
    return [item for item in known if isinstance(item, str)] if isinstance(known, list) else []


def _remember_device(response: Response, email: str) -> None:
    """Add `email` to the browser's device cookie (the last five logins' emails)."""
    digest = _email_digest(email)
    others = [item for item in _device_emails() if item != digest]
    known = [*others[-4:], digest]
    response.set_cookie(
        DEVICE_COOKIE,
        _device_serializer().dumps(known),
        max_age=DEVICE_COOKIE_DAYS * 86400,
        httponly=True,
        samesite="Lax",
        secure=current_app.config["SESSION_COOKIE_SECURE"],
    )


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    next_url = safe_next(request.values.get("next"), url_for("dashboard.index"))
    if request.method == "GET":
        return render_template("login.html", next_url=next_url, email="", error=None)

    email = request.form.get("email", "").strip()
    password = request.form.get("password", "")
    email_key = LoginLimiter.email_key(email)
    exempt = (email_key,) if email and _email_digest(email) in _device_emails() else ()
    wait, recorded = login_limiter().begin(f"ip:{_client_address()}", email_key, exempt=exempt)
    if wait:
        error = f"Too many failed logins. {LoginLimiter.try_again(wait)}"
        response = render_template("login.html", next_url=next_url, email=email, error=error)
        return response, 429, {"Retry-After": str(wait)}
    user = accounts.authenticate(db.session, email, password) if email and password else None
    if user is None:  # already counted by begin()
        error = "Wrong email or password."
        return render_template("login.html", next_url=next_url, email=email, error=error), 401

    # A login from the owner's known browser leaves others' failures on the email standing:
    # clearing them would hand whoever is guessing a fresh set of attempts.
    login_limiter().succeeded(None if exempt else email_key, recorded)
    renew_login(user)
    user.last_login_at = utcnow()
    db.session.commit()
    done = redirect(next_url)
    _remember_device(done, email)
    return done


@bp.route("/logout", methods=["GET", "POST"])
def logout() -> ResponseReturnValue:
    # GET shows a button: logging out through a plain link would let other sites log you out.
    if request.method == "GET":
        return render_template("logout.html")
    if current_user.is_authenticated:
        # The row goes, so the cookie (and any copy of it) no longer logs anyone in.
        accounts.end_login_session(db.session, current_user.nonce)
        db.session.commit()
    logout_user()
    session.clear()
    return redirect(url_for("dashboard.login"))
