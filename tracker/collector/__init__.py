"""The collector: public ingest endpoints (/api/collect, /r/{code}, /t.js), /metrics and the
OpenAPI spec, plus the spool-backed batch writer.

Wiring (called by the app factory): registers the blueprints, puts the process's writer in
`app.extensions["funnel_writer"]` (`.flush(timeout=10.0) -> bool`), adds the "spool" readiness
check, and starts the writer lazily on the first request, never for CLI commands.

CSRF: these endpoints are public and cross-site, so they must be exempt from CSRF protection.
The dashboard's CSRFProtect must call `csrf.exempt(bp)` for every blueprint in
`tracker.collector.blueprints` (the blueprint is named "collector"); when CSRFProtect is
already registered as `app.extensions["csrf"]`, init_app exempts them itself.
"""

from __future__ import annotations

from flask import Flask

from tracker.collector.state import Collector
from tracker.collector.views import CollectFastPath, bp

blueprints = [bp]


def init_app(app: Flask) -> None:
    state = Collector(app)
    app.extensions["funnel_collector"] = state
    app.extensions["funnel_writer"] = state.writer
    app.extensions["funnel_ready_checks"].append(("spool", state.ready))
    app.register_blueprint(bp)
    app.wsgi_app = CollectFastPath(app.wsgi_app, state)  # type: ignore[method-assign]
    csrf = app.extensions.get("csrf")
    if csrf is not None:
        for blueprint in blueprints:
            csrf.exempt(blueprint)

    @app.before_request
    def _start_writer() -> None:
        # The serving process owns the spool: replay leftovers as soon as it serves anything.
        if not state.writer.started:
            state.writer.start()
