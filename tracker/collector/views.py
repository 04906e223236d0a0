"""Collector endpoints: POST /api/collect, GET /r/{code}, GET /t.js, GET /metrics and
GET /api/openapi.json. No cookies and no CSRF here: these are public, cross-site endpoints."""

from __future__ import annotations

import gzip
import hashlib
import logging
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qs

import orjson
from flask import Blueprint, Response, current_app, request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy.orm import Session
from werkzeug.datastructures import EnvironHeaders
from werkzeug.http import HTTP_STATUS_CODES, parse_options_header
from werkzeug.wrappers import Request
from werkzeug.wsgi import get_content_length, get_input_stream

from tracker.collector import metrics
from tracker.collector.openapi import spec
from tracker.collector.ratelimit import retry_after
from tracker.collector.state import Collector, collector_of
from tracker.configdb import db
from tracker.ingest import decode
from tracker.ingest.errors import RequestError
from tracker.ingest.pipeline import Context, now_ms
from tracker.ingest.privacy import client_ip
from tracker.links import link_by_code, redirect_url
from tracker.spool import SpoolFullError

log = logging.getLogger(__name__)

bp = Blueprint("collector", __name__)

_CORS_PREFLIGHT = {
    "Access-Control-Allow-Methods": "POST, OPTIONS",
    "Access-Control-Allow-Headers": "Content-Type, Content-Encoding",
    "Access-Control-Max-Age": "86400",
}
SPOOL_RETRY_AFTER = "5"
# Label lookups done once, not per request.
_COLLECT_ACCEPTED = metrics.REQUESTS.labels("collect", "202")
_ACCEPTED_EVENTS = metrics.ACCEPTED.labels("collect")


def json_response(body: Any, status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(
        orjson.dumps(body),
        status=status,
        headers=headers,
        mimetype="application/json",
    )


def _cors(origin: str | None) -> dict[str, str]:
    if not origin:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}


def preflight(origin: str | None) -> Response:
    """Preflight carries no site key (that is in the body), so every origin may ask; the
    POST itself answers with CORS headers only for the site's own domains."""
    headers = dict(_CORS_PREFLIGHT)
    headers.update(_cors(origin))
    resp = Response(status=204, headers=headers)
    # A 204 has no body, so a body type (Werkzeug's default text/plain) would only mislead.
    del resp.headers["Content-Type"]
    return resp


class EnvironRequest:
    """What `_collect` reads of a request, straight from the WSGI environ. Building a full
    werkzeug Request and Response per call cost about a tenth of a 50-event request's CPU."""

    def __init__(self, environ: dict[str, Any]) -> None:
        self.headers = EnvironHeaders(environ)
        mimetype, params = parse_options_header(environ.get("CONTENT_TYPE", ""))
        self.mimetype = mimetype.lower()
        self.mimetype_params = params
        self.content_length = get_content_length(environ)
        self.stream = get_input_stream(environ)
        self.remote_addr: str | None = environ.get("REMOTE_ADDR")
        self.query = environ.get("QUERY_STRING", "")


def _tidy(req: Request | EnvironRequest) -> bool:
    """POST /api/collect?tidy: t.js's requests, whose events the collector tidies (see
    tracker.ingest.validate) instead of dropping them for a detail."""
    query = req.query if isinstance(req, EnvironRequest) else req.query_string.decode("latin-1")
    # t.js sends exactly "tidy": no parsing on the hot path for it.
    return query == "tidy" or (bool(query) and "tidy" in parse_qs(query, keep_blank_values=True))


def collect_answer(
    state: Collector, req: Request | EnvironRequest
) -> tuple[int, dict[str, str], bytes]:
    """POST /api/collect without a Flask context: (status, headers, JSON body)."""
    origin = req.headers.get("Origin")
    try:
        body, status = _collect(state, req, origin)
    except RequestError as exc:
        metrics.REQUESTS.labels("collect", str(exc.status)).inc()
        headers = _cors(origin) if exc.status != 403 else {}
        error: dict[str, Any] = {"error": exc.code}
        if exc.detail is not None:
            error["detail"] = exc.detail
        return exc.status, {**exc.headers, **headers}, orjson.dumps(error)
    (_COLLECT_ACCEPTED if status == 202 else metrics.REQUESTS.labels("collect", str(status))).inc()
    return status, _cors(origin), orjson.dumps(body)


def handle_collect(state: Collector, req: Request | EnvironRequest) -> Response:
    status, headers, body = collect_answer(state, req)
    return Response(body, status=status, headers=headers, mimetype="application/json")


