"""POST /api/v1/sites/{site}/events:import: historical events, JSON array or NDJSON; and
GET .../events:export, the stored events in that same format."""

from __future__ import annotations

from datetime import date

from flask import Response, current_app, jsonify, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import RequestEntityTooLarge

from tracker.api.auth import bp, require_token, site_for_request
from tracker.api.errors import ApiError
from tracker.app import store_of
from tracker.clickhouse import StoreUnavailableError
from tracker.collector import metrics
from tracker.collector.state import collector_of
from tracker.export import bounds, iter_lines, plan
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
    # Above the app's form-sized limit; read_body enforces it with the collector's message.
    request.max_content_length = MAX_IMPORT_BODY_BYTES + 1
    try:
        decode.check_content_type(
            request.mimetype, request.mimetype_params.get("charset"), decode.IMPORT_TYPES
        )
        raw = decode.read_body(request.stream, request.content_length, MAX_IMPORT_BODY_BYTES)
        data = decode.decompress(
            raw, request.headers.get("Content-Encoding", ""), MAX_IMPORT_BODY_BYTES
        )
        events = decode.parse_import_body(data)
    except RequestEntityTooLarge:  # declared beyond the cap: refused before reading
        too_large = decode.too_large(MAX_IMPORT_BODY_BYTES)
        raise ApiError(too_large.status, too_large.code, too_large.detail) from None
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


@bp.get("/sites/<site_key>/events:export")
@require_token
def export_site_events(site_key: str) -> ResponseReturnValue:
    """The site's events as NDJSON in the import format (see tracker/export.py), streamed
    chunk by chunk; `from`/`to` (days in the site's time zone) narrow it, default all."""
    site = site_for_request(site_key)
    days = {}
    for name in ("from", "to"):
        text = request.args.get(name, "").strip()
        try:
            days[name] = date.fromisoformat(text) if text else None
        except ValueError:
            raise ApiError(400, "invalid_query", f"{name} must be a date (YYYY-MM-DD)") from None
    try:
        start, end = bounds(site.timezone, days["from"], days["to"])
    except ValueError as exc:
        raise ApiError(400, "invalid_query", str(exc)) from None
    store = store_of(current_app)
    try:
        # Planned before the first byte: a store that cannot answer is a 503, not a cut file.
        spans = plan(store, site.key, start, end)
    except StoreUnavailableError as exc:
        raise ApiError(503, "clickhouse_unavailable", str(exc)) from None

    return Response(
        iter_lines(store, site.key, start, end, spans),
        mimetype="application/x-ndjson",
        headers={
            "Content-Disposition": f'attachment; filename="{site.key}-events.ndjson"',
            "X-Event-Count": str(sum(n for _, _, n in spans)),
        },
    )
