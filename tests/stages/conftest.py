"""Fixtures for stage-engine tests: an API token and helpers to load exact event histories."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pytest

from tracker import accounts
from tracker.clickhouse import Store
from tracker.configdb import db
from tracker.events import COLUMN_NAMES, to_row
from tracker.models import User


@pytest.fixture
def token(admin: User) -> str:
    _, plain = accounts.create_token(db.session, admin, "tests")
    db.session.commit()
    return plain


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def load(store: Store, events: Iterable[dict[str, Any]]) -> None:
    rows = [to_row(e) for e in events]
    if rows:
        store.insert("events", rows, COLUMN_NAMES, deduplicate=False)
