"""Mutations with progress on the real engine: the rewrite is followed part by part, and a
mutation ClickHouse cannot apply is an error, not an endless wait."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tracker.clickhouse import Store
from tracker.events import COLUMN_NAMES, to_row
from tracker.mutations import MutationFailedError, run_mutation
from tracker.retention import delete_events

START = datetime(2025, 1, 15, tzinfo=UTC)


def count(store: Store, key: str) -> int:
    return int(store.scalar("SELECT count() FROM events WHERE site_id = {s:String}", {"s": key}))


def test_a_deletion_reports_its_parts_until_done(store: Store) -> None:
    key = f"mut{uuid.uuid4().hex[:10]}"
    # Three months: at least three parts (the table is partitioned by month).
    for month in range(3):
        rows = [
            to_row(
                {"site_id": key, "visitor_id": f"v{i}", "ts": START + timedelta(days=31 * month)}
            )
            for i in range(5)
        ]
        store.insert("events", rows, COLUMN_NAMES)
    calls: list[tuple[int, int]] = []
    delete_events(store, key, on_progress=lambda done, total: calls.append((done, total)))
    assert count(store, key) == 0
    done, total = calls[-1]
    assert total >= 3 and done == total
    assert all(0 <= d <= t for d, t in calls)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


def test_a_mutation_that_cannot_apply_is_an_error(store: Store) -> None:
    key = f"mut{uuid.uuid4().hex[:10]}"
    store.insert("events", [to_row({"site_id": key, "visitor_id": "v", "ts": START})], COLUMN_NAMES)
    before = {r[0] for r in store.rows("SELECT mutation_id FROM system.mutations")}
    try:
        with pytest.raises(MutationFailedError, match=r"throwIf|non-zero|THROW"):
            run_mutation(
                store,
                "ALTER TABLE events DELETE WHERE throwIf(site_id = {s:String})",
                {"s": key},
                on_progress=lambda done, total: None,
            )
    finally:
        # ClickHouse would retry it for ever and queue every later mutation behind it.
        for (mutation_id,) in store.rows("SELECT mutation_id FROM system.mutations"):
            if mutation_id not in before:
                store.command(
                    "KILL MUTATION WHERE mutation_id = {m:String} SYNC", {"m": mutation_id}
                )
    assert count(store, key) == 1  # nothing was deleted
