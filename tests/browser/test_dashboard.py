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

from tests.browser.conftest import USER_AGENT, LiveServer, screenshot
from tracker import accounts
from tracker.app import store_of
from tracker.configdb import db

pytestmark = pytest.mark.browser

EMAIL = "new.marketer@example.test"
PASSWORD = "first-day-at-work"
# (campaign, keyword, how far the visitor goes: 1 view, 2 click, 3 signup, 4 purchase)
VISITORS = [
    ("spring", "shoes", 4),
    ("spring", "boots", 2),
    ("spring", "shoes", 1),
    ("autumn", "shoes", 3),
]
SHOP_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Runner shoes</title>
<script defer src="/t.js" data-site="{key}" data-allow-local></script></head>
<body><h1>Runner shoes</h1>
<p><a href="#details" id="details">See the details</a></p>
<p><button type="button" id="signup" data-funnel-event="signup">Create an account</button></p>
<p><button type="button" id="buy" data-funnel-event="purchase" data-funnel-prop-product="runner">
Buy now</button></p>
</body></html>"""


@pytest.fixture
def csrf_app(app: Flask) -> Iterator[Flask]:
    """The test app with CSRF protection on, so the real forms are exercised, plus the shop
    page a marketer embeds the snippet into."""
    app.config["WTF_CSRF_ENABLED"] = True

    def shop(key: str) -> Any:
        return SHOP_PAGE.format(key=key), 200, {"Content-Type": "text/html; charset=utf-8"}

    app.add_url_rule("/_shop/<key>/product.html", "test_shop", shop)
    accounts.create_user(db.session, EMAIL, PASSWORD, role="marketer", name="New marketer")
    db.session.commit()
    yield app


@pytest.fixture
def shop_server(csrf_app: Flask) -> Iterator[LiveServer]:
    with LiveServer(csrf_app) as server:
        yield server


def visit(browser: Any, url: str, depth: int) -> None:
    """One new visitor (fresh storage) arriving from a campaign link."""
    context = browser.new_context(user_agent=USER_AGENT)
    page = context.new_page()
    page.goto(url)
    page.wait_for_function("typeof window.funnel === 'function'")
    if depth >= 2:
        page.click("#details")
    if depth >= 3:
        page.click("#signup")
    if depth >= 4:
        page.click("#buy")
    # The snippet sends a batch a second after the first event; wait for it to leave.
    with page.expect_response(lambda r: "/api/collect" in r.url and r.status == 202):
        pass
    page.wait_for_timeout(1200)
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
    raise AssertionError(f"expected {expected} events in ClickHouse, found {count}")


def persons_column(page: Any) -> list[int]:
    cells = page.locator("#stage-table td[data-persons]").all_inner_texts()
    return [int(c.replace(",", "")) for c in cells]


def test_marketer_flow(shop_server: LiveServer, browser: Any, page: Any) -> None:
    base = shop_server.url
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

    # Visitors arrive from campaign links on the page carrying the snippet.
    for campaign, keyword, depth in VISITORS:
        visit(
            browser,
            f"{base}/_shop/{key}/product.html?utm_source=google&utm_medium=cpc"
            f"&utm_campaign={campaign}&utm_term={keyword}",
            depth,
        )
    wait_for_events(shop_server.app, key, sum(d for _, _, d in VISITORS))

    # The install check shows the events live.
    page.wait_for_function(
        "document.getElementById('verify-status').textContent.startsWith('Installed')"
    )
    assert page.locator("#recent-events tbody tr").count() >= 5
    assert "spring" in page.locator("#recent-events").inner_text()

    # Define the four stages; the live preview follows every edit.
    page.get_by_role("link", name="Funnels").click()
    page.get_by_role("link", name="Edit stages").first.click()
    page.wait_for_selector("#stages-0 [data-preview-counts][data-persons]")
    previews = page.locator("[data-preview-counts]")
    assert previews.nth(0).get_attribute("data-persons") == "4"
    page.get_by_label("Funnel name").fill("Runner funnel")
    page.locator("#stages-0-name").fill("Landed from a campaign")
    page.locator("#stages-0").get_by_role("button", name="+ AND condition").click()
    page.wait_for_selector("#stages-0-rules-0-conditions-0-field")
    page.locator("#stages-0-rules-0-conditions-0-field").fill("campaign")
    page.locator("#stages-0-rules-0-conditions-0-op").select_option("in")
    page.locator("#stages-0-rules-0-conditions-0-value").fill("spring, autumn")
    page.locator("#stages-1-name").fill("Clicked")
    page.locator("#stages-2-rules-0-name").fill("signup")
    page.locator("#stages-3-rules-0-name").fill("purchase")
    page.wait_for_function(
        "document.querySelectorAll('[data-preview-counts]')[0].dataset.persons === '4'"
        " && document.querySelector('#stages-0 [data-describe]').textContent.includes('spring')"
    )
    assert [previews.nth(i).get_attribute("data-persons") for i in range(4)] == [
        "4",
        "3",
        "2",
        "1",
    ]
    # A typo is caught inline, and nothing typed is lost.
    page.locator("#stages-0-rules-0-conditions-0-field").fill("campain")
    page.wait_for_function("document.getElementById('preview-status').dataset.state === 'invalid'")
    page.get_by_role("button", name="Save funnel").click()
    assert page.locator("#err-stages-0-rules-0-conditions-0-field").is_visible()
    assert page.locator("#stages-0-name").input_value() == "Landed from a campaign"
    page.locator("#stages-0-rules-0-conditions-0-field").fill("campaign")
    screenshot(page, "editor")
    page.get_by_role("button", name="Save funnel").click()
    page.wait_for_selector("text=Funnel saved.")

    # The report: expected counts, then one campaign, then one keyword, then a breakdown.
    page.get_by_role("link", name="View report").click()
    page.wait_for_selector("#stage-table")
    assert persons_column(page) == [4, 3, 2, 1]
    assert "Landed from a campaign" in page.locator("#stage-table").inner_text()
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
    page.wait_for_selector("#breakdown")
    spring = page.locator('[data-breakdown-value="spring"]')
    autumn = page.locator('[data-breakdown-value="autumn"]')
    assert "3 persons" in spring.inner_text()
    assert "1 persons" in autumn.inner_text()
    assert persons_column(page) == [4, 3, 2, 1]
    screenshot(page, "report")

    # Drill into the drop-off after "Clicked": the spring/boots visitor.
    page.locator('#stage-table tr[data-stage-key="response"] a[data-dropoff]').click()
    page.wait_for_selector("#persons-table")
    rows = page.locator("#persons-table tbody tr")
    assert rows.count() == 1
    assert "boots" in rows.first.inner_text()
    rows.first.locator("a[data-person]").click()
    page.wait_for_selector("#journey")
    timeline = page.locator("#journey li")
    labels = [item.locator(".badge").all_inner_texts() for item in timeline.all()]
    assert labels[0] == ["Landed from a campaign"]
    assert ["Clicked"] in labels
    assert "Left the funnel here" in page.locator("#journey").inner_text()
    screenshot(page, "journey")

    assert dialogs == []
    assert [e for e in page.console_errors if "favicon" not in e] == []


XSS = "<img src=x onerror=alert(document.domain)><script>alert(1)</script>"
FORMULA = '=HYPERLINK("http://evil.example","x")'


def test_xss_payloads_render_as_text(shop_server: LiveServer, page: Any) -> None:
    """Attacker-controlled event data sent through the collector shows as text on every page
    and is neutralised in the CSV; no dialog ever opens."""
    from urllib.parse import quote

    app = shop_server.app
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
        f"{shop_server.url}/api/collect",
        data={"site": key, "events": events},
        headers={"User-Agent": USER_AGENT},
    )
    assert response.status == 202, response.text()
    wait_for_events(app, key, 2)

    page.goto(shop_server.url + "/login")
    page.get_by_label("Email").fill(EMAIL)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r"/report"))

    site_base = f"{shop_server.url}/sites/{key}"
    for path in (
        "/report?breakdown=campaign",
        "/report?breakdown=keyword",
        f"/report?campaign={quote(XSS)}",
        "/setup",
        "/persons?stage=trace&status=reached",
    ):
        page.goto(site_base + path)
        page.wait_for_load_state("networkidle")
        assert XSS in page.locator("main").inner_text(), path
        assert page.locator("main img[src=x]").count() == 0, path
    page.goto(site_base + "/setup")
    page.get_by_role("button", name="Verify installation").click()
    page.wait_for_function(
        "document.getElementById('verify-status').textContent.startsWith('Installed')"
    )
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
