"""The report page over real ClickHouse data: counts, filters in the URL, breakdown, drill-down,
journey, empty states, and escaping of attacker-controlled event data everywhere."""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any
from urllib.parse import parse_qs
from zoneinfo import ZoneInfo

import pytest
from dash_helpers import XSS, insert_events, journey_events
from flask import Flask, current_app
from flask.testing import FlaskClient

from dashboard.formatting import DASH
from tracker.clickhouse import Store
from tracker.configdb import db
from tracker.models import Site

VISITORS = [
    {"id": "a1", "campaign": "spring", "keyword": "shoes", "depth": 4},
    {"id": "a2", "campaign": "spring", "keyword": "boots", "depth": 2},
    {"id": "a3", "campaign": "spring", "keyword": "shoes", "depth": 1},
    {"id": "b1", "campaign": "autumn", "keyword": "shoes", "depth": 3},
    {"id": "b2", "campaign": "autumn", "keyword": "boots", "depth": 1},
]


def stage_persons(html: str) -> list[int]:
    """Persons per stage from the report's stage table, in stage order."""
    table = html[html.index('id="stage-table"') :]
    table = table[: table.index("</table>")]
    cells = re.findall(r"<td class=\"num\" data-persons[^>]*><a [^>]*>([\d,]+)</a>", table)
    return [int(c.replace(",", "")) for c in cells]


def stage_cells(html: str, marker: str) -> list[str]:
    """The text of the stage table's cells carrying `marker`, in stage order."""
    cells = re.findall(rf"<td class=\"num\" {marker}[^>]*>(.*?)</td>", html)
    return [re.sub(r"<[^>]+>", "", c) for c in cells]


@pytest.fixture
def traffic(store: Store, my_site: Site) -> Site:
    insert_events(store, journey_events(my_site.key, VISITORS))
    return my_site


def test_report_counts(logged_in: FlaskClient, traffic: Site) -> None:
    html = logged_in.get(f"/sites/{traffic.key}/report").data.decode()
    assert stage_persons(html) == [5, 3, 2, 1]
    assert 'id="kpi-persons">5<' in html
    # Time to convert: each stage's median and p90 from the person's first click.
    cells = stage_cells(html, "data-from-first-click")
    assert cells == ["0 s · 0 s", "5 min · 5 min", "10 min · 10 min", "15 min · 15 min"]


def test_time_from_previous_shows_median_and_mean(
    logged_in: FlaskClient, my_site: Site, store: Store
) -> None:
    events = journey_events(my_site.key, [{"id": f"g{n}", "depth": 2} for n in range(3)])
    clicks = [e for e in events if e["type"] == "click"]
    for click, gap in zip(clicks, (2, 4, 12), strict=True):
        click["ts"] += timedelta(minutes=gap - 5)  # 2, 4 and 12 min after the page view
    insert_events(store, events)
    html = logged_in.get(f"/sites/{my_site.key}/report").data.decode()
    cells = stage_cells(html, "data-from-previous")
    # Median 4 min, mean 6 min; no previous stage for the first, nobody at the last two.
    assert cells == [DASH, "4 min · 6 min", DASH, DASH]


def test_skipped_counts_open_the_persons_who_skipped(
    logged_in: FlaskClient, my_site: Site, store: Store
) -> None:
    """Two persons go from the page view straight to the signup (skipping the click): the
    Skipped cell and the chart's "skipped the next stage" both open exactly those two."""
    events = journey_events(my_site.key, [{"id": f"k{n}", "depth": 3} for n in range(3)])
    skipping = {"k0", "k1"}
    events = [e for e in events if not (e["visitor_id"] in skipping and e["type"] == "click")]
    insert_events(store, events)
    html = logged_in.get(f"/sites/{my_site.key}/report").data.decode()
    row = html[html.index('<tr data-stage-key="response">') :]
    row = row[: row.index("</tr>")]
    link = re.search(r'<a href="([^"]+)" data-skipped>2</a>', row)
    assert link, row
    href = unescape(link.group(1))
    assert parse_qs(href.split("?", 1)[1])["status"] == ["skipped"]
    persons = logged_in.get(href).data.decode()
    assert sorted(re.findall(r"data-person>([^<]+)</a>", persons)) == ["k0", "k1"]
    # In the chart the skipped count is its own link, next to the dropped one.
    chart_links = re.findall(r'<a href="([^"]+)" class="drop-link"><tspan>([^<]+)</tspan>', html)
    assert (link.group(1), "2 skipped the next stage") in chart_links
    # No link where nobody skipped.
    trace = html[html.index('<tr data-stage-key="trace">') :]
    assert "data-skipped" not in trace[: trace.index("</tr>")]


def test_compare_with_the_period_before(logged_in: FlaskClient, traffic: Site) -> None:
    base = f"/sites/{traffic.key}/report"
    assert b'name="compare" type="checkbox" value="previous"' in logged_in.get(base).data
    html = logged_in.get(f"{base}?compare=previous").data.decode()
    # All traffic is two days old: the 30 days before the default range had nobody.
    assert stage_persons(html) == [5, 3, 2, 1]
    assert "compared with" in html
    changes = re.findall(r"data-change [^>]*>([^<]*)</small>", html)
    assert changes == ["0 before"] * 4
    assert html.count("data-before>0 the period before<") == 1
    # The events start after the period before ended: the page says there is nothing to
    # compare with yet, rather than letting "0 before" pass for a real figure.
    assert 'id="compare-coverage"' in html and "nothing to compare with yet" in html
    # Its checkbox stays ticked, and the setting is part of the shareable URL.
    assert 'value="previous" checked' in html
    assert "compare=previous" in re.search(r'href="([^"]*stage=trace[^"]*)"', html).group(1)  # type: ignore[union-attr]