@bp.route("/api/collect", methods=["OPTIONS"])
def collect_preflight() -> Response:
    return preflight(request.headers.get("Origin"))


@bp.post("/api/collect")
def collect() -> Response:
    return handle_collect(collector_of(), request)


def _collect(
    state: Collector, req: Request | EnvironRequest, origin: str | None
) -> tuple[dict[str, Any], int]:
    decode.check_content_type(
        req.mimetype, req.mimetype_params.get("charset"), decode.COLLECT_TYPES
    )
    if state.writer.started and state.writer.spool.is_full():
        raise RequestError(
            503,
            "spool_full",
            "the collector is backlogged; retry later",
            {"Retry-After": SPOOL_RETRY_AFTER},
        )
    raw = decode.read_body(req.stream, req.content_length)
    data = decode.decompress(raw, req.headers.get("Content-Encoding", ""))
    tidy = _tidy(req)
    site_key, events = decode.split_collect_body(decode.parse_json(data, repair=tidy))
    site = state.sites.get(site_key)
    if site is None:
        raise RequestError(403, "unknown_site", f"no site with key {site_key[:64]!r}")
    if not site.allows_origin(origin):
        raise RequestError(
            403, "origin_not_allowed", "this origin is not one of the site's domains"
        )
    ip = client_ip(
        req.remote_addr, req.headers.get("X-Forwarded-For"), state.settings.trusted_proxies
    )
    wait = state.limiter.check(site.key, ip)
    if wait:
        raise RequestError(
            429,
            "rate_limited",
            "too many requests from this client",
            {"Retry-After": retry_after(wait)},
        )
    ctx = Context(
        site=site.key,
        ip=ip,
        user_agent=req.headers.get("User-Agent", "")[:1000],
        headers=req.headers,  # type: ignore[arg-type]
        now_ms=now_ms(),
        salt=state.salts.salt(),
        tidy=tidy,
    )
    result = state.pipeline.run(events, ctx)
    for reason, count in result.dropped.items():
        metrics.DROPPED.labels(reason).inc(count)
    if result.lines:
        try:
            state.writer.append(b"".join(result.lines), len(result.lines))
        except SpoolFullError:
            raise RequestError(
                503,
                "spool_full",
                "the collector is backlogged; retry later",
                {"Retry-After": SPOOL_RETRY_AFTER},
            ) from None
        _ACCEPTED_EVENTS.inc(len(result.lines))
    elif result.dropped and not result.dropped.get("bot"):
        # Nothing usable at all: say why, so a broken integration is noticed.
        reason = next(iter(result.dropped))
        detail = "; ".join(result.details) or reason
        raise RequestError(400, reason, {"message": detail, "dropped": dict(result.dropped)})
    return {"accepted": result.accepted, "dropped": dict(result.dropped)}, 202


class CollectFastPath:
    """WSGI middleware answering /api/collect before Flask's request machinery (context,
    session, hooks, routing): the hot endpoint pays only for its own work. Everything else
    goes to the Flask app unchanged."""

    def __init__(self, wsgi_app: Any, state: Collector) -> None:
        self.wsgi_app = wsgi_app
        self.state = state

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        if environ.get("PATH_INFO") == "/api/collect":
            method = environ.get("REQUEST_METHOD")
            if method == "POST":
                try:
                    status, headers, body = collect_answer(self.state, EnvironRequest(environ))
                except Exception:
                    log.exception("collect failed")
                    status, headers = 500, {}
                    body = b'{"error":"internal_error","detail":"see the server log"}'
                start_response(
                    f"{status} {HTTP_STATUS_CODES.get(status, '')}",
                    [
                        ("Content-Type", "application/json"),
                        ("Content-Length", str(len(body))),
                        *headers.items(),
                    ],
                )
                return [body]
            if method == "OPTIONS":
                return preflight(environ.get("HTTP_ORIGIN"))(environ, start_response)
        elif environ.get("PATH_INFO") == "/t.js" and environ.get("REQUEST_METHOD") in (
            "GET",
            "HEAD",
        ):
            code, snippet_headers, script = snippet_answer(environ)
            snippet_headers.append(("Content-Length", str(len(script))))
            start_response(f"{code} {HTTP_STATUS_CODES.get(code, '')}", snippet_headers)
            return [] if environ["REQUEST_METHOD"] == "HEAD" else [script]
        return self.wsgi_app(environ, start_response)


