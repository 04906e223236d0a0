"""Jinja filters: numbers with separators, money, percentages, durations and site-local times."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Flask

from dashboard.editor_form import safe_color
from tracker.accounts import ZERO_DECIMAL_CURRENCIES

DASH = "\u2013"  # en dash for "no value"


def _as_number(value: Any, fmt: Callable[[float], str]) -> str:
    """`fmt` of the value read as a number; a dash for no value, the text itself when it is
    not a number."""
    if value is None or value == "":
        return DASH
    try:
        num = float(value)
    except (TypeError, ValueError):
        return str(value)
    return fmt(num)


def number(value: Any) -> str:
    return _as_number(value, lambda n: f"{int(n):,}" if n.is_integer() else f"{n:,.2f}")


def percent(value: Any, digits: int = 1) -> str:
    """A ratio 0..1 as a percentage; None (nothing to divide by) as a dash."""
    return _as_number(value, lambda n: f"{n * 100:.{digits}f}%")


def money(value: Any, currency: str | None = "") -> str:
    """A sale value in the site's currency ("1,234.50 EUR"); a plain number without one."""
    if not currency:
        return number(value)
    # The code after the amount reads the same in every locale and for every currency.
    digits = 0 if currency in ZERO_DECIMAL_CURRENCIES else 2
    return _as_number(value, lambda n: f"{n:,.{digits}f} {currency}")


def _signed(value: Any, unit: str) -> str:
    """A ratio as a signed change in percent ("%") or percentage points (" pts")."""
    return _as_number(value, lambda n: f"{n * 100:+.1f}{unit}")


def signed_percent(value: Any) -> str:
    """A relative change: 0.25 -> "+25.0%"."""
    return _signed(value, "%")


def signed_points(value: Any) -> str:
    """A change of a rate in percentage points: 0.052 -> "+5.2 pts"."""
    return _signed(value, " pts")


def duration(seconds: Any) -> str:
    """3 d 4 h, 2 h 5 min, 4 min 10 s, 12 s."""
    if seconds is None or seconds == "":
        return DASH
    try:
        total = round(float(seconds))
    except (TypeError, ValueError):
        return str(seconds)
    days, rem = divmod(total, 86400)
    hours, rem = divmod(rem, 3600)
    minutes, secs = divmod(rem, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    return f"{secs} s"


def to_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, int | float):
        # Epoch seconds, or milliseconds for large values.
        return datetime.fromtimestamp(value / 1000 if value > 1e11 else value, UTC)
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
    return None


def zone(tz: str | None) -> ZoneInfo:
    try:
        return ZoneInfo(tz or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _in_zone(value: Any, tz: str | None) -> datetime | None:
    """A stored time (naive means UTC) in the site's time zone, or None if it is not one."""
    moment = to_datetime(value)
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone(tz))


def localtime(value: Any, tz: str | None = "UTC", fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored time (naive means UTC) shown in the site's time zone."""
    local = _in_zone(value, tz)
    if local is None:
        return "" if value is None else str(value)
    return local.strftime(fmt)


def clock(value: Any, tz: str | None = "UTC", now: datetime | None = None) -> str:
    """A recent time in the site's zone: the time of day when it is today there, else the
    date too (a list of the last events can reach back days)."""
    local = _in_zone(value, tz)
    if local is None:
        return localtime(value, tz)
    today = (now or datetime.now(UTC)).astimezone(zone(tz)).date()
    return local.strftime("%H:%M:%S" if local.date() == today else "%Y-%m-%d %H:%M:%S")


def cell(row: Any, key: str, tz: str = "UTC") -> str:
    """A table cell: times in the site's zone, numbers with separators, text as is."""
    value = row.get(key) if isinstance(row, dict) else None
    if value is None:
        return ""
    if key.startswith("prop."):
        return str(value)  # a property's text, whatever its name suggests
    if key.endswith(("_at", "_seen", "_ts")) or key in ("ts", "time"):
        return localtime(value, tz)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return number(value)
    return str(value)


def pipeline_bar(stage: dict[str, Any]) -> dict[str, Any]:
    """A pipeline stage as a bar: persons sitting there now, and their expected sales."""
    return {
        "name": stage.get("name", ""),
        "color": stage.get("color"),
        "value": stage.get("sitting", 0),
        "label": f"{number(stage.get('sitting', 0))} now · "
        f"{percent(stage.get('rate_to_close'))} usually close",
    }


def register(app: Flask) -> None:
    app.jinja_env.filters.update(
        number=number,
        percent=percent,
        money=money,
        signed_percent=signed_percent,
        signed_points=signed_points,
        duration=duration,
        localtime=localtime,
        clock=clock,
        safe_color=safe_color,
        cell=cell,
        pipeline_bar=pipeline_bar,
    )
