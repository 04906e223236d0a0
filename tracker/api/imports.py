"""POST /api/v1/sites/{site}/events:import: historical events, JSON array or NDJSON."""

from __future__ import annotations

from flask import current_app, jsonify, request
from flask.typing import ResponseReturnValue

from tracker.api.auth import bp, require_token, site_for_request
from tracker.api.errors import ApiError
from tracker.clickhouse import StoreUnavailableError
from tracker.collector import metrics
from tracker.collector.state import collector_of
from tracker.ingest import decode
from tracker.ingest.errors import RequestError
from tracker.ingest.importer import import_events
from tracker.ingest.limits import MAX_IMPORT_BODY_BYTES
from tracker.writer import ClickHouseRejectedError


@bp.post("/sites/<site_key>/events:import")
@require_token
def import_site_events(site_key: str) -> ResponseReturnValue:
    site = site_for_request(site_key)
    state = collector_of(current_app)
    try:
        decode.check_content_type(
            request.mimetype, request.mimetype_params.get("charset"), decode.IMPORT_TYPES
        )
        raw = decode.read_body(request.stream, request.content_length, MAX_IMPORT_BODY_BYTES)
        data = decode.decompress(
            raw, request.headers.get("Content-Encoding", ""), MAX_IMPORT_BODY_BYTES
        )
        events = decode.parse_import_body(data)
    except RequestError as exc:
        raise ApiError(exc.status, exc.code, exc.detail) from None
    try:
        summary = import_events(state.store, state.pipeline, site.key, events, state.salts.salt())
    except StoreUnavailableError as exc:
        raise ApiError(503, "clickhouse_unavailable", str(exc)) from None
    except ClickHouseRejectedError as exc:  # validated rows it still refuses: say why
        raise ApiError(422, "rejected_by_clickhouse", str(exc)) from None
    metrics.ACCEPTED.labels("import").inc(summary.imported)
    for reason, count in summary.dropped.items():
        metrics.DROPPED.labels(reason).inc(count)
    return jsonify(summary.to_dict())
