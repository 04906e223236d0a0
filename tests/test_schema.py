import uuid
from datetime import UTC, datetime

import pytest

from tracker.ch_migrations import LEDGER, load_migrations, migrate, render
from tracker.clickhouse import Store

NOW = datetime(2026, 1, 5, 12, tzinfo=UTC)


def test_migrations_are_idempotent(store: Store) -> None:
    before = store.rows("SHOW CREATE TABLE events")
    ledger = store.rows(f"SELECT version, checksum FROM {LEDGER} ORDER BY version")
    assert migrate(store) == []
    assert store.rows("SHOW CREATE TABLE events") == before
    assert store.rows(f"SELECT version, checksum FROM {LEDGER} ORDER BY version") == ledger
    assert [v for v, _ in ledger] == [m.version for m in load_migrations()]


def test_events_table_shape(store: Store) -> None:
    ddl = store.scalar("SHOW CREATE TABLE events")
    assert "PARTITION BY toYYYYMM(ts)" in ddl
    assert "ORDER BY (site_id, visitor_id, ts, event_id)" in ddl
    columns = dict(
        store.rows(
            "SELECT name, type FROM system.columns WHERE table = 'events' "
            "AND database = currentDatabase()"
        )
    )
    assert columns["props"] == "Map(LowCardinality(String), String)"
    assert columns["ts"] == "DateTime64(3, 'UTC')"
    assert columns["device"] == "LowCardinality(String)"
    for needed in ("event_id", "utm_term", "click_id", "element_selector", "value", "user_id"):
        assert needed in columns


def test_an_omitted_column_is_stored_at_its_type_default(store: Store) -> None:
    """The collector leaves columns at their default out of its lines (tracker/ingest/
    validate.py, pipeline.py); that is only the same row while no column has a DEFAULT."""
    kinds = store.rows(
        "SELECT name, default_kind, type FROM system.columns WHERE table = 'events' "
        "AND database = currentDatabase() AND default_kind != ''"
    )
    assert [(name, kind) for name, kind, _type in kinds] == [("touch", "MATERIALIZED")]
    assert kinds[0][2] == "UInt8"


def test_single_node_ddl_has_no_cluster_clauses() -> None:
    for migration in load_migrations():
        for statement in render(migration, ""):
            assert "ON CLUSTER" not in statement
            assert "Replicated" not in statement
            assert "Distributed" not in statement


def test_cluster_ddl_is_replicated_and_distributed() -> None:
    statements = [s for m in load_migrations() for s in render(m, "analytics")]
    local = next(s for s in statements if "events_local" in s and "ENGINE = Replicated" in s)
    assert "ON CLUSTER 'analytics'" in local
    zk_path = "'/clickhouse/tables/{shard}/{database}/events_local'"
    assert f"ReplicatedReplacingMergeTree({zk_path}, '{{replica}}')" in local
    dist = next(s for s in statements if "Distributed(" in s)
    assert dist.startswith("CREATE TABLE IF NOT EXISTS events ON CLUSTER 'analytics'")
    assert "Distributed('analytics', currentDatabase(), events_local" in dist


def test_cluster_ddl_adds_touch_on_both_tables() -> None:
    statements = [s for m in load_migrations() for s in render(m, "analytics")]
    touch = [s for s in statements if "ADD COLUMN IF NOT EXISTS touch" in s]
    assert [s.split()[2] for s in touch] == ["events_local", "events"]
    assert all("ON CLUSTER 'analytics'" in s for s in touch)


@pytest.mark.parametrize(
    ("column", "value", "touch"),
    [
        (None, None, 0),
        ("utm_campaign", "spring", 1),
        ("source", "google", 1),
        ("medium", "email", 1),
        ("utm_term", "shoes", 1),
        ("utm_content", "banner", 1),
        ("click_id", "abc", 1),
        ("referrer", "https://news.example/", 1),
        ("path", "/landing", 0),  # not a marketing field
    ],
)
def test_touch_column_is_stored_at_insert(
    store: Store, column: str | None, value: str | None, touch: int
) -> None:
    site = f"touch-{uuid.uuid4().hex[:8]}"
    columns = ["site_id", "event_id", "type", "ts", "received_at", "visitor_id"]
    row: list[object] = [site, uuid.uuid4(), "pageview", NOW, NOW, "v1"]
    if column:
        columns.append(column)
        row.append(value)
    store.insert("events", [row], columns)
    stored = store.rows("SELECT touch FROM events WHERE site_id = {s:String}", {"s": site})
    assert stored == [(touch,)]
    codecs = dict(
        store.rows(
            "SELECT name, compression_codec FROM system.columns WHERE table = 'events' "
            "AND database = currentDatabase() AND name IN ('ts', 'visitor_id', 'path', 'touch')"
        )
    )
    assert codecs["visitor_id"] == "CODEC(LZ4)"
    assert "LZ4" in codecs["ts"]
