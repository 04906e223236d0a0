"""Liveness and readiness probes."""

from __future__ import annotations

from flask import Blueprint, Flask, current_app, jsonify
from flask.typing import ResponseReturnValue

from tracker.app import store_of
from tracker.configdb import db

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """The process is alive and serving requests."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Both stores answer, and every layer's own check (such as the spool backlog) passes."""
    checks = {
        "clickhouse": store_of(current_app).ping(),
        "config_db": db.ping(current_app),
    }
    for name, check in current_app.extensions["funnel_ready_checks"]:
        checks[name] = check()
    failed = {name: reason for name, (ok, reason) in checks.items() if not ok}
    body = {
        "status": "ready" if not failed else "unavailable",
        "checks": {name: ("ok" if ok else reason) for name, (ok, reason) in checks.items()},
    }
    if failed:
        body["reason"] = "; ".join(failed.values())
        return jsonify(body), 503
    return jsonify(body)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