def test_compare_shows_rate_changes_in_points(
    logged_in: FlaskClient, traffic: Site, store: Store
) -> None:
    earlier = journey_events(traffic.key, [{"id": "p1", "depth": 4}, {"id": "p2", "depth": 1}])
    for e in earlier:
        e["ts"] -= timedelta(days=31)  # inside the 30 days before the default range
    insert_events(store, earlier)
    html = logged_in.get(f"/sites/{traffic.key}/report?compare=previous").data.decode()
    assert stage_persons(html) == [5, 3, 2, 1]
    # Events start 33 days ago, inside the period before (30-59 days ago): partly covered.
    assert "only partly covered, so changes against it read too high" in html
    # Now 100, 60, 40, 20% from start and 100, 60, 66.7, 50% from the previous stage;
    # before 100, 50, 50, 50% and 100, 50, 100, 100%.
    changes = re.findall(r"data-rate-change [^>]*>([^<]*)</small>", html)
    assert changes == [
        "+0.0 pts", "+0.0 pts",
        "+10.0 pts", "+10.0 pts",
        "-33.3 pts", "-10.0 pts",
        "-50.0 pts", "-30.0 pts",
    ]  # fmt: skip
    assert 'class="down" data-rate-change title="50.0% from' in html
    # Once the history reaches back before the period before, the note goes.
    older = journey_events(traffic.key, [{"id": "p0", "depth": 1}])
    older[0]["ts"] -= timedelta(days=90)
    insert_events(store, older)
    covered = logged_in.get(f"/sites/{traffic.key}/report?compare=previous").data.decode()
    assert 'id="compare-coverage"' not in covered


def test_filters_live_in_the_url(logged_in: FlaskClient, traffic: Site) -> None:
    base = f"/sites/{traffic.key}/report"
    assert stage_persons(logged_in.get(f"{base}?campaign=spring").data.decode()) == [3, 2, 1, 1]
    html = logged_in.get(f"{base}?campaign=spring&keyword=shoes").data.decode()
    assert stage_persons(html) == [2, 1, 1, 1]
    assert stage_persons(logged_in.get(f"{base}?keyword=boots").data.decode()) == [2, 1, 0, 0]
    # Each active filter is shown, with a link that removes only that filter.
    assert "Campaign: spring" in html and "Keyword: shoes" in html
    assert f'href="{base}?campaign=spring"' in html


def test_add_filter_row_becomes_a_filter_argument(logged_in: FlaskClient, traffic: Site) -> None:
    response = logged_in.get(
        f"/sites/{traffic.key}/report?f_field=prop.product&f_op=equals&f_value=shoe"
    )
    assert response.status_code == 302
    assert "filter=prop.product%3Aequals%3Ashoe" in response.headers["Location"]


def test_filter_row_without_a_value_is_sent_back(logged_in: FlaskClient, traffic: Site) -> None:
    """An empty value would keep only persons whose property is empty (zeroing most of the
    funnel without a word): the row comes back, marked, and the report runs without it."""
    base = f"/sites/{traffic.key}/report"
    response = logged_in.get(f"{base}?campaign=spring&f_field=prop.plan&f_op=contains&f_value=+")
    assert response.status_code == 200
    html = response.data.decode()
    assert "Enter a value to filter prop.plan by; the filter was not added." in html
    assert 'id="f_value" name="f_value" autocomplete="off" aria-invalid="true"' in html
    assert 'value="prop.plan"' in html and '<option value="contains" selected>' in html
    assert stage_persons(html) == stage_persons(
        logged_in.get(f"{base}?campaign=spring").data.decode()
    )
    assert "prop.plan" not in " ".join(re.findall(r'aria-label="Remove filter ([^"]*)"', html))


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("range=custom", "Choose a start and an end date for a custom range."),
        ("range=custom&from=&to=", "Choose a start and an end date for a custom range."),
        (
            "range=custom&from=2026-11-10&to=2026-11-01",
            "The range starts (2026-11-10) after it ends (2026-11-01): swap the dates",
        ),
        ("from=2026-11-10&to=2026-11-01", "The range starts (2026-11-10) after it ends"),
    ],
)
def test_custom_range_slips_are_explained_at_the_dates(
    logged_in: FlaskClient, traffic: Site, query: str, message: str
) -> None:
    response = logged_in.get(f"/sites/{traffic.key}/report?{query}")
    assert response.status_code == 400
    html = response.data.decode()
    assert message in html
    assert 'aria-invalid="true" aria-describedby="err-from"' in html
    assert "Export CSV" not in html  # it would only download the same error


def test_breakdown_by_campaign_shows_each_funnel(logged_in: FlaskClient, traffic: Site) -> None:
    html = logged_in.get(f"/sites/{traffic.key}/report?breakdown=campaign").data.decode()
    assert 'data-breakdown-value="spring"' in html
    assert 'data-breakdown-value="autumn"' in html
    spring = html[html.index('data-breakdown-value="spring"') :]
    assert "3 persons" in spring[:400]
    assert "only this</a>" in spring[:600]  # campaign is a person filter: one click narrows


def test_breakdown_table_compares_the_groups_stage_by_stage(
    logged_in: FlaskClient, traffic: Site
) -> None:
    html = logged_in.get(f"/sites/{traffic.key}/report?breakdown=campaign").data.decode()
    table = html[html.index('id="breakdown-table"') :]
    table = table[: table.index("</table>")]
    heads = re.findall(r'<th scope="col"[^>]*>([^<]+)</th>', table)
    assert heads == ["Campaign", "Trace", "Response", "Engagement", "Sale"]
    rows = {}
    for value, body in re.findall(r'<tr data-breakdown-row="([^"]*)">(.*?)</tr>', table, re.S):
        cells = re.findall(
            r"<td [^>]*>(?:<a [^>]*>)?([\d,]+)(?:</a>)?(?: <small>([^<]+)</small>)?", body
        )
        rows[value] = cells
    assert rows["spring"] == [("3", ""), ("2", "66.7%"), ("1", "33.3%"), ("1", "33.3%")]
    assert rows["autumn"] == [("2", ""), ("1", "50.0%"), ("1", "50.0%"), ("0", "0.0%")]
    # Each figure opens that group's persons at that stage; the name narrows the report.
    spring = table[table.index('data-breakdown-row="spring"') :]
    assert "segment=spring" in spring[: spring.index("</tr>")]
    assert ">spring</a></th>" in spring


