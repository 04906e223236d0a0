"""Data retention: a site's events older than its `retention_days` are deleted once a day,
and the rows of erased persons are rewritten off disk in the same daily run.

With `erasure.py` (one person, on request), the only code that deletes events; the stage
engine never does. The serving process runs it on a daemon thread started by its first
request, because an embedded store belongs to that process; `funnel prune` does the same on
demand (with a ClickHouse server, or from cron).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.clickhouse import Store
from tracker.erasure import purge_deleted
from tracker.models import Site
from tracker.mutations import Progress, run_mutation

log = logging.getLogger(__name__)
PRUNE_INTERVAL = 24 * 3600.0
FIRST_RUN_DELAY = 60.0  # let a restarted server replay its spool first


def delete_events(
    store: Store,
    site_key: str,
    before: datetime | None = None,
    on_progress: Progress | None = None,
) -> None:
    """Delete a site's events (all, or those before a time) and wait until they are gone;
    `on_progress(parts done, parts)` follows the rewrite."""
    where = "site_id = {site:String}"
    params: dict[str, object] = {"site": site_key}
    if before is not None:
        where += " AND ts < {before:DateTime64(3, 'UTC')}"
        params["before"] = before.astimezone(UTC).replace(tzinfo=None)
    run_mutation(
        store, f"ALTER TABLE {store.events_target} DELETE WHERE {where}", params, on_progress
    )


def prune(
    session: Session,
    store: Store,
    now: datetime | None = None,
    on_progress: Callable[[str], Progress] | None = None,
) -> list[tuple[str, int]]:
    """Apply every site's retention; returns (site key, events deleted) for sites that had any.
    `on_progress(site key)` gives the progress callback of that site's deletion."""
    now = now or datetime.now(UTC)
    pruned = []
    for site in session.scalars(select(Site).where(Site.retention_days > 0).order_by(Site.id)):
        cutoff = now - timedelta(days=site.retention_days)
        expired = store.scalar(
            "SELECT count() FROM events WHERE site_id = {site:String} "
            "AND ts < {before:DateTime64(3, 'UTC')}",
            {"site": site.key, "before": cutoff.astimezone(UTC).replace(tzinfo=None)},
        )
        if expired:
            delete_events(store, site.key, cutoff, on_progress(site.key) if on_progress else None)
            pruned.append((site.key, int(expired)))
    return pruned


class RetentionJob:
    """Runs `prune` shortly after start and then every PRUNE_INTERVAL seconds."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._thread: threading.Thread | None = None
        self._guard = threading.Lock()
        self._stop = threading.Event()

    def start(self) -> None:
        with self._guard:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="retention", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        from tracker.app import store_of
        from tracker.configdb import db

        delay = FIRST_RUN_DELAY
        while not self._stop.wait(delay):
            delay = PRUNE_INTERVAL
            try:
                with self.app.app_context():
                    store = store_of(self.app)
                    for key, count in prune(db.session, store):
                        log.info("retention: deleted %d expired events of site %s", count, key)
                    if purge_deleted(store):
                        log.info("erasure: rewriting the parts that hold erased persons")
            except Exception:  # a failed run is retried the next day; the server keeps serving
                log.exception("retention run failed")


def init_app(app: Flask) -> None:
    job = RetentionJob(app)
    app.extensions["funnel_retention"] = job
    if app.testing:
        return  # tests call prune() directly instead of waiting a day

    @app.before_request
    def _start_retention() -> None:
        job.start()
