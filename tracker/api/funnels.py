"""/api/v1 funnel resources: definitions (CRUD), reports, trends, pipeline, persons, journeys
and CSV exports. Views stay thin: they parse, call tracker.funnels / tracker.reports, answer."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from functools import wraps
from typing import Any, TypeVar

from flask import Response, current_app, jsonify, request, stream_with_context
from werkzeug.exceptions import RequestEntityTooLarge

from tracker import funnels as funnel_service
from tracker.api.auth import bp, require_token, site_for_request
from tracker.api.errors import ApiError
from tracker.app import store_of
from tracker.clickhouse import Store
from tracker.configdb import db
from tracker.erasure import MAX_ID_LENGTH
from tracker.models import Funnel, Site
from tracker.reports.query import (
    REPEATABLE,
    SINGLE_VALUED,
    QueryError,
    ReportQuery,
    parse_report_query,
)
from tracker.stages.definitions import INVALID_TEXT, DefinitionError, invalid_text_path

F = TypeVar("F", bound=Callable[..., Any])
MAX_JSON_BODY_BYTES = 1 << 20  # definitions, inline reports and previews


def _store() -> Store:
    return store_of(current_app)


def handle_input_errors(func: F) -> F:
    """Bad definitions and report parameters become 400s with a reason."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DefinitionError as exc:
            db.session.rollback()
            return jsonify(
                {"error": "invalid_definition", "detail": str(exc), "errors": exc.errors}
            ), 400
        except QueryError as exc:
            raise ApiError(400, "invalid_query", str(exc)) from None
        except Exception as exc:
            # A pattern RE2 refuses surfaces only when ClickHouse compiles it.
            text = str(exc)
            if "regular expression" in text.lower() or "re2" in text.lower():
                raise ApiError(400, "invalid_pattern", "a regex or glob value is invalid") from None
            raise

    return wrapper  # type: ignore[return-value]


def _json_body() -> dict[str, Any]:
    # Definitions and report arguments take a few KiB: the cap keeps a client from making
    # the process read and parse any size (the app sets no global limit, as the collector
    # and the import endpoint bound their own bodies). Declared or streamed, both stop here.
    request.max_content_length = MAX_JSON_BODY_BYTES
    try:
        data = request.get_json(silent=True)
    except RequestEntityTooLarge:
        raise ApiError(
            413, "body_too_large", f"a JSON body may be at most {MAX_JSON_BODY_BYTES} bytes"
        ) from None
    except RecursionError:  # nesting deeper than the parser's stack; not a definition anyway
        data = None
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "send a JSON object body")
    # json.loads accepts "\ud800" escapes; such text would fail only later, in SQLite (a 500)
    # or as a ClickHouse parameter (a misleading 503), so it is refused as it arrives.
    bad = invalid_text_path(data)
    if bad is not None:
        raise ApiError(400, "invalid_encoding", f"{INVALID_TEXT}, at {bad or 'the top level'}")
    return data


def _funnel_or_404(site: Site, funnel_id: int) -> Funnel:
    funnel = funnel_service.get_funnel(db.session, site, funnel_id)
    if funnel is None:
        raise ApiError(404, "not_found", f"no funnel {funnel_id} on this site")
    return funnel


@bp.get("/sites/<site_key>/funnels")
@require_token
def list_funnels(site_key: str) -> Any:
    site = site_for_request(site_key)
    return jsonify(
        {
            "funnels": [
                funnel_service.funnel_to_dict(f)
                for f in funnel_service.list_funnels(db.session, site)
            ]
        }
    )


@bp.post("/sites/<site_key>/funnels")
@require_token
@handle_input_errors
def create_funnel(site_key: str) -> Any:
    site = site_for_request(site_key)
    funnel = funnel_service.create_funnel(db.session, site, _json_body())
    db.session.commit()
    return jsonify(funnel_service.funnel_to_dict(funnel)), 201


@bp.post("/sites/<site_key>/funnels/<int:funnel_id>/duplicate")
@require_token
def duplicate_funnel(site_key: str, funnel_id: int) -> Any:
    site = site_for_request(site_key)
    _funnel_or_404(site, funnel_id)
    funnel = funnel_service.duplicate_funnel(db.session, site, funnel_id)
    db.session.commit()
    return jsonify(funnel_service.funnel_to_dict(funnel)), 201


