"""The marketer's path through the dashboard in real headless Chromium, with CSRF on:
log in, create a site, embed the snippet in a page and browse it with utm parameters, define
the stages while the live preview updates, read the report, filter, break down, drill into a
drop-off and read a journey. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from tests.browser.conftest import ARTIFACTS, USER_AGENT, FixturePages, LiveServer, screenshot
from tracker import accounts
from tracker.app import store_of
from tracker.configdb import db

pytestmark = pytest.mark.browser

EMAIL = "new.marketer@example.test"
PASSWORD = "first-day-at-work"
# (campaign, keyword, how far the visitor goes: 1 landing, 2 pricing click, 3 signup, 4 thanks)
VISITORS = [
    ("spring", "shoes", 4),
    ("spring", "boots", 2),
    ("spring", "shoes", 1),
    ("autumn", "shoes", 3),
]

# For each chart on screen: its panel, its smallest text in CSS pixels (font size times the
# SVG's scale) and the labels whose box leaves the chart's box.
CHART_TEXT = """() => [...document.querySelectorAll('svg.chart')]
    .filter(svg => svg.getClientRects().length)
    .map(svg => {
        const box = svg.getBoundingClientRect();
        const texts = [...svg.querySelectorAll('text')];
        const scale = svg.getScreenCTM().a;
        const panel = svg.closest('section[id], section[aria-labelledby]');
        return {
            panel: panel && (panel.id || panel.getAttribute('aria-labelledby')),
            smallest_px: Math.min(
                ...texts.map(t => parseFloat(getComputedStyle(t).fontSize) * scale)),
            outside: texts.filter(t => {
                const r = t.getBoundingClientRect();
                return r.left < box.left - 1 || r.right > box.right + 1;
            }).map(t => t.textContent),
        };
    })"""


@pytest.fixture
def csrf_app(app: Flask) -> Iterator[Flask]:
    """The test app with CSRF protection on, so the real forms are exercised, and a new
    marketer account (made by an admin beforehand)."""
    app.config["WTF_CSRF_ENABLED"] = True
    accounts.create_user(db.session, EMAIL, PASSWORD, role="marketer", name="New marketer")
    db.session.commit()
    yield app


def visit(browser: Any, pages: FixturePages, query: str, depth: int) -> None:
    """One new visitor (fresh storage) arriving on the landing page from a campaign link."""
    context = browser.new_context(user_agent=USER_AGENT)
    page = context.new_page()
    page.goto(pages.url("landing.html", query))
    page.wait_for_function("typeof window.funnel === 'function' && !window.funnel.q")
    if depth >= 2:
        page.click("#cta")
    if depth >= 3:
        page.click("#signup button[type=submit]")
    if depth >= 4:
        page.wait_for_timeout(1500)  # a reader's pause; the queued batch goes meanwhile
        page.goto(pages.url("thanks.html"))
        page.wait_for_function("typeof window.funnel === 'function' && !window.funnel.q")
    # The snippet sends its batch a second after the first queued event.
    page.wait_for_timeout(1500)
    context.close()


def wait_for_events(app: Flask, site_key: str, expected: int) -> None:
    writer = app.extensions["funnel_writer"]
    store = store_of(app)
    deadline = time.monotonic() + 20
    count = 0
    while time.monotonic() < deadline:
        writer.flush()
        count = store.scalar(
            "SELECT count() FROM events WHERE site_id = {s:String}", {"s": site_key}
        )
        if count >= expected:
            return
        time.sleep(0.3)
    rows = store.rows(
        "SELECT visitor_id, type, name, path, element_text FROM events"
        " WHERE site_id = {s:String} ORDER BY ts",
        {"s": site_key},
    )
    raise AssertionError(f"expected {expected} events in ClickHouse, found {count}: {rows}")


def wait_for_preview(page: Any, persons: list[int]) -> None:
    """Until the live preview shows these persons per stage. (Selectors, not JS predicates:
    the dashboard's CSP forbids the eval that wait_for_function needs.)"""
    for i, count in enumerate(persons):
        page.wait_for_selector(f'#stages-{i} [data-preview-counts][data-persons="{count}"]')


def persons_column(page: Any) -> list[int]:
    cells = page.locator("#stage-table td[data-persons]").all_inner_texts()
    return [int(c.replace(",", "")) for c in cells]


def test_marketer_flow(
    csrf_app: Flask, fixture_pages: FixturePages, browser: Any, page: Any
) -> None:
    base = fixture_pages.server.url
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    # Log in; a new user without sites lands on the sites page.
    page.goto(base + "/")
    assert "/login" in page.url
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/sites$"))
    assert "No sites yet" in page.content()

    # Create a site and get its snippet.
    page.get_by_label("Name").fill("Runner shop")
    page.get_by_label("Domains").fill("127.0.0.1")
    page.get_by_label("Time zone").fill("Europe/Paris")
    page.get_by_role("button", name="Create site").click()
    page.wait_for_url(re.compile(r"/setup$"))
    snippet = page.locator("#snippet").inner_text()
    key = re.search(r'data-site="([^"]+)"', snippet).group(1)  # type: ignore[union-attr]
    assert f"{base}/t.js" in snippet
    page.get_by_role("button", name="Verify installation").click()

    # The snippet goes into the shop's pages; visitors arrive from campaign links.
    fixture_pages.values["SITE_KEY"] = key
    for campaign, keyword, depth in VISITORS:
        query = f"utm_source=google&utm_medium=cpc&utm_campaign={campaign}&utm_term={keyword}"
        visit(browser, fixture_pages, query, depth)
    wait_for_events(csrf_app, key, 16)

    # The install check shows the events live.
    page.wait_for_selector("#verify-status:text-matches('^Installed')")
    assert page.locator("#recent-events tbody tr").count() >= 5
    assert "spring" in page.locator("#recent-events").inner_text()

    # Define the four stages; the live preview follows every edit.
    page.get_by_role("link", name="Funnels").click()
    # The template funnel's card fills in its last 30 days after the page: every visitor
    # viewed a page (its first stage).
    summary = page.locator('.funnel-summary[data-loaded="true"]').first
    summary.wait_for()
    assert summary.locator("[data-summary-persons]").inner_text() == "4"
    assert summary.locator("svg [data-stage-persons]").count() == 4
    page.get_by_role("link", name="Edit stages").first.click()
    page.wait_for_selector("#stages-0 [data-preview-counts][data-persons]")
    previews = page.locator("[data-preview-counts]")
    assert previews.nth(0).get_attribute("data-persons") == "4"  # template: any page view
    page.get_by_label("Funnel name").fill("Spring sale funnel")
    page.locator("#stages-0-name").fill("Landed")
    for stage in range(4):
        page.locator(f"#stages-{stage}").get_by_role("button", name="+ AND condition").click()
        page.wait_for_selector(f"#stages-{stage}-rules-0-conditions-0-field")
    page.locator("#stages-0-rules-0-conditions-0-field").fill("path")
    page.locator("#stages-0-rules-0-conditions-0-op").select_option("contains")
    page.locator("#stages-0-rules-0-conditions-0-value").fill("/landing")
    page.locator("#stages-1-name").fill("Saw pricing")
    page.locator("#stages-1-color").fill("#cc79a7")
    page.locator("#stages-1-rules-0-conditions-0-field").fill("element_text")
    page.locator("#stages-1-rules-0-conditions-0-op").select_option("contains")
    page.locator("#stages-1-rules-0-conditions-0-value").fill("pricing")
    page.locator("#stages-2").get_by_role("button", name="Remove condition").click()
    page.wait_for_selector("#stages-3-rules-0-conditions-0-field")
    page.locator("#stages-3-rules-0-type").select_option("pageview")
    page.locator("#stages-3-rules-0-name").fill("")
    page.locator("#stages-3-rules-0-conditions-0-field").fill("path")
    page.locator("#stages-3-rules-0-conditions-0-op").select_option("contains")
    page.locator("#stages-3-rules-0-conditions-0-value").fill("/thanks")
    wait_for_preview(page, [4, 3, 2, 1])
    describe = page.locator("#stages-3 [data-describe]").inner_text()
    assert describe == "A page view where page path contains “/thanks”."
    # A typo is caught inline, and nothing typed is lost.
    page.locator("#stages-1-rules-0-conditions-0-field").fill("element_txt")
    page.wait_for_selector("#preview-status[data-state=invalid]")
    page.get_by_role("button", name="Save funnel").click()
    assert page.locator("#err-stages-1-rules-0-conditions-0-field").is_visible()
    assert page.locator("#stages-0-name").input_value() == "Landed"
    assert page.locator("#stages-3-rules-0-conditions-0-value").input_value() == "/thanks"
    page.locator("#stages-1-rules-0-conditions-0-field").fill("element_text")
    wait_for_preview(page, [4, 3, 2, 1])
    # Leaving with unsaved edits asks first; staying keeps every edit.
    # (The page's dialog handler above dismisses every dialog: here, "stay on this page".)
    prompts: list[str] = []
    page.once("dialog", lambda d: prompts.append(d.type))
    editor_url = page.url
    page.get_by_role("link", name="View report").click()
    page.wait_for_function("document.readyState === 'complete'")
    assert prompts == ["beforeunload"]
    assert dialogs.pop() == ""  # recorded by that handler; the checks below start empty
    assert page.url == editor_url
    assert page.locator("#stages-1-rules-0-conditions-0-field").input_value() == "element_text"
    screenshot(page, "editor")
    page.get_by_role("button", name="Save funnel").click()
    page.wait_for_selector("text=Funnel saved.")

    # The report: expected counts, then one campaign, then one keyword, then a breakdown.
    page.get_by_role("link", name="View report").click()
    page.wait_for_selector("#stage-table")
    assert persons_column(page) == [4, 3, 2, 1]
    assert "Saw pricing" in page.locator("#stage-table").inner_text()
    page.get_by_label("Campaign").fill("spring")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"campaign=spring"))
    assert persons_column(page) == [3, 2, 1, 1]
    page.get_by_label("Keyword").fill("shoes")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_url(re.compile(r"keyword=shoes"))
    assert persons_column(page) == [2, 1, 1, 1]
    bookmark = page.url
    page.goto(bookmark)  # a shared link shows the same report
    assert persons_column(page) == [2, 1, 1, 1]
    page.get_by_role("link", name="Remove filter Campaign: spring").click()
    page.get_by_role("link", name="Remove filter Keyword: shoes").click()
    page.get_by_label("Break down by").select_option("campaign")
    page.get_by_role("button", name="Apply").click()
    page.wait_for_selector("#breakdown-results")
    spring = page.locator('[data-breakdown-value="spring"]')
    autumn = page.locator('[data-breakdown-value="autumn"]')
    assert "3 persons" in spring.inner_text()
    assert "1 person ·" in autumn.inner_text()
    assert persons_column(page) == [4, 3, 2, 1]
    # Trends and the pipeline arrive after the page, with the same filters.
    page.wait_for_selector('#trends-slot[data-loaded="true"] #trends')
    page.wait_for_selector('#pipeline-slot[data-loaded="true"] #pipeline')
    assert page.locator("#kpi-pipeline-entered").inner_text() == "4"
    screenshot(page, "report")
    # The README's picture: the funnel panel alone keeps the file small.
    page.locator("#funnel-panel").screenshot(path=str(ARTIFACTS / "report-funnel.png"))
    # On a phone: the compact chart replaces the wide one (whose text would shrink to a few
    # pixels), and the stage table stacks each stage's figures under their column names.
    desktop = page.viewport_size
    assert page.locator("#funnel-panel svg.chart:not(.compact)").is_visible()
    page.set_viewport_size({"width": 390, "height": 844})
    assert page.locator("#funnel-panel svg.chart.compact").is_visible()
    assert not page.locator("#funnel-panel svg.chart:not(.compact)").is_visible()
    table = page.locator("#stage-table")
    assert table.evaluate("t => t.scrollWidth <= t.parentElement.clientWidth")
    sale = page.locator('#stage-table tr[data-stage-key="sale"] td').nth(2)
    assert sale.evaluate("td => getComputedStyle(td, '::before').content") == '"From start"'
    assert sale.inner_text() == "25.0%" and sale.is_visible()
    assert page.evaluate("document.documentElement.scrollWidth - window.innerWidth") <= 0
    # Every chart shown (funnel, time to engagement, trends, pipeline, the groups' funnels)
    # keeps text of at least 10 px, and no label runs out of its chart: on small and large
    # phones, on a small tablet just above the stacked layout, and on a laptop.
    for width in (360, 390, 760, 1120):
        page.set_viewport_size({"width": width, "height": 844})
        charts = page.evaluate(CHART_TEXT)
        assert {c["panel"] for c in charts} >= {
            "funnel-panel",
            "ttc-h",
            "trends",
            "pipeline",
            "breakdown-results",
        }, width
        for chart in charts:
            assert chart["smallest_px"] >= 10, (width, chart)
            assert chart["outside"] == [], (width, chart)
    page.set_viewport_size(desktop)

    # Drill into the drop-off after "Saw pricing": the spring/boots visitor.
    page.locator('#stage-table tr[data-stage-key="response"] a[data-dropoff]').click()
    page.wait_for_selector("#persons-table")
    rows = page.locator("#persons-table tbody tr")
    assert rows.count() == 1
    assert "boots" in rows.first.inner_text()
    # Where they left arrives after the list.
    page.wait_for_selector('#exits-slot[data-loaded="true"] #exits-table')
    exit_rows = page.locator("#exits-table tbody tr")
    assert exit_rows.count() == 1 and exit_rows.first.inner_text().endswith("100.0%")
    rows.first.locator("a[data-person]").click()
    page.wait_for_selector("#journey")
    timeline = page.locator("#journey li")
    labels = [item.locator(".badge").all_inner_texts() for item in timeline.all()]
    assert ["Landed"] in labels
    assert ["Saw pricing"] in labels
    assert not any("Signed up" in item for item in labels)
    assert "Left the funnel here" in page.locator("#journey").inner_text()
    screenshot(page, "journey")

    # That visitor asks to be forgotten: erased from the journey, gone from the report.
    page.get_by_role("link", name="Erase this person's data…").click()
    page.wait_for_selector("#erase-preview")
    erase = page.get_by_role("button", name=re.compile(r"^Erase \d+ events$"))
    page.get_by_label(re.compile("will be deleted for good")).check()
    erase.click()
    page.wait_for_selector("text=They are gone from every report now")
    page.get_by_role("link", name="Report").click()
    page.wait_for_selector("#stage-table")
    assert persons_column(page) == [3, 2, 2, 1]
    assert dialogs == []

    # Deleting a funnel asks first; dismissing keeps it.
    page.get_by_role("link", name="Funnels").click()
    page.get_by_role("button", name="Delete").first.click()
    assert len(dialogs) == 1 and "Spring sale funnel" in dialogs[0]
    assert page.get_by_role("heading", name="Spring sale funnel").is_visible()
    assert "Funnel deleted" not in page.content()

    assert [e for e in page.console_errors if "favicon" not in e] == []


