import uuid
from datetime import UTC, datetime, timedelta

from flask import Flask
from flask.testing import FlaskCliRunner

from tracker import accounts
from tracker.cli import main
from tracker.clickhouse import Store
from tracker.configdb import db
from tracker.events import COLUMN_NAMES, to_row
from tracker.models import Site
from tracker.retention import prune

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def insert(store: Store, key: str, ages_days: list[float]) -> None:
    rows = [
        to_row({"site_id": key, "visitor_id": f"v{i}", "ts": NOW - timedelta(days=age)})
        for i, age in enumerate(ages_days)
    ]
    store.insert("events", rows, COLUMN_NAMES)


def ages(store: Store, key: str) -> list[int]:
    rows = store.rows(
        "SELECT intDiv(dateDiff('second', ts, {now:DateTime64(3, 'UTC')}), 86400) AS d FROM events "
        "WHERE site_id = {s:String} ORDER BY d",
        {"s": key, "now": NOW.replace(tzinfo=None)},
    )
    return [r[0] for r in rows]


def test_only_events_past_a_sites_retention_are_deleted(
    app: Flask, store: Store, site: Site
) -> None:
    keep_all = accounts.create_site(db.session, "Keeps all", key=f"k{uuid.uuid4().hex[:12]}")
    site.retention_days = 30
    db.session.commit()
    insert(store, site.key, [1, 29.9, 30.1, 400])
    insert(store, keep_all.key, [1, 400])

    assert prune(db.session, store, now=NOW) == [(site.key, 2)]
    assert ages(store, site.key) == [1, 29]
    assert ages(store, keep_all.key) == [1, 400]
    assert prune(db.session, store, now=NOW) == []  # nothing left to delete


def test_prune_command(runner: FlaskCliRunner, app: Flask, store: Store, site: Site) -> None:
    result = runner.invoke(main, ["prune"])
    assert result.exit_code == 0 and "Nothing to delete" in result.output
    site = db.session.get(Site, site.id)  # the command's app context ended the old session
    site.retention_days = 7
    db.session.commit()
    insert(store, site.key, [3650])  # ten years old: past any cut-off the command computes
    result = runner.invoke(main, ["prune"])
    assert result.exit_code == 0, result.output
    assert f"Site {site.key}: deleted 1 expired events" in result.output
    # The rewrite is followed on a progress bar: parts done out of parts to rewrite.
    assert f"pruning {site.key}" in result.stderr and "parts" in result.stderr
    assert (
        store.scalar("SELECT count() FROM events WHERE site_id = {s:String}", {"s": site.key}) == 0
    )


def test_tests_do_not_start_the_daily_job(app: Flask, client: object) -> None:
    client.get("/healthz")  # type: ignore[attr-defined]
    assert app.extensions["funnel_retention"]._thread is None
