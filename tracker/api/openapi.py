"""OpenAPI 3 description of the /api/v1 funnel resources (definitions, reports, persons),
merged into GET /api/openapi.json with the collector's endpoints. The enums come from the
code that validates them, so the document cannot drift from what the API accepts."""

from __future__ import annotations

from typing import Any

from tracker.reports.explore import MAX_PREVIEW_DAYS
from tracker.reports.persons import MAX_PER_PAGE, STATUSES
from tracker.reports.query import MAX_RANGE_DAYS, SHORTHAND
from tracker.reports.trends import INTERVALS
from tracker.stages.definitions import (
    EVENT_TYPES,
    MAX_CONDITIONS,
    MAX_RULES,
    MAX_STAGES,
    MIN_STAGES,
    MODES,
)
from tracker.stages.fields import ATTRIBUTION_FIELDS, FIELDS
from tracker.stages.operators import OPERATORS

V1 = "/api/v1/sites/{site}"
SITE = {"name": "site", "in": "path", "required": True, "schema": {"type": "string"}}
FUNNEL_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "Funnel id.",
    "schema": {"type": "integer", "minimum": 0},
}
PERSON_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "Any visitor id or user id of the person.",
    "schema": {"type": "string", "minLength": 1},
}
_NUM = {"type": "number", "nullable": True}
# A rule or filter field: a whitelisted name (aliases such as "element text" are accepted too)
# or an event property.
FIELD = {
    "type": "string",
    "anyOf": [
        {"enum": sorted({*FIELDS, *ATTRIBUTION_FIELDS})},
        {"pattern": r"^prop\.\S.{0,199}$"},
    ],
}
_RANGE = {
    "type": "object",
    "required": ["from", "to"],
    "properties": {
        "from": {"type": "string", "format": "date"},
        "to": {"type": "string", "format": "date"},
    },
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "description": description,
            "schema": schema or {"type": "string"}}  # fmt: skip