@bp.get("/sites/<site_key>/funnels/<int:funnel_id>")
@require_token
def get_funnel(site_key: str, funnel_id: int) -> Any:
    site = site_for_request(site_key)
    return jsonify(funnel_service.funnel_to_dict(_funnel_or_404(site, funnel_id)))


@bp.put("/sites/<site_key>/funnels/<int:funnel_id>")
@require_token
@handle_input_errors
def update_funnel(site_key: str, funnel_id: int) -> Any:
    site = site_for_request(site_key)
    _funnel_or_404(site, funnel_id)
    funnel = funnel_service.update_funnel(db.session, site, funnel_id, _json_body())
    db.session.commit()
    return jsonify(funnel_service.funnel_to_dict(funnel))


@bp.delete("/sites/<site_key>/funnels/<int:funnel_id>")
@require_token
def delete_funnel(site_key: str, funnel_id: int) -> Any:
    site = site_for_request(site_key)
    _funnel_or_404(site, funnel_id)
    funnel_service.delete_funnel(db.session, site, funnel_id)
    db.session.commit()
    return Response(status=204)


def _inline_definition(body: dict[str, Any]) -> Any:
    """The definition of a preview request: the body itself, or its "definition" member."""
    return body if "stages" in body else body.get("definition", body)


def _saved_funnel(site_key: str, funnel_id: int) -> tuple[Site, dict[str, Any], ReportQuery]:
    """The site, the stored funnel's definition and the report query of this request."""
    site = site_for_request(site_key)
    funnel = _funnel_or_404(site, funnel_id)
    return site, funnel_service.funnel_definition(funnel), parse_report_query(request.args, site)


@bp.get("/sites/<site_key>/funnels/<int:funnel_id>/report")
@require_token
@handle_input_errors
def funnel_report(site_key: str, funnel_id: int) -> Any:
    from tracker.reports import funnel_report as build

    site, definition, query = _saved_funnel(site_key, funnel_id)
    return jsonify(build(_store(), site, definition, query))


@bp.post("/sites/<site_key>/funnel-report")
@require_token
@handle_input_errors
def inline_report(site_key: str) -> Any:
    """A report for a definition sent in the body (previews of unsaved edits)."""
    from tracker.reports import funnel_report as build

    site = site_for_request(site_key)
    body = _json_body()
    definition = _inline_definition(body)
    args: dict[str, Any] = {}
    for key in request.args:
        values = request.args.getlist(key)
        args[key] = values if key in REPEATABLE else values[0]  # repeats agree (require_token)
    for key, value in _body_query(body).items():
        if key in REPEATABLE:
            args[key] = [*args.get(key, []), *value]  # every filter applies
        elif key in args and args[key] != value:
            raise QueryError(
                f"query.{key} is {value!r} but the URL says {key}={args[key]!r}; give one"
            )
        else:
            args[key] = value
    query = parse_report_query(args, site)
    return jsonify(build(_store(), site, definition, query))


def _json_type(value: Any) -> str:
    names = {bool: "true/false", int: "a number", float: "a number", dict: "an object"}
    return names.get(type(value), "a list" if isinstance(value, list) else "null")


def _body_query(body: dict[str, Any]) -> dict[str, Any]:
    """The report arguments of an inline report's body (`query`), as the query string would
    give them: text, lists of text for the repeatable ones. A wrong type is a 400 naming the
    key rather than a value silently ignored or turned into text."""
    raw = body.get("query")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise QueryError('query must be an object of report arguments, e.g. {"from": "2026-03-01"}')
    out: dict[str, Any] = {}
    for key, value in raw.items():
        if value is None:
            continue  # as if not given
        if key in REPEATABLE:
            values = value if isinstance(value, list) else [value]
            wrong = next((v for v in values if not isinstance(v, str)), None)
            if wrong is not None:
                raise QueryError(
                    f"query.{key} must be text or a list of texts, got {_json_type(wrong)}"
                )
            out[key] = values
        elif key in SINGLE_VALUED:
            # A count or a window in seconds may come as a JSON number; nothing else may.
            number = key in ("limit", "window") and type(value) is int
            if not isinstance(value, str) and not number:
                raise QueryError(f"query.{key} must be text, got {_json_type(value)}")
            out[key] = str(value)
        else:
            known = ", ".join((*SINGLE_VALUED, *REPEATABLE))
            raise QueryError(f"query.{key} is not a report argument; use one of {known}")
    return out


