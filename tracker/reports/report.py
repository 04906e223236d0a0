"""The funnel report: per stage persons, conversion, drop-off, skipped and times, with an
optional breakdown by an attribution field (top N values plus "other")."""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from tracker.clickhouse import Store
from tracker.models import Site
from tracker.reports.common import ReportTimer, as_definition, ratio, seconds
from tracker.reports.engine import (
    HISTOGRAM_EDGES,
    HISTOGRAM_LABELS,
    attr_expr,
    site_plan,
)
from tracker.reports.query import ReportQuery
from tracker.stages.operators import Params

OTHER = "other"


def _aggregate_sql(plan_sql: str, query: ReportQuery, params: Params, group: str = "''") -> str:
    """Per-stage figures from the per-person rows: each person in the funnel becomes one row
    per stage (ARRAY JOIN), so plain aggregates over (group, value, stage) do the work; that
    is several times cheaper than -ForEach aggregates over Nullable arrays. Totals come with
    is_total = 1; with a breakdown, values beyond the top N merge into "other" (quantile
    states merge exactly). `group` evaluates several sites or periods in one query. Rows come
    out per (group, is_total, value, stage); `_fold` turns them back into one per value."""
    bexpr = attr_expr(query.breakdown) if query.breakdown else "''"
    limit = params.add(query.breakdown_limit, "UInt32")
    # Plain comparisons and one countIf per bucket: a lambda over the edges, or an array per
    # row summed with -ForEach, costs several times more over millions of (person, stage) rows.
    bucket = " + ".join(f"(dfirst >= {e * 1000})" for e in HISTOGRAM_EDGES)
    hist = ", ".join(f"countIf(h AND bucket = {b})" for b in range(len(HISTOGRAM_LABELS)))
    per_stage = f"""
        SELECT {group} AS site_key, {bexpr} AS bval, k,
            hit[k] = 1 AS h,
            h AND hit_prev[k] = 1 AS hp,
            NOT bitTest(matched, k - 1) AND bitShiftRight(matched, k) != 0 AS s,
            tk[k] - tprev[k] AS dprev,
            tk[k] - first_ms AS dfirst,
            {bucket} AS bucket
        FROM ({plan_sql})
        ARRAY JOIN arrayEnumerate(hit) AS k
        WHERE in_funnel
    """
    inner = f"""
        SELECT site_key, bval, k,
            count() AS members,
            countIf(h) AS persons,
            countIf(s) AS skipped,
            sumIf(dprev, hp) AS prev_sum,
            countIf(hp) AS prev_n,
            quantileExactIfState(0.5)(dprev, hp) AS prev_q,
            quantilesExactIfState(0.5, 0.9)(dfirst, h) AS first_q,
            [{hist}] AS hist
        FROM ({per_stage})
        GROUP BY site_key, bval, k
    """
    totals = "[1, 0]" if query.breakdown else "[1]"
    # The remainder is its own group (is_other), so a real value named "other" stays apart.
    return f"""
        SELECT is_total, if(is_total = 1, '', if(rk <= {limit}, bval, '{OTHER}')) AS b2,
            sum(members), k, sum(persons), sum(skipped), sum(prev_sum), sum(prev_n),
            quantileExactIfMerge(0.5)(prev_q), quantilesExactIfMerge(0.5, 0.9)(first_q),
            sumForEach(hist),
            min(if(is_total = 1, 0, least(rk, {limit} + 1))) AS order_key,
            is_total = 0 AND rk > {limit} AS is_other, uniqExact(bval) AS n_values, site_key
        FROM (
            SELECT *, arrayJoin({totals}) AS is_total,
                dense_rank() OVER (PARTITION BY site_key ORDER BY members DESC, bval ASC) AS rk
            FROM ({inner})
        )
        GROUP BY site_key, is_total, is_other, b2, k
        ORDER BY site_key, is_total DESC, order_key, b2, k
    """


