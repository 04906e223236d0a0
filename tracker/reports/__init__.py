"""Funnel reports over stored events: report, trends, pipeline, persons, journey, preview,
top values and CSV exports. The API and the dashboard both call these functions."""

from __future__ import annotations

from tracker.reports.csv_export import persons_csv, persons_csv_chunks, report_csv, trends_csv
from tracker.reports.exits import funnel_exits
from tracker.reports.explore import partial_stage_preview, stage_preview, top_values
from tracker.reports.persons import (
    export_persons,
    funnel_persons,
    person_journey,
    person_progress,
    resolve_person,
)
from tracker.reports.pipeline import funnel_pipeline
from tracker.reports.query import QueryError, ReportQuery, parse_report_query
from tracker.reports.report import funnel_report, funnel_reports_by_site
from tracker.reports.trends import funnel_trends

__all__ = [
    "QueryError",
    "ReportQuery",
    "export_persons",
    "funnel_exits",
    "funnel_persons",
    "funnel_pipeline",
    "funnel_report",
    "funnel_reports_by_site",
    "funnel_trends",
    "parse_report_query",
    "partial_stage_preview",
    "person_journey",
    "person_progress",
    "persons_csv",
    "persons_csv_chunks",
    "report_csv",
    "resolve_person",
    "stage_preview",
    "top_values",
    "trends_csv",
]
