"""Per-app collector state: pipeline, site cache, salts, rate limiter and the process's writer."""

from __future__ import annotations

from flask import Flask, current_app

from tracker.app import settings_of, store_of
from tracker.collector import metrics
from tracker.collector.ratelimit import RateLimiter
from tracker.collector.sites import SiteCache
from tracker.configdb import db
from tracker.ingest.geo import GeoLookup
from tracker.ingest.pipeline import Pipeline
from tracker.ingest.privacy import SaltBook
from tracker.writer import BatchWriter, get_writer


class Collector:
    def __init__(self, app: Flask) -> None:
        settings = settings_of(app)
        self.settings = settings
        self.store = store_of(app)
        engine = db.engine(app)
        self.sites = SiteCache(engine)
        self.salts = SaltBook(engine)
        self.geo = GeoLookup(settings.geoip_db, settings.trusted_geo_headers)
        self.pipeline = Pipeline(self.geo)
        self.limiter = RateLimiter(settings.rate_limit)
        self.writer: BatchWriter = get_writer(
            self.store,
            settings.spool_dir,
            settings.spool_max_mb * 1024 * 1024,
            # "always": the 202 waits for fdatasync (group commit), so a power cut loses nothing.
            sync_each_append=settings.spool_fsync == "always",
        )
        self.writer.observe_insert = metrics.observe_insert
        metrics.SPOOL_DEPTH.set_function(lambda: self.writer.spool.backlog_rows)
        metrics.SPOOL_BYTES.set_function(
            lambda: self.writer.spool.used_bytes if self.writer.started else 0
        )
        metrics.WRITER_FAILING.set_function(lambda: 1 if self.writer.failing_since else 0)

    def ready(self) -> tuple[bool, str]:
        return self.writer.ready()


def collector_of(app: Flask | None = None) -> Collector:
    state: Collector = (app or current_app).extensions["funnel_collector"]
    return state
