"""Validate step: one raw event object to a normalised dict, or a Drop with a named reason."""

from __future__ import annotations

import math
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from tracker.ingest import limits as L
from tracker.ingest.errors import Drop

EVENT_TYPES = frozenset(("pageview", "click", "event"))
_DIGITS = re.compile(r"^-?\d{1,16}(\.\d+)?$")
_CANONICAL_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_MIN_MS = 0  # 1970-01-01
_MAX_MS = 7_258_118_400_000  # 2200-01-01


def _text(raw: dict[str, Any], key: str, cap: int, truncate: bool = True) -> str:
    value = raw.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise Drop("invalid_field", f"{key} must be a string")
    if len(value) > cap:
        if not truncate or len(value) > L.MAX_ANY_TEXT_CHARS:
            limit = cap if not truncate else L.MAX_ANY_TEXT_CHARS
            raise Drop("invalid_field", f"{key} is longer than {limit} characters")
        value = value[:cap]  # page-derived text (titles, link text) is cut to its cap
    return value


def _ident(raw: dict[str, Any], key: str) -> str:
    """visitor/session/user ids: strings, or numbers some sites use for user ids."""
    value = raw.get(key)
    if value is None:
        return ""
    if value.__class__ is str and len(value) <= L.MAX_ID_CHARS:
        return value.strip()  # the usual case, decided before the general one
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise Drop("invalid_field", f"{key} must be a string")
    text = str(value).strip()
    if len(text) > L.MAX_ID_CHARS:
        raise Drop("invalid_field", f"{key} is longer than {L.MAX_ID_CHARS} characters")
    return text


def parse_ts(value: Any) -> int:
    """Epoch milliseconds from a number, a numeric string or ISO-8601 text."""
    if isinstance(value, bool):
        raise Drop("invalid_ts", "ts must be epoch milliseconds or ISO-8601")
    if isinstance(value, int | float):
        # isfinite() on an int beyond float range would raise; ints are finite anyway.
        if isinstance(value, float) and not math.isfinite(value):
            raise Drop("invalid_ts", "ts must be finite")
        ms = int(value)
    elif isinstance(value, str):
        text = value.strip()
        if _DIGITS.match(text):
            ms = int(float(text))
        else:
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                raise Drop("invalid_ts", "ts is not ISO-8601") from None
            if parsed.tzinfo is None:
                parsed = parsed.replace(tzinfo=UTC)
            ms = int(parsed.timestamp() * 1000)
    else:
        raise Drop("invalid_ts", "ts must be epoch milliseconds or ISO-8601")
    if not _MIN_MS <= ms < _MAX_MS:
        raise Drop("invalid_ts", "ts is outside 1970..2199")
    return ms