def test_breakdown_figures_open_that_groups_persons(logged_in: FlaskClient, traffic: Site) -> None:
    base = f"/sites/{traffic.key}"
    html = logged_in.get(f"{base}/report?breakdown=campaign&limit=1").data.decode()
    spring = html[html.index('data-breakdown-value="spring"') :]
    spring = spring[: spring.index("</section>")]
    # The spring funnel's "Response" bar opens spring's responders (a1, a2), not everyone's.
    links = re.findall(r'<a href="([^"]*status=reached[^"]*)"', spring)
    response = next(unescape(u) for u in links if "stage=response" in u)
    assert "breakdown=campaign" in response and "segment=spring" in response
    page = logged_in.get(response).data.decode()
    people = re.findall(r'href="[^"]*/persons/([^"?]+)[^"]*" data-person>', page)
    assert sorted(people) == ["a1", "a2"]
    # The list says which group it shows; removing that keeps the stage and status.
    assert "Campaign: spring" in page
    chip = re.search(r'href="([^"]+)" aria-label="Remove filter Campaign: spring"', page)
    assert chip and "segment" not in chip.group(1) and "stage=response" in unescape(chip.group(1))
    back = re.search(r'href="([^"]+)">← Back to the report', page)
    assert back and "segment" not in back.group(1)
    # "other" merges many values: its funnel has no persons links.
    other = html[html.index("data-breakdown-other") :]
    other = other[: other.index("</section>")]
    assert "status=" not in other
    assert re.search(r"<h3>All other values \(\d+\)</h3>", other)


def test_breakdown_by_product(logged_in: FlaskClient, traffic: Site) -> None:
    base = f"/sites/{traffic.key}/report"
    assert '<option value="prop.product">Product</option>' in logged_in.get(base).data.decode()
    html = logged_in.get(f"{base}?breakdown=prop.product").data.decode()
    assert ">By product</h2>" in html
    # Only a1 bought (the purchase carries the product); the others never carried one.
    shoe = html[html.index('data-breakdown-value="shoe"') :]
    assert "1 person ·" in shoe[:400]
    assert 'data-breakdown-value=""' in html
    # A product filter restricts events, not persons: no "only this" for a property.
    assert "only this" not in html[html.index('id="breakdown-results"') :]
    # The persons behind the product's funnel show the product as a column.
    people = reached_with(logged_in, traffic, "prop.product")
    assert '<th scope="col">Product</th>' in people
    assert "<td>shoe</td>" in person_row(people, "a1")


def test_property_column_is_text(logged_in: FlaskClient, traffic: Site, store: Store) -> None:
    """A property named like a time (`created_at`) is shown as stored, not as a time."""
    insert_events(
        store,
        [
            {
                "site_id": traffic.key,
                "visitor_id": "a2",
                "type": "event",
                "name": "misc",
                "ts": datetime.now(UTC) - timedelta(days=1),
                "props": {"created_at": "2026-01-01"},
            }
        ],
    )
    html = reached_with(logged_in, traffic, "prop.created_at")
    assert '<th scope="col">prop.created_at</th>' in html
    assert "<td>2026-01-01</td>" in person_row(html, "a2")


def reached_with(client: FlaskClient, site: Site, breakdown: str) -> str:
    """The persons page of everyone who reached the first stage, with a breakdown."""
    url = f"/sites/{site.key}/persons?stage=trace&status=reached&breakdown={breakdown}"
    return client.get(url).data.decode()


def person_row(html: str, person: str) -> str:
    """The persons table row of one person."""
    row = html[html.index(f"/persons/{person}?") :]
    return row[: row.index("</tr>")]


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ("range=custom&from=yesterday", b"from must be a date"),
        # Far-off dates and presets are explained, not an overflow in date arithmetic.
        ("to=0001-01-01", b"to must be between 1970-01-01 and 2199-12-31"),
        ("range=custom&from=9999-12-31&to=9999-12-31", b"to must be between"),
        ("range=99999999999d", b"from must be between"),
    ],
)
def test_bad_query_is_explained(
    logged_in: FlaskClient, traffic: Site, query: str, reason: bytes
) -> None:
    response = logged_in.get(f"/sites/{traffic.key}/report?{query}")
    assert response.status_code == 400
    assert reason in response.data


@pytest.mark.parametrize("funnel", ["0", "2147483648", "99999999999999999999"])
def test_unknown_funnel_argument_is_not_a_crash(
    logged_in: FlaskClient, traffic: Site, funnel: str
) -> None:
    response = logged_in.get(f"/sites/{traffic.key}/report?funnel={funnel}")
    assert response.status_code == 404
    assert b"Not Found" in response.data


def test_empty_state_without_events(logged_in: FlaskClient, my_site: Site) -> None:
    html = logged_in.get(f"/sites/{my_site.key}/report").data.decode()
    assert "No events yet: install the snippet" in html
    setup = logged_in.get(f"/sites/{my_site.key}/setup").data.decode()
    assert "No events in the last 7 days: install the snippet" in setup
    assert f'data-site="{my_site.key}"' in setup.replace("&#34;", '"').replace("&quot;", '"')


@pytest.mark.parametrize(
    ("age", "status"),
    [
        (timedelta(seconds=20), "Installed: the newest event arrived 20 s ago."),
        (timedelta(minutes=59), "Installed: the newest event arrived 59 min ago."),
        (timedelta(hours=22), "The newest event arrived 22 h ago. If your pages had visitors"),
    ],
)
def test_setup_says_how_recent_the_newest_event_is(age: timedelta, status: str) -> None:
    from dashboard.views_sites import install_status

    now = datetime(2026, 11, 22, 21, 45, tzinfo=UTC)
    newest = (now - age).replace(tzinfo=None)  # ClickHouse hands back naive UTC
    assert install_status([{"received_at": newest}], now).startswith(status)


def test_create_site_shows_the_snippet(logged_in: FlaskClient) -> None:
    response = logged_in.post(
        "/sites", data={"name": "Shoes", "domains": "shoes.example", "timezone": "Asia/Tokyo"}
    )
    assert response.status_code == 302
    page = logged_in.get(response.headers["Location"]).data.decode()
    assert "Set up Shoes" in page
    assert "/t.js" in page and "data-site=" in page
    bad = logged_in.post("/sites", data={"name": "X", "timezone": "Mars/Base"})
    assert bad.status_code == 422
    assert b"unknown time zone" in bad.data


XSS_VISITORS = [
    {
        "id": "x1",
        "campaign": XSS,
        "keyword": XSS,
        "title": XSS,
        "element_text": XSS,
        "url": "https://shop.example/landing?q=" + XSS,
        "depth": 2,
    }
]


