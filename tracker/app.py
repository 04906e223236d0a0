"""The Flask app factory: settings, extensions via init_app, blueprints. Opens no connection."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from flask import Flask, Response, request
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.routing import IntegerConverter, Map

from tracker.clickhouse import Store, get_store
from tracker.configdb import db
from tracker.models import MAX_ROW_ID
from tracker.settings import Settings

# The largest body a dashboard form or any endpoint without its own cap may send.
MAX_FORM_BODY_BYTES = 2 << 20

ReadyCheck = Callable[[], tuple[bool, str]]


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the app. `config` may override settings fields (lowercase names such as
    `data_dir`) and plain Flask config keys (uppercase, such as TESTING)."""
    config = dict(config or {})
    settings = Settings.from_env(overrides={k: v for k, v in config.items() if k.islower()})
    settings.ensure_data_dir()

    app = Flask("tracker")
    # Before any blueprint adds its rules: `<int:...>` ids beyond a 32-bit key are a 404, not
    # an integer overflow in the config database (SQLite, PostgreSQL INTEGER).
    app.url_map.converters["int"] = RowIdConverter
    app.config.update(
        FUNNEL_SETTINGS=settings,
        SECRET_KEY=settings.load_secret_key(),
        JSON_SORT_KEYS=False,
        # Dashboard forms take a few KiB: an unauthenticated client must not make a process
        # read (and spool to disk) any size. Endpoints with larger bodies raise it per request
        # (the import endpoint); the collector reads the environ with caps of its own.
        MAX_CONTENT_LENGTH=MAX_FORM_BODY_BYTES,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=settings.secure_cookies,
    )
    app.config.update({k: v for k, v in config.items() if k.isupper()})
    logging.basicConfig(level=settings.log_level.upper())
    logging.getLogger("alembic").setLevel(logging.WARNING)

    app.extensions["funnel_store"] = get_store(settings)
    app.extensions["funnel_ready_checks"] = []
    db.init_app(app)

    from tracker import health, retention

    health.init_app(app)
    retention.init_app(app)
    _register_optional(app)
    app.after_request(_allow_on_405)
    return app


def _allow_on_405(response: Response) -> Response:
    """A 405 says which methods the URL takes (RFC 9110), whichever layer's handler wrote
    its body: a handler that answers in its own format (JSON for /api/, an HTML page) builds
    a new response and drops the header the routing exception carries."""
    exc = request.routing_exception
    if (
        response.status_code == 405
        and "Allow" not in response.headers
        and isinstance(exc, MethodNotAllowed)
        and exc.valid_methods
    ):
        response.headers["Allow"] = ", ".join(exc.valid_methods)
    return response


def digits_up_to(limit: int) -> str:
    """A regex for the decimal numbers 1..limit, without leading zeros."""
    top = str(limit)
    choices = [rf"[1-9]\d{{0,{len(top) - 2}}}"] if len(top) > 1 else []
    for i, ch in enumerate(top):
        low = "1" if i == 0 else "0"
        if ch > low:
            choices.append(f"{top[:i]}[{low}-{chr(ord(ch) - 1)}]" + rf"\d{{{len(top) - i - 1}}}")
    choices.append(top)
    return "(?:" + "|".join(choices) + ")"


class RowIdConverter(IntegerConverter):
    """`<int:...>` for config-store row ids: 1 .. 2^31 - 1, the range every backend's
    INTEGER primary key holds. The range is in the pattern itself: werkzeug checks methods
    before converters, so an id refused by `max` would answer 405 to a PUT, not 404."""

    regex = digits_up_to(MAX_ROW_ID)

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("min", 1)
        kwargs.setdefault("max", MAX_ROW_ID)
        super().__init__(map, *args, **kwargs)


def _register_optional(app: Flask) -> None:
    """Blueprints of the other layers, each wiring itself through its own init_app."""
    import importlib

    for module in ("tracker.collector", "tracker.api", "dashboard"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        init = getattr(mod, "init_app", None)
        if init is not None:
            init(app)


def store_of(app: Flask) -> Store:
    store: Store = app.extensions["funnel_store"]
    return store


def settings_of(app: Flask) -> Settings:
    settings: Settings = app.config["FUNNEL_SETTINGS"]
    return settings
