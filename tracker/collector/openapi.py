"""The OpenAPI 3 description of the public endpoints, served at GET /api/openapi.json: the
collector's here, the /api/v1 funnel resources from tracker.api.openapi (schemathesis fuzzes
both against it)."""

from __future__ import annotations

from typing import Any

from tracker.api import openapi as v1
from tracker.ingest import limits as L
from tracker.ingest.errors import DROP_REASONS

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "string"}, "detail": {}},
}


_err = v1.error_response

_RETRY = {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}}

EVENT: dict[str, Any] = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "format": "uuid", "description": "Client id; made if absent."},
        "type": {"type": "string", "enum": ["pageview", "click", "event"]},
        "name": {"type": "string", "maxLength": L.MAX_NAME_CHARS},
        "ts": {
            "description": "Epoch ms or ISO-8601; a clock off by > 24 h is replaced by the "
            "server time (collect only) and the event is flagged clock_skewed.",
            "oneOf": [{"type": "number"}, {"type": "string"}],
        },
        "url": {
            "type": "string",
            "description": f"An http(s) URL. A longer one than {L.MAX_URL_CHARS} characters is "
            f"stored cut to that length; its campaign parameters and click id are read from "
            f"its first {L.MAX_URL_READ_CHARS} characters.",
        },
        "referrer": {"type": "string"},
        "title": {"type": "string"},
        "visitor": {"type": "string"},
        "session": {"type": "string"},
        "user": {"type": "string"},
        "element": {
            "type": "object",
            "properties": {
                **{k: {"type": "string"} for k in ("tag", "text", "href", "id", "selector")},
                "class": {
                    "type": "string",
                    "description": "The class attribute; with ?tidy, a missing selector is "
                    "built from it (#id, else the tag and the first two classes).",
                },
            },
        },
        "props": {
            "type": "object",
            "maxProperties": L.MAX_PROPS,
            "additionalProperties": {
                "oneOf": [{"type": "string"}, {"type": "number"}, {"type": "boolean"}]
            },
        },
        "value": {"type": "number"},
        "screen_width": {"type": "integer", "minimum": 0, "maximum": 65535},
        "language": {"type": "string"},
        "outbound": {"type": "boolean"},
    },
}
SINGLE = {
    "allOf": [
        {"$ref": "#/components/schemas/Event"},
        {"type": "object", "required": ["site"], "properties": {"site": {"type": "string"}}},
    ]
}
BATCH = {
    "type": "object",
    "required": ["site", "events"],
    "properties": {
        "site": {"type": "string"},
        "events": {
            "type": "array",
            "maxItems": L.MAX_BATCH_EVENTS,
            "items": {"$ref": "#/components/schemas/Event"},
        },
    },
}
IMPORT_EVENT = {
    "allOf": [
        {"$ref": "#/components/schemas/Event"},
        {
            "type": "object",
            "properties": {
                "context": {
                    "type": "object",
                    "properties": {
                        k: {"type": "string"}
                        for k in (
                            "ip",
                            "user_agent",
                            "country",
                            "region",
                            "city",
                            "device",
                            "browser",
                            "os",
                        )
                    },
                }
            },
        },
    ]
}


TIDY = (
    "Present (t.js posts to /api/collect?tidy): a detail the collector cannot store is left "
    "out or cut instead of dropping the event. Prop entries that are not a string, finite "
    f"number or bool, with keys over {L.MAX_PROP_KEY_CHARS} characters or past the "
    f"{L.MAX_PROPS}th are left out, strings cut to {L.MAX_PROP_VALUE_CHARS}; props that are "
    "not an object are none. value may be a numeric string ('49.90'); another value is "
    f"left out. A visitor, session or user id over {L.MAX_ID_CHARS} characters or not text is "
    "left out. referrer, title, language and element fields of any length are cut to their "
    "caps; ones that are not text are left out, as is an element that is not an object. "
    "Unpaired surrogates become U+FFFD. Derived when absent: element.selector (from id, tag "
    "and class), outbound (element.href on another host than url), language (the first of "
    "Accept-Language). The other fields are checked as without it."
)


