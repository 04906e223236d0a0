"""Login and logout: scrypt-checked passwords, a failed-login limit, session rotation and a
safe `next` redirect."""

from __future__ import annotations

from flask import current_app, redirect, render_template, request, session, url_for
from flask.typing import ResponseReturnValue
from flask_login import current_user, login_user, logout_user

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


@bp.route("/login", methods=["GET", "POST"])
def login() -> ResponseReturnValue:
    next_url = safe_next(request.values.get("next"), url_for("dashboard.index"))
    if request.method == "GET":
        return render_template("login.html", next_url=next_url, email="", error=None)

    email = request.form.get("email", "").strip()
    password = request.form.get("password", "")
    keys = (f"ip:{_client_address()}", f"email:{email.lower()}")
    wait, recorded = login_limiter().begin(*keys)
    if wait:
        minutes = max(1, wait // 60)
        error = f"Too many failed logins. Try again in about {minutes} minute(s)."
        response = render_template("login.html", next_url=next_url, email=email, error=error)
        return response, 429, {"Retry-After": str(wait)}
    user = accounts.authenticate(db.session, email, password) if email and password else None
    if user is None:  # already counted by begin()
        error = "Wrong email or password."
        return render_template("login.html", next_url=next_url, email=email, error=error), 401

    login_limiter().succeeded(f"email:{email.lower()}", recorded)
    renew_login(user)
    user.last_login_at = utcnow()
    db.session.commit()
    return redirect(next_url)


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
