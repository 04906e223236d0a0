"""CSV exports of reports and person lists. Cells that a spreadsheet would run as a formula
(starting with = + - @, or a tab/CR) are prefixed with a quote."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def _write(header: list[str] | None, rows: Iterable[list[Any]]) -> str:
    """CSV text of the rows, after the header unless it is None (a later streamed piece)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    if header is not None:
        writer.writerow([safe_cell(h) for h in header])
    for row in rows:
        writer.writerow([safe_cell(c) for c in row])
    return buf.getvalue()


STAGE_COLUMNS = [
    "segment",
    "stage",
    "name",
    "persons",
    "conversion_from_previous",
    "conversion_from_start",
    "dropoff",
    "skipped",
    "time_from_previous_mean_s",
    "time_from_previous_median_s",
    "time_from_first_click_median_s",
    "time_from_first_click_p90_s",
    "segment_kind",
]


def _stage_rows(segment: str, kind: str, stages: list[dict[str, Any]]) -> list[list[Any]]:
    return [
        [
            segment,
            s["key"],
            s["name"],
            s["persons"],
            s["conversion_from_previous"],
            s["conversion_from_start"],
            s["dropoff"],
            s["skipped"],
            s["time_from_previous"]["mean_s"],
            s["time_from_previous"]["median_s"],
            s["time_from_first_click"]["median_s"],
            s["time_from_first_click"]["p90_s"],
            kind,
        ]
        for s in stages
    ]


# With compare=previous: which period a row is about, its range, and on the current
# totals the change against the previous period (as in the JSON's `compare`).
COMPARE_COLUMNS = [
    "period",
    "from",
    "to",
    "change",
    "conversion_from_start_change",
    "conversion_from_previous_change",
]


def report_csv(report: dict[str, Any]) -> str:
    """One row per stage (segment "all"), then per breakdown value. `segment_kind` tells the
    totals, a value and the merged remainder apart, even for a value named "all" or "other".
    With a segment the first rows are that group's figures, not all persons': they carry its
    value and the kind "segment". With compare=previous, COMPARE_COLUMNS follow and the
    previous period's rows come last."""
    segment = report.get("segment")
    label, kind = ("all", "total") if segment is None else (str(segment), "segment")
    totals = _stage_rows(label, kind, report["stages"])
    groups: list[list[Any]] = []
    for group in report.get("breakdown") or []:
        group_kind = "other" if group.get("other") else "value"
        groups += _stage_rows(str(group["value"]), group_kind, group["stages"])
    compare = report.get("compare")
    if not compare:
        return _write(STAGE_COLUMNS, totals + groups)
    now, before = report["range"], compare["range"]
    changes = [
        [c["change"], c["conversion_from_start_change"], c["conversion_from_previous_change"]]
        for c in compare["stages"]
    ]
    rows = [
        [*row, "current", now["from"], now["to"], *change]
        for row, change in zip(totals, changes, strict=True)
    ]
    rows += [[*row, "current", now["from"], now["to"], "", "", ""] for row in groups]
    rows += [[*row, "previous", before["from"], before["to"], "", "", ""]
             for row in _stage_rows(label, kind, compare["stages"])]  # fmt: skip
    return _write(STAGE_COLUMNS + COMPARE_COLUMNS, rows)


TREND_COLUMNS = [
    "period_start",
    "period_end",
    "stage",
    "name",
    "persons",
    "previous",
    "change",
    "conversion_from_start",
    "complete",
    "partial",
    "settled",
]


def trends_csv(trends: dict[str, Any]) -> str:
    """One row per period and stage, oldest period first (a long table that pivots into a
    period-by-stage sheet). `complete`, `partial` and `settled` mark periods whose counts are
    not final: still under way, cut by the range, or with attempts still converting."""
    rows = [
        [
            period["start"],
            period["end"],
            stage["key"],
            stage["name"],
            stage["persons"],
            stage["previous"],
            stage["change"],
            stage["conversion_from_start"],
            *(str(bool(period[flag])).lower() for flag in ("complete", "partial", "settled")),
        ]
        for period in trends.get("periods") or []
        for stage in period["stages"]
    ]
    return _write(TREND_COLUMNS, rows)


def persons_csv(result: dict[str, Any]) -> str:
    """A persons list as CSV. The header is the list's `columns`, fixed by its arguments, so
    an empty list has the same columns as a full one."""
    persons = result.get("persons") or []
    columns = result.get("columns") or _columns_of(persons)
    return _write(columns, [[p.get(c) for c in columns] for p in persons])


def persons_csv_chunks(columns: list[str], pages: Iterable[list[dict[str, Any]]]) -> Iterator[str]:
    """The same CSV in pieces, one per page of persons, for a streamed export."""
    yield _write(columns, [])
    for persons in pages:
        yield _write(None, ([p.get(c) for c in columns] for p in persons))


def _columns_of(persons: list[dict[str, Any]]) -> list[str]:
    """For a result without `columns` (built by hand): the first person's keys."""
    header = ["id", "first_seen", "last_stage", "reached_at"]
    return header + [k for k in (persons[0] if persons else {}) if k not in header]
