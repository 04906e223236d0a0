"""Report query parameters: the date range, mode/window overrides, filters and breakdown.

`parse_report_query` turns request arguments into a `ReportQuery`, raising `QueryError` with a
message meant for the user. Filters on person attributes (campaign, source, landing, country,
...) select persons by attribution; filters on any other field restrict which events count.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tracker.models import Site
from tracker.stages.definitions import MODES, DefinitionError, _Collector, parse_window
from tracker.stages.definitions import _condition as check_condition
from tracker.stages.fields import ATTRIBUTION_FIELDS, canonical_field, is_known, is_prop

DEFAULT_DAYS = 30
MAX_RANGE_DAYS = 5 * 366
DEFAULT_BREAKDOWN_LIMIT = 10
# Shorthand query parameters -> attribution field (equality filters).
SHORTHAND = ("campaign", "source", "medium", "keyword", "country", "region", "device", "landing")
# Arguments that may be given several times (all of them apply); every other one takes one value.
REPEATABLE = ("filter", *SHORTHAND)
SINGLE_VALUED = ("from", "to", "mode", "window", "breakdown", "segment", "compare", "limit")


class QueryError(ValueError):
    """Bad report parameters; the message is shown to the user."""


@dataclass
class ReportQuery:
    date_from: date
    date_to: date
    timezone: str = "UTC"
    mode: str | None = None
    window: int | None = None
    # Conditions on person attributes: {"field", "op", "value"} with attribution field names.
    person_filters: list[dict[str, Any]] = field(default_factory=list)
    # Conditions restricting which events count (any event field, prop.<name>).
    event_filters: list[dict[str, Any]] = field(default_factory=list)
    breakdown: str | None = None
    breakdown_limit: int = DEFAULT_BREAKDOWN_LIMIT
    # One breakdown value ("" for persons without one): only the persons in that group.
    segment: str | None = None
    # Also report the period of the same length just before the range (compare=previous).
    compare: bool = False
    # False when from/to were not given: trends and pipeline then pick their own default span.
    explicit_range: bool = True

    @property
    def start_ms(self) -> int:
        return epoch_ms(self.date_from, self.timezone)

    @property
    def end_ms(self) -> int:
        """Exclusive: midnight after `date_to` in the site's time zone."""
        return epoch_ms(self.date_to + timedelta(days=1), self.timezone)

    def range_dict(self) -> dict[str, str]:
        return {"from": self.date_from.isoformat(), "to": self.date_to.isoformat()}

    def totals_only(self) -> ReportQuery:
        """This query for a result that shows no breakdown (trends, pipeline, a persons page):
        attributing the breakdown field would cost every person an argMin (and every event a
        property read) for nothing, unless a segment selects persons by it."""
        return self if self.segment is not None else replace(self, breakdown=None)

    def previous_range(self) -> tuple[date, date]:
        """The range of the same number of days that ends the day before this one starts."""
        days = (self.date_to - self.date_from).days + 1
        to = self.date_from - timedelta(days=1)
        start = to - timedelta(days=days - 1)
        if start < EARLIEST_DATE:
            raise QueryError(f"the previous period would start before {EARLIEST_DATE}")
        return start, to


def epoch_ms(day: date, tz: str) -> int:
    """Local midnight of `day` in `tz`, in milliseconds since the epoch."""
    return int(datetime.combine(day, time(0), tzinfo=ZoneInfo(tz)).timestamp() * 1000)


def today_in(tz: str) -> date:
    return datetime.now(ZoneInfo(tz)).date()


# Report dates stay well inside ClickHouse's DateTime64 range (1900..2299), with room for a
# 365-day window and the default range before `to`, so no date arithmetic can overflow.
EARLIEST_DATE = date(1970, 1, 1)
LATEST_DATE = date(2199, 12, 31)


def _date(value: Any, name: str) -> date:
    try:
        day = date.fromisoformat(str(value).strip())
    except ValueError:
        raise QueryError(f"{name} must be a date like 2026-03-31, got {value!r}") from None
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        raise QueryError(f"{name} must be between {EARLIEST_DATE} and {LATEST_DATE}, got {day}")
    return day


