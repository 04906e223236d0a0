"""Funnel reports over stored events: report, trends, pipeline, persons, journey, preview,
top values and CSV exports. The API and the dashboard both call these functions."""

from __future__ import annotations

from tracker.reports.query import QueryError, ReportQuery, parse_report_query
from tracker.reports.report import funnel_report

__all__ = [
    "QueryError",
    "ReportQuery",
    "funnel_report",
    "parse_report_query",
]