def test_event_data_is_escaped_everywhere(
    logged_in: FlaskClient, store: Store, my_site: Site
) -> None:
    insert_events(store, journey_events(my_site.key, XSS_VISITORS))
    pages = [
        f"/sites/{my_site.key}/report?breakdown=campaign",
        f"/sites/{my_site.key}/report?breakdown=keyword&campaign={XSS}",
        f"/sites/{my_site.key}/setup",
    ]
    for url in pages:
        html = logged_in.get(url).data.decode()
        assert "<script>alert" not in html, url
        assert "<img src=x" not in html, url
        assert "&lt;script&gt;" in html, url
    recent = logged_in.get(f"/sites/{my_site.key}/events/recent.json").get_json()
    assert recent["events"][0]["campaign"] == XSS  # JSON carries text; the page sets textContent


FORMULAS = ["=cmd|' /C calc'!A0", "+1+2", "-2+3", "@SUM(A1)", "\t=1+1", "\r=1"]
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _csv(response: Any) -> list[list[str]]:
    # newline="": a "\r" inside a quoted cell is the cell's, as a spreadsheet reads it.
    return list(csv.reader(io.StringIO(response.data.decode(), newline="")))


def test_csv_exports_neutralise_formulas(
    logged_in: FlaskClient, store: Store, my_site: Site
) -> None:
    """Every cell a spreadsheet would run as a formula, a leading tab or carriage return
    included, is quoted: in breakdown groups (a campaign, a property), in the segment of a
    report narrowed to one group, and in persons lists. Kills the mutation that drops "\t"
    and "\r" from csv_export._FORMULA_START."""
    visitors = [
        {"id": f"f{i}", "campaign": value, "keyword": value, "product": value, "depth": 4}
        for i, value in enumerate(FORMULAS)
    ]
    insert_events(store, journey_events(my_site.key, visitors))
    quoted = {"'" + value for value in FORMULAS}
    response = logged_in.get(f"/sites/{my_site.key}/report.csv?breakdown=campaign")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    assert response.headers["Content-Disposition"].endswith('-by-campaign.csv"')
    rows = _csv(response)
    segments = {row[0] for row in rows[1:]}
    assert quoted <= segments
    assert not any(cell.startswith(FORMULA_START) for row in rows for cell in row)

    for value in ("\t=1+1", "\r=1"):  # one group only: the segment column is that value
        response = logged_in.get(
            f"/sites/{my_site.key}/report.csv",
            query_string={"breakdown": "campaign", "segment": value},
        )
        rows = _csv(response)
        assert {row[rows[0].index("segment")] for row in rows[1:]} == {"'" + value}
        assert not any(cell.startswith(FORMULA_START) for row in rows for cell in row)

    response = logged_in.get(f"/sites/{my_site.key}/report.csv?breakdown=prop.product")
    rows = _csv(response)
    assert quoted <= {row[0] for row in rows[1:]}
    assert not any(cell.startswith(FORMULA_START) for row in rows for cell in row)

    response = logged_in.get(f"/sites/{my_site.key}/persons.csv?stage=trace&status=reached")
    rows = _csv(response)
    header = rows[0]
    campaigns = {row[header.index("campaign")] for row in rows[1:]}
    assert campaigns == quoted
    assert not any(cell.startswith(FORMULA_START) for row in rows for cell in row)


def test_persons_lists_show_what_converted_persons_spent(
    logged_in: FlaskClient, traffic: Site
) -> None:
    base = f"/sites/{traffic.key}"
    traffic.currency = "EUR"
    db.session.commit()
    html = logged_in.get(f"{base}/persons?stage=trace&status=reached").data.decode()
    table = html[html.index('id="persons-table"') :]
    header = re.findall(r'<th scope="col">([^<]+)</th>', table)
    assert header[:4] == ["Person", "First seen", "Furthest stage", "Sale value"]
    rows = re.findall(r"<tr>\s*<td><a [^>]*data-person>([^<]+)</a></td>(.*?)</tr>", table, re.S)
    spent = {person: re.findall(r"<td[^>]*>([^<]*)</td>", cells)[2] for person, cells in rows}
    assert spent == {"a1": "40.00 EUR", "a2": "", "a3": "", "b1": "", "b2": ""}
    # Nobody who dropped off after Trace converted: no empty column for them.
    dropped = logged_in.get(f"{base}/persons?stage=trace&status=dropped").data.decode()
    assert "Sale value" not in dropped and "data-person>a3<" in dropped
    rows_csv = list(csv.reader(io.StringIO(
        logged_in.get(f"{base}/persons.csv?stage=sale&status=reached").data.decode()
    )))  # fmt: skip
    assert rows_csv[1][rows_csv[0].index("sale_value")] == "40.0"


