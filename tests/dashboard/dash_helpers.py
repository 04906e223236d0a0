"""Helpers for the dashboard tests (imported by name: pytest puts this directory on sys.path).

The directory has no __init__.py on purpose: as a package it would shadow the real
`dashboard` package for the whole test session.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from flask.testing import FlaskClient

from tracker.clickhouse import Store
from tracker.events import COLUMN_NAMES, to_row

PASSWORD = "marketer-pass-123"
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


def login(client: FlaskClient, email: str, password: str = PASSWORD) -> Any:
    return client.post("/login", data={"email": email, "password": password})


def insert_events(store: Store, events: Iterable[dict[str, Any]]) -> None:
    store.insert("events", [to_row(e) for e in events], COLUMN_NAMES, deduplicate=False)


def journey_events(site_key: str, visitors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Events for each visitor spec {id, campaign, keyword, depth (1-4), extra fields}: a page
    view, then a click, a signup and a purchase, as deep as `depth`."""
    start = datetime.now(UTC) - timedelta(days=2)
    out: list[dict[str, Any]] = []
    for n, spec in enumerate(visitors):
        at = start + timedelta(minutes=n)
        base = {
            "site_id": site_key,
            "visitor_id": spec["id"],
            "session_id": f"s-{spec['id']}",
            "utm_campaign": spec.get("campaign", ""),
            "utm_term": spec.get("keyword", ""),
            "source": spec.get("source", "google"),
            "medium": spec.get("medium", "paid"),
            "device": "desktop",
            "country": "FR",
            "host": "shop.example",
        }
        steps = [
            {
                "type": "pageview",
                "url": spec.get("url", "https://shop.example/landing"),
                "path": "/landing",
                "title": spec.get("title", "Landing"),
            },
            {
                "type": "click",
                "url": "https://shop.example/landing",
                "path": "/landing",
                "element_tag": "a",
                "element_text": spec.get("element_text", "Sign up"),
            },
            {"type": "event", "name": "signup", "url": "https://shop.example/signup"},
            {
                "type": "event",
                "name": "purchase",
                "value": 40.0,
                "props": {"product": spec.get("product", "shoe")},
            },
        ]
        for i, step in enumerate(steps[: spec.get("depth", 1)]):
            out.append({**base, **step, "ts": at + timedelta(minutes=5 * i)})
    return out


def csrf_token_from(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)
