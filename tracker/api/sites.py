"""/api/v1 site resources: the sites a token may read, so that a script can find the keys
every other resource is addressed by."""

from __future__ import annotations

from typing import Any

from flask import jsonify

from tracker import accounts
from tracker import funnels as funnel_service
from tracker.api.auth import bp, current_api_user, require_token, site_for_request
from tracker.configdb import db
from tracker.models import Site


def site_to_dict(site: Site) -> dict[str, Any]:
    return {
        "key": site.key,
        "name": site.name,
        "domains": list(site.domains or []),
        "timezone": site.timezone,
        "currency": site.currency or None,
        "retention_days": site.retention_days or None,  # None: events are kept for ever
        "created_at": site.created_at.isoformat() + "Z" if site.created_at else None,
        # Queried, not the relationship: a collection loaded earlier in the session would miss
        # a funnel added since by id (the template funnel of a new site is).
        "funnels": [
            {"id": f.id, "name": f.name} for f in funnel_service.list_funnels(db.session, site)
        ],
    }


@bp.get("/sites")
@require_token
def list_sites() -> Any:
    sites = accounts.sites_for(db.session, current_api_user())
    return jsonify({"sites": [site_to_dict(s) for s in sites]})


@bp.get("/sites/<site_key>")
@require_token
def get_site(site_key: str) -> Any:
    return jsonify(site_to_dict(site_for_request(site_key)))
