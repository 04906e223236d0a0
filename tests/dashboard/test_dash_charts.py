"""Chart geometry and report arguments (pure functions)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from werkzeug.datastructures import MultiDict

from dashboard import charts, report_args
from dashboard.formatting import clock, duration, localtime


def test_funnel_geometry_scales_to_the_largest_stage() -> None:
    g = charts.funnel_geometry(
        [
            {"name": "A", "persons": 200, "conversion_from_start": 1.0, "dropoff": 150,
             "dropoff_rate": 0.75, "color": "#0072B2"},
            {"name": "B", "persons": 50, "conversion_from_start": 0.25, "skipped": 3},
        ]
    )  # fmt: skip
    a, b = g["rows"]
    assert a["width"] == charts.BAR_MAX_W
    assert b["width"] == charts.BAR_MAX_W / 4
    assert a["label"] == "200 · 100.0%"
    assert a["drop"]["text"] == "▼ 150 dropped (75.0%) · 3 skipped the next stage"
    assert b["color"] == "#E69F00"  # palette colour when none is given


def test_histogram_labels_every_bar() -> None:
    g = charts.histogram_geometry(
        [{"bucket": "<1m", "persons": 0}, {"bucket": "1-10m", "persons": 1200}]
    )
    assert [b["count"] for b in g["bars"]] == ["0", "1,200"]
    assert g["bars"][1]["h"] > g["bars"][0]["h"] == 0


def test_presets_are_in_the_site_time_zone() -> None:
    today = date(2026, 3, 15)
    assert report_args.preset_range("7d", "UTC", today) == (date(2026, 3, 9), today)
    assert report_args.preset_range("last_month", "UTC", today) == (
        date(2026, 2, 1),
        date(2026, 2, 28),
    )
    chosen = {"range": "custom", "from": "2026-01-01", "to": "2026-01-31", "product": "shoe"}
    args = report_args.service_args(MultiDict(chosen), "UTC")
    assert args["from"] == "2026-01-01"
    assert args.getlist("filter") == ["prop.product:equals:shoe"]


def test_chips_remove_one_filter_each() -> None:
    args = MultiDict([("campaign", "a"), ("campaign", "b"), ("filter", "path:contains:/x")])
    chips = report_args.chips(args, "/r")
    assert [c["label"] for c in chips] == ["Campaign: a", "Campaign: b", "path contains /x"]
    assert chips[0]["remove"] == "/r?filter=path%3Acontains%3A%2Fx&campaign=b"


def test_formatting() -> None:
    assert duration(3725) == "1 h 2 min"
    assert duration(None) == "\u2013"
    assert localtime("2026-06-01T12:00:00", "Europe/Paris") == "2026-06-01 14:00"


@pytest.mark.parametrize(
    ("stored", "tz", "shown"),
    [
        ("2026-06-01T12:00:00", "UTC", "12:00:00"),  # today: the time is enough
        ("2026-05-31T23:59:59", "UTC", "2026-05-31 23:59:59"),  # yesterday: with its date
        ("2026-05-31T22:30:00", "Europe/Paris", "00:30:00"),  # already today in Paris
        ("2026-06-01T01:00:00", "America/New_York", "2026-05-31 21:00:00"),  # not yet in NY
        ("not a time", "UTC", "not a time"),
    ],
)
def test_clock_shows_the_date_unless_today(stored: str, tz: str, shown: str) -> None:
    now = datetime(2026, 6, 1, 15, 0, tzinfo=UTC)
    assert clock(stored, tz, now=now) == shown