def error_response(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    """A response with the API's JSON error body (`Error`: {error, detail})."""
    response: dict[str, Any] = {
        "description": description,
        "content": {"application/json": {"schema": _ref("Error")}},
    }
    if headers:
        response["headers"] = headers
    return response


def _ok(schema: dict[str, Any], description: str = "OK.") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_CSV = {"description": "CSV file.", "content": {"text/csv": {"schema": {"type": "string"}}}}
_PERSONS_CSV = {
    **_CSV,
    "headers": {
        "X-Total-Count": {"schema": {"type": "integer"},
                          "description": "How many persons the list holds."},
        "X-Truncated": {"schema": {"type": "string", "enum": ["true", "false"]},
                        "description": "true: the list holds more than the export's cap."},
    },
}  # fmt: skip
_COMMON = {
    "401": error_response("unauthorized (no, an unknown or a revoked token) or token_expired."),
    "404": error_response("No such site or funnel for this token."),
}
# Endpoints that change something refuse a read-only token.
_CHANGES = {
    **_COMMON,
    "403": error_response("read_only_token: this token may only read."),
}
_REPORT_ERRORS = {
    **_COMMON,
    "400": error_response("invalid_query (a bad parameter, with the reason) or invalid_pattern."),
    "503": error_response(
        "clickhouse_unavailable (the event store is not answering; retry after Retry-After "
        "seconds) or query_timeout (past FUNNEL_QUERY_TIMEOUT: narrow the range).",
        {"Retry-After": {"schema": {"type": "integer"}, "description": "Seconds to wait."}},
    ),
}

# The report's query arguments, shared by every report-shaped endpoint.
REPORT_PARAMS: list[dict[str, Any]] = [
    _query("from", "First day, in the site's time zone (default: 29 days before `to`).",
           {"type": "string", "format": "date"}),
    _query("to", "Last day, inclusive (default: today in the site's time zone); "
           f"the range spans at most {MAX_RANGE_DAYS} days.", {"type": "string", "format": "date"}),
    _query("mode", "Overrides the funnel's mode.", {"type": "string", "enum": list(MODES)}),
    _query("window", "Overrides the conversion window: 90m, 12h, 7d, 2w or seconds "
           "(1 minute to 365 days)."),
    *[_query(name, f"Only persons whose attributed {name} equals this value.")
      for name in SHORTHAND],
    {
        "name": "filter",
        "in": "query",
        "description": "field:op:value, repeatable. Attribution fields filter persons; "
        "other fields (prop.<name>) restrict which events count.",
        "schema": {"type": "array", "items": {"type": "string"}},
        "style": "form",
        "explode": True,
    },
    _query("breakdown", "An attribution field or prop.<name> (`product` = prop.product): "
           "the report per value, top `limit` values plus `other`."),
    _query("segment", "With `breakdown`: only the group with this value (empty: no value)."),
    _query("limit", "How many breakdown values (or exit paths, or field values) to list.",
           {"type": "integer", "minimum": 1, "maximum": 1000}),
    _query("compare", "`previous`: adds the same report over the period just before.",
           {"type": "string", "enum": ["previous"]}),
]  # fmt: skip

CONDITION = {
    "type": "object",
    "required": ["field", "op"],
    "properties": {
        "field": {**FIELD, "description": f"One of {', '.join(FIELDS)}, or prop.<name>."},
        "op": {"type": "string", "enum": list(OPERATORS)},
        "value": {
            "description": "Text or number; a list for `in`; true/false for `exists`.",
        },
    },
}
RULE = {
    "type": "object",
    "properties": {
        "type": {"type": "string", "enum": list(EVENT_TYPES), "default": "any"},
        "name": {"type": "string", "nullable": True, "maxLength": 200,
                 "description": "Event name (custom events)."},
        "conditions": {"type": "array", "maxItems": MAX_CONDITIONS, "items": _ref("Condition"),
                       "description": "All must hold."},
    },
}  # fmt: skip
STAGE = {
    "type": "object",
    "required": ["key", "rules"],
    "properties": {
        "key": {"type": "string", "pattern": "^[a-z0-9][a-z0-9_-]{0,63}$"},
        "name": {"type": "string", "maxLength": 200},
        "color": {"type": "string", "pattern": "^#[0-9a-fA-F]{6}$"},
        "rules": {"type": "array", "minItems": 1, "maxItems": MAX_RULES, "items": _ref("Rule"),
                  "description": "The stage matches an event if any rule matches."},
    },
}  # fmt: skip
DEFINITION = {
    "type": "object",
    "required": ["stages"],
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 200},
        "mode": {"type": "string", "enum": list(MODES), "default": "ordered"},
        "window": {
            "description": "Conversion window: 90m, 7d, … or seconds (default 30 days).",
            "oneOf": [{"type": "string"}, {"type": "integer"}],
        },
        "engagement_stage": {"type": "string", "nullable": True},
        "stages": {"type": "array", "minItems": MIN_STAGES, "maxItems": MAX_STAGES,
                   "items": _ref("Stage")},
    },
}  # fmt: skip
FUNNEL = {
    "allOf": [
        _ref("Definition"),
        {
            "type": "object",
            "required": ["id", "name", "mode", "window", "window_text", "stages"],
            "properties": {
                "id": {"type": "integer"},
                "window": {"type": "integer", "description": "Seconds."},
                "window_text": {"type": "string"},
                "created_at": {"type": "string", "nullable": True},
                "updated_at": {"type": "string", "nullable": True},
            },
        },
    ]
}
DEFINITION_ERROR = {
    "type": "object",
    "required": ["error", "detail", "errors"],
    "properties": {
        "error": {"type": "string", "enum": ["invalid_definition"]},
        "detail": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["path", "message"],
                "properties": {k: {"type": "string"} for k in ("path", "where", "message")},
            },
        },
    },
}
REPORT_STAGE = {
    "type": "object",
    "required": ["key", "name", "persons", "conversion_from_previous", "conversion_from_start",
                 "dropoff", "skipped", "time_from_first_click"],
    "properties": {
        "key": {"type": "string"},
        "name": {"type": "string"},
        "color": {"type": "string"},
        "persons": {"type": "integer", "minimum": 0},
        "conversion_from_previous": {"type": "number", "minimum": 0},
        "conversion_from_start": {"type": "number", "minimum": 0},
        "dropoff": {"type": "integer", "minimum": 0},
        "skipped": {"type": "integer", "minimum": 0},
        "time_from_previous": {"type": "object",
                               "properties": {"mean_s": _NUM, "median_s": _NUM}},
        "time_from_first_click": {
            "type": "object",
            "required": ["median_s", "p90_s"],
            "properties": {"median_s": _NUM, "p90_s": _NUM, "histogram": {"type": "array"}},
        },
    },
}  # fmt: skip
_STAGES = {"type": "array", "items": _ref("ReportStage")}
REPORT = {
    "type": "object",
    "required": ["stages", "breakdown", "range", "sql_ms", "persons"],
    "properties": {
        "funnel": {"type": "string"},
        "mode": {"type": "string", "enum": list(MODES)},
        "window": {"type": "integer"},
        "persons": {"type": "integer", "minimum": 0},
        "stages": _STAGES,
        "breakdown": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["value", "other", "stages"],
                "properties": {
                    "value": {"type": "string"},
                    "other": {"type": "boolean"},
                    "values": {"type": "integer", "description": "Values merged in `other`."},
                    "stages": _STAGES,
                },
            },
        },
        "breakdown_field": {"type": "string", "nullable": True},
        "segment": {
            "type": "string",
            "nullable": True,
            "description": "The segment= group every figure is limited to.",
        },
        "engagement": {"type": "object", "nullable": True},
        "compare": {"type": "object", "description": "With compare=previous."},
        "range": _RANGE,
        "timezone": {"type": "string"},
        "sql_ms": {"type": "integer", "minimum": 0},
    },
}
TRENDS = {
    "type": "object",
    "required": ["interval", "periods", "range"],
    "properties": {
        "interval": {"type": "string", "enum": list(INTERVALS)},
        "periods": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["start", "end", "persons", "stages"],
                "properties": {
                    "start": {"type": "string", "format": "date"},
                    "end": {"type": "string", "format": "date"},
                    "persons": {"type": "integer"},
                    "complete": {"type": "boolean"},
                    "partial": {"type": "boolean"},
                    "settled": {"type": "boolean"},
                    "stages": {"type": "array", "items": {"type": "object"}},
                },
            },
        },
        "range": _RANGE,
        "timezone": {"type": "string"},
        "sql_ms": {"type": "integer"},
    },
}
PIPELINE = {
    "type": "object",
    "required": ["entered", "converted", "close_rate", "sale_value", "forecast", "stages"],
    "properties": {
        "entered": {"type": "integer"},
        "converted": {"type": "integer"},
        "close_rate": {"type": "number"},
        "sale_value": {"type": "object", "properties": {"sum": _NUM, "average": _NUM}},
        "average_time_to_close_s": _NUM,
        "forecast": {"type": "object", "properties": {"conversions": _NUM, "value": _NUM}},
        "currency": {"type": "string", "nullable": True, "description": "The site's, if set."},
        "stages": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key", "sitting"],
                "properties": {
                    "key": {"type": "string"},
                    "reached": {"type": "integer"},
                    "sitting": {"type": "integer", "description": "Persons in this stage now."},
                    "rate_to_close": _NUM,
                    "expected_conversions": _NUM,
                },
            },
        },
        "breakdown": {"type": "array", "items": {"type": "object"}},
        "breakdown_field": {"type": "string", "nullable": True},
        "range": _RANGE,
        "sql_ms": {"type": "integer"},
    },
}
PERSONS = {
    "type": "object",
    "required": ["stage", "status", "page", "per_page", "total", "persons"],
    "properties": {
        "stage": {"type": "string"},
        "status": {"type": "string", "enum": list(STATUSES)},
        "page": {"type": "integer"},
        "per_page": {"type": "integer"},
        "total": {"type": "integer"},
        "columns": {
            "type": "array",
            "items": {"type": "string"},
            "description": "The keys every person carries, in order.",
        },
        "persons": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "first_seen", "last_stage", "sale_value"],
                "properties": {
                    "id": {"type": "string"},
                    "first_seen": {"type": "string"},
                    "last_stage": {"type": "string", "nullable": True},
                    "reached_at": {"type": "string", "nullable": True},
                    "sale_value": {
                        **_NUM,
                        "description": "What a person who reached the last stage spent (the "
                        "value on the event that filled it); null for the others.",
                    },
                },
            },
        },
        "range": _RANGE,
        "sql_ms": {"type": "integer"},
    },
}
EXITS = {
    "type": "object",
    "required": ["stage", "exits", "other", "no_page_view", "persons"],
    "properties": {
        "stage": {"type": "string"},
        "exits": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "persons": {"type": "integer"},
                    "share": {"type": "number"},
                },
            },
        },
        "other": {"type": "object"},
        "no_page_view": {"type": "integer"},
        "persons": {"type": "integer"},
    },
}
JOURNEY = {
    "type": "object",
    "required": ["person", "events", "funnel_id"],
    "properties": {
        "person": {"type": "string"},
        "visitors": {"type": "array", "items": {"type": "string"}},
        "funnel_id": {"type": "integer", "nullable": True},
        "truncated": {"type": "boolean"},
        "progress": {"type": "object", "nullable": True},
        "events": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "ts", "type", "stages"],
                "properties": {
                    "id": {"type": "string"},
                    "ts": {"type": "string"},
                    "type": {"type": "string"},
                    "stages": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}
PREVIEW = {
    "type": "object",
    "required": ["days", "stages"],
    "properties": {
        "days": {"type": "integer"},
        "stages": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key", "persons", "events"],
                "properties": {
                    "key": {"type": "string"},
                    "persons": {"type": "integer"},
                    "events": {"type": "integer"},
                    "sample_urls": {"type": "array", "items": {"type": "string"}},
                    "sample_elements": {"type": "array"},
                },
            },
        },
    },
}
VALUES = {
    "type": "object",
    "required": ["field", "values"],
    "properties": {
        "field": {"type": "string"},
        "values": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"value": {"type": "string"}, "persons": {"type": "integer"}},
            },
        },
    },
}
SITE_SCHEMA = {
    "type": "object",
    "required": ["key", "name", "domains", "timezone", "currency", "funnels"],
    "properties": {
        "key": {"type": "string", "description": "The {site} of every other resource."},
        "name": {"type": "string"},
        "domains": {"type": "array", "items": {"type": "string"},
                    "description": "Hosts allowed to send events; empty: any."},
        "timezone": {"type": "string"},
        "currency": {"type": "string", "nullable": True},
        "retention_days": {"type": "integer", "nullable": True,
                           "description": "Days events are kept; null: for ever."},
        "created_at": {"type": "string", "nullable": True},
        "funnels": {
            "type": "array",
            "items": {"type": "object", "required": ["id", "name"],
                      "properties": {"id": {"type": "integer"}, "name": {"type": "string"}}},
        },
    },
}  # fmt: skip
ERASED = {
    "type": "object",
    "required": ["person", "visitors", "events", "erased"],
    "properties": {
        "person": {"type": "string"},
        "visitors": {"type": "array", "items": {"type": "string"}},
        "events": {"type": "integer"},
        "first_seen": {"type": "string", "nullable": True},
        "last_seen": {"type": "string", "nullable": True},
        "erased": {"type": "boolean"},
        "purged": {"type": "boolean"},
    },
}
_INLINE_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "anyOf": [
                    _ref("Definition"),
                    {
                        "type": "object",
                        "required": ["definition"],
                        "properties": {
                            "definition": _ref("Definition"),
                            "query": {
                                "type": "object",
                                "nullable": True,
                                "description": "Report arguments as in the query string: "
                                "text (limit and window also numbers; filter and the "
                                "shorthands also lists of text). Other types and unknown "
                                "keys are a 400 naming the key.",
                            },
                        },
                    },
                ]
            }
        }
    },
}
_DEFINITION_BODY = {
    "required": True,
    "content": {"application/json": {"schema": _ref("Definition")}},
}
_INVALID = {
    "description": "invalid_definition with every problem in `errors`; or invalid_json, "
    "invalid_encoding (text that is not valid Unicode, such as a lone surrogate escape), "
    "invalid_query (a bad report parameter), invalid_pattern.",
    "content": {
        "application/json": {"schema": {"anyOf": [_ref("DefinitionError"), _ref("Error")]}}
    },
}
_TOO_LARGE = {"413": error_response("body_too_large: the JSON body is over 1 MiB.")}
_STAGE_ARG = {**_query("stage", "A stage key of the funnel."), "required": True}
_PERSONS_PARAMS = [
    _STAGE_ARG,
    _query("status", "reached, dropped (reached, not the next) or skipped.",
           {"type": "string", "enum": list(STATUSES), "default": "reached"}),
    _query("page", "Page, from 1.", {"type": "integer", "minimum": 1, "default": 1}),
    _query("per_page", "Persons per page.",
           {"type": "integer", "minimum": 1, "maximum": MAX_PER_PAGE, "default": 50}),
]  # fmt: skip
_INTERVAL = _query("interval", "Period length.",
                   {"type": "string", "enum": list(INTERVALS), "default": "month"})  # fmt: skip
