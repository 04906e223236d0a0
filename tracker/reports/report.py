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
    """Totals per stage (is_total = 1) and, with a breakdown, per value with the values
    beyond the top N merged into "other" (quantile states merge exactly)."""
    bexpr = attr_expr(query.breakdown) if query.breakdown else "''"
    limit = params.add(query.breakdown_limit, "UInt32")
    edges = ", ".join(str(e * 1000) for e in HISTOGRAM_EDGES)
    nb = len(HISTOGRAM_LABELS)
    buckets = ", ".join(f"countIf(h = 1 AND bucket = {i})" for i in range(nb))
    inner = f"""
        SELECT {group} AS site_key, {bexpr} AS bval, k,
            count() AS members,
            countIf(h = 1) AS persons,
            countIf(NOT bitTest(matched, k - 1) AND bitShiftRight(matched, k) != 0) AS skipped,
            sumIf(tk_k - tp_k, h = 1 AND hp = 1 AND k > 1) AS prev_sum,
            countIf(h = 1 AND hp = 1 AND k > 1) AS prev_n,
            quantileExactStateIf(0.5)(tk_k - tp_k, h = 1 AND hp = 1 AND k > 1) AS prev_q,
            quantilesExactStateIf(0.5, 0.9)(tk_k - first_ms, h = 1) AS first_q,
            [{buckets}] AS hist
        FROM (
            SELECT *, k, h, tk_k, tp_k, hp,
                arrayCount(x -> tk_k - first_ms >= x, [{edges}]) AS bucket
            FROM ({plan_sql})
            ARRAY JOIN arrayEnumerate(hit) AS k, hit AS h, tk AS tk_k, tprev AS tp_k,
                hit_prev AS hp
            WHERE in_funnel
        )
        GROUP BY site_key, bval, k
    """
    ranked = f"""
        SELECT *, dense_rank() OVER (PARTITION BY site_key ORDER BY p1 DESC, bval ASC) AS rk
        FROM (SELECT *, sum(if(k = 1, members, 0)) OVER (PARTITION BY site_key, bval) AS p1
              FROM ({inner}))
    """
    totals = "[1, 0]" if query.breakdown else "[1]"
    return f"""
        SELECT is_total, if(is_total = 1, '', if(rk <= {limit}, bval, '{OTHER}')) AS b2, k,
            sum(persons), sum(skipped), sum(prev_sum), sum(prev_n),
            quantileExactMerge(0.5)(prev_q), quantilesExactMerge(0.5, 0.9)(first_q),
            sumForEach(hist), sum(members),
            min(if(is_total = 1, 0, least(rk, {limit} + 1))) AS order_key, site_key
        FROM (SELECT *, arrayJoin({totals}) AS is_total FROM ({ranked}))
        GROUP BY site_key, is_total, b2, k
        ORDER BY site_key, is_total DESC, order_key, b2, k
    """


def _stage_rows(definition: dict[str, Any], rows: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
    stages = definition["stages"]
    by_k = {int(r[2]): r for r in rows}
    counts = [int(by_k[k + 1][3]) if k + 1 in by_k else 0 for k in range(len(stages))]
    out = []
    for idx, stage in enumerate(stages):
        row = by_k.get(idx + 1)
        persons = counts[idx]
        prev_n = int(row[6]) if row else 0
        first_q = list(row[8]) if row and persons else [None, None]
        hist = list(row[9]) if row else [0] * len(HISTOGRAM_LABELS)
        out.append(
            {
                "key": stage["key"],
                "name": stage["name"],
                "color": stage["color"],
                "persons": persons,
                "conversion_from_previous": (
                    (1.0 if persons else 0.0) if idx == 0 else ratio(persons, counts[idx - 1])
                ),
                "conversion_from_start": ratio(persons, counts[0])
                if idx
                else (1.0 if persons else 0.0),
                "dropoff": persons - counts[idx + 1] if idx + 1 < len(stages) else 0,
                "skipped": int(row[4]) if row else 0,
                "time_from_previous": {
                    "mean_s": seconds(float(row[5]) / prev_n) if row and prev_n else None,
                    "median_s": seconds(_num(row[7])) if row and prev_n else None,
                },
                "time_from_first_click": {
                    "median_s": seconds(_num(first_q[0])),
                    "p90_s": seconds(_num(first_q[1])),
                    "histogram": [
                        {"bucket": label, "persons": int(hist[i])}
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
    totals = [r for r in rows if r[0] == 1]
    stages = _stage_rows(definition, totals)
    breakdown = []
    if query.breakdown:
        values: dict[str, list[tuple[Any, ...]]] = {}
        for r in rows:
            if r[0] == 0:
                values.setdefault(str(r[1]), []).append(r)
        for value, vrows in values.items():
            breakdown.append({"value": value, "stages": _stage_rows(definition, vrows)})
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
        "persons": _in_funnel(totals),
        "stages": stages,
        "breakdown": breakdown,
        "breakdown_field": query.breakdown,
        "engagement": engagement,
        "range": query.range_dict(),
        "timezone": query.timezone,
        "sql_ms": sql_ms,
    }


def _in_funnel(totals: list[tuple[Any, ...]]) -> int:
    """Persons in the funnel: every one of them has exactly one row at k = 1."""
    return sum(int(r[10]) for r in totals if int(r[2]) == 1)
