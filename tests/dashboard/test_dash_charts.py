"""Chart geometry and report arguments (pure functions)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime

import pytest
from werkzeug.datastructures import MultiDict

from dashboard import charts, report_args
from dashboard.formatting import clock, duration, localtime, money


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


def test_compact_funnel_puts_the_skipped_count_on_its_own_line() -> None:
    """Compact drop-off text is as large as the names, so it splits where it would overflow,
    and the next stage moves down by that extra line."""
    stages = [
        {"name": "A", "persons": 20000, "dropoff": 12345, "dropoff_rate": 0.61725},
        {
            "name": "B",
            "persons": 7655,
            "skipped": 1234,
            "dropoff": 0,
            "dropoff_rate": 0.0,
            "href_skipped": "/persons?stage=b&status=skipped",
        },
        {"name": "C", "persons": 7655},
    ]
    wide = charts.funnel_geometry(stages)
    compact = charts.funnel_geometry(stages, compact=True)

    def lines(g: dict, row: int) -> list[str]:
        out: list[str] = []
        for part in g["rows"][row]["drop"]["parts"]:
            if out and not part["newline"]:
                out[-1] += " · " + part["text"]
            else:
                out.append(part["text"])
        return out

    assert lines(wide, 0) == ["▼ 12,345 dropped (61.7%) · 1,234 skipped the next stage"]
    assert lines(compact, 0) == ["▼ 12,345 dropped (61.7%)", "1,234 skipped the next stage"]
    assert lines(compact, 1) == ["▼ 0 dropped (0.0%)"]
    # The skipped count opens the persons who skipped the next stage, not the dropped ones.
    assert [p["href"] for p in compact["rows"][0]["drop"]["parts"]] == [
        None,
        "/persons?stage=b&status=skipped",
    ]
    assert compact["drop_font"] == charts.COMPACT_FONT > wide["drop_font"]
    # Row 2 sits one line lower than row 3 does below row 2, which has no second line.
    step_1 = compact["rows"][1]["y"] - compact["rows"][0]["y"]
    step_2 = compact["rows"][2]["y"] - compact["rows"][1]["y"]
    assert step_1 - step_2 == charts.COMPACT_LINE_H
    # Roughly 0.6 em per character: every line fits the compact viewBox.
    for row in range(2):
        for line in lines(compact, row):
            assert len(line) * charts.COMPACT_FONT * 0.6 < charts.COMPACT_WIDTH, line


def test_compact_charts_keep_their_text_large_and_inside() -> None:
    """The phone variants: a viewBox about half as wide, larger text, and labels that fit."""
    buckets = [{"bucket": "<1m", "persons": 0}, {"bucket": "1-10m", "persons": 1200}]
    hist = charts.histogram_bars(buckets)
    assert hist["compact"] and hist["width"] == charts.COMPACT_WIDTH
    assert [(r["name"], r["label"]) for r in hist["rows"]] == [("<1m", "0"), ("1-10m", "1,200")]
    assert [r["w"] for r in hist["rows"]] == [0.0, charts.COMPACT_WIDTH]
    # Each bar sits below its own text line, and rows do not overlap.
    for a, b in itertools.pairwise(hist["rows"]):
        assert a["text_y"] < a["y"] < a["y"] + hist["bar_h"] < b["text_y"] - hist["font"]
    wide = charts.bars_geometry([{"name": "A", "value": 3}])
    assert wide["width"] == 760 and wide["rows"][0]["label_x"] is not None

    days = [f"2026-10-{d:02d}" for d in range(1, 31)]
    series = [{"name": "Engagement stage name", "values": list(range(30))}]
    line = charts.line_geometry(days, series, compact=True)
    assert line["compact"] and line["width"] == charts.COMPACT_WIDTH
    assert line["font"] == charts.COMPACT_FONT
    # Widths at 0.64 em per character (a digit of the dashboard's sans-serif font).
    # Three dates under the axis (ten characters each), far enough apart not to touch.
    xs = [t["x"] for t in line["ticks"]]
    spacing = min(b - a for a, b in itertools.pairwise(xs))
    assert len(xs) == 3 and spacing > 10 * 0.64 * charts.COMPACT_FONT
    # The end label, cut to label_chars, fits between the plot and the right edge.
    room = line["width"] - line["lines"][0]["last_x"]
    assert line["label_chars"] * 0.64 * line["font"] <= room
    # Large counts: the axis labels ("150,000") get room left of the plot, in both forms.
    big = [{"name": "Trace", "values": [120_000, 131_000]}]
    for compact in (False, True):
        g = charts.line_geometry(days[:2], big, compact=compact)
        widest = max(len(gl["label"]) for gl in g["gridlines"])
        assert widest == len("150,000") and g["left"] - 6 >= widest * 0.64 * g["font_small"]
    # Several end labels finishing at the same height stay a line apart.
    level = [{"name": f"S{k}", "values": [5, 5]} for k in range(4)]
    ys = sorted(ln["last_y"] for ln in charts.line_geometry(days[:2], level, compact=True)["lines"])
    assert min(b - a for a, b in itertools.pairwise(ys)) >= charts.COMPACT_FONT


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
    ("value", "currency", "shown"),
    [
        (1234.5, "EUR", "1,234.50 EUR"),
        (40, "USD", "40.00 USD"),
        (1234.6, "JPY", "1,235 JPY"),  # no minor unit
        (-12.345, "GBP", "-12.35 GBP"),  # a refund
        (1234.5, "", "1,234.50"),  # no currency set: a plain number
        (40, None, "40"),
        (None, "EUR", "\u2013"),
        ("n/a", "EUR", "n/a"),
    ],
)
def test_money(value: object, currency: str | None, shown: str) -> None:
    assert money(value, currency) == shown


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


@pytest.mark.parametrize(
    ("peak", "whole", "top", "step"),
    [
        (2629, True, 3000, 1000),
        (900, True, 1000, 500),
        (853, True, 1000, 500),
        (7, True, 10, 5),
        (3, True, 3, 1),
        (1, True, 1, 1),
        (0, True, 1, 1),
        (75, True, 75, 25),
        (76, True, 100, 50),
        (0.56, False, 0.6, 0.2),
        (1.0, False, 1.0, 0.5),
    ],
)
def test_value_axis_has_round_steps(peak: float, whole: bool, top: float, step: float) -> None:
    got_top, got_step = charts.nice_scale(peak, whole)
    assert (got_top, got_step) == pytest.approx((top, step))


def test_trend_gridlines_are_round_numbers() -> None:
    trends = {
        "interval": "week",
        "periods": [
            {"start": "2026-11-02", "stages": [{"key": "a", "name": "A", "persons": 900}]},
            {"start": "2026-11-09", "stages": [{"key": "a", "name": "A", "persons": 2629}]},
        ],
    }
    g = charts.trend_geometry(trends, [{"key": "a", "name": "A", "color": "#0072B2"}])
    assert [gl["label"] for gl in g["gridlines"]] == ["0", "1,000", "2,000", "3,000"]
    # The top gridline is the axis top: the highest point sits below it, in proportion.
    top_y = g["gridlines"][-1]["y"]
    highest = min(float(p.split(",")[1]) for p in g["lines"][0]["points"].split())
    assert highest > top_y


@pytest.mark.parametrize(
    "ends",
    [
        [1, 0, 0, 0],  # every line ends at the axis (a day just begun)
        [100, 99, 98, 97],  # at the top, close together
        [0] * 20,  # the most stages a funnel can have
        [50, 0, 50, 0],
    ],
)
@pytest.mark.parametrize("compact", [False, True])
def test_end_labels_never_overlap_nor_leave_the_chart(ends: list[int], compact: bool) -> None:
    series = [
        {"name": f"S{k}", "color": "#0072B2", "values": [100, 60, end]}
        for k, end in enumerate(ends)
    ]
    g = charts.line_geometry(["a", "b", "c"], series, compact=compact)
    ys = sorted(line["last_y"] for line in g["lines"])
    assert all(b - a >= charts.LABEL_GAP for a, b in itertools.pairwise(ys)), ys
    assert ys[0] >= 12  # the top label's text is inside the chart
    assert ys[-1] <= g["base"] + 4  # none falls into the dates under the axis


def test_a_period_under_way_is_drawn_dashed() -> None:
    def trends(last: dict[str, object]) -> dict[str, object]:
        stage = {"key": "a", "name": "A", "persons": 5}
        periods = [{"start": f"2026-11-0{d}", "stages": [stage], "complete": True} for d in (1, 2)]
        periods.append({"start": "2026-11-03", "stages": [stage], **last})
        return {"interval": "day", "periods": periods}

    stages = [{"key": "a", "name": "A", "color": "#0072B2"}]
    ongoing = charts.trend_geometry(trends({"complete": False}), stages)
    line = ongoing["lines"][0]
    assert ongoing["open_end"] and len(line["points"].split()) == 2
    tail = line["tail"].split()  # from the last whole period's point to the open one
    assert len(tail) == 2 and tail[0] == line["points"].split()[-1]
    assert [d["open"] for d in line["dots"]] == [False, False, True]
    cut = charts.trend_geometry(trends({"complete": True, "partial": True}), stages)
    assert cut["open_end"]
    whole = charts.trend_geometry(trends({"complete": True}), stages)
    assert not whole["open_end"] and whole["lines"][0]["tail"] == ""
    assert len(whole["lines"][0]["points"].split()) == 3


@pytest.mark.parametrize("compact", [False, True])
@pytest.mark.parametrize("n", [1, 2, 3, 4, 7, 12, 13, 30, 31, 53, 90])
def test_trend_dates_never_touch_and_include_the_latest(n: int, compact: bool) -> None:
    periods = [f"2026-{1 + i // 28:02d}-{1 + i % 28:02d}" for i in range(n)]
    series = [{"name": "Trace", "values": list(range(n))}]
    g = charts.line_geometry(periods, series, compact=compact)
    labels = [t["label"] for t in g["ticks"]]
    assert labels[-1] == periods[-1] and len(labels) >= min(n, 2)
    # Evenly spaced, counted back from the latest period.
    assert len({b - a for a, b in itertools.pairwise(periods.index(x) for x in labels)}) <= 1
    width = 10 * 0.64 * g["font_small"]
    xs = [t["x"] for t in g["ticks"]]
    assert all(b - a >= width for a, b in itertools.pairwise(xs)), xs
    # Every date stays inside the drawing.
    assert xs[0] - width / 2 >= 0 and xs[-1] + width / 2 <= g["width"]
    assert len(xs) <= (3 if compact else 8)


@pytest.mark.parametrize(
    ("query", "tag"),
    [
        ("range=30d&funnel=2&interval=week", ""),
        ("campaign=spring_sale&breakdown=country", "by-country-campaign-spring_sale"),
        ("filter=prop.plan:equals:pro&compare=previous", "vs-previous-prop_plan-equals-pro"),
        ('keyword=a"b;c\r\nd&mode=strict', "mode-strict-keyword-a_b_c_d"),
        ("landing=/" + "x" * 200, "landing-" + "x" * 72),
        ("segment=&breakdown=device", "by-device-segment-none"),
    ],
)
def test_export_file_names_say_what_was_filtered(query: str, tag: str) -> None:
    """Two exports of the same range with different filters get different file names; only
    characters safe in a Content-Disposition header get through."""
    from urllib.parse import parse_qsl

    args = MultiDict(parse_qsl(query, keep_blank_values=True))
    assert report_args.file_tag(args) == tag