def test_drill_down_and_journey(logged_in: FlaskClient, traffic: Site) -> None:
    base = f"/sites/{traffic.key}"
    html = logged_in.get(f"{base}/persons?stage=response&status=dropped").data.decode()
    # Reached "response" (a click) but never signed up: a2 only.
    assert "Dropped off after Response" in html
    people = re.findall(r'href="[^"]*/persons/([^"?]+)[^"]*" data-person>', html)
    assert people == ["a2"]
    assert "boots" in html
    # Where they left: a2 clicked on the landing page and viewed nothing after. The card is a
    # second query, loaded after the list; without script, a link shows it inline.
    assert "Where they left" not in html
    slot = re.search(r'id="exits-slot" data-panel-url="([^"]+)"', html)
    assert slot is not None
    fragment_url = slot.group(1).replace("&amp;", "&")
    assert fragment_url == f"{base}/exits?stage=response"
    inline = logged_in.get(f"{base}/persons?stage=response&status=dropped&exits=inline")
    for page in (logged_in.get(fragment_url).data.decode(), inline.data.decode()):
        exits = page[page.index('id="exits-table"') :]
        exits = exits[: exits.index("</table>")]
        cells = re.findall(r"<td[^>]*>([^<]*)</td>", exits)
        assert cells == ["/landing", "1", "100.0%"]
        assert "after reaching Response" in page
    as_page = logged_in.get(fragment_url, headers={"Sec-Fetch-Dest": "document"})
    assert as_page.status_code == 302 and "exits=inline" in as_page.headers["Location"]
    bad = logged_in.get(f"{base}/exits?stage=%3Cb%3Enope")
    assert bad.status_code == 400 and "&lt;b&gt;nope" in bad.data.decode()
    assert '<th scope="col">Last page</th>' in html  # and per person in the list
    reached = logged_in.get(f"{base}/persons?stage=response&status=reached").data.decode()
    assert "Where they left" not in reached and "exits-slot" not in reached
    journey = logged_in.get(f"{base}/persons/a2").data.decode()
    labels = re.findall(r'<span class="badge" data-stage="([a-z_]+)">', journey)
    assert labels == ["trace", "response"]
    assert "Left the funnel after <strong>Response</strong>" in journey
    assert "Left the funnel here: no Engagement followed within the window." in journey
    assert 'id="back-to-list"' not in journey  # opened directly: only the way to the report
    # Opened from the list (its link carries the list): a way back to the same list.
    link = re.search(r'href="([^"]*/persons/a2\?[^"]*)" data-person>', html).group(1)  # type: ignore[union-attr]
    from_list = logged_in.get(unescape(link)).data.decode()
    back = re.search(r'<a href="([^"]+)" id="back-to-list">', from_list).group(1)  # type: ignore[union-attr]
    assert parse_qs(unescape(back).split("?", 1)[1]) == {
        "stage": ["response"],
        "status": ["dropped"],
    }
    assert "Back to the report" in from_list
    odd = logged_in.get(f"{base}/persons/a2?list_status=bogus&list_stage=x").data.decode()
    assert 'id="back-to-list"' not in odd
    # Each event names its campaign and keyword; the source shows where it changes.
    assert journey.count("· campaign spring · keyword “boots”") == 2
    assert journey.count("· from google (paid)") == 1
    done = logged_in.get(f"{base}/persons/a1").data.decode()
    assert "Went through every stage" in done
    bad = logged_in.get(f"{base}/persons?stage=nope")
    assert bad.status_code == 400


def test_filter_values_come_from_the_data(logged_in: FlaskClient, traffic: Site) -> None:
    body = logged_in.get(f"/sites/{traffic.key}/values/campaign.json").get_json()
    assert body["values"] == [
        {"value": "spring", "persons": 3},
        {"value": "autumn", "persons": 2},
    ]
    narrowed = logged_in.get(f"/sites/{traffic.key}/values/keyword.json?campaign=autumn")
    assert {v["value"] for v in narrowed.get_json()["values"]} == {"shoes", "boots"}
    assert logged_in.get(f"/sites/{traffic.key}/values/password.json").status_code == 400


def test_trend_cards_show_conversion_against_the_period_before(
    logged_in: FlaskClient, store: Store, my_site: Site
) -> None:
    """Each later stage's card gives its conversion from the first stage, and the same for
    the period before, so a rate that slips while counts grow shows."""
    events = []
    for day, visitors in ((10, VISITORS), (11, VISITORS[:2])):
        batch = journey_events(my_site.key, visitors)
        first = min(e["ts"] for e in batch)
        for e in batch:  # the same journeys, moved to 09:00 on a fixed day
            e["ts"] = datetime(2025, 3, day, 9, tzinfo=UTC) + (e["ts"] - first)
        events += batch
    insert_events(store, events)
    html = logged_in.get(
        f"/sites/{my_site.key}/report/trends?interval=day&range=custom&from=2025-03-10&to=2025-03-11"
    ).data.decode()
    cards = re.findall(r"<span class=\"help\" data-trend-conversion>([^<]*)</span>", html)
    # 03-11: a1 (all four stages) and a2 (two); 03-10: all five visitors, 3 / 2 / 1 onward.
    assert cards == [
        "100.0% of Trace, 60.0% the day before",
        "50.0% of Trace, 40.0% the day before",
        "50.0% of Trace, 20.0% the day before",
    ]


@pytest.mark.parametrize(
    ("query", "interval", "days"),
    [
        ("", "day", 30),
        ("range=7d", "day", 7),
        ("range=90d", "week", 90),
        ("range=12m", "month", 365),
    ],
)
def test_trends_follow_the_reports_range(
    logged_in: FlaskClient, traffic: Site, query: str, interval: str, days: int
) -> None:
    """The trends cover the range the report shows (the default one too), at an interval
    that suits its length unless one is chosen."""
    trends = logged_in.get(f"/sites/{traffic.key}/report/trends?{query}").data.decode()
    today = datetime.now(ZoneInfo(traffic.timezone)).date()  # the site's today
    first = (today - timedelta(days=days - 1)).isoformat()
    assert f'Trends by {interval} <small class="help">({first} to {today.isoformat()})' in trends
    chosen = logged_in.get(f"/sites/{traffic.key}/report/trends?{query}&interval=month")
    assert "Trends by month" in chosen.data.decode()


