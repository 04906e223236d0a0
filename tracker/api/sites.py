"""/api/v1 site resources: the sites a token may read, so that a script can find the keys
every other resource is addressed by."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from tracker import accounts
from tracker.api.auth import bp, current_api_user, require_token, site_for_request
from tracker.configdb import db


@bp.get("/sites")
@require_token
def list_sites() -> Any:
    sites = accounts.sites_for(db.session, current_api_user())
    return jsonify({"sites": [accounts.site_to_dict(db.session, s) for s in sites]})


@bp.get("/sites/<site_key>")
@require_token
def get_site(site_key: str) -> Any:
    return jsonify(accounts.site_to_dict(db.session, site_for_request(site_key)))
