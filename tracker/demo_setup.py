"""Wiring the demo generator to the stores: the demo site, its admin, and its events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from tracker import accounts
from tracker.clickhouse import Store
from tracker.demo import (
    DEMO_ADMIN_EMAIL,
    DEMO_ADMIN_PASSWORD,
    DEMO_HOST,
    DEMO_SITE_KEY,
    seed_events,
)
from tracker.events import COLUMN_NAMES, to_row
from tracker.models import Site
from tracker.retention import delete_events


def ensure_demo_accounts(session: Session) -> tuple[Site, bool]:
    """The demo site and an admin member of it; returns (site, admin_was_created)."""
    admin = accounts.user_by_email(session, DEMO_ADMIN_EMAIL)
    created = admin is None
    if admin is None:
        admin = accounts.create_user(
            session, DEMO_ADMIN_EMAIL, DEMO_ADMIN_PASSWORD, role="admin", name="Demo admin"
        )
    site = accounts.site_by_key(session, DEMO_SITE_KEY)
    if site is None:
        site = accounts.create_site(
            session,
            "Acme Shoes (demo)",
            [DEMO_HOST, "localhost", "127.0.0.1"],
            timezone="UTC",
            owner=admin,
            key=DEMO_SITE_KEY,
            currency="EUR",
        )
    else:
        accounts.add_member(session, admin, site)
        accounts.ensure_template_funnel(session, site)
    return site, created


def replace_demo_events(
    store: Store,
    site_key: str,
    visitors: int,
    seed: int,
    days: int,
    progress: Callable[[int], Any] | None = None,
) -> int:
    """Drop the demo site's old events and write a fresh deterministic set."""
    delete_events(store, site_key)

    def insert(batch: list[dict[str, Any]]) -> None:
        store.insert("events", [to_row(e) for e in batch], COLUMN_NAMES, deduplicate=False)

    return seed_events(insert, visitors, seed, days, progress=progress)