def test_trends_and_pipeline_panels(logged_in: FlaskClient, traffic: Site) -> None:
    base = f"/sites/{traffic.key}/report"
    page = logged_in.get(f"{base}?interval=day").data.decode()
    # The page carries slots; the panels come from their own URLs with the same filters.
    assert f'data-panel-url="{base}/trends?interval=day"' in page
    trends = logged_in.get(f"{base}/trends?interval=day").data.decode()
    assert 'id="trends"' in trends and "Trends by day" in trends
    assert "Persons per stage by day" in trends  # the chart's title
    # Today is under way: the table marks it; the cards show yesterday, the newest whole day,
    # so that a day in progress never reads as a fall against a whole one.
    assert trends.count("<small>(so far)</small>") == 1
    # The chart draws today dashed and says why.
    today = datetime.now(ZoneInfo(traffic.timezone)).date().isoformat()
    assert f"The dashed end is the day of {today}, still under way" in trends
    assert "data-open-end" in trends
    yesterday = (datetime.now(ZoneInfo(traffic.timezone)).date() - timedelta(days=1)).isoformat()
    assert trends.count(f"day of {yesterday}</span>") == 4
    # Every day of the last 30 is inside the 30-day window: later stages can still grow.
    assert 'id="trends-open"' in trends and "30 d windows are not over yet" in trends
    past = logged_in.get(f"{base}/trends?range=custom&from=2020-01-01&to=2020-03-31")
    assert 'id="trends-table"' in past.data.decode()
    assert 'id="trends-open"' not in past.data.decode()
    # Weeks over this range: the last one, from Monday 2020-03-30, is cut by the range end.
    assert "the week of 2020-03-30, cut by the range end" in past.data.decode()
    whole = logged_in.get(f"{base}/trends?range=custom&from=2020-01-01&to=2020-01-31&interval=day")
    assert 'id="trends-dashed"' not in whole.data.decode()  # every day of it is whole
    pipeline = logged_in.get(f"{base}/pipeline?campaign=spring").data.decode()
    assert 'id="pipeline"' in pipeline and "Close rate" in pipeline
    assert 'id="kpi-pipeline-entered">3<' in pipeline
    # a2 sits at Response (1 of 2 went on to Sale), a3 at Trace (1 of 3): 1/2 + 1/3 expected.
    forecast = re.search(r'id="kpi-forecast">(.*?)</div>', pipeline, re.S)
    assert forecast is not None
    text = re.sub(r"<[^>]+>", " ", forecast.group(1))
    assert "more Sale" in text and "≈ 0.8" in text
    assert "from the 2 persons part-way through" in text and "worth ≈ 33.33" in text
    inline = logged_in.get(f"{base}?panels=inline").data.decode()
    assert 'id="trends"' in inline and 'id="pipeline"' in inline
    too_many = logged_in.get(f"{base}/trends?interval=day&range=custom&from=2020-01-01")
    assert too_many.status_code == 200 and b'class="error"' in too_many.data
    # Opened as a page rather than fetched, a panel URL shows the whole report instead of
    # an unstyled fragment, with its filters kept and the panel in view.
    opened = logged_in.get(
        f"{base}/pipeline?campaign=spring", headers={"Sec-Fetch-Dest": "document"}
    )
    assert opened.status_code == 302
    assert opened.location == f"{base}?campaign=spring&panels=inline#pipeline"
    fetched = logged_in.get(f"{base}/pipeline?campaign=spring", headers={"Sec-Fetch-Dest": "empty"})
    assert fetched.status_code == 200 and 'id="pipeline"' in fetched.data.decode()


def test_pipeline_by_breakdown_group(logged_in: FlaskClient, traffic: Site) -> None:
    """With a breakdown, the pipeline panel adds a row per group, largest first."""
    url = f"/sites/{traffic.key}/report/pipeline?breakdown=campaign"
    html = logged_in.get(url).data.decode()
    assert 'id="kpi-pipeline-entered">5<' in html  # the totals stay those of everyone
    table = html[html.index('id="pipeline-breakdown"') :]
    table = table[: table.index("</table>")]
    rows = [
        [
            re.sub(r"<[^>]+>", "", cell).strip()
            for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        ]
        for row in re.findall(r"<tr data-pipeline-row[^>]*>(.*?)</tr>", table, re.S)
    ]
    # spring: a1 closed (40), a2 sits at Response (1 of 2 closed), a3 at Trace (1 of 3);
    # autumn: nobody closed, so its own rates forecast nothing for b1 and b2.
    assert rows == [
        ["spring", "3", "1", "33.3%", "40", "40", "15 min", "2", "≈ 0.8 33.33"],
        ["autumn", "2", "0", "0.0%", "0", DASH, DASH, "2", "≈ 0.0"],
    ]
    # The note says why the groups' forecasts (0.8 + 0) differ from the total's.
    note = re.sub(r"<[^>]+>", "", html[html.index('id="pipeline-bd-help"') :].split("</p>")[0])
    headline = re.search(r'id="kpi-forecast">.*?≈ ([\d.,]+)<', html, re.S).group(1)  # type: ignore[union-attr]
    assert f"together ≈ 1 here, against ≈ {round(float(headline))} at the rates of everyone" in note
    merged = logged_in.get(f"{url}&limit=1").data.decode()
    assert "All other values (1)" in merged and "data-pipeline-other" in merged
    assert 'id="pipeline-breakdown"' not in logged_in.get(url.split("?")[0]).data.decode()


def test_trends_export_as_csv(logged_in: FlaskClient, traffic: Site) -> None:
    """The panel links to its table as CSV, with the report's filters and the interval."""
    base = f"/sites/{traffic.key}/report"
    panel = unescape(logged_in.get(f"{base}/trends?campaign=spring&interval=week").data.decode())
    link = re.search(r'id="trends-csv" href="([^"]+)"', panel)
    assert link is not None
    path, _, query = link.group(1).partition("?")
    assert path == f"/sites/{traffic.key}/trends.csv"
    assert parse_qs(query) == {"campaign": ["spring"], "interval": ["week"]}
    res = logged_in.get(f"{path}?campaign=spring&interval=day")
    assert res.status_code == 200 and res.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(res.data.decode())))
    assert len(rows) == 30 * 4  # the default 30 days, four stages
    # Each spring visitor's attempt lies in one day: the days add up to the report.
    by_stage = {}
    for row in rows:
        by_stage[row["stage"]] = by_stage.get(row["stage"], 0) + int(row["persons"])
    assert by_stage == {"trace": 3, "response": 2, "engagement": 1, "sale": 1}
    bad = logged_in.get(f"/sites/{traffic.key}/trends.csv?range=custom&from=nope")
    assert bad.status_code == 400 and bad.get_json()["error"] == "bad_query"


def test_sale_values_are_in_the_sites_currency(
    logged_in: FlaskClient, traffic: Site, store: Store
) -> None:
    """a1 closed with a value of 40; without a currency the panel shows plain numbers."""
    url = f"/sites/{traffic.key}/report/pipeline?campaign=spring"
    plain = logged_in.get(url).data.decode()
    assert 'id="kpi-sale-value">40<' in plain and "avg 40<" in plain
    traffic.currency = "EUR"
    db.session.commit()
    html = logged_in.get(url).data.decode()  # not the cached panel with the old labels
    assert 'id="kpi-sale-value">40.00 EUR<' in html and "avg 40.00 EUR<" in html
    assert "worth ≈ 33.33 EUR" in html
    journey = logged_in.get(f"/sites/{traffic.key}/persons/a1").data.decode()
    assert "value 40.00 EUR" in journey
    traffic.currency = "JPY"  # no minor unit
    db.session.commit()
    assert 'id="kpi-sale-value">40 JPY<' in logged_in.get(url).data.decode()


