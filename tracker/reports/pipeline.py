"""Pipeline metrics: who sits in each stage now, sale value, close rate, time to close and a
forecast of conversions from the sitting persons at the historical stage-to-stage rates;
with a breakdown, the same figures per group (top N values plus "other")."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from tracker.clickhouse import Store
from tracker.models import Site
from tracker.reports.common import ReportTimer, as_definition, ratio, seconds
from tracker.reports.engine import attr_expr, site_plan
from tracker.reports.query import ReportQuery
from tracker.stages.operators import Params

OTHER = "other"

# Additive per-group sums, in the order the query returns them after the group value.
_Sums = tuple[int, list[int], list[int], int, float, int]


def funnel_pipeline(
    store: Store, site: Site, definition: Any, query: ReportQuery, now_ms: int | None = None
) -> dict[str, Any]:
    definition = as_definition(definition)
    stages = definition["stages"]
    n = len(stages)
    window = query.window or int(definition["window"])
    if not query.explicit_range:
        # Only attempts that can still be open matter by default: the last window's worth.
        query.date_from = query.date_to - timedelta(days=max(1, -(-window // 86400)) - 1)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    params = Params()
    plan = site_plan(store, site.key, definition, query, params, values=True, every_attempt=True)
    p_now = params.add(now, "Int64")
    p_w = params.add(window * 1000, "Int64")
    # Every figure is a sum over persons, so groups add up to the totals exactly (the time
    # to close as a sum, divided at the end) and one grouped query gives both.
    group = attr_expr(query.breakdown) if query.breakdown else "''"
    sql = f"""
        SELECT
            {group} AS bval,
            count() AS entered,
            sumForEach(hit) AS reached,
            [{
        ", ".join(f"countIf(last = {k} AND {p_now} - last_start <= {p_w})" for k in range(1, n + 1))
    }] AS sitting,
            countIf(hit[{n}] = 1) AS converted,
            sumIf(sale_value, hit[{n}] = 1) AS value_sum,
            sumIf(tk[{n}] - close_start, hit[{n}] = 1) AS close_sum
        FROM (
            SELECT *, arrayLastIndex(x -> x = 1, hit) AS last FROM ({plan.sql})
            WHERE in_funnel
        )
        GROUP BY bval
    """
    timer = ReportTimer()
    groups: dict[str, _Sums] = {}
    for bval, entered, reached, sitting, converted, value_sum, close_sum in timer.rows(
        store, sql, params.values
    ):
        groups[str(bval)] = (
            int(entered),
            [int(x) for x in reached],
            [int(x) for x in sitting],
            int(converted),
            float(value_sum or 0.0),
            int(close_sum or 0),
        )
    empty: _Sums = (0, [0] * n, [0] * n, 0, 0.0, 0)
    result = _figures(stages, _add(empty, *groups.values()))
    result["breakdown"] = (
        _breakdown(stages, groups, query.breakdown_limit, empty) if query.breakdown else []
    )
    result.update(
        {
            "breakdown_field": query.breakdown,
            # of sale_value and forecast.value; None: not set (or a site-like object without)
            "currency": getattr(site, "currency", "") or None,
            "window": window,
            "range": query.range_dict(),
            "timezone": query.timezone,
            "sql_ms": timer.ms,
        }
    )
    return result


def _add(first: _Sums, *more: _Sums) -> _Sums:
    entered, reached, sitting, converted, value, close = first
    reached, sitting = list(reached), list(sitting)
    for e, r, s, c, v, t in more:
        entered += e
        reached = [a + b for a, b in zip(reached, r, strict=True)]
        sitting = [a + b for a, b in zip(sitting, s, strict=True)]
        converted += c
        value += v
        close += t
    return entered, reached, sitting, converted, value, close


def _breakdown(
    stages: list[dict[str, Any]], groups: dict[str, _Sums], limit: int, empty: _Sums
) -> list[dict[str, Any]]:
    """Groups by persons entered (then value), the top `limit`, then the rest merged."""
    ranked = sorted(groups, key=lambda v: (-groups[v][0], v))
    out = [{"value": v, "other": False, **_figures(stages, groups[v])} for v in ranked[:limit]]
    rest = ranked[limit:]
    if rest:
        merged = _add(empty, *(groups[v] for v in rest))
        out.append({"value": OTHER, "other": True, "values": len(rest), **_figures(stages, merged)})
    return out


def _figures(stages: list[dict[str, Any]], sums: _Sums) -> dict[str, Any]:
    entered, reached, sitting, converted, value_sum, close_sum = sums
    n = len(stages)
    out_stages = []
    forecast = 0.0
    for idx, stage in enumerate(stages):
        now_in = sitting[idx] if idx < n - 1 else 0
        rate = ratio(reached[n - 1], reached[idx]) if idx < n - 1 else 1.0
        expected = now_in * rate
        forecast += expected
        out_stages.append(
            {
                "key": stage["key"],
                "name": stage["name"],
                "color": stage["color"],
                "reached": reached[idx],
                "sitting": now_in,
                "rate_to_close": rate,
                "expected_conversions": expected,
            }
        )
    return {
        "stages": out_stages,
        "entered": entered,
        "converted": converted,
        "close_rate": ratio(converted, entered),
        "sale_value": {
            "sum": value_sum,
            "average": value_sum / converted if converted else None,
        },
        "average_time_to_close_s": seconds(close_sum / converted) if converted else None,
        "forecast": {
            "conversions": forecast,
            "value": forecast * value_sum / converted if converted else 0.0,
        },
    }
