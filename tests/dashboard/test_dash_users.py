"""Settings → Users (admins) and Your account (everyone): each change does what it says,
refuses what it must, and ends sessions where a password or status changes."""

from __future__ import annotations

from dash_helpers import PASSWORD, login
from flask import Flask
from flask.testing import FlaskClient

from tracker import accounts
from tracker.configdb import db
from tracker.models import Site, User

ADMIN_PASSWORD = "admin-pass-123"


def change(client: FlaskClient, user: User, **form: str) -> str:
    """Post one change to a user; the flashed message it leads to."""
    response = client.post(f"/settings/users/{user.id}", data=form)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/settings#users")
    return client.get("/settings").get_data(as_text=True)


def fresh(user_id: int) -> User:
    db.session.expire_all()
    user = db.session.get(User, user_id)
    assert user is not None
    return user


def test_admin_manages_a_users_role_sites_password_and_status(
    app: Flask, client: FlaskClient, admin: User, marketer: User, my_site: Site
) -> None:
    marketer_id, email = marketer.id, marketer.email
    theirs = app.test_client()
    assert login(theirs, email).status_code == 302
    login(client, admin.email, ADMIN_PASSWORD)

    page = client.get("/settings").get_data(as_text=True)
    assert f"Remove from {my_site.name}" in page and f'for="role-{marketer_id}"' in page

    html = change(client, marketer, action="remove_site", site=my_site.key)
    assert f"{email} no longer sees {my_site.name}." in html
    assert not accounts.can_access(db.session, fresh(marketer_id), my_site)
    assert theirs.get(f"/sites/{my_site.key}/report").status_code == 404
    html = change(client, marketer, action="remove_site", site=my_site.key)
    assert f"{email} was not a member of {my_site.name}." in html
    html = change(client, marketer, action="add_site", site=my_site.key)
    assert f"{email} can now see {my_site.name}." in html
    assert theirs.get(f"/sites/{my_site.key}/report").status_code == 200
    assert "Choose one of the sites." in change(client, marketer, action="add_site", site="nope")

    assert "Choose a role" in change(client, marketer, action="role", role="owner")
    assert fresh(marketer_id).role == "marketer"
    assert f"{email} is now an admin." in change(client, marketer, action="role", role="admin")
    assert fresh(marketer_id).is_admin
    change(client, marketer, action="role", role="marketer")

    assert "at least 8 characters" in change(client, marketer, action="password", password="x")
    html = change(client, marketer, action="password", password="brand-new-pass-1")
    assert f"New password set for {email}; their sessions have ended." in html
    assert theirs.get("/settings").status_code == 302  # logged out by the reset
    assert login(theirs, email, PASSWORD).status_code == 401
    assert login(theirs, email, "brand-new-pass-1").status_code == 302

    assert "sessions and API tokens stop" in change(client, marketer, action="deactivate")
    assert theirs.get("/settings").status_code == 302
    assert "is active again" in change(client, marketer, action="activate")
    assert "Unknown change." in change(client, marketer, action="explode")


def test_an_admin_cannot_lock_themselves_out_here(client: FlaskClient, admin: User) -> None:
    login(client, admin.email, ADMIN_PASSWORD)
    for form in (
        {"action": "role", "role": "marketer"},
        {"action": "deactivate"},
        {"action": "password", "password": "another-pass-1"},
    ):
        html = change(client, admin, **form)
        assert "You cannot change your own role, status or password here" in html
    user = fresh(admin.id)
    assert user.is_admin and user.active and accounts.password_matches(user, ADMIN_PASSWORD)


def test_a_marketer_cannot_change_users(logged_in: FlaskClient, admin: User) -> None:
    response = logged_in.post(f"/settings/users/{admin.id}", data={"action": "deactivate"})
    assert response.status_code == 403
    assert fresh(admin.id).active


def test_anyone_changes_their_own_password_with_the_current_one(
    app: Flask, logged_in: FlaskClient, marketer: User
) -> None:
    marketer_id, email = marketer.id, marketer.email
    elsewhere = app.test_client()
    login(elsewhere, email)
    page = logged_in.get("/settings").get_data(as_text=True)
    assert 'id="account"' in page and 'id="users"' not in page

    def attempt(current: str, new: str, repeat: str | None = None) -> tuple[int, str]:
        form = {"current_password": current, "new_password": new, "repeat_password": new}
        if repeat is not None:
            form["repeat_password"] = repeat
        response = logged_in.post("/settings/password", data=form)
        return response.status_code, response.get_data(as_text=True)

    status, html = attempt(PASSWORD, "new-password-1", "new-password-2")
    assert status == 422 and "The two new passwords differ." in html
    status, html = attempt(PASSWORD, "short")
    assert status == 422 and "at least 8 characters" in html
    status, html = attempt("not-the-password", "new-password-1")
    assert status == 422 and "The current password is wrong." in html
    assert accounts.password_matches(fresh(marketer_id), PASSWORD)

    response = logged_in.post(
        "/settings/password",
        data={
            "current_password": PASSWORD,
            "new_password": "new-password-1",
            "repeat_password": "new-password-1",
        },
    )
    assert response.status_code == 302 and response.headers["Location"].endswith("#account")
    assert "Password changed." in logged_in.get("/settings").get_data(as_text=True)
    assert elsewhere.get("/settings").status_code == 302  # the other session ended
    assert login(app.test_client(), email, PASSWORD).status_code == 401
    assert login(app.test_client(), email, "new-password-1").status_code == 302


def test_wrong_current_passwords_count_like_failed_logins(
    app: Flask, logged_in: FlaskClient, marketer: User
) -> None:
    limit = app.config["DASHBOARD_LOGIN_MAX_FAILURES"]
    form = {"current_password": "wrong", "new_password": "new-password-1"}
    form["repeat_password"] = form["new_password"]
    statuses = [logged_in.post("/settings/password", data=form).status_code for _ in range(limit)]
    assert statuses == [422] * limit
    right = {**form, "current_password": PASSWORD}
    blocked = logged_in.post("/settings/password", data=right)
    assert blocked.status_code == 429 and "Too many wrong passwords" in blocked.get_data(
        as_text=True
    )
    assert login(app.test_client(), marketer.email).status_code == 429  # the same limit