def _int_arg(name: str, default: int) -> int:
    raw = request.args.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except ValueError:
        raise QueryError(f"{name} must be a whole number") from None


def _csv_response(text: str | Iterable[str], filename: str) -> Response:
    return Response(
        text,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@bp.get("/sites/<site_key>/funnels/<int:funnel_id>/report.csv")
@require_token
@handle_input_errors
def funnel_report_csv(site_key: str, funnel_id: int) -> Any:
    from tracker.reports import funnel_report as build
    from tracker.reports import report_csv

    site, definition, query = _saved_funnel(site_key, funnel_id)
    report = build(_store(), site, definition, query)
    return _csv_response(report_csv(report), f"funnel-{funnel_id}-report.csv")


@bp.get("/sites/<site_key>/funnels/<int:funnel_id>/trends")
@require_token
@handle_input_errors
def funnel_trends(site_key: str, funnel_id: int) -> Any:
    from tracker.reports import funnel_trends as build

    site, definition, query = _saved_funnel(site_key, funnel_id)
    interval = request.args.get("interval", "month")
    return jsonify(build(_store(), site, definition, query, interval))


@bp.get("/sites/<site_key>/funnels/<int:funnel_id>/trends.csv")
@require_token
@handle_input_errors
def funnel_trends_csv(site_key: str, funnel_id: int) -> Any:
    from tracker.reports import funnel_trends as build
    from tracker.reports import trends_csv

    site, definition, query = _saved_funnel(site_key, funnel_id)
    trends = build(_store(), site, definition, query, request.args.get("interval", "month"))
    return _csv_response(trends_csv(trends), f"funnel-{funnel_id}-trends.csv")


@bp.get("/sites/<site_key>/funnels/<int:funnel_id>/pipeline")
@require_token
@handle_input_errors
def funnel_pipeline(site_key: str, funnel_id: int) -> Any:
    from tracker.reports import funnel_pipeline as build

    site, definition, query = _saved_funnel(site_key, funnel_id)
    return jsonify(build(_store(), site, definition, query))


@bp.get("/sites/<site_key>/funnels/<int:funnel_id>/exits")
@require_token
@handle_input_errors
def funnel_exits(site_key: str, funnel_id: int) -> Any:
    from tracker.reports import funnel_exits as build

    site, definition, query = _saved_funnel(site_key, funnel_id)
    stage = request.args.get("stage")
    if not stage:
        raise QueryError("stage is required (a stage key of the funnel)")
    limit = query.breakdown_limit  # `limit`: how many paths, as for breakdown values
    return jsonify(build(_store(), site, definition, query, stage, limit=limit))


def _stage_arg() -> str:
    stage = request.args.get("stage")
    if not stage:
        raise QueryError("stage is required (a stage key of the funnel)")
    return stage


def _persons(site_key: str, funnel_id: int) -> dict[str, Any]:
    from tracker.reports import funnel_persons

    site, definition, query = _saved_funnel(site_key, funnel_id)
    return funnel_persons(
        _store(),
        site,
        definition,
        query,
        _stage_arg(),
        request.args.get("status", "reached"),
        page=_int_arg("page", 1),
        per_page=_int_arg("per_page", 50),
    )


@bp.get("/sites/<site_key>/funnels/<int:funnel_id>/persons")
@require_token
@handle_input_errors
def funnel_persons(site_key: str, funnel_id: int) -> Any:
    return jsonify(_persons(site_key, funnel_id))


@bp.get("/sites/<site_key>/funnels/<int:funnel_id>/persons.csv")
@require_token
@handle_input_errors
def funnel_persons_csv(site_key: str, funnel_id: int) -> Any:
    """Every person of the list (up to MAX_EXPORT_PERSONS), streamed page by page; with
    page or per_page, only that page. X-Total-Count says how many the list holds."""
    from tracker.reports import export_persons, persons_csv, persons_csv_chunks

    filename = f"funnel-{funnel_id}-persons.csv"
    if request.args.get("page") or request.args.get("per_page"):
        result = _persons(site_key, funnel_id)
        response = _csv_response(persons_csv(result), filename)
        response.headers["X-Total-Count"] = str(result["total"])
        return response
    site, definition, query = _saved_funnel(site_key, funnel_id)
    first, rest = export_persons(
        _store(), site, definition, query, _stage_arg(), request.args.get("status", "reached")
    )
    chunks = persons_csv_chunks(first["columns"], itertools.chain([first["persons"]], rest))
    response = _csv_response(stream_with_context(chunks), filename)
    response.headers["X-Total-Count"] = str(first["total"])
    # Past the cap the file holds the first MAX_EXPORT_PERSONS persons in the list's order.
    response.headers["X-Truncated"] = str(first["truncated"]).lower()
    return response


@bp.get("/sites/<site_key>/persons/<path:person_id>/journey")
@require_token
@handle_input_errors
def person_journey(site_key: str, person_id: str) -> Any:
    """Events of a person; labelled with the stages of ?funnel=<id> (default: first funnel),
    and the person's progress in the report given by the report's query arguments."""
    from tracker.reports import person_journey as build

    site = site_for_request(site_key)
    person_id = _person_id(person_id)
    funnel_id = request.args.get("funnel")
    funnel: Funnel | None
    if funnel_id:
        if not funnel_id.isdecimal():
            raise QueryError("funnel must be a funnel id")
        funnel = _funnel_or_404(site, int(funnel_id))
    else:
        funnels = funnel_service.list_funnels(db.session, site)
        funnel = funnels[0] if funnels else None
    definition = funnel_service.funnel_definition(funnel) if funnel else None
    # The report's arguments (from, to, mode, window, filters) give the person's verdict in
    # that report (`progress`), so a journey agrees with the persons list it came from.
    query = parse_report_query(request.args, site) if definition else None
    result = build(_store(), site, definition, person_id, query)
    if not result["events"]:
        # As DELETE …/persons/{id} answers: an id no stored event names is no person.
        raise ApiError(404, "not_found", f"no event of this site names {person_id!r}")
    result["funnel_id"] = funnel.id if funnel else None
    return jsonify(result)


def _person_id(raw: str) -> str:
    """A visitor or user id from the URL, checked as erasure checks it (stripped; not blank,
    no NUL, at most MAX_ID_LENGTH characters), so journey and DELETE agree on what is an id."""
    person = raw.strip()
    if not person:
        raise ApiError(400, "invalid_person", "give a visitor or user id")
    if len(person) > MAX_ID_LENGTH or "\x00" in person:
        raise ApiError(
            400,
            "invalid_person",
            f"not a visitor or user id (at most {MAX_ID_LENGTH} characters, no NUL)",
        )
    return person


@bp.get("/sites/<site_key>/funnels/<int:funnel_id>/preview")
@require_token
@handle_input_errors
def funnel_preview(site_key: str, funnel_id: int) -> Any:
    from tracker.reports import stage_preview

    site = site_for_request(site_key)
    funnel = _funnel_or_404(site, funnel_id)
    definition = funnel_service.funnel_definition(funnel)
    return jsonify(stage_preview(_store(), site, definition, days=_int_arg("days", 30)))


@bp.post("/sites/<site_key>/funnel-preview")
@require_token
@handle_input_errors
def inline_preview(site_key: str) -> Any:
    from tracker.reports import stage_preview

    site = site_for_request(site_key)
    body = _json_body()
    definition = _inline_definition(body)
    return jsonify(stage_preview(_store(), site, definition, days=_int_arg("days", 30)))


@bp.get("/sites/<site_key>/values/<path:field>")
@require_token
@handle_input_errors
def field_values(site_key: str, field: str) -> Any:
    """Top values of a field by persons in the range (for pickers and breakdowns)."""
    from tracker.reports import top_values

    site = site_for_request(site_key)
    query = parse_report_query(request.args, site)
    limit = _int_arg("limit", 20)
    return jsonify({"field": field, "values": top_values(_store(), site, field, query, limit)})
