"""/api/v1 person resources: erasing a person's stored events (a request to be forgotten).
The journey lives with the funnel resources, as it is labelled with a funnel's stages."""

from __future__ import annotations

from typing import Any

from flask import current_app, jsonify, request

from tracker import erasure
from tracker.api.auth import bp, current_api_user, require_token, site_for_request
from tracker.api.errors import ApiError
from tracker.app import store_of

_TRUE, _FALSE = ("1", "true", "yes"), ("", "0", "false", "no")


def _flag(name: str) -> bool:
    raw = request.args.get(name, "").strip().lower()
    if raw not in _TRUE + _FALSE:
        raise ApiError(400, "invalid_query", f"{name} must be true or false")
    return raw in _TRUE


@bp.delete("/sites/<site_key>/persons/<path:person_id>")
@require_token
def erase_person(site_key: str, person_id: str) -> Any:
    """Erase every stored event of the person (`dry_run=true`: only say what would go;
    `wait=true`: return once the bytes are rewritten off disk, not only hidden)."""
    site = site_for_request(site_key)
    dry_run, wait = _flag("dry_run"), _flag("wait")
    store = store_of(current_app)
    try:
        if dry_run:
            found = erasure.find_person(store, site, person_id)
        else:
            erasure.flush_spool(current_app)
            found = erasure.erase_person(
                store, site, person_id, wait=wait, by=f"{current_api_user().email} (API token)"
            )
    except erasure.PersonNotFoundError as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except erasure.ErasureError as exc:
        raise ApiError(400, "invalid_person", str(exc)) from None
    except erasure.PendingEventsError as exc:
        raise ApiError(503, "spool_pending", str(exc)) from None
    return jsonify({**found.to_dict(), "erased": not dry_run})
