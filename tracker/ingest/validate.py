"""Validate step: one raw event object to a normalised dict, or a Drop with a named reason.

`tidy` is how the collector takes t.js's events (POST /api/collect?tidy): the snippet sends
what the page gave it, and what it would cost bytes to clean in the browser is cleaned here.
A detail the collector cannot store is left out or cut instead of costing the event: prop
entries that are not a string, finite number or bool (and entries past the 50th, keys over
128 characters), a value that is not a number or a numeric string, an id over 128
characters, element fields that are not text, text of any length (cut to its cap). The
outbound flag and the CSS selector are derived from the element. Lone surrogates were
already replaced when the body was parsed (decode.parse_json). Without `tidy` every one of
these drops the event with its reason, as the API promises.
"""

from __future__ import annotations

import math
import re
import uuid
from datetime import UTC, datetime
from itertools import islice
from typing import Any
from urllib.parse import urlsplit

from tracker.ingest import limits as L
from tracker.ingest.errors import Drop

EVENT_TYPES = frozenset(("pageview", "click", "event"))
_DIGITS = re.compile(r"^-?\d{1,16}(\.\d+)?$")
_CANONICAL_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_MIN_MS = 0  # 1970-01-01
TIDY_ELEMENT_TEXT_CHARS = 100  # what t.js used to keep of a clicked element's text
_MAX_MS = 7_258_118_400_000  # 2200-01-01


def _text(
    raw: dict[str, Any], key: str, cap: int, truncate: bool = True, tidy: bool = False
) -> str:
    value = raw.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        if tidy:
            return ""  # an SVG link's href object, say: left out
        raise Drop("invalid_field", f"{key} must be a string")
    if tidy and truncate:
        return value[:cap]
    if len(value) > cap:
        if not truncate or len(value) > L.MAX_ANY_TEXT_CHARS:
            limit = cap if not truncate else L.MAX_ANY_TEXT_CHARS
            raise Drop("invalid_field", f"{key} is longer than {limit} characters")
        value = value[:cap]  # page-derived text (titles, link text) is cut to its cap
    return value


def _ident(raw: dict[str, Any], key: str, tidy: bool = False) -> str:
    """visitor/session/user ids: strings, or numbers some sites use for user ids."""
    value = raw.get(key)
    if value is None:
        return ""
    if value.__class__ is str and len(value) <= L.MAX_ID_CHARS:
        return value.strip()  # the usual case, decided before the general one
    if isinstance(value, bool) or not isinstance(value, str | int):
        if tidy:
            return ""
        raise Drop("invalid_field", f"{key} must be a string")
    text = str(value).strip()
    if len(text) > L.MAX_ID_CHARS:
        if tidy:
            return ""  # a stored id no longer usable: the event counts without it
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


def _tidy_props(value: Any) -> dict[str, str]:
    """The storable part of props: at most the first 50 entries, each with a key of 1-128
    characters and a string (cut to 1,024 characters), finite number or bool value."""
    if not isinstance(value, dict):
        return {}
    out: dict[str, str] = {}
    for key, item in islice(value.items(), L.MAX_PROPS):
        if not key or len(key) > L.MAX_PROP_KEY_CHARS:
            continue
        if isinstance(item, bool):
            out[key] = "true" if item else "false"
        elif isinstance(item, str):
            out[key] = item[: L.MAX_PROP_VALUE_CHARS]
        elif isinstance(item, int) and abs(item) < 10**L.MAX_PROP_VALUE_CHARS:
            out[key] = str(item)
        elif isinstance(item, float) and math.isfinite(item):
            out[key] = repr(item)
    return out


