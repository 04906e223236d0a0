"""Placeholder; replaced by the report views."""

from __future__ import annotations

from flask.typing import ResponseReturnValue
from flask_login import login_required

from dashboard.access import site_or_404
from dashboard.blueprint import bp


@bp.get("/sites/<site_key>/report")
@login_required
def report(site_key: str) -> ResponseReturnValue:
    site_or_404(site_key)
    return "report"
