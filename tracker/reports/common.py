"""Helpers shared by the report modules: definitions in, timed queries, ratios."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from tracker.clickhouse import Store
from tracker.models import Funnel
from tracker.stages.definitions import validate_definition


class ReportTimer:
    """Adds up the wall time spent in ClickHouse for the response's `sql_ms`."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def rows(self, store: Store, sql: str, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        started = time.perf_counter()
        try:
            return store.rows(sql, params)
        finally:
            self.seconds += time.perf_counter() - started

    @property
    def ms(self) -> int:
        return round(self.seconds * 1000)


def as_definition(definition: Any) -> dict[str, Any]:
    """A normalised definition from a Funnel row or a (possibly raw) definition dict."""
    if isinstance(definition, Funnel):
        from tracker.funnels import funnel_definition

        definition = funnel_definition(definition)
    return validate_definition(definition)


def ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def seconds(ms: float | None) -> float | None:
    return None if ms is None else ms / 1000.0