def _tidy_number(value: Any) -> float:
    """A sale value from a number or a numeric string ('49.90'); 0 (none) for anything else
    or beyond 1e15."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return 0.0
    try:
        number = float(value)
    except (ValueError, OverflowError):
        return 0.0
    return number if math.isfinite(number) and abs(number) <= 1e15 else 0.0


_CSS_PLAIN = re.compile(r"[\w-]", re.ASCII)


def css_escape(text: str) -> str:
    """CSS.escape() as the CSSOM specifies it, so a selector built here is the one the
    browser would have built: valid for document.querySelector whatever the names hold."""
    out = []
    for i, ch in enumerate(text):
        code = ord(ch)
        if code == 0:
            out.append("\ufffd")
        elif (
            code < 0x20
            or code == 0x7F
            or (ch.isdigit() and ch.isascii() and (i == 0 or (i == 1 and text[0] == "-")))
        ):
            out.append(f"\\{code:x} ")
        elif i == 0 and ch == "-" and len(text) == 1:
            out.append("\\-")
        elif code >= 0x80 or _CSS_PLAIN.match(ch):
            out.append(ch)
        else:
            out.append("\\" + ch)
    return "".join(out)


def _selector(tag: str, element_id: str, classes: str) -> str:
    """The selector: "#id", else the tag and its first two classes ("a.btn.cta"), escaped."""
    if element_id:
        return "#" + css_escape(element_id)
    return ".".join([tag, *(css_escape(c) for c in classes.split()[:2])])


def _host(url: str) -> str:
    try:
        return urlsplit(url).netloc.rpartition("@")[2].lower()
    except ValueError:
        return ""


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


def validate_event(
    raw: Any, now_ms: int, keep_ts: bool = False, tidy: bool = False
) -> dict[str, Any]:
    """Normalise one event. `keep_ts` (imports) keeps historical timestamps as given; `tidy`
    (t.js) cleans what would otherwise drop the event (see the module docstring)."""
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
        if not tidy:
            raise Drop("invalid_field", "element must be an object")
        element = None

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
        "referrer": _text(raw, "referrer", L.MAX_URL_CHARS, tidy=tidy),
    }
    # A column at its default is left out: the stored row is the same (no column of `events`
    # has a DEFAULT expression) and each key costs the spooled line and ClickHouse's parser.
    # The checks still run in field order, so the first bad field names the drop.
    if name:
        event["name"] = name
    if skewed:
        event["clock_skewed"] = skewed
    if title := _text(raw, "title", L.MAX_TITLE_CHARS, tidy=tidy):
        event["title"] = title
    event["visitor_id"] = _ident(raw, "visitor", tidy)
    if session := _ident(raw, "session", tidy):
        event["session_id"] = session
    event["user_id"] = _ident(raw, "user", tidy)
    if get("props") is not None and (
        props := _tidy_props(raw["props"]) if tidy else _props(raw["props"])
    ):
        event["props"] = props
    if get("value") is not None and (
        value := _tidy_number(raw["value"]) if tidy else _number(raw, "value")
    ):
        event["value"] = value
    if screen_width:
        event["screen_width"] = screen_width
    if get("language") is not None and (
        language := _text(raw, "language", L.MAX_LANGUAGE_CHARS, tidy=tidy)
    ):
        event["language"] = language
    if element:
        tag = _text(element, "tag", 64, tidy=tidy)
        event["element_tag"] = tag.lower()
        text = _text(element, "text", L.MAX_ELEMENT_TEXT_CHARS, tidy=tidy)
        if tidy:  # t.js sends the text as the page has it: whitespace collapsed here, 100 kept
            text = " ".join(text.split())[:TIDY_ELEMENT_TEXT_CHARS]
        event["element_text"] = text
        href = event["element_href"] = _text(element, "href", L.MAX_URL_CHARS, tidy=tidy)
        element_id = event["element_id"] = _text(element, "id", 256, tidy=tidy)
        selector = _text(element, "selector", L.MAX_SELECTOR_CHARS, tidy=tidy)
        if tidy and not selector:
            classes = _text(element, "class", L.MAX_SELECTOR_CHARS, tidy=True)
            selector = _selector(tag, element_id, classes)[: L.MAX_SELECTOR_CHARS]
        event["element_selector"] = selector
        if tidy and outbound is None and href:
            # A link to another host (as the page sees hosts: name and port).
            outbound = _host(href) not in ("", _host(url))
    if outbound:
        event["outbound"] = 1
    return event
