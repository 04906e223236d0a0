"""The funnel report: per stage persons, conversion, drop-off, skipped and times, with an
optional breakdown by an attribution field (top N values plus "other")."""

from __future__ import annotations

import math
from typing import Any

from tracker.clickhouse import Store
from tracker.models import Site
from tracker.reports.common import ReportTimer, as_definition, ratio, seconds
from tracker.reports.engine import (
    HISTOGRAM_EDGES,
    HISTOGRAM_LABELS,
    attr_expr,
    build_plan,
)
from tracker.reports.query import ReportQuery
from tracker.stages.operators import Params

OTHER = "other"


def _aggregate_sql(plan_sql: str, query: ReportQuery, params: Params, group: str = "''") -> str:
    """One row per person becomes per-stage figures through -ForEach aggregates over the
    persons' stage arrays (NULL where a stage was not reached). Totals come with is_total = 1;
    with a breakdown, values beyond the top N merge into "other" (quantile states merge
    exactly). `group` evaluates several sites or periods in one query."""
    bexpr = attr_expr(query.breakdown) if query.breakdown else "''"
    limit = params.add(query.breakdown_limit, "UInt32")
    edges = "[" + ", ".join(str(e * 1000) for e in HISTOGRAM_EDGES) + "]"
    nb = len(HISTOGRAM_LABELS)
    per_person = f"""
        SELECT {group} AS site_key, {bexpr} AS bval, hit,
            arrayMap(k -> toUInt8(NOT bitTest(matched, k - 1) AND bitShiftRight(matched, k) != 0),
                arrayEnumerate(hit)) AS skip,
            arrayMap(k -> if(hit[k] = 1 AND hit_prev[k] = 1, tk[k] - tprev[k], NULL),
                arrayEnumerate(hit)) AS dprev,
            arrayMap(k -> if(hit[k] = 1, tk[k] - first_ms, NULL), arrayEnumerate(hit)) AS dfirst,
            arrayFlatten(arrayMap(d -> arrayMap(b -> toUInt8(d IS NOT NULL
                AND arrayCount(x -> assumeNotNull(d) >= x, {edges}) = b), range({nb})), dfirst))
                AS hist
        FROM ({plan_sql})
        WHERE in_funnel
    """
    inner = f"""
        SELECT site_key, bval,
            count() AS members,
            sumForEach(hit) AS persons,
            sumForEach(skip) AS skipped,
            sumForEach(arrayMap(x -> ifNull(x, 0), dprev)) AS prev_sum,
            sumForEach(arrayMap(x -> toUInt64(x IS NOT NULL), dprev)) AS prev_n,
            quantileExactForEachState(0.5)(dprev) AS prev_q,
            quantilesExactForEachState(0.5, 0.9)(dfirst) AS first_q,
            sumForEach(hist) AS hist
        FROM ({per_person})
        GROUP BY site_key, bval
    """
    totals = "[1, 0]" if query.breakdown else "[1]"
    return f"""
        SELECT is_total, if(is_total = 1, '', if(rk <= {limit}, bval, '{OTHER}')) AS b2,
            sum(members), sumForEach(persons), sumForEach(skipped), sumForEach(prev_sum),
            sumForEach(prev_n), quantileExactForEachMerge(0.5)(prev_q),
            quantilesExactForEachMerge(0.5, 0.9)(first_q), sumForEach(hist),
            min(if(is_total = 1, 0, least(rk, {limit} + 1))) AS order_key, site_key
        FROM (
            SELECT *, arrayJoin({totals}) AS is_total,
                dense_rank() OVER (PARTITION BY site_key ORDER BY members DESC, bval ASC) AS rk
            FROM ({inner})
        )
        GROUP BY site_key, is_total, b2
        ORDER BY site_key, is_total DESC, order_key, b2
    """


