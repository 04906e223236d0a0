"""Fixtures for stage-engine tests: an API token and helpers to load exact event histories."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tracker.clickhouse import Store
from tracker.events import COLUMN_NAMES, to_row


def load(store: Store, events: Iterable[dict[str, Any]]) -> None:
    rows = [to_row(e) for e in events]
    if rows:
        store.insert("events", rows, COLUMN_NAMES, deduplicate=False)
