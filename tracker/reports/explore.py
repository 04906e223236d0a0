"""Helpers for editing definitions: what each stage matches lately, and the top values of a
field (for filter and rule pickers)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tracker.clickhouse import Store
from tracker.models import Site
from tracker.reports.common import ReportTimer, as_definition
from tracker.reports.engine import (
    PERSON_EXPR,
    attr_expr,
    identity_join,
    site_plan,
)
from tracker.reports.query import QueryError, ReportQuery, epoch_ms, today_in
from tracker.stages.compile import column_for, compile_conditions, compile_stage
from tracker.stages.fields import ATTRIBUTION_FIELDS, canonical_field, is_known
from tracker.stages.operators import Params

SAMPLES = 5
# Longer than a report's range (MAX_RANGE_DAYS): a preview is one scan counting the events
# each stage's rules match, with no attempts to evaluate per person, and a look-back of
# ten years answers "has this rule ever matched anything stored?".
MAX_PREVIEW_DAYS = 3660


def stage_preview(store: Store, site: Site, definition: Any, days: int = 30) -> dict[str, Any]:
    """Per stage over the last `days`: persons and events matching it, sample URLs/elements."""
    if not 1 <= days <= MAX_PREVIEW_DAYS:
        raise QueryError(f"days must be between 1 and {MAX_PREVIEW_DAYS}")
    definition = as_definition(definition)
    params = Params()
    site_cond = f"site_id = {params.add(site.key, 'String')}"
    # The same calendar days as a report's "last N days" (from local midnight N-1 days ago),
    # so the editor's first-stage count matches the report's and the funnels page's.
    tz = getattr(site, "timezone", None) or "UTC"
    since = today_in(tz) - timedelta(days=days - 1)
    p_since = params.add(max(0, epoch_ms(since, tz)), "Int64")
    cols = []
    for k, stage in enumerate(definition["stages"]):
        cond = compile_stage(stage, params, "e")
        cols.append(
            f"""tuple(uniqExactIf(person, m{k}), countIf(m{k}),
                topKIf({SAMPLES})(url, m{k} AND url != ''),
                topKIf({SAMPLES})(element_text, m{k} AND element_text != ''))"""
        )
        cols[-1] = cols[-1].replace(f"m{k}", f"({cond})")
    sql = f"""
        SELECT {", ".join(cols)}
        FROM (
            SELECT e.*, {PERSON_EXPR} AS person
            FROM events AS e
            {identity_join(site_cond, one_site=True)}
            WHERE e.{site_cond} AND e.ts >= fromUnixTimestamp64Milli({p_since}, 'UTC')
        ) AS e
    """
    timer = ReportTimer()
    row = timer.rows(store, sql, params.values)[0]
    stages = []
    for stage, (persons, events, urls, elements) in zip(definition["stages"], row, strict=True):
        stages.append(
            {
                "key": stage["key"],
                "name": stage["name"],
                "persons": int(persons),
                "events": int(events),
                "sample_urls": list(urls),
                "sample_elements": list(elements),
            }
        )
    return {"days": days, "stages": stages, "sql_ms": timer.ms}


_PAD_KEY = "zz-preview-pad"


def _stages_with_errors(errors: list[dict[str, Any]]) -> set[int]:
    """Indexes of the stages that a definition error's path (`stages.2.rules.0…`) names."""
    bad = set()
    for error in errors:
        parts = str(error.get("path", "")).split(".")
        if len(parts) > 1 and parts[0] == "stages" and parts[1].isdecimal():
            bad.add(int(parts[1]))
    return bad


def partial_stage_preview(
    store: Store, site: Site, draft: Any, errors: list[dict[str, Any]], days: int = 30
) -> list[dict[str, Any] | None]:
    """For a draft that did not validate (`errors` from DefinitionError): per stage, in the
    draft's order, the stage_preview figures of each stage without errors, else None. The
    valid stages run as one definition (a lone one padded with a copy of itself, since a
    funnel needs two stages), so one half-typed rule does not hide the others' counts."""
    from tracker.stages.definitions import DefinitionError, validate_definition

    raw = draft.get("stages") if isinstance(draft, dict) else None
    raw = raw if isinstance(raw, list) else []
    bad = _stages_with_errors(errors)
    good = [i for i in range(len(raw)) if i not in bad]
    out: list[dict[str, Any] | None] = [None] * len(raw)
    if not good or len(good) > 20:
        return out
    stages = [raw[i] for i in good]
    if len(stages) == 1:
        stages = [*stages, {**stages[0], "key": _PAD_KEY}]
    try:
        definition = validate_definition({"name": "preview", "stages": stages})
    except DefinitionError:
        return out
    figures = stage_preview(store, site, definition, days)["stages"]  # in the order of `good`
    for index, item in zip(good, figures, strict=False):
        out[index] = item
    return out


_ANY_TWO = {
    "name": "all",
    "stages": [
        {"key": "a", "rules": [{"type": "any"}]},
        {"key": "b", "rules": [{"type": "any"}]},
    ],
}


def top_values(
    store: Store, site: Site, field: str, query: ReportQuery, limit: int = 20
) -> list[dict[str, Any]]:
    """The most common values of a field by persons: the attributed value for attribution
    fields (campaign, landing, ...), any event's value in range for the others."""
    name = canonical_field(field)
    if not 1 <= limit <= 1000:
        raise QueryError("limit must be between 1 and 1000")
    params = Params()
    p_limit = params.add(limit, "UInt32")
    if name in ATTRIBUTION_FIELDS:
        plan = site_plan(store, site.key, as_definition(_ANY_TWO), query, params, attrs={name})
        sql = f"""
            SELECT {attr_expr(name)} AS value, count() AS persons FROM ({plan.sql})
            GROUP BY value ORDER BY persons DESC, value LIMIT {p_limit}
        """
    elif is_known(name):
        col = column_for(name, params, "e")
        site_cond = f"site_id = {params.add(site.key, 'String')}"
        p_start = params.add(query.start_ms, "Int64")
        p_end = params.add(query.end_ms, "Int64")
        sql = f"""
            SELECT toString({col.expr}) AS value, uniqExact({PERSON_EXPR}) AS persons
            FROM events AS e
            {identity_join(site_cond, one_site=True)}
            WHERE e.{site_cond}
              AND e.ts >= fromUnixTimestamp64Milli({p_start}, 'UTC')
              AND e.ts < fromUnixTimestamp64Milli({p_end}, 'UTC')
              AND ({compile_conditions(query.event_filters, params, "e")})
              AND {col.exists}
            GROUP BY value ORDER BY persons DESC, value LIMIT {p_limit}
        """
    else:
        raise QueryError(f"unknown field {field!r}")
    rows = ReportTimer().rows(store, sql, params.values)
    return [{"value": v, "persons": int(p)} for v, p in rows]
