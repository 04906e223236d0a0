"""Outcomes of ingest steps: a request-level error (HTTP status + code) or a per-event drop."""

from __future__ import annotations

from typing import Any


class RequestError(Exception):
    """The whole request is refused: answered as `{"error": code, "detail": ...}`."""

    def __init__(
        self, status: int, code: str, detail: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(code)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers or {}


class Drop(Exception):
    """One event is not stored; `reason` is the counted drop reason."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail


# Every per-event drop reason, documented in the README and the OpenAPI spec.
DROP_REASONS: dict[str, str] = {
    "bot": "the user agent is a crawler, a bot or a headless browser",
    "invalid_event": "the event is not a JSON object",
    "invalid_type": "type is not pageview, click or event",
    "missing_name": "an event of type `event` has no name",
    "invalid_field": "a field has the wrong type or an unusable value",
    "invalid_id": "id is not a UUID",
    "invalid_ts": "ts is neither epoch milliseconds nor ISO-8601, or out of range",
    "invalid_url": "url is not an http(s) URL",
    "too_many_props": "props has more than 50 entries",
    "invalid_props": "props is not a flat map of string/number/bool with capped lengths",
    "invalid_encoding": "a string holds characters that are not valid Unicode",
    "duplicate": "the same event id appears twice in one request",
}