def _stage_rows(definition: dict[str, Any], row: tuple[Any, ...] | None) -> list[dict[str, Any]]:
    stages = definition["stages"]
    n = len(stages)
    nb = len(HISTOGRAM_LABELS)
    if row is None:
        row = (
            1,
            "",
            0,
            [0] * n,
            [0] * n,
            [0] * n,
            [0] * n,
            [None] * n,
            [[None, None]] * n,
            [0] * (n * nb),
        )
    _, _, _, counts, skipped, prev_sum, prev_n, prev_med, first_q, hist = row[:10]
    counts = [int(c) for c in counts]
    out = []
    for idx, stage in enumerate(stages):
        persons = counts[idx]
        n_prev = int(prev_n[idx])
        quantiles = list(first_q[idx]) if persons else [None, None]
        out.append(
            {
                "key": stage["key"],
                "name": stage["name"],
                "color": stage["color"],
                "persons": persons,
                "conversion_from_previous": (
                    (1.0 if persons else 0.0) if idx == 0 else ratio(persons, counts[idx - 1])
                ),
                "conversion_from_start": (
                    ratio(persons, counts[0]) if idx else (1.0 if persons else 0.0)
                ),
                "dropoff": persons - counts[idx + 1] if idx + 1 < n else 0,
                "skipped": int(skipped[idx]),
                "time_from_previous": {
                    "mean_s": seconds(float(prev_sum[idx]) / n_prev) if n_prev else None,
                    "median_s": seconds(_num(prev_med[idx])) if n_prev else None,
                },
                "time_from_first_click": {
                    "median_s": seconds(_num(quantiles[0])),
                    "p90_s": seconds(_num(quantiles[1])),
                    "histogram": [
                        {"bucket": label, "persons": int(hist[idx * nb + i])}
                        for i, label in enumerate(HISTOGRAM_LABELS)
                    ],
                },
            }
        )
    return out


def _num(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def funnel_report(store: Store, site: Site, definition: Any, query: ReportQuery) -> dict[str, Any]:
    """The report in the API's JSON shape (see the README's "Funnel semantics")."""
    definition = as_definition(definition)
    timer = ReportTimer()
    params = Params()
    plan = build_plan(site.key, definition, query, params)
    rows = timer.rows(store, _aggregate_sql(plan.sql, query, params), params.values)
    return _shape(definition, query, plan.mode, plan.window, rows, timer.ms)


def funnel_reports_by_site(
    store: Store, site_keys: list[str], definition: Any, query: ReportQuery
) -> dict[str, dict[str, Any]]:
    """The same report for many sites in one query (batch evaluation), keyed by site key."""
    definition = as_definition(definition)
    timer = ReportTimer()
    params = Params()
    plan = build_plan(list(site_keys), definition, query, params)
    rows = timer.rows(store, _aggregate_sql(plan.sql, query, params, group="site"), params.values)
    grouped: dict[str, list[tuple[Any, ...]]] = {key: [] for key in site_keys}
    for row in rows:
        grouped.setdefault(str(row[-1]), []).append(row)
    return {
        key: _shape(definition, query, plan.mode, plan.window, key_rows, timer.ms)
        for key, key_rows in grouped.items()
    }


def stage_counts_by_period(
    store: Store,
    site_key: str,
    definition: dict[str, Any],
    query: ReportQuery,
    periods: list[tuple[int, int]],
    timer: ReportTimer,
) -> dict[int, dict[str, Any]]:
    """Reports keyed by period start (epoch ms), each period evaluated as its own range."""
    params = Params()
    plan = build_plan(site_key, definition, query, params, periods=periods)
    sql = _aggregate_sql(plan.sql, query, params, group="ps")
    rows = timer.rows(store, sql, params.values)
    grouped: dict[int, list[tuple[Any, ...]]] = {p[0]: [] for p in periods}
    for row in rows:
        grouped.setdefault(int(row[-1]), []).append(row)
    return {
        start: _shape(definition, query, plan.mode, plan.window, key_rows, timer.ms)
        for start, key_rows in grouped.items()
    }


def _shape(
    definition: dict[str, Any],
    query: ReportQuery,
    mode: str,
    window: int,
    rows: list[tuple[Any, ...]],
    sql_ms: int,
) -> dict[str, Any]:
    total = next((r for r in rows if r[0] == 1), None)
    stages = _stage_rows(definition, total)
    breakdown = []
    if query.breakdown:
        for r in rows:
            if r[0] == 0:
                breakdown.append({"value": str(r[1]), "stages": _stage_rows(definition, r)})
    engagement = None
    for stage in stages:
        if stage["key"] == definition.get("engagement_stage"):
            first_click = stage["time_from_first_click"]
            engagement = {
                "stage": stage["key"],
                "persons": stage["persons"],
                "median_s": first_click["median_s"],
                "p90_s": first_click["p90_s"],
            }
    return {
        "funnel": definition["name"],
        "mode": mode,
        "window": window,
        "persons": int(total[2]) if total else 0,
        "stages": stages,
        "breakdown": breakdown,
        "breakdown_field": query.breakdown,
        "engagement": engagement,
        "range": query.range_dict(),
        "timezone": query.timezone,
        "sql_ms": sql_ms,
    }
