"""Settings: users and memberships (admins), API tokens, GeoIP database status, retention."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import current_app, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from flask_login import login_required
from sqlalchemy import select

from dashboard.access import admin_required, me
from dashboard.auth import login_limiter, renew_login
from dashboard.blueprint import bp
from tracker import accounts
from tracker.configdb import db
from tracker.models import ApiToken, User, utcnow


def geoip_status() -> dict[str, Any]:
    """What the configured GeoIP database is, so a stale or missing file is visible."""
    path = current_app.config["FUNNEL_SETTINGS"].geoip_db
    trusted_headers = current_app.config["FUNNEL_SETTINGS"].trusted_geo_headers
    status: dict[str, Any] = {"path": path, "trusted_headers": trusted_headers, "ok": False}
    if not path:
        status["message"] = (
            "No GeoIP database configured: new events get no country, region or city unless "
            "FUNNEL_TRUSTED_GEO_HEADERS is on (events already stored keep theirs). "
            "Set FUNNEL_GEOIP_DB to a MaxMind .mmdb file."
        )
        return status
    file = Path(path)
    if not file.is_file():
        status["message"] = f"The file {path} is missing."
        return status
    try:
        import maxminddb

        with maxminddb.open_database(str(file)) as reader:
            meta = reader.metadata()
        status.update(
            ok=True,
            database_type=meta.database_type,
            built=datetime.fromtimestamp(meta.build_epoch, UTC),
            size_mb=round(file.stat().st_size / 1e6, 1),
            message="Loaded.",
        )
    except Exception as exc:  # a corrupt file must show up here, not break the page
        status["message"] = f"The file cannot be read as a MaxMind database: {exc}"
    return status


def _tokens_for(user: User) -> list[ApiToken]:
    query = select(ApiToken).order_by(ApiToken.created_at.desc())
    if not user.is_admin:
        query = query.where(ApiToken.user_id == user.id)
    return list(db.session.scalars(query))


def _render(
    new_token: str | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
    form: dict[str, str] | None = None,
) -> ResponseReturnValue:
    user = me()
    users = list(db.session.scalars(select(User).order_by(User.email))) if user.is_admin else []
    return (
        render_template(
            "settings.html",
            users=users,
            tokens=_tokens_for(user),
            new_token=new_token,
            geoip=geoip_status(),
            sites=accounts.sites_for(db.session, user),
            roles=accounts.ROLES,
            errors=errors or {},
            form=form or {},
            now_utc=utcnow(),
        ),
        status,
    )


@bp.get("/settings")
@login_required
def settings() -> ResponseReturnValue:
    return _render()


@bp.post("/settings/users")
@admin_required
def create_user() -> ResponseReturnValue:
    form = {k: request.form.get(k, "").strip() for k in ("email", "name", "role")}
    try:
        user = accounts.create_user(
            db.session,
            form["email"],
            request.form.get("password", ""),
            role=form["role"] or "marketer",
            name=form["name"],
        )
        for key in request.form.getlist("sites"):
            site = accounts.site_by_key(db.session, key)
            if site is not None:
                accounts.add_member(db.session, user, site)
    except accounts.AccountError as exc:
        db.session.rollback()
        return _render(errors={"user": str(exc)}, status=422, form=form)
    db.session.commit()
    flash(f"User {user.email} created.", "ok")
    return redirect(url_for("dashboard.settings") + "#users")


def _back_to_users(message: str, category: str = "ok") -> ResponseReturnValue:
    flash(message, category)
    return redirect(url_for("dashboard.settings") + "#users")


@bp.post("/settings/users/<int:user_id>")
@admin_required
def update_user(user_id: int) -> ResponseReturnValue:
    """One change to a user per request: `action` is role, activate, deactivate, add_site,
    remove_site or password."""
    user = db.session.get(User, user_id)
    if user is None:
        return _render(errors={"user": "no such user"}, status=404)
    action = request.form.get("action", "")
    if user.id == me().id and action in {"deactivate", "role", "password"}:
        # Locking yourself out, or a reset that would end this very session, goes elsewhere:
        # your own password is changed under "Your account" with the current one.
        return _back_to_users(
            "You cannot change your own role, status or password here"
            " (change your password under Your account).",
            "error",
        )
    if action == "deactivate":
        user.active = False
        message = f"{user.email} is deactivated: their sessions and API tokens stop working."
    elif action == "activate":
        user.active = True
        message = f"{user.email} is active again."
    elif action == "role":
        role = request.form.get("role", "")
        if role not in accounts.ROLES:
            return _back_to_users(f"Choose a role: {', '.join(accounts.ROLES)}.", "error")
        user.role = role
        message = f"{user.email} is now {'an' if role == 'admin' else 'a'} {role}."
    elif action in {"add_site", "remove_site"}:
        site = accounts.site_by_key(db.session, request.form.get("site", ""))
        if site is None:
            return _back_to_users("Choose one of the sites.", "error")
        if action == "add_site":
            accounts.add_member(db.session, user, site)
            message = f"{user.email} can now see {site.name}."
        elif accounts.remove_member(db.session, user, site):
            message = f"{user.email} no longer sees {site.name}."
        else:
            return _back_to_users(f"{user.email} was not a member of {site.name}.", "error")
    elif action == "password":
        try:
            accounts.set_password(user, request.form.get("password", ""))
        except accounts.AccountError as exc:
            return _back_to_users(f"{user.email}: {exc}.", "error")
        accounts.end_login_sessions(db.session, user)
        message = f"New password set for {user.email}; their sessions have ended."
    else:
        return _back_to_users("Unknown change.", "error")
    db.session.commit()
    return _back_to_users(message)


@bp.post("/settings/password")
@login_required
def change_own_password() -> ResponseReturnValue:
    """Your own password, confirmed with the current one (wrong ones count like failed
    logins). Every other session of yours ends; this one goes on under a new id."""
    user = me()
    new, repeat = request.form.get("new_password", ""), request.form.get("repeat_password", "")
    if new != repeat:
        return _render(errors={"password": "The two new passwords differ."}, status=422)
    if len(new) < 8:
        return _render(
            errors={"password": "The new password must be at least 8 characters."}, status=422
        )
    limiter = login_limiter()
    key = limiter.email_key(user.email)
    wait, recorded = limiter.begin(key)
    if wait:
        error = f"Too many wrong passwords. {limiter.try_again(wait)}"
        return _render(errors={"password": error}, status=429)
    if not accounts.password_matches(user, request.form.get("current_password", "")):
        return _render(errors={"password": "The current password is wrong."}, status=422)
    limiter.succeeded(key, recorded)
    accounts.set_password(user, new)
    accounts.end_login_sessions(db.session, user)
    renew_login(user)
    db.session.commit()
    flash("Password changed. Any other session of yours has ended.", "ok")
    return redirect(url_for("dashboard.settings") + "#account")


@bp.post("/settings/tokens")
@login_required
def create_token() -> ResponseReturnValue:
    days = request.form.get("expires_days", "").strip()
    if days and not days.isdecimal():
        return _render(errors={"token": "Choose when the token expires."}, status=422)
    try:
        _, plain = accounts.create_token(
            db.session,
            me(),
            request.form.get("name", ""),
            read_only=request.form.get("read_only") == "yes",
            expires_in_days=int(days) if days else None,
        )
    except accounts.AccountError as exc:
        db.session.rollback()
        return _render(errors={"token": f"{exc}."}, status=422)
    db.session.commit()
    # Shown once in this response; never put into the (signed, not encrypted) session cookie.
    return _render(new_token=plain)


@bp.post("/settings/tokens/<int:token_id>/revoke")
@login_required
def revoke_token(token_id: int) -> ResponseReturnValue:
    token = db.session.get(ApiToken, token_id)
    if token is None or (token.user_id != me().id and not me().is_admin):
        return _render(errors={"token": "no such token"}, status=404)
    token.revoked = True
    db.session.commit()
    flash(f"Token {token.prefix}… revoked.", "ok")
    return redirect(url_for("dashboard.settings") + "#tokens")
