"""Every dashboard page passes axe-core's WCAG 2.1 A/AA and best-practice rules in the real
browser: labels, names of links and controls, contrast, landmarks, nothing focusable hidden
from assistive technology. axe-core is a pinned dev dependency of js/ (installed by `npm ci`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from tests.browser.conftest import USER_AGENT, LiveServer
from tests.dashboard.dash_helpers import insert_events, journey_events
from tracker.app import store_of
from tracker.models import Site, User

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parents[2] / "js" / "node_modules" / "axe-core" / "axe.min.js"
RULES = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]
RUN_AXE = """async (tags) => {
    const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
    return result.violations.map(v => ({
        rule: v.id, impact: v.impact, help: v.help,
        nodes: v.nodes.slice(0, 3).map(n => n.html.slice(0, 200)),
    }));
}"""
VISITORS = [
    {"id": "a1", "campaign": "spring", "keyword": "shoes", "depth": 4},
    {"id": "a2", "campaign": "spring", "keyword": "boots", "depth": 2},
    {"id": "b1", "campaign": "autumn", "keyword": "shoes", "depth": 3},
    {"id": "b2", "campaign": "autumn", "keyword": "boots", "depth": 1},
]


def violations(page: Any, url: str) -> list[dict[str, Any]]:
    page.goto(url)
    page.wait_for_load_state("networkidle")  # the report's panels load after the page
    page.add_script_tag(path=str(AXE))
    return list(page.evaluate(RUN_AXE, RULES))


def test_every_page_passes_axe(
    app: Flask, live_server: LiveServer, browser: Any, site: Site, admin: User
) -> None:
    if not AXE.exists():
        pytest.fail(f"{AXE.name} not found: run the README's test command (it runs npm ci in js/)")
    insert_events(store_of(app), journey_events(site.key, VISITORS))
    # The pages' strict CSP would refuse the injected axe script; the pages are unchanged.
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, user_agent=USER_AGENT, bypass_csp=True
    )
    page = context.new_page()
    base = f"{live_server.url}/sites/{site.key}"
    found: dict[str, list[dict[str, Any]]] = {}
    try:
        found["login"] = violations(page, f"{live_server.url}/login")
        page.fill("#email", admin.email)
        page.fill("#password", "admin-pass-123")
        page.click("button[type=submit]")
        page.wait_for_url(re.compile(r".*/sites.*"))
        html = page.goto(f"{base}/funnels").text()  # type: ignore[union-attr]
        edit = re.search(r'href="(/sites/[^"]+/funnels/\d+/edit)"', html)
        assert edit is not None
        pages = {
            "sites": "/sites",
            "report": f"{base}/report?panels=inline",
            "report by campaign": f"{base}/report?breakdown=campaign&compare=previous",
            "persons": f"{base}/persons?stage=response&status=dropped",
            "exits": f"{base}/exits?stage=response",
            "journey": f"{base}/persons/a1",
            "funnels": f"{base}/funnels",
            "editor": edit.group(1),
            "setup": f"{base}/setup",
            "links": f"{base}/links",
            "erase": f"{base}/erase?person=a1",
            "settings": "/settings",
            "not found": f"{base}/nothing-here",
        }
        for name, path in pages.items():
            url = path if path.startswith("http") else f"{live_server.url}{path}"
            found[name] = violations(page, url)
        # The phone layout: compact charts, stacked stage table.
        page.set_viewport_size({"width": 390, "height": 844})
        found["report on a phone"] = violations(page, f"{base}/report?panels=inline")
        # No page is wider than a phone's screen: wide tables scroll inside their own box,
        # long words wrap (WCAG 1.4.10, reflow).
        wider: dict[str, int] = {}
        for name, path in pages.items():
            page.goto(path if path.startswith("http") else f"{live_server.url}{path}")
            page.wait_for_load_state("networkidle")
            extra = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            if extra > 0:
                wider[name] = extra
    finally:
        context.close()
    assert {name: v for name, v in found.items() if v} == {}
    assert len(found) == 15  # every page was checked
    assert wider == {}