def test_tracked_links(logged_in: FlaskClient, my_site: Site) -> None:
    url = f"/sites/{my_site.key}/links"
    assert b"No tracked links yet" in logged_in.get(url).data
    response = logged_in.post(
        url,
        data={
            "target_url": "https://shop.example/sale",
            "campaign": "spring",
            "source": "newsletter",
            "medium": "email",
            "keyword": "shoes",
        },
    )
    assert response.status_code == 302
    html = logged_in.get(url).data.decode()
    code = re.search(r'id="link-([^"]+)"', html).group(1)  # type: ignore[union-attr]
    assert f"/r/{code}" in html and "newsletter" in html
    bad = logged_in.post(url, data={"target_url": "javascript:alert(1)"})
    assert bad.status_code == 422
    assert logged_in.post(f"{url}/{code}/delete").status_code == 302
    html = logged_in.get(url).data.decode()
    assert f"/r/{code} deleted" in html
    assert f'id="link-{code}"' not in html


def test_repeat_reports_are_cached_until_new_events_arrive(
    app: Flask, logged_in: FlaskClient, store: Store, traffic: Site
) -> None:
    cache = app.extensions["dashboard_report_cache"]
    url = f"/sites/{traffic.key}/report?campaign=spring"
    assert stage_persons(logged_in.get(url).data.decode()) == [3, 2, 1, 1]
    hits = cache.hits
    assert stage_persons(logged_in.get(url).data.decode()) == [3, 2, 1, 1]
    assert cache.hits == hits + 1
    # A new event changes the site's data version: the next view is fresh, not cached.
    insert_events(store, journey_events(traffic.key, [{"id": "late", "campaign": "spring"}]))
    assert stage_persons(logged_in.get(url).data.decode()) == [4, 2, 1, 1]


def test_pages_have_unique_ids(logged_in: FlaskClient, traffic: Site) -> None:
    """Labels, anchors and scripts find elements by id: no page may use one twice (the
    breakdown results once shared theirs with the breakdown picker)."""
    base = f"/sites/{traffic.key}"
    fid = re.search(r"/funnels/(\d+)/edit", logged_in.get(f"{base}/funnels").data.decode())
    assert fid
    for url in (
        f"{base}/report?breakdown=campaign&panels=inline",
        f"{base}/report?breakdown=prop.product&interval=day",
        f"{base}/report/trends",
        f"{base}/report/pipeline",
        f"{base}/persons?stage=response&status=dropped",
        f"{base}/persons/a1",
        f"{base}/funnels",
        f"{base}/funnels/{fid.group(1)}/edit",
        f"{base}/setup",
        f"{base}/links",
        "/sites",
        "/settings",
    ):
        response = logged_in.get(url)
        assert response.status_code == 200, url
        ids = re.findall(r'\sid="([^"]+)"', response.data.decode())
        assert ids, url
        assert sorted({i for i in ids if ids.count(i) > 1}) == [], url


def test_open_a_persons_journey_by_id(logged_in: FlaskClient, traffic: Site, store: Store) -> None:
    base = f"/sites/{traffic.key}"
    page = logged_in.get(f"{base}/persons?stage=trace&status=reached&campaign=spring").data
    assert b'name="person"' in page and b'<label for="person-lookup">' in page
    found = logged_in.get(f"{base}/persons?stage=trace&campaign=spring&person=%20a2%20")
    assert found.status_code == 302
    assert found.location == f"{base}/persons/a2?campaign=spring"
    # A visitor id that identified later opens the person's whole (stitched) journey.
    insert_events(
        store,
        [
            {
                "site_id": traffic.key,
                "visitor_id": "phone-9",
                "user_id": "customer-9",
                "type": "pageview",
                "ts": datetime.now(UTC) - timedelta(hours=1),
            }
        ],
    )
    stitched = logged_in.get(f"{base}/persons?person=phone-9")
    assert stitched.location == f"{base}/persons/customer-9"
    unknown = logged_in.get(f"{base}/persons?person=nobody")
    assert unknown.location == f"{base}/persons/nobody"
    nobody = logged_in.get(unknown.location).data
    assert b"No events for this person" in nobody
    assert b"Not in this report" not in nobody and b'id="report-scope"' not in nobody


def test_a_funnels_url_opens_its_report(logged_in: FlaskClient, traffic: Site) -> None:
    base = f"/sites/{traffic.key}"
    fid = re.search(r"/funnels/(\d+)/edit", logged_in.get(f"{base}/funnels").data.decode())
    assert fid
    response = logged_in.get(f"{base}/funnels/{fid.group(1)}")
    assert response.status_code == 302
    assert response.location == f"{base}/report?funnel={fid.group(1)}"
    assert logged_in.get(f"{base}/funnels/999999").status_code == 404


def test_date_range_and_interval_arguments_are_checked(
    logged_in: FlaskClient, my_site: Site
) -> None:
    base = f"/sites/{my_site.key}/report"
    bad = logged_in.get(f"{base}?range=garbage")
    assert bad.status_code == 400 and "unknown date range" in bad.data.decode()
    # Any "last N days" works, and the picker shows that range rather than another one.
    page = logged_in.get(f"{base}?range=14d").data.decode()
    assert '<option value="14d" selected>Last 14 days</option>' in page
    assert '<option value="7d" selected>' not in page
    trends = logged_in.get(f"{base}/trends?interval=year").data.decode()
    assert 'class="error"' in trends and "interval must be one of day, week, month" in trends


def test_persons_list_pages_both_ways(logged_in: FlaskClient, my_site: Site, store: Store) -> None:
    insert_events(store, journey_events(my_site.key, [{"id": f"p{n:03d}"} for n in range(120)]))
    base = f"/sites/{my_site.key}/persons?stage=trace&status=dropped"
    first = logged_in.get(base).data.decode()
    assert "Page 1 of 3" in first and "Next page" in first and "Previous page" not in first
    middle = logged_in.get(f"{base}&page=2").data.decode()
    assert "Page 2 of 3" in middle and "Next page" in middle and "Previous page" in middle
    last = logged_in.get(f"{base}&page=3").data.decode()
    assert "Page 3 of 3" in last and "Next page" not in last
    assert last.count("data-person>") == 20
    past = logged_in.get(f"{base}&page=99999").data.decode()
    assert 'id="past-end"' in past and "Page 99,999 is past the end of this list (3 pages)" in past
    assert "No persons here" not in past