@bp.get("/r/<code>")
def tracked_link(code: str) -> Response:
    state = collector_of()
    with Session(db.engine(current_app)) as session:
        link = link_by_code(session, code)
        if link is None:
            metrics.REQUESTS.labels("link", "404").inc()
            return json_response({"error": "not_found", "detail": "unknown link"}, 404)
        target = redirect_url(link)
        site_key = link.site.key
    ip = client_ip(
        request.remote_addr, request.headers.get("X-Forwarded-For"), state.settings.trusted_proxies
    )
    ctx = Context(
        site=site_key,
        ip=ip,
        user_agent=request.headers.get("User-Agent", "")[:1000],
        headers=request.headers,  # type: ignore[arg-type]
        now_ms=now_ms(),
        salt=state.salts.salt(),
        mode="link",
    )
    event = {
        "type": "click",
        "name": "tracked_link",
        "url": target[:2048],
        "referrer": request.headers.get("Referer", "")[:2048],
        "element": {"href": target[:2048]},
        "props": {"link_code": code},
    }
    result = state.pipeline.run([event], ctx)
    for reason, count in result.dropped.items():
        metrics.DROPPED.labels(reason).inc(count)
    if result.lines:
        try:
            state.writer.append(b"".join(result.lines), len(result.lines))
            metrics.ACCEPTED.labels("link").inc()
        except SpoolFullError:
            # The visitor still gets where they were going; the click is counted as dropped.
            metrics.DROPPED.labels("spool_full").inc()
    metrics.REQUESTS.labels("link", "302").inc()
    return Response(
        status=302,
        headers={"Location": target, "Cache-Control": "no-store", "Referrer-Policy": "origin"},
    )


# -- the snippet -----------------------------------------------------------------------------


class _Snippet(NamedTuple):
    mtime: float
    plain: bytes
    gzipped: bytes
    etag: str  # of the plain bytes; the gzipped answer's adds -gz (another representation)


_snippet_cache: dict[str, _Snippet] = {}


def snippet_path() -> Path | None:
    here = Path(__file__).resolve().parents[1]
    for candidate in (here.parent / "js" / "dist" / "t.js", here / "_js" / "t.js"):
        if candidate.is_file():
            return candidate
    return None


def snippet_answer(environ: dict[str, Any]) -> tuple[int, list[tuple[str, str]], bytes]:
    """GET /t.js: (status, headers, body), gzipped when the client takes it (about 40% of
    the bytes), with an ETag for revalidation. Answered by the fast path, outside Flask: a
    session hook there would add `Vary: Cookie` and split every shared cache per visitor."""
    path = snippet_path()
    if path is None:
        body = orjson.dumps(
            {"error": "snippet_missing", "detail": "js/dist/t.js has not been built yet"}
        )
        return 404, [("Content-Type", "application/json")], body
    mtime = path.stat().st_mtime
    cached = _snippet_cache.get(str(path))
    if cached is None or cached.mtime != mtime:
        data = path.read_bytes()
        etag = hashlib.sha256(data).hexdigest()[:20]
        cached = _Snippet(mtime, data, gzip.compress(data, 9, mtime=0), etag)
        _snippet_cache[str(path)] = cached
    gzipped = "gzip" in environ.get("HTTP_ACCEPT_ENCODING", "").lower()
    etag = f'"{cached.etag}-gz"' if gzipped else f'"{cached.etag}"'
    headers = [
        ("ETag", etag),
        ("Cache-Control", "public, max-age=86400, stale-while-revalidate=604800"),
        ("Access-Control-Allow-Origin", "*"),
        ("Vary", "Accept-Encoding"),
    ]
    if etag in environ.get("HTTP_IF_NONE_MATCH", ""):
        return 304, headers, b""
    headers.append(("Content-Type", "application/javascript; charset=utf-8"))
    if gzipped:
        headers.append(("Content-Encoding", "gzip"))
    return 200, headers, cached.gzipped if gzipped else cached.plain


@bp.get("/t.js")
def snippet() -> Response:
    # Normally answered by CollectFastPath before Flask; kept as a route for url_for.
    status, headers, body = snippet_answer(request.environ)
    return Response(body, status=status, headers=headers)


# -- ops ---------------------------------------------------------------------------------------


@bp.get("/metrics")
def prometheus_metrics() -> Response:
    return Response(generate_latest(metrics.REGISTRY), mimetype=CONTENT_TYPE_LATEST)


@bp.get("/api/openapi.json")
def openapi() -> Response:
    return json_response(spec(), 200, {"Access-Control-Allow-Origin": "*"})