def _fold(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows per (group, is_total, value, stage) to one row per (group, is_total, value):
    (is_total, value, members, persons[], skipped[], prev_sum[], prev_n[], prev_median[],
    first_quantiles[], histogram (flat, stage-major), is_other, values merged, group)."""
    out: list[tuple[Any, ...]] = []
    current: list[Any] | None = None
    for row in rows:
        is_total, b2, members, _k, persons, skip, psum, pn, pmed, fq, hist, _o = row[:12]
        is_other, n_values, key = row[12:]
        ident = (is_total, b2, bool(is_other), key)
        if current is None or (current[0], current[1], current[10], current[12]) != ident:
            current = [is_total, b2, members, [], [], [], [], [], [], [], bool(is_other)]
            current += [int(n_values), key]
            out.append(current)  # type: ignore[arg-type]
        for slot, value in zip(range(3, 9), (persons, skip, psum, pn, pmed, fq), strict=True):
            current[slot].append(value)
        current[9].extend(hist)
    return [tuple(row) for row in out]


def _stage_table(
    store: Store,
    timer: ReportTimer,
    plan_sql: str,
    query: ReportQuery,
    params: Params,
    group: str = "''",
) -> list[tuple[Any, ...]]:
    """The aggregated per-stage figures of a plan, one row per (group, is_total, value)."""
    sql = _aggregate_sql(plan_sql, query, params, group)
    return _fold(timer.rows(store, sql, params.values))


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
    plan = site_plan(store, site.key, definition, query, params)
    rows = _stage_table(store, timer, plan.sql, query, params)
    result = _shape(definition, query, plan.mode, plan.window, rows, timer.ms)
    if query.compare:
        result["compare"] = _previous_period(store, site, definition, query, result)
        result["sql_ms"] += result["compare"]["sql_ms"]
    return result


PREVIOUS_EXTRA = ("name", "dropoff", "skipped", "time_from_previous", "time_from_first_click")


def _previous_period(
    store: Store, site: Site, definition: dict[str, Any], query: ReportQuery, now: dict[str, Any]
) -> dict[str, Any]:
    """The same report over the period just before the range, and each stage's change."""
    start, end = query.previous_range()
    before = funnel_report(
        store, site, definition, replace(query, date_from=start, date_to=end, compare=False)
    )
    stages = []
    for current, previous in zip(now["stages"], before["stages"], strict=True):
        was = previous["persons"]
        item = {
            "key": previous["key"],
            "persons": was,
            "conversion_from_start": previous["conversion_from_start"],
            "conversion_from_previous": previous["conversion_from_previous"],
            "change": (current["persons"] - was) / was if was else None,
            # The rest of the period's stage figures, for the CSV's "previous" rows.
            **{k: previous[k] for k in PREVIOUS_EXTRA},
        }
        # Rates move in points (0.05 = 5 percentage points): a relative change of a rate
        # reads as a change of volume.
        for rate in ("conversion_from_start", "conversion_from_previous"):
            a, b = current[rate], previous[rate]
            item[f"{rate}_change"] = a - b if a is not None and b is not None else None
        stages.append(item)
    return {
        "range": before["range"],
        "persons": before["persons"],
        "stages": stages,
        "sql_ms": before["sql_ms"],
    }


def funnel_reports_by_site(
    store: Store, site_keys: list[str], definition: Any, query: ReportQuery
) -> dict[str, dict[str, Any]]:
    """The same report for many sites in one query (batch evaluation), keyed by site key."""
    definition = as_definition(definition)
    timer = ReportTimer()
    params = Params()
    plan = site_plan(store, list(site_keys), definition, query, params)
    rows = _stage_table(store, timer, plan.sql, query, params, group="site")
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
    plan = site_plan(store, site_key, definition, query, params, periods=periods)
    rows = _stage_table(store, timer, plan.sql, query, params, group="ps")
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
                item = {"value": str(r[1]), "other": r[10], "stages": _stage_rows(definition, r)}
                if r[10]:
                    item["values"] = r[11]  # how many values the remainder merges
                breakdown.append(item)
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
        # With a segment every figure above is that group's only (the CSV labels them so).
        "segment": query.segment,
        "engagement": engagement,
        "range": query.range_dict(),
        "timezone": query.timezone,
        "sql_ms": sql_ms,
    }