def test_journey_gives_the_reports_verdict_for_its_range(
    logged_in: FlaskClient, my_site: Site, store: Store
) -> None:
    """A person who went as far as Engagement 40 days ago, and came back to the landing page
    in the report's range, dropped at Trace in that report: the journey says so too, greys
    the old events, and marks the event the report counted."""
    old = journey_events(my_site.key, [{"id": "back-again", "depth": 3}])
    for e in old:
        e["ts"] -= timedelta(days=40)
    recent = journey_events(my_site.key, [{"id": "back-again", "depth": 1}])
    insert_events(store, old + recent)
    base = f"/sites/{my_site.key}"
    dropped = logged_in.get(f"{base}/persons?stage=trace&status=dropped&range=30d").data.decode()
    assert "back-again" in dropped
    page = logged_in.get(f"{base}/persons/back-again?range=30d").data.decode()
    verdict = re.search(r'id="left-after">(.*?)</p>', page, re.S)
    assert verdict and "Left the funnel after <strong>Trace</strong>" in verdict.group(1)
    items = re.findall(r'<li class="([^"]*)" data-event-type="(\w+)"', page)
    assert [c.split() for c, _ in items] == [
        ["matched", "outside"],
        ["matched", "outside"],
        ["matched", "outside"],
        ["matched", "filled", "left-here"],
    ]
    assert page.count("Before the report's range.") == 1
    assert "Counted as <strong>Trace</strong> in this report." in page
    # Over 60 days the old visit is the one counted: it went on to Engagement.
    page = logged_in.get(f"{base}/persons/back-again?range=60d").data.decode()
    assert "Left the funnel after <strong>Engagement</strong>" in page
    assert page.count('data-filled="') == 3
    # A range without a Trace event for the person: not in that report at all.
    start = (datetime.now(UTC) - timedelta(days=20)).date()
    end = (datetime.now(UTC) - timedelta(days=10)).date()
    page = logged_in.get(f"{base}/persons/back-again?from={start}&to={end}").data.decode()
    assert "Not in this report: no Trace event between" in page
    assert "data-filled" not in page
    # Filters that leave the person out say so; bad report arguments still show the journey.
    page = logged_in.get(f"{base}/persons/back-again?range=30d&campaign=nope").data.decode()
    assert "Not in this report: its filters leave this person out." in page
    bad = logged_in.get(f"{base}/persons/back-again?from=2026-13-01")
    assert bad.status_code == 200 and 'id="query-error"' in bad.data.decode()
    assert bad.data.decode().count("<li class=") == 4


def _summary_figures(html: str) -> tuple[int, str, list[int]]:
    persons = re.search(r"<strong data-summary-persons>([\d,]+)</strong>", html)
    conversion = re.search(r"<strong data-summary-conversion>([^<]+)</strong>", html)
    assert persons and conversion, html
    bars = re.findall(r"<text [^>]*data-stage-persons>([\d,]+) ·", html)
    return int(persons.group(1).replace(",", "")), conversion.group(1), [int(b) for b in bars]


def test_funnels_page_shows_each_funnels_last_30_days(
    logged_in: FlaskClient, traffic: Site, store: Store
) -> None:
    from tracker import funnels as funnel_service
    from tracker.reports import funnel_report, parse_report_query

    funnel = funnel_service.list_funnels(db.session, traffic)[0]
    page = logged_in.get(f"/sites/{traffic.key}/funnels").data.decode()
    url = f"/sites/{traffic.key}/funnels/{funnel.id}/summary"
    assert f'data-panel-url="{url}"' in page and "Loading the last 30 days" in page
    html = logged_in.get(url).data.decode()
    # The same figures as the service's report over its default range (the last 30 days).
    expected = funnel_report(
        store, traffic, funnel_service.funnel_definition(funnel), parse_report_query({}, traffic)
    )
    assert expected["persons"] == 5
    assert _summary_figures(html) == (5, "20.0%", [5, 3, 2, 1])
    assert [s["persons"] for s in expected["stages"]] == [5, 3, 2, 1]
    assert "reached Sale" in html and "first click to Engagement: median 10 min" in html
    assert f"{expected['range']['from']} to {expected['range']['to']}" in html
    # Each bar opens the persons list of its stage, for this funnel.
    assert (
        f"/sites/{traffic.key}/persons?funnel={funnel.id}&amp;stage=response&amp;status=reached"
        in html
    )
    # The report opened from the card reuses the summary's result.
    cache = current_app.extensions["dashboard_report_cache"]
    hits = cache.hits
    assert stage_persons(logged_in.get(f"/sites/{traffic.key}/report").data.decode()) == [
        5, 3, 2, 1
    ]  # fmt: skip
    assert cache.hits == hits + 1
    # Opened as a page (a copied link), it is the funnel's report rather than a fragment.
    opened = logged_in.get(url, headers={"Sec-Fetch-Dest": "document"})
    assert opened.status_code == 302
    assert opened.location == f"/sites/{traffic.key}/report?funnel={funnel.id}"
    assert (
        logged_in.get(f"/sites/{traffic.key}/funnels/{funnel.id + 1000}/summary").status_code == 404
    )


def test_funnel_summary_without_entries_says_why(
    logged_in: FlaskClient, my_site: Site, store: Store
) -> None:
    from tracker import funnels as funnel_service

    funnel = funnel_service.list_funnels(db.session, my_site)[0]
    url = f"/sites/{my_site.key}/funnels/{funnel.id}/summary"
    html = logged_in.get(url).data.decode()
    assert "No events from this site yet" in html and f"/sites/{my_site.key}/setup" in html
    assert "data-summary-persons" not in html
    # Events, but none matches the first stage (a page view) in the last 30 days.
    old = journey_events(my_site.key, [{"id": "old", "depth": 2}])
    for event in old:
        event["ts"] -= timedelta(days=60)
    insert_events(store, old)
    html = logged_in.get(url).data.decode()
    assert "Nobody entered this funnel in the last 30 days" in html
    assert "its first stage, “Trace”" in html
    assert f"/sites/{my_site.key}/funnels/{funnel.id}/edit" in html