XSS = "<img src=x onerror=alert(document.domain)><script>alert(1)</script>"
FORMULA = '=HYPERLINK("http://evil.example","x")'


def test_xss_payloads_render_as_text(csrf_app: Flask, live_server: LiveServer, page: Any) -> None:
    """Attacker-controlled event data sent through the collector shows as text on every page
    and is neutralised in the CSV; no dialog ever opens."""
    from urllib.parse import quote

    app = csrf_app
    owner = accounts.user_by_email(db.session, EMAIL)
    site = accounts.create_site(db.session, "Target", [], owner=owner)
    db.session.commit()
    key = site.key
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))

    url = f"https://shop.example/p?utm_campaign={quote(XSS)}&utm_term={quote(FORMULA)}#{quote(XSS)}"
    now_ms = int(time.time() * 1000)
    element = {"tag": "button", "text": XSS, "selector": "#" + XSS}
    events = [
        {
            "id": f"00000000-0000-4000-8000-00000000000{i}",
            "type": kind,
            "ts": now_ms - 60000 + i,
            "url": url,
            "title": XSS,
            "visitor": "xss-visitor",
            "session": "xss-session",
            **({"element": element} if kind == "click" else {}),
        }
        for i, kind in enumerate(["pageview", "click"])
    ]
    response = page.request.post(
        f"{live_server.url}/api/collect",
        data={"site": key, "events": events},
        headers={"User-Agent": USER_AGENT},
    )
    assert response.status == 202, response.text()
    wait_for_events(app, key, 2)

    page.goto(live_server.url + "/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/report"))

    site_base = f"{live_server.url}/sites/{key}"
    for path, text in (
        ("/report?breakdown=campaign", XSS),
        ("/report?breakdown=keyword", FORMULA),
        (f"/report?campaign={quote(XSS)}", XSS),
        ("/setup", XSS),
        ("/persons?stage=trace&status=reached", XSS),
    ):
        page.goto(site_base + path)
        page.wait_for_load_state("networkidle")
        assert text in page.locator("main").inner_text(), path
        assert page.locator("main img[src=x]").count() == 0, path
    page.goto(site_base + "/setup")
    page.get_by_role("button", name="Verify installation").click()
    page.wait_for_selector("#verify-status:text-matches('^Installed')")
    assert XSS in page.locator("#recent-events").inner_text()
    page.goto(site_base + "/persons?stage=trace&status=reached")
    page.locator("a[data-person]").first.click()
    page.wait_for_selector("#journey")
    journey = page.locator("#journey").inner_text()
    assert journey.count(XSS) >= 2  # the title and the element text, as text
    assert page.locator("main img[src=x]").count() == 0
    screenshot(page, "journey-xss")

    csv_text = page.request.get(site_base + "/persons.csv?stage=trace&status=reached").text()
    assert FORMULA not in csv_text.replace("'" + FORMULA, "")  # every formula cell is prefixed
    assert "'=HYPERLINK" in csv_text or "'=HYPERLINK".replace('"', '""') in csv_text
    assert dialogs == []


