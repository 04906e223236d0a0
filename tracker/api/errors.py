"""JSON errors for the API: every failure is `{"error": code, "detail": ...}` with its status."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify
from werkzeug.exceptions import HTTPException


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

    @bp.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> tuple[Response, int]:
        code = exc.code or 500
        name = (exc.name or "error").lower().replace(" ", "_")
        return error_response(code, name, exc.description)
