"""Marketer dashboard: Flask blueprints, Jinja2 templates and static assets.

`init_app` wires Flask-Login, CSRF protection (the collector and the token-authenticated JSON
API are exempt), security headers and the views.
"""

from __future__ import annotations

import importlib
from typing import Any

from clickhouse_connect.driver.exceptions import ClickHouseError
from flask import Flask, Response, current_app, g, jsonify, make_response, render_template, request
from flask.typing import ResponseReturnValue
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException

# Importing a view module registers its routes on `bp`.
from dashboard import (  # noqa: F401
    auth,
    formatting,
    views_admin,
    views_editor,
    views_erasure,
    views_links,
    views_report,
    views_sites,
)
from dashboard.access import load_user
from dashboard.blueprint import bp
from dashboard.report_cache import ReportCache
from dashboard.security import LoginLimiter, add_security_headers
from tracker.clickhouse import StoreUnavailableError, timeout_advice

# Blueprints that authenticate otherwise (site keys, bearer tokens): no CSRF there.
_CSRF_EXEMPT = (("tracker.collector", "blueprints"), ("tracker.api.auth", "bp"))


def _exempt_non_browser(csrf: CSRFProtect) -> None:
    for module_name, attr in _CSRF_EXEMPT:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError:
            continue
        found: Any = getattr(module, attr, None)
        for blueprint in found if isinstance(found, list | tuple) else [found]:
            if blueprint is not None:
                csrf.exempt(blueprint)


def _wants_json() -> bool:
    # An /api/ URL no route matched (unknown path, id out of range, wrong method) has no
    # blueprint to answer for it, yet its clients parse JSON.
    return (
        request.path.startswith("/api/")
        or request.path.endswith(".json")
        or request.accept_mimetypes.best == "application/json"
    )


def init_app(app: Flask) -> None:
    app.config.setdefault("WTF_CSRF_TIME_LIMIT", None)  # valid for the session: no lost edits
    app.config.setdefault("DASHBOARD_LOGIN_MAX_FAILURES", 10)

    login_manager = LoginManager()
    login_manager.login_view = "dashboard.login"
    login_manager.login_message = "Please log in to see this page."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "strong"
    login_manager.user_loader(load_user)

    @login_manager.unauthorized_handler
    def _unauthorized() -> ResponseReturnValue:
        from flask import redirect, url_for

        if _wants_json():
            return jsonify(error="unauthorized", detail="log in first"), 401
        return redirect(url_for("dashboard.login", next=request.full_path.rstrip("?")))

    login_manager.init_app(app)

    @app.before_request
    def _fresh_user() -> None:
        # Flask-Login and Flask-WTF cache the user and CSRF token on `g`, which outlives a
        # request when an app context is already active (tests, CLI); each request must
        # resolve its own session.
        g.pop("_login_user", None)
        g.pop(app.config.get("WTF_CSRF_FIELD_NAME", "csrf_token"), None)

    csrf = CSRFProtect()
    csrf.init_app(app)
    _exempt_non_browser(csrf)

    app.extensions["dashboard_login_limiter"] = LoginLimiter(
        app.config["SECRET_KEY"], max_failures=app.config["DASHBOARD_LOGIN_MAX_FAILURES"]
    )
    app.extensions["dashboard_report_cache"] = ReportCache()
    app.register_blueprint(bp)
    formatting.register(app)

    @app.after_request
    def _headers(response: Response) -> Response:
        # Only the dashboard's own pages: the collector, the API and pages served by other
        # layers (test fixture pages with their own scripts) keep their headers.
        if request.blueprint == bp.name or getattr(response, "dashboard_page", False):
            add_security_headers(response)
            if current_user.is_authenticated and request.endpoint != "dashboard.static":
                # Reports, person lists, exports and a token shown once stay out of shared
                # proxies and the browser's disk cache (a repeat view comes from the server's
                # report cache instead).
                response.headers.setdefault("Cache-Control", "no-store")
        return response

    @app.errorhandler(CSRFError)
    def _csrf_error(exc: CSRFError) -> ResponseReturnValue:
        return _error_page(400, "The form expired or was not sent from this site", exc.description)

    for code in (403, 404, 405, 429, 501):
        app.register_error_handler(code, _http_error)


def _http_error(exc: HTTPException) -> ResponseReturnValue:
    if request.blueprint not in (None, bp.name):
        return exc  # other layers answer in their own format
    return _error_page(exc.code or 500, exc.name, exc.description or "")


def _error_page(code: int, title: str, detail: str) -> ResponseReturnValue:
    if _wants_json():
        return jsonify(error=title.lower().replace(" ", "_"), detail=detail), code
    response = make_response(
        render_template("error.html", code=code, title=title, detail=detail), code
    )
    response.dashboard_page = True  # type: ignore[attr-defined]
    return response


# Registered once at import: a blueprint cannot take handlers after its first registration.
@bp.errorhandler(ClickHouseError)
def _store_error(exc: ClickHouseError) -> ResponseReturnValue:
    # A report too heavy for the query time limit (or a store outage) is explained, not a
    # bare 500: the marketer can narrow the range or filters and retry.
    advice = timeout_advice(exc, current_app.config["FUNNEL_SETTINGS"].query_timeout)
    if advice:
        return _error_page(503, "The report took too long", advice)
    current_app.logger.exception("ClickHouse error on %s", request.path)
    return _error_page(503, "The event store is not answering", "Try again in a moment.")


@bp.errorhandler(StoreUnavailableError)
def _store_down(exc: StoreUnavailableError) -> ResponseReturnValue:
    current_app.logger.warning("store unavailable on %s: %s", request.path, exc)
    return _error_page(503, "The event store is not answering", "Try again in a moment.")