def test_editor_reorders_by_buttons_and_drag(
    csrf_app: Flask, live_server: LiveServer, page: Any
) -> None:
    """Stages move with the buttons and by dragging the handle, without a reload; saving
    stores the new order; the layout fits a phone screen."""
    from tracker.funnels import get_funnel, list_funnels

    owner = accounts.user_by_email(db.session, EMAIL)
    site = accounts.create_site(db.session, "Reorder", [], owner=owner)
    db.session.commit()
    funnel_id = list_funnels(db.session, site)[0].id

    page.goto(live_server.url + "/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.goto(f"{live_server.url}/sites/{site.key}/funnels/{funnel_id}/edit")
    page.wait_for_selector("#stages-0 [data-preview-counts][data-persons]")

    def names() -> list[str]:
        return [page.locator(f"#stages-{i}-name").input_value() for i in range(4)]

    assert names() == ["Trace", "Response", "Engagement", "Sale"]
    page.locator("#stages-0").get_by_role("button", name="Move down").click()
    assert names() == ["Response", "Trace", "Engagement", "Sale"]
    assert page.locator("#stages-0 [data-stage-number]").inner_text() == "1"
    page.locator("#stages-3 .drag-handle").drag_to(page.locator("#stages-0 > legend"))
    assert names() == ["Sale", "Response", "Trace", "Engagement"]
    # Keyboard: the move buttons are reachable and work from the keyboard.
    page.locator("#stages-1").get_by_role("button", name="Move up").focus()
    page.keyboard.press("Enter")
    assert names() == ["Response", "Sale", "Trace", "Engagement"]
    page.get_by_role("button", name="Save funnel").click()
    page.wait_for_selector("text=Funnel saved.")
    db.session.expire_all()
    saved = get_funnel(db.session, site, funnel_id)
    assert saved is not None
    assert [s.key for s in saved.stages] == ["response", "sale", "trace", "engagement"]

    # Phone width: nothing wider than the screen.
    page.set_viewport_size({"width": 390, "height": 844})
    for path in ("/report", "/funnels", f"/funnels/{funnel_id}/edit", "/setup"):
        page.goto(f"{live_server.url}/sites/{site.key}{path}")
        page.wait_for_load_state("networkidle")  # panels loaded after the page count too
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, path
    screenshot(page, "setup-mobile")

    # A funnel's figures that cannot be loaded say so; the card and its buttons stay usable.
    page.route("**/summary", lambda route: route.fulfill(status=503, body="down"))
    page.goto(f"{live_server.url}/sites/{site.key}/funnels")
    failed = page.locator('.funnel-summary[data-loaded="error"]')
    failed.wait_for()
    assert "could not be loaded" in failed.inner_text()
    assert page.get_by_role("link", name="Edit stages").is_visible()
