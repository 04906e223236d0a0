"""Pipeline metrics: who sits in each stage now, sale value, close rate, time to close and a
forecast of conversions from the sitting persons at the historical stage-to-stage rates."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

from tracker.clickhouse import Store
from tracker.models import Site
from tracker.reports.common import ReportTimer, as_definition, ratio, seconds
from tracker.reports.engine import site_plan
from tracker.reports.query import ReportQuery
from tracker.stages.operators import Params


def funnel_pipeline(
    store: Store, site: Site, definition: Any, query: ReportQuery, now_ms: int | None = None
) -> dict[str, Any]:
    definition = as_definition(definition)
    query = query.totals_only()
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
    sql = f"""
        SELECT
            count() AS entered,
            sumForEach(hit) AS reached,
            [{
        ", ".join(f"countIf(last = {k} AND {p_now} - last_start <= {p_w})" for k in range(1, n + 1))
    }] AS sitting,
            countIf(hit[{n}] = 1) AS converted,
            sumIf(sale_value, hit[{n}] = 1) AS value_sum,
            avgIf(tk[{n}] - close_start, hit[{n}] = 1) AS close_ms
        FROM (
            SELECT *, arrayLastIndex(x -> x = 1, hit) AS last FROM ({plan.sql})
            WHERE in_funnel
        )
    """
    timer = ReportTimer()
    rows = timer.rows(store, sql, params.values)
    entered, reached, sitting, converted, value_sum, close_ms = rows[0]
    reached = list(reached) if reached else [0] * n
    out_stages = []
    forecast = 0.0
    for idx, stage in enumerate(stages):
        now_in = int(sitting[idx]) if idx < n - 1 else 0
        rate = ratio(reached[n - 1], reached[idx]) if idx < n - 1 else 1.0
        expected = now_in * rate
        forecast += expected
        out_stages.append(
            {
                "key": stage["key"],
                "name": stage["name"],
                "color": stage["color"],
                "reached": int(reached[idx]),
                "sitting": now_in,
                "rate_to_close": rate,
                "expected_conversions": expected,
            }
        )
    converted = int(converted)
    close = None if close_ms is None or close_ms != close_ms else float(close_ms)
    return {
        "stages": out_stages,
        "entered": int(entered),
        "converted": converted,
        "close_rate": ratio(converted, int(entered)),
        "sale_value": {
            "sum": float(value_sum or 0.0),
            "average": float(value_sum) / converted if converted else None,
        },
        "average_time_to_close_s": seconds(close) if converted else None,
        "forecast": {
            "conversions": forecast,
            "value": forecast * float(value_sum) / converted if converted else 0.0,
        },
        # of sale_value and forecast.value; None: not set (or a site-like object without one)
        "currency": getattr(site, "currency", "") or None,
        "window": window,
        "range": query.range_dict(),
        "timezone": query.timezone,
        "sql_ms": timer.ms,
    }
