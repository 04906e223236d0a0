"""Dashboard fixtures: a marketer, their site, and a logged-in client."""

from __future__ import annotations

import uuid

import pytest
from dash_helpers import PASSWORD, login
from flask import Flask
from flask.testing import FlaskClient

from tracker import accounts
from tracker.configdb import db
from tracker.models import Site, User


@pytest.fixture
def marketer(app: Flask) -> User:
    user = accounts.create_user(db.session, "marketer@test.example", PASSWORD)
    db.session.commit()
    return user


@pytest.fixture
def my_site(app: Flask, marketer: User) -> Site:
    site = accounts.create_site(
        db.session,
        "Marketer site",
        ["shop.example"],
        timezone="Europe/Paris",
        owner=marketer,
        key=f"d{uuid.uuid4().hex[:12]}",
    )
    db.session.commit()
    return site


@pytest.fixture
def logged_in(client: FlaskClient, marketer: User) -> FlaskClient:
    response = login(client, marketer.email)
    assert response.status_code == 302
    return client
