"""Decode step: the request body to Python objects, with every cap enforced before the work.

A gzip body is inflated with a bounded output size, so a bomb is rejected after at most one
cap's worth of output; snippets that cannot set Content-Encoding (sendBeacon) may send gzip
bytes as they are, recognised by the gzip magic number.
"""

from __future__ import annotations

import json
import re
import zlib
from typing import IO, Any

import orjson

from tracker.ingest.errors import RequestError
from tracker.ingest.limits import MAX_BATCH_EVENTS, MAX_BODY_BYTES
from tracker.text import is_valid_unicode

COLLECT_TYPES = ("application/json", "text/plain", "")
IMPORT_TYPES = ("application/json", "application/x-ndjson", "application/jsonl", "text/plain", "")
_GZIP_MAGIC = b"\x1f\x8b"


def too_large(cap: int) -> RequestError:
    return RequestError(413, "body_too_large", f"the body may hold at most {cap} bytes")


def read_body(stream: IO[bytes], content_length: int | None, cap: int = MAX_BODY_BYTES) -> bytes:
    """At most `cap` bytes from the stream; longer bodies are refused before being read."""
    if content_length is not None and content_length > cap:
        raise too_large(cap)
    data = stream.read(cap + 1)
    if len(data) > cap:
        raise too_large(cap)
    return data


def check_content_type(mimetype: str, charset: str | None, allowed: tuple[str, ...]) -> None:
    if mimetype not in allowed:
        raise RequestError(
            400,
            "unsupported_content_type",
            f"send {' or '.join(t for t in allowed if t)}, not {mimetype!r}",
        )
    if charset and charset.lower().replace("_", "-") not in ("utf-8", "utf8", "us-ascii"):
        raise RequestError(400, "invalid_encoding", f"the body must be UTF-8, not {charset!r}")


def decompress(data: bytes, content_encoding: str, cap: int = MAX_BODY_BYTES) -> bytes:
    """Inflate gzip/deflate bodies without ever producing more than `cap` bytes."""
    encoding = content_encoding.strip().lower()
    if encoding in ("", "identity"):
        if not data.startswith(_GZIP_MAGIC):
            return data
        encoding = "gzip"
    if encoding in ("gzip", "x-gzip"):
        wbits = 16 + zlib.MAX_WBITS
    elif encoding == "deflate":
        wbits = zlib.MAX_WBITS
    else:
        raise RequestError(
            400, "invalid_encoding", f"Content-Encoding {encoding!r} is not gzip or deflate"
        )
    inflater = zlib.decompressobj(wbits)
    try:
        out = inflater.decompress(data, cap + 1)
        if len(out) > cap or inflater.unconsumed_tail:
            raise too_large(cap)
        out += inflater.flush(cap + 1 - len(out))
    except zlib.error:
        raise RequestError(400, "invalid_encoding", "the body is not valid gzip/deflate") from None
    if len(out) > cap:
        raise too_large(cap)
    if not inflater.eof:
        raise RequestError(400, "invalid_encoding", "the compressed body is truncated")
    return out


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _repaired(value: Any) -> Any:
    """`value` with every unpaired surrogate (a "\\ud83d" escape whose other half is
    missing, as when text was cut inside an emoji) replaced by U+FFFD."""
    if isinstance(value, str):
        return value if value.isascii() else _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_repaired(item) for item in value]
    if isinstance(value, dict):
        return {_repaired(k): _repaired(v) for k, v in value.items()}
    return value


def parse_json(data: bytes, repair: bool = False) -> Any:
    """The body as Python objects. `repair` (t.js's tidy requests) replaces unpaired
    surrogates with U+FFFD, as String.prototype.toWellFormed() would, instead of leaving
    them for the pipeline to drop the event as invalid_encoding."""
    # orjson parses valid bodies several times faster (and, like `_no_constants`, refuses
    # NaN and Infinity). Anything it refuses (bad JSON, bad UTF-8, lone surrogate escapes,
    # integers beyond 64 bits, deep nesting) takes the stdlib path below, which accepts or
    # names the problem exactly as before.
    try:
        return orjson.loads(data[3:] if data.startswith(b"\xef\xbb\xbf") else data)
    except orjson.JSONDecodeError:
        pass
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestError(
            400, "invalid_encoding", f"the body is not valid UTF-8 (byte {exc.start})"
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]
    try:
        payload = json.loads(text, parse_constant=_no_constants)
        return _repaired(payload) if repair else payload
    except RecursionError:
        raise RequestError(400, "invalid_json", "the JSON is nested too deeply") from None
    except ValueError as exc:
        raise RequestError(400, "invalid_json", f"the body is not valid JSON: {exc}") from None


def split_collect_body(payload: Any) -> tuple[str, list[Any]]:
    """One event (carrying `site`) or `{"site": KEY, "events": [...]}` -> (site key, events)."""
    if not isinstance(payload, dict):
        raise RequestError(
            400, "invalid_body", 'send one event object or {"site": KEY, "events": [...]}'
        )
    site = payload.get("site")
    if not isinstance(site, str) or not site:
        raise RequestError(400, "missing_site", "the body needs a `site` key (string)")
    if not is_valid_unicode(site):
        # Looked up in the config store, whose driver cannot encode it: a 500 otherwise.
        raise RequestError(400, "invalid_encoding", "the site key holds an unpaired surrogate")
    if "events" in payload:
        events = payload["events"]
        if not isinstance(events, list):
            raise RequestError(400, "invalid_body", "`events` must be a list of event objects")
        if len(events) > MAX_BATCH_EVENTS:
            raise RequestError(
                400, "too_many_events", f"at most {MAX_BATCH_EVENTS} events per request"
            )
        return site, events
    return site, [payload]


def parse_import_body(data: bytes) -> list[Any]:
    """A JSON array of events, or NDJSON (one event per line)."""
    stripped = data.lstrip()
    if stripped.startswith(b"["):
        payload = parse_json(data)
        if not isinstance(payload, list):
            raise RequestError(400, "invalid_body", "send a JSON array of events or NDJSON")
        return payload
    events: list[Any] = []
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            events.append(parse_json(line))
        except RequestError as exc:
            raise RequestError(exc.status, exc.code, f"line {number}: {exc.detail}") from None
    return events