def _props(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Drop("invalid_props", "props must be an object")
    if len(value) > L.MAX_PROPS:
        raise Drop("too_many_props", f"props may hold at most {L.MAX_PROPS} entries")
    out: dict[str, str] = {}
    for key, item in value.items():
        if not key or len(key) > L.MAX_PROP_KEY_CHARS:
            raise Drop("invalid_props", f"prop keys must be 1-{L.MAX_PROP_KEY_CHARS} characters")
        if isinstance(item, bool):
            text = "true" if item else "false"
        elif isinstance(item, str):
            text = item
        elif isinstance(item, int):
            if abs(item) >= 10**L.MAX_PROP_VALUE_CHARS:  # str() would be over the cap
                raise Drop("invalid_props", f"prop {key!r} is too long a number")
            text = str(item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise Drop("invalid_props", f"prop {key!r} is not a finite number")
            text = repr(item)
        else:
            raise Drop("invalid_props", f"prop {key!r} must be a string, number or bool")
        if len(text) > L.MAX_PROP_VALUE_CHARS:
            raise Drop("invalid_props", f"prop values may hold {L.MAX_PROP_VALUE_CHARS} characters")
        out[key] = text
    return out


def _number(raw: dict[str, Any], key: str) -> float:
    value = raw.get(key)
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Drop("invalid_field", f"{key} must be a number")
    try:
        number = float(value)
    except OverflowError:  # an int beyond float range
        number = math.inf
    if not math.isfinite(number) or abs(number) > 1e15:
        raise Drop("invalid_field", f"{key} must be a finite number below 1e15")
    return number


def validate_event(raw: Any, now_ms: int, keep_ts: bool = False) -> dict[str, Any]:
    """Normalise one event. `keep_ts` (imports) keeps historical timestamps as given."""
    if not isinstance(raw, dict):
        raise Drop("invalid_event", "each event must be a JSON object")
    get = raw.get
    etype = get("type", "pageview")
    if not isinstance(etype, str) or etype not in EVENT_TYPES:
        raise Drop("invalid_type", "type must be pageview, click or event")
    name = "" if get("name") is None else _text(raw, "name", L.MAX_NAME_CHARS, False).strip()
    if etype == "event" and not name:
        raise Drop("missing_name", "an event of type `event` needs a name")

    raw_id = get("id")
    if raw_id is None or raw_id == "":
        event_id = ""
    elif isinstance(raw_id, str) and _CANONICAL_UUID.match(raw_id):
        event_id = raw_id  # already canonical: skip the parse on the hot path
    else:
        if not isinstance(raw_id, str):
            raise Drop("invalid_id", "id must be a UUID string")
        try:
            event_id = str(uuid.UUID(raw_id))
        except ValueError:
            raise Drop("invalid_id", "id must be a UUID string") from None

    skewed = 0
    raw_ts = get("ts")
    if raw_ts is None:
        ts = now_ms
    else:
        # Epoch ms in range, what the snippet sends, skips the general parse.
        plain = raw_ts.__class__ is int and _MIN_MS <= raw_ts < _MAX_MS
        ts = raw_ts if plain else parse_ts(raw_ts)
        if not keep_ts and abs(ts - now_ms) > L.CLOCK_SKEW_MS:
            ts, skewed = now_ms, 1  # the client clock is off by more than a day

    url = get("url")
    if url is None:
        url = ""
    elif not isinstance(url, str):
        raise Drop("invalid_field", "url must be a string")
    # A long URL is not refused: enrichment reads its campaign parameters and click id from
    # this much of it, and the stored url is cut to MAX_URL_CHARS (see enrich_url).
    url = url[: L.MAX_URL_READ_CHARS]
    if url and not url.lower().startswith(("http://", "https://")):
        raise Drop("invalid_url", "url must start with http:// or https://")

    element = get("element")
    if element is not None and not isinstance(element, dict):
        raise Drop("invalid_field", "element must be an object")

    screen = get("screen_width")
    if screen is None:
        screen_width = 0
    elif isinstance(screen, bool) or not isinstance(screen, int | float) or not 0 <= screen < 65536:
        raise Drop("invalid_field", "screen_width must be a number from 0 to 65535")
    else:
        screen_width = int(screen)

    outbound = get("outbound")
    if outbound is not None and not isinstance(outbound, bool | int):
        raise Drop("invalid_field", "outbound must be a boolean")

    event: dict[str, Any] = {
        "event_id": event_id,
        "type": etype,
        "ts": ts,
        "url": url,
        "referrer": _text(raw, "referrer", L.MAX_URL_CHARS),
    }
    # A column at its default is left out: the stored row is the same (no column of `events`
    # has a DEFAULT expression) and each key costs the spooled line and ClickHouse's parser.
    # The checks still run in field order, so the first bad field names the drop.
    if name:
        event["name"] = name
    if skewed:
        event["clock_skewed"] = skewed
    if title := _text(raw, "title", L.MAX_TITLE_CHARS):
        event["title"] = title
    event["visitor_id"] = _ident(raw, "visitor")
    if session := _ident(raw, "session"):
        event["session_id"] = session
    event["user_id"] = _ident(raw, "user")
    if get("props") is not None and (props := _props(raw["props"])):
        event["props"] = props
    if get("value") is not None and (value := _number(raw, "value")):
        event["value"] = value
    if screen_width:
        event["screen_width"] = screen_width
    if get("language") is not None and (language := _text(raw, "language", L.MAX_LANGUAGE_CHARS)):
        event["language"] = language
    if outbound:
        event["outbound"] = 1
    if element:
        event["element_tag"] = _text(element, "tag", 64).lower()
        event["element_text"] = _text(element, "text", L.MAX_ELEMENT_TEXT_CHARS)
        event["element_href"] = _text(element, "href", L.MAX_URL_CHARS)
        event["element_id"] = _text(element, "id", 256)
        event["element_selector"] = _text(element, "selector", L.MAX_SELECTOR_CHARS)
    return event
