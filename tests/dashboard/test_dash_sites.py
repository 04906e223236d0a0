"""The site settings form: every field is saved, and a bad one changes nothing and says why."""

from __future__ import annotations

import re
from html import unescape
from typing import Any

import pytest
from flask.testing import FlaskClient

from tracker.configdb import db
from tracker.models import Site

GOOD = {
    "name": "Shoe shop",
    "domains": "https://shop.example/, www.shop.example",
    "timezone": "America/New_York",
    "retention_days": "90",
    "currency": " usd ",
}


def flashes(client: FlaskClient, site: Site) -> list[str]:
    html = client.get(f"/sites/{site.key}/setup").data.decode()
    return [unescape(m) for m in re.findall(r'class="flash[^"]*"[^>]*>\s*(.*?)\s*<', html, re.S)]


def test_every_setting_is_saved(logged_in: FlaskClient, my_site: Site) -> None:
    response = logged_in.post(f"/sites/{my_site.key}/settings", data=GOOD)
    assert response.status_code == 302
    assert response.location.endswith(f"/sites/{my_site.key}/setup#settings")
    db.session.expire_all()
    site = db.session.get(Site, my_site.id)
    assert site is not None
    assert (site.name, site.domains, site.timezone, site.retention_days, site.currency) == (
        "Shoe shop",
        ["shop.example", "www.shop.example"],
        "America/New_York",
        90,
        "USD",
    )
    html = logged_in.get(f"/sites/{my_site.key}/setup").data.decode()
    assert "Site settings saved." in html
    assert 'id="s-currency" name="currency" value="USD"' in html
    # No currency again: an empty field clears it.
    logged_in.post(f"/sites/{my_site.key}/settings", data={**GOOD, "currency": ""})
    db.session.expire_all()
    assert db.session.get(Site, my_site.id).currency == ""  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("currency", "euro", "currency must be a three-letter ISO 4217 code"),
        ("currency", "E1R", "currency must be a three-letter ISO 4217 code"),
        ("timezone", "Mars/Base", "unknown time zone"),
        ("retention_days", "-5", "retention must be a number of days"),
        ("retention_days", "40000", "retention must be a number of days"),
        ("name", "   ", "site name must be 1 to 200 characters"),
        ("domains", "not a domain!", "not a valid domain"),
    ],
)
def test_a_bad_setting_changes_nothing_and_says_why(
    logged_in: FlaskClient, my_site: Site, field: str, value: str, message: str
) -> None:
    before = _settings(my_site)
    response = logged_in.post(f"/sites/{my_site.key}/settings", data={**GOOD, field: value})
    assert response.status_code == 302
    assert any(message in text for text in flashes(logged_in, my_site)), message
    db.session.expire_all()
    assert _settings(db.session.get(Site, my_site.id)) == before


def _settings(site: Any) -> tuple[Any, ...]:
    return (site.name, site.domains, site.timezone, site.retention_days, site.currency)
