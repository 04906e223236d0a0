"""JSON errors for the API: every failure is `{"error": code, "detail": ...}` with its status."""

from __future__ import annotations

from typing import Any

from clickhouse_connect.driver.exceptions import ClickHouseError
from flask import Blueprint, Response, current_app, jsonify, request
from werkzeug.exceptions import HTTPException

from tracker.clickhouse import StoreUnavailableError, timeout_advice

RETRY_AFTER_S = 5


class ApiError(Exception):
    def __init__(self, status: int, error: str, detail: Any = None) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.detail = detail


def error_response(status: int, error: str, detail: Any = None) -> tuple[Response, int]:
    body: dict[str, Any] = {"error": error}
    if detail is not None:
        body["detail"] = detail
    return jsonify(body), status


def register_error_handlers(bp: Blueprint) -> None:
    @bp.errorhandler(ApiError)
    def _api_error(exc: ApiError) -> tuple[Response, int]:
        return error_response(exc.status, exc.error, exc.detail)

    # An outage of the event store, or a query past its time limit, is a 503 with a reason and
    # a retry hint, as the OpenAPI document says, never a bare 500.
    @bp.errorhandler(StoreUnavailableError)
    def _store_down(exc: StoreUnavailableError) -> tuple[Response, int]:
        current_app.logger.warning("store unavailable on %s: %s", request.path, exc)
        return _unavailable("ClickHouse is not answering; try again in a moment.")

    @bp.errorhandler(ClickHouseError)
    def _store_error(exc: ClickHouseError) -> tuple[Response, int]:
        advice = timeout_advice(exc, current_app.config["FUNNEL_SETTINGS"].query_timeout)
        if advice:
            return error_response(503, "query_timeout", advice)
        current_app.logger.exception("ClickHouse error on %s", request.path)
        return _unavailable("ClickHouse could not answer; try again in a moment.")

    @bp.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        code = exc.code or 500
        name = (exc.name or "error").lower().replace(" ", "_")
        response, status = error_response(code, name, exc.description)
        # The exception's own headers (Allow on a 405, Retry-After, WWW-Authenticate) are
        # part of the answer; only its HTML Content-Type is not.
        for header, value in exc.get_headers():
            if header.lower() != "content-type":
                response.headers[header] = value
        return response, status

    @bp.after_request
    def _no_body_no_type(response: Response) -> Response:
        # A 204 has no body, so no Content-Type (Flask would label it text/html).
        if response.status_code == 204:
            response.headers.pop("Content-Type", None)
        # Answers hold a site's data for one token's eyes: no shared or disk cache keeps them.
        response.headers.setdefault("Cache-Control", "no-store")
        return response


def _unavailable(detail: str) -> tuple[Response, int]:
    response, status = error_response(503, "clickhouse_unavailable", detail)
    response.headers["Retry-After"] = str(RETRY_AFTER_S)
    return response, status