def _getlist(args: Mapping[str, Any], key: str) -> list[Any]:
    getlist = getattr(args, "getlist", None)
    if callable(getlist):
        return list(getlist(key))
    value = args.get(key)
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def parse_filter(spec: str) -> dict[str, Any]:
    """`field:op:value` (the value may itself contain colons) -> a checked condition."""
    parts = str(spec).split(":", 2)
    if len(parts) < 2:
        raise QueryError(f"filter {spec!r} must look like field:op:value, e.g. path:contains:/blog")
    field_name, op = parts[0], parts[1]
    value: Any = parts[2] if len(parts) == 3 else None
    name = canonical_field(field_name)
    out = _Collector()
    if name == "landing":
        cond = check_condition({"field": "path", "op": op, "value": value}, "filter", out)
        if cond is not None:
            cond["field"] = "landing"
    else:
        cond = check_condition({"field": name, "op": op, "value": value}, "filter", out)
    if cond is None:
        raise QueryError(f"filter {spec!r}: {out.errors[0]['message']}")
    return cond


def parse_report_query(args: Mapping[str, Any], site: Site | None = None) -> ReportQuery:
    tz = getattr(site, "timezone", None) or "UTC"
    today = today_in(tz)
    date_to = _date(args["to"], "to") if args.get("to") else today
    date_from = (
        _date(args["from"], "from")
        if args.get("from")
        # The default is clamped like the bound an explicit `from` must keep.
        else max(date_to - timedelta(days=DEFAULT_DAYS - 1), EARLIEST_DATE)
    )
    if date_from > date_to:
        raise QueryError("from must not be after to")
    if (date_to - date_from).days + 1 > MAX_RANGE_DAYS:  # both days count
        raise QueryError(f"the date range may span at most {MAX_RANGE_DAYS} days")
    query = ReportQuery(
        date_from=date_from,
        date_to=date_to,
        timezone=tz,
        explicit_range=bool(args.get("from") or args.get("to")),
    )
    mode = args.get("mode")
    if mode:
        if mode not in MODES:
            raise QueryError(f"mode must be one of {', '.join(MODES)}")
        query.mode = str(mode)
    if args.get("window"):
        try:
            query.window = parse_window(args["window"])
        except ValueError as exc:
            raise QueryError(str(exc)) from None
    for key in SHORTHAND:
        for value in _getlist(args, key):
            if value is None:
                continue
            query.person_filters.append({"field": key, "op": "equals", "value": str(value)})
    for spec in _getlist(args, "filter"):
        if spec in (None, ""):
            continue
        cond = parse_filter(str(spec))
        if cond["field"] in ATTRIBUTION_FIELDS:
            query.person_filters.append(cond)
        else:
            query.event_filters.append(cond)
    breakdown = args.get("breakdown")
    if breakdown:
        name = canonical_field(str(breakdown))
        if name == "product":  # the dashboard's product dimension is the property
            name = "prop.product"
        if name not in ATTRIBUTION_FIELDS and not (is_prop(name) and is_known(name)):
            raise QueryError(
                f"breakdown must be one of {', '.join(sorted(ATTRIBUTION_FIELDS))}, "
                f"or prop.<name> (at most 200 characters), got {breakdown!r}"
            )
        query.breakdown = name
    segment = args.get("segment")
    if segment is not None:
        if not query.breakdown:
            raise QueryError("segment needs a breakdown: the field whose value it is")
        query.segment = str(segment)
    compare = args.get("compare")
    if compare not in (None, ""):
        if compare != "previous":
            raise QueryError("compare must be 'previous' (the period just before the range)")
        query.compare = True
        query.previous_range()  # a clear error now rather than a failed report later
    limit = args.get("limit")
    if limit not in (None, ""):
        try:
            query.breakdown_limit = int(str(limit))
        except ValueError:
            raise QueryError("limit must be a whole number") from None
        if not 1 <= query.breakdown_limit <= 1000:
            raise QueryError("limit must be between 1 and 1000")
    return query


__all__ = ["DefinitionError", "QueryError", "ReportQuery", "parse_filter", "parse_report_query"]
