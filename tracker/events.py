"""The stored event row: column names and defaults for the ClickHouse `events` table.

Every writer (batch writer, import, demo) builds rows through `to_row`, so a column added in
schema/ is added here once.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

EVENT_TYPES = ("pageview", "click", "event")

# (column, default) in table order; the defaults match ClickHouse's own.
COLUMNS: tuple[tuple[str, Any], ...] = (
    ("site_id", ""),
    ("event_id", None),
    ("type", "pageview"),
    ("name", ""),
    ("ts", None),
    ("received_at", None),
    ("clock_skewed", 0),
    ("visitor_id", ""),
    ("session_id", ""),
    ("user_id", ""),
    ("url", ""),
    ("host", ""),
    ("path", ""),
    ("query", ""),
    ("title", ""),
    ("referrer", ""),
    ("referrer_host", ""),
    ("source", ""),
    ("medium", ""),
    ("utm_source", ""),
    ("utm_medium", ""),
    ("utm_campaign", ""),
    ("utm_term", ""),
    ("utm_content", ""),
    ("click_id", ""),
    ("click_id_type", ""),
    ("country", ""),
    ("region", ""),
    ("city", ""),
    ("browser", ""),
    ("os", ""),
    ("device", ""),
    ("screen_width", 0),
    ("language", ""),
    ("element_tag", ""),
    ("element_text", ""),
    ("element_href", ""),
    ("element_id", ""),
    ("element_selector", ""),
    ("outbound", 0),
    ("props", None),
    ("value", 0.0),
)
COLUMN_NAMES: tuple[str, ...] = tuple(name for name, _ in COLUMNS)


def to_row(event: Mapping[str, Any]) -> list[Any]:
    """A list in COLUMN_NAMES order; unknown keys are ignored, missing ones defaulted."""
    now = datetime.now(UTC)
    row: list[Any] = []
    for name, default in COLUMNS:
        value = event.get(name, default)
        if value is None:
            if name == "event_id":
                value = uuid.uuid4()
            elif name in ("ts", "received_at"):
                value = now
            elif name == "props":
                value = {}
        elif name == "event_id" and isinstance(value, str):
            value = uuid.UUID(value)
        row.append(value)
    return row
