"""The JSON API under /api/v1, authenticated with `Authorization: Bearer <token>`.

Each resource module registers its routes on `bp` when imported below; views stay thin and
call service functions. Setup happens at import time because a blueprint may be registered on
many apps (one per test).
"""

from __future__ import annotations

from flask import Flask

# Resource modules: importing one registers its routes on `bp`.
from tracker.api import funnels as _funnels  # noqa: F401
from tracker.api import imports as _imports  # noqa: F401
from tracker.api import persons as _persons  # noqa: F401
from tracker.api import sites as _sites  # noqa: F401
from tracker.api.auth import bp
from tracker.api.errors import register_error_handlers

register_error_handlers(bp)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