_DAYS = _query(
    "days",
    "How many days back (up to ten years: one scan, not a report).",
    {"type": "integer", "minimum": 1, "maximum": MAX_PREVIEW_DAYS, "default": 30},
)


def _get(summary: str, params: list[dict[str, Any]], ok: dict[str, Any],
         errors: dict[str, Any] | None = None) -> dict[str, Any]:  # fmt: skip
    return {
        "summary": summary,
        "security": [{"bearer": []}],
        "parameters": params,
        "responses": {"200": ok, **(errors if errors is not None else _REPORT_ERRORS)},
    }


def paths() -> dict[str, Any]:
    funnel = [SITE, FUNNEL_ID]
    report = [*funnel, *REPORT_PARAMS]
    return {
        "/api/v1/sites": {
            "get": _get("The sites this token's user may read (admins: every site).", [],
                        _ok({"type": "object", "required": ["sites"],
                             "properties": {"sites": {"type": "array",
                                                      "items": _ref("Site")}}}),
                        {"401": _COMMON["401"]}),
        },
        V1: {"get": _get("One site: settings and funnels.", [SITE], _ok(_ref("Site")), _COMMON)},
        f"{V1}/funnels": {
            "get": _get("The site's funnels.", [SITE],
                        _ok({"type": "object", "required": ["funnels"],
                             "properties": {"funnels": {"type": "array",
                                                        "items": _ref("Funnel")}}}),
                        _COMMON),
            "post": {
                "summary": "Create a funnel.",
                "security": [{"bearer": []}],
                "parameters": [SITE],
                "requestBody": _DEFINITION_BODY,
                "responses": {"201": _ok(_ref("Funnel"), "Created."), "400": _INVALID,
                              **_CHANGES, **_TOO_LARGE},
            },
        },
        f"{V1}/funnels/{{id}}": {
            "get": _get("A funnel definition.", funnel, _ok(_ref("Funnel")), _COMMON),
            "put": {
                "summary": "Replace a funnel definition (reports apply it to all history).",
                "security": [{"bearer": []}],
                "parameters": funnel,
                "requestBody": _DEFINITION_BODY,
                "responses": {"200": _ok(_ref("Funnel")), "400": _INVALID, **_CHANGES,
                              **_TOO_LARGE},
            },
            "delete": {
                "summary": "Delete a funnel (events stay).",
                "security": [{"bearer": []}],
                "parameters": funnel,
                "responses": {"204": {"description": "Deleted."}, **_CHANGES},
            },
        },
        f"{V1}/funnels/{{id}}/duplicate": {
            "post": {
                "summary": "Copy a funnel as “<name> (copy)”.",
                "security": [{"bearer": []}],
                "parameters": funnel,
                "responses": {"201": _ok(_ref("Funnel"), "Created."), **_CHANGES},
            }
        },
        f"{V1}/funnels/{{id}}/report": {
            "get": _get("The funnel report: per stage persons, conversion, drop-off, skipped "
                        "and times.", report, _ok(_ref("Report"))),
        },
        f"{V1}/funnels/{{id}}/report.csv": {"get": _get("The report as CSV.", report, _CSV)},
        f"{V1}/funnel-report": {
            "post": {
                "summary": "A report for an inline definition (previews of unsaved edits).",
                "security": [{"bearer": []}],
                "parameters": [SITE, *REPORT_PARAMS],
                "requestBody": _INLINE_BODY,
                "responses": {"200": _ok(_ref("Report")), **_REPORT_ERRORS, "400": _INVALID,
                              **_TOO_LARGE},
            }
        },
        f"{V1}/funnels/{{id}}/trends": {
            "get": _get("Stage counts per period, with the change versus the period before.",
                        [*report, _INTERVAL], _ok(_ref("Trends"))),
        },
        f"{V1}/funnels/{{id}}/trends.csv": {
            "get": _get("Trends as CSV, one row per period and stage.", [*report, _INTERVAL],
                        _CSV),
        },
        f"{V1}/funnels/{{id}}/pipeline": {
            "get": _get("Persons in each stage now, sale value, close rate, time to close and "
                        "forecast.", report, _ok(_ref("Pipeline"))),
        },
        f"{V1}/funnels/{{id}}/persons": {
            "get": _get("Persons who reached, dropped off after or skipped a stage.",
                        [*report, *_PERSONS_PARAMS], _ok(_ref("Persons"))),
        },
        f"{V1}/funnels/{{id}}/persons.csv": {
            "get": _get("The persons list as CSV: every person (at most 1,000,000), or the "
                        "page asked for with page/per_page.",
                        [*report, *_PERSONS_PARAMS], _PERSONS_CSV),
        },
        f"{V1}/funnels/{{id}}/exits": {
            "get": _get("Where the persons who dropped off after a stage left.",
                        [*report, _STAGE_ARG], _ok(_ref("Exits"))),
        },
        f"{V1}/funnels/{{id}}/preview": {
            "get": _get("Per stage: persons, events, sample URLs and elements.",
                        [*funnel, _DAYS], _ok(_ref("Preview"))),
        },
        f"{V1}/funnel-preview": {
            "post": {
                "summary": "The stage preview of an inline definition.",
                "security": [{"bearer": []}],
                "parameters": [SITE, _DAYS],
                "requestBody": _INLINE_BODY,
                "responses": {"200": _ok(_ref("Preview")), **_REPORT_ERRORS, "400": _INVALID,
                              **_TOO_LARGE},
            }
        },
        f"{V1}/values/{{field}}": {
            "get": _get("Top values of a field by persons in the range.",
                        [SITE, {"name": "field", "in": "path", "required": True,
                                "schema": FIELD}, *REPORT_PARAMS],
                        _ok(_ref("Values"))),
        },
        f"{V1}/persons/{{id}}/journey": {
            "get": _get("A person's events in order, each with the stages it matches; with "
                        "report arguments, the person's verdict in that report.",
                        [SITE, PERSON_ID,
                         _query("funnel", "Funnel id (default: the site's first funnel).",
                                {"type": "integer", "minimum": 0}),
                         *REPORT_PARAMS],
                        _ok(_ref("Journey")),
                        {**_REPORT_ERRORS,
                         "400": error_response("invalid_query, invalid_pattern, or "
                                               "invalid_person (blank, NUL, over 512 "
                                               "characters)."),
                         "404": error_response("No such site or funnel, or no stored event "
                                               "names the id.")}),
        },
        f"{V1}/persons/{{id}}": {
            "delete": {
                "summary": "Erase every stored event of a person (a request to be forgotten).",
                "security": [{"bearer": []}],
                "parameters": [
                    SITE,
                    PERSON_ID,
                    _query("dry_run", "Only say what would go.", {"type": "boolean"}),
                    _query("wait", "Return once the data is rewritten off disk.",
                           {"type": "boolean"}),
                ],
                "responses": {
                    "200": _ok(_ref("Erased")),
                    "400": error_response("invalid_query or invalid_person."),
                    **_CHANGES,
                    "503": error_response(
                        "spool_pending (earlier events could not be stored) or "
                        "clickhouse_unavailable."
                    ),
                },
            }
        },
    }  # fmt: skip


SCHEMAS: dict[str, Any] = {
    "Site": SITE_SCHEMA,
    "Condition": CONDITION,
    "Rule": RULE,
    "Stage": STAGE,
    "Definition": DEFINITION,
    "DefinitionError": DEFINITION_ERROR,
    "Funnel": FUNNEL,
    "ReportStage": REPORT_STAGE,
    "Report": REPORT,
    "Trends": TRENDS,
    "Pipeline": PIPELINE,
    "Persons": PERSONS,
    "Exits": EXITS,
    "Journey": JOURNEY,
    "Preview": PREVIEW,
    "Values": VALUES,
    "Erased": ERASED,
}