def spec() -> dict[str, Any]:
    drop_list = ", ".join(f"`{k}` ({v})" for k, v in DROP_REASONS.items())
    collect_body = {"oneOf": [{"$ref": "#/components/schemas/Batch"}, SINGLE]}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "funnel-tracker API",
            "version": "1",
            "description": "Ingest endpoints, and the /api/v1 funnel resources (bearer API "
            "tokens from `funnel create-token`; errors are {error, detail} with the HTTP "
            "status). Drop reasons: " + drop_list,
        },
        "paths": {
            "/api/collect": {
                "post": {
                    "summary": "Collect events from the snippet (sendBeacon or fetch).",
                    "description": (
                        f"Body ≤ {L.MAX_BODY_BYTES} bytes on the wire and after gzip "
                        f"decompression, ≤ {L.MAX_BATCH_EVENTS} events. Answers 202 once the "
                        "events are durable in the spool."
                    ),
                    "parameters": [
                        {
                            "name": "tidy",
                            "in": "query",
                            "required": False,
                            "allowEmptyValue": True,
                            "description": TIDY,
                            "schema": {"type": "string"},
                        },
                        {
                            "name": "Content-Encoding",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "enum": ["gzip", "deflate", "identity"]},
                        },
                    ],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {"schema": collect_body},
                            "text/plain": {"schema": collect_body},
                        },
                    },
                    "responses": {
                        "202": {
                            "description": "Accepted and durable.",
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Accepted"}
                                }
                            },
                        },
                        "400": _err(
                            "invalid_json, invalid_encoding, unsupported_content_type, "
                            "invalid_body, missing_site, too_many_events, or every event "
                            "dropped (error = the drop reason)."
                        ),
                        "403": _err("unknown_site or origin_not_allowed."),
                        "413": _err("body_too_large (on the wire or after decompression)."),
                        "429": _err("rate_limited per site and client.", _RETRY),
                        "503": _err("spool_full: the collector is backlogged.", _RETRY),
                    },
                },
                "options": {
                    "summary": "CORS preflight.",
                    "responses": {"204": {"description": "Preflight answer."}},
                },
            },
            "/api/v1/sites/{site}/events:import": {
                "post": {
                    "summary": "Import historical events (JSON array or NDJSON); idempotent "
                    "by event id.",
                    "security": [{"bearer": []}],
                    "parameters": [v1.SITE],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {"type": "array", "items": IMPORT_EVENT}
                            },
                            "application/x-ndjson": {"schema": {"type": "string"}},
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "Imported.",
                            "content": {
                                "application/json": {
                                    "schema": {
                                        "type": "object",
                                        "properties": {
                                            "imported": {"type": "integer"},
                                            "existing": {"type": "integer"},
                                            "dropped": {"type": "object"},
                                        },
                                    }
                                }
                            },
                        },
                        "400": _err("Malformed body."),
                        "401": _err("Missing, unknown, revoked or expired API token."),
                        "403": _err("read_only_token: this token may only read."),
                        "404": _err("No such site for this token."),
                        "413": _err("Body too large."),
                        "422": _err(
                            "rejected_by_clickhouse: ClickHouse refused the validated rows "
                            "(its reason in detail)."
                        ),
                        "503": _err("ClickHouse unavailable.", _RETRY),
                    },
                }
            },
            "/api/v1/sites/{site}/events:export": {
                "get": {
                    "summary": "The site's stored events as NDJSON in the import format, "
                    "visitor by visitor.",
                    "security": [{"bearer": []}],
                    "parameters": [
                        v1.SITE,
                        {
                            "name": "from",
                            "in": "query",
                            "description": "First day (site's time zone); default: all.",
                            "schema": {"type": "string", "format": "date"},
                        },
                        {
                            "name": "to",
                            "in": "query",
                            "description": "Last day, inclusive; default: all.",
                            "schema": {"type": "string", "format": "date"},
                        },
                    ],
                    "responses": {
                        "200": {
                            "description": "One import event per line.",
                            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
                        },
                        "400": _err("Bad date."),
                        "401": _err("Missing or unknown API token."),
                        "404": _err("No such site for this token."),
                        "503": _err("ClickHouse unavailable.", _RETRY),
                    },
                }
            },
            **v1.paths(),
            "/r/{code}": {
                "get": {
                    "summary": "Tracked link: records a click and redirects to the stored target "
                    "with utm parameters.",
                    "parameters": [
                        {
                            "name": "code",
                            "in": "path",
                            "required": True,
                            "schema": {"type": "string"},
                        }
                    ],
                    "responses": {
                        "302": {"description": "Redirect to the stored target."},
                        "404": _err("Unknown code."),
                    },
                }
            },
            "/t.js": {
                "get": {
                    "summary": "The tracking snippet (ETag, long-lived caching).",
                    "responses": {
                        "200": {"description": "JavaScript."},
                        "304": {"description": "Not modified."},
                        "404": _err("The snippet has not been built."),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics.",
                    "responses": {"200": {"description": "Prometheus text format."}},
                }
            },
            "/healthz": {
                "get": {"summary": "Liveness.", "responses": {"200": {"description": "Alive."}}}
            },
            "/readyz": {
                "get": {
                    "summary": "Readiness: stores answer and the spool can drain.",
                    "responses": {
                        "200": {"description": "Ready."},
                        "503": {"description": "Not ready; `reason` says why."},
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Event": EVENT,
                "Batch": BATCH,
                "Error": _ERROR,
                **v1.SCHEMAS,
                "Accepted": {
                    "type": "object",
                    "required": ["accepted", "dropped"],
                    "properties": {
                        "accepted": {"type": "integer"},
                        "dropped": {
                            "type": "object",
                            "additionalProperties": {"type": "integer"},
                        },
                    },
                },
            },
        },
    }
