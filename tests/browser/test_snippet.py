"""The tracking snippet in real headless Chromium against the real collector: fixture pages from
tests/browser/fixtures/ load /t.js, and every test asserts the exact events that reached
ClickHouse (or that nothing was sent at all)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.browser.conftest import FixturePages, screenshot

pytestmark = pytest.mark.browser

QUERY = "utm_source=newsletter&utm_medium=email&utm_campaign=spring&utm_content=hero&gclid=G-123"
COLUMNS = (
    "type",
    "name",
    "url",
    "referrer",
    "title",
    "user_id",
    "element_tag",
    "element_text",
    "element_href",
    "element_id",
    "element_selector",
    "outbound",
    "props",
    "value",
)


def wait_for_events(
    pages: FixturePages, count: int, columns: tuple[str, ...] = COLUMNS
) -> list[dict[str, Any]]:
    """The site's events once `count` of them are stored (batches leave within ~1 s)."""
    deadline = time.monotonic() + 15
    events = pages.events(columns)
    while len(events) < count and time.monotonic() < deadline:
        time.sleep(0.2)
        events = pages.events(columns)
    return events


def collect_requests(page: Any) -> list[str]:
    """URLs of the requests the page makes to any /api/collect, from now on."""
    seen: list[str] = []
    page.on("request", lambda r: seen.append(r.url) if "/api/collect" in r.url else None)
    return seen


def event(type_: str, url: str, **fields: Any) -> dict[str, Any]:
    """An expected row: COLUMNS with the stored defaults, overridden by `fields`."""
    row: dict[str, Any] = dict.fromkeys(COLUMNS, "")
    row.update(type=type_, url=url, outbound=0, props={}, value=0.0)
    row.update(fields)
    return row


def test_a_visit_reaches_clickhouse_exactly(fixture_pages: FixturePages, page: Any) -> None:
    """Landing with utm parameters, a CTA click, an SPA route change, a form submit firing a
    custom event, identify, a tagged element, an outbound link, then the next page."""
    landing = fixture_pages.url("landing.html", QUERY)
    pricing = f"{fixture_pages.server.url}/_fixtures/pricing?tab=monthly"
    thanks = fixture_pages.url("thanks.html")
    partner = "https://partner.example.org/deal?ref=spring"
    page.route(partner, lambda route: route.fulfill(body="<title>Partner</title>Partner"))

    page.goto(landing)
    page.click("#cta")
    page.click("text=Go to pricing")  # pushState + replaceState of the same URL
    page.click("text=Sign up")
    page.click("#login")
    page.click("text=Play intro")
    screenshot(page, "snippet-landing")
    page.click("a.partner")  # leaves the page: the unload flush sends the rest
    page.wait_for_url(partner)
    page.goto(thanks)
    page.goto("about:blank")

    events = wait_for_events(fixture_pages, 12)

    def on_pricing(type_: str, **fields: Any) -> dict[str, Any]:
        return event(type_, pricing, referrer=landing, title="Pricing", **fields)

    user = {"user_id": "user-42"}
    assert events == [
        event("pageview", landing, title="Spring sale"),
        # Called through the queue stub before t.js loaded, replayed after the pageview.
        event("event", landing, name="stub_call", title="Spring sale", props={"early": "true"}),
        event(
            "click",
            landing,
            title="Spring sale",
            element_tag="a",
            element_text="See pricing",
            element_href=landing + "#pricing",
            element_id="cta",
            element_selector="#cta",
            props={"position": "hero"},
        ),
        event(
            "click",
            landing,
            title="Spring sale",
            element_tag="button",
            element_text="Go to pricing",
            element_selector="button.nav-link",
        ),
        # The SPA route: one pageview although the router pushed and replaced the URL.
        on_pricing("pageview"),
        on_pricing(
            "click",
            element_tag="button",
            element_text="Sign up",
            element_selector="button.primary.big",
        ),
        on_pricing(
            "event",
            name="signup",
            props={"plan": "pro", "trial": "true", "seats": "3"},
            value=49.5,
        ),
        on_pricing(
            "click",
            element_tag="div",
            element_text="Log in",
            element_id="login",
            element_selector="#login",
        ),
        on_pricing("event", name="identify", **user),
        on_pricing(
            "event",
            name="video_play",
            element_tag="span",
            element_text="Play intro",
            element_selector="span",
            props={"video": "intro"},
            **user,
        ),
        on_pricing(
            "click",
            element_tag="a",
            element_text="Partner deal",
            element_href=partner,
            element_selector="a.partner",
            outbound=1,
            **user,
        ),
        # The next page: same visitor, still identified.
        event("pageview", thanks, title="Thanks", **user),
    ]

    attribution = wait_for_events(
        fixture_pages,
        12,
        (
            "visitor_id",
            "session_id",
            "utm_source",
            "utm_medium",
            "utm_campaign",
            "utm_content",
            "click_id",
            "click_id_type",
            "screen_width",
            "language",
        ),
    )
    assert attribution[0] == {
        "visitor_id": attribution[0]["visitor_id"],
        "session_id": attribution[0]["session_id"],
        "utm_source": "newsletter",
        "utm_medium": "email",
        "utm_campaign": "spring",
        "utm_content": "hero",
        "click_id": "G-123",
        "click_id_type": "gclid",
        "screen_width": 1280,
        "language": "en-US",
    }
    # One visitor and one session throughout, kept in localStorage across pages.
    assert len({(e["visitor_id"], e["session_id"]) for e in attribution}) == 1
    assert len(attribution[0]["visitor_id"]) == 36
    assert page.console_errors == []


def test_a_form_that_leaves_the_page_is_delivered_on_unload(
    fixture_pages: FixturePages, page: Any
) -> None:
    """The custom event fires in onsubmit and the browser navigates at once: only the
    pagehide flush can deliver it (the 1 s batch timer never gets to run)."""
    signup = fixture_pages.url("signup.html", "utm_campaign=guide")
    page.goto(signup)
    page.click("input[type=submit]")
    page.wait_for_url("**/thanks.html?email=*")
    page.goto("about:blank")

    events = wait_for_events(fixture_pages, 4)
    thanks = fixture_pages.url("thanks.html", "email=bo%40example.test")
    assert events == [
        event("pageview", signup, title="Sign up"),
        event(
            "click",
            signup,
            title="Sign up",
            element_tag="input",
            element_text="Get the guide",
            element_selector="input",
        ),
        event(
            "event", signup, title="Sign up", name="lead", props={"source": "footer"}, value=12.0
        ),
        event("pageview", thanks, referrer=signup, title="Thanks"),
    ]
    assert page.console_errors == []


def test_strict_csp_page_still_tracks(fixture_pages: FixturePages, page: Any) -> None:
    """No inline script, no eval: the snippet, the stub and the page's code all load from
    files under `default-src 'self'; script-src 'self'`."""
    fixture_pages.headers["strict.html"] = {
        "Content-Security-Policy": "default-src 'self'; script-src 'self'"
    }
    strict = fixture_pages.url("strict.html")
    response = page.goto(strict)
    assert "script-src 'self'" in response.headers["content-security-policy"]
    # An inline script really is refused on this page.
    page.evaluate(
        "document.head.appendChild(Object.assign(document.createElement('script'),"
        " {textContent: 'window.inlineRan = true'}))"
    )
    assert page.evaluate("window.inlineRan") is None
    page.console_errors.clear()  # the refused inline script is reported as a CSP violation
    page.click("#subscribe")
    page.goto("about:blank")

    events = wait_for_events(fixture_pages, 4)
    assert events == [
        event("pageview", strict, title="Strict"),
        event("event", strict, name="strict_loaded", title="Strict"),
        event(
            "click",
            strict,
            title="Strict",
            element_tag="button",
            element_text="Subscribe",
            element_id="subscribe",
            element_selector="#subscribe",
        ),
        event("event", strict, name="subscribe", title="Strict", props={"list": "weekly"}),
    ]
    assert page.console_errors == []


NAVIGATOR_PRIVACY = {
    "dnt": "Object.defineProperty(Navigator.prototype, 'doNotTrack', {get: () => '1'})",
    "gpc": "Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => true})",
}


@pytest.mark.parametrize("case", ["dnt", "gpc", "domains", "no-opt-in"])
def test_privacy_settings_send_nothing(fixture_pages: FixturePages, page: Any, case: str) -> None:
    """Do Not Track, Global Privacy Control, a host outside data-domains, and a local page
    without data-allow-local: the page works, the API answers, nothing leaves."""
    if case in NAVIGATOR_PRIVACY:
        page.add_init_script(NAVIGATOR_PRIVACY[case])
    if case == "domains":
        fixture_pages.values["SNIPPET_ATTRS"] = 'data-domains="shop.example.com"'
    sent = collect_requests(page)
    page.goto(fixture_pages.url("no-opt-in.html" if case == "no-opt-in" else "landing.html"))
    page.wait_for_function("typeof window.funnel === 'function' && !window.funnel.q")
    page.click("#cta")
    page.evaluate("funnel('event', 'signup', {plan: 'pro'}); funnel('identify', 'u-1')")
    page.wait_for_timeout(1300)  # past the batch timer
    page.goto("about:blank")  # and the unload flush
    page.wait_for_timeout(500)  # anything sent at unload would have arrived by now

    assert sent == []
    assert fixture_pages.events() == []
    assert page.console_errors == []


def test_dnt_can_be_turned_off_by_the_site(fixture_pages: FixturePages, page: Any) -> None:
    page.add_init_script(NAVIGATOR_PRIVACY["dnt"])
    fixture_pages.values["SNIPPET_ATTRS"] = 'data-respect-dnt="false"'
    thanks = fixture_pages.url("thanks.html")
    page.goto(thanks)
    page.goto("about:blank")
    assert wait_for_events(fixture_pages, 1, ("type", "url")) == [
        {"type": "pageview", "url": thanks}
    ]


def test_opt_out_sends_nothing_until_opt_in(fixture_pages: FixturePages, page: Any) -> None:
    """funnel('optout') drops what is queued, persists across pages, and funnel('optin')
    resumes tracking."""
    sent = collect_requests(page)
    page.goto(fixture_pages.url("landing.html"))
    page.wait_for_function("typeof window.funnel === 'function' && !window.funnel.q")
    # The pageview and the replayed stub call are still queued (the batch waits 1 s).
    page.evaluate("funnel('identify', 'u-out'); funnel('optout')")
    assert page.evaluate("localStorage.funnel_optout") == "1"
    page.click("#cta")
    page.goto(fixture_pages.url("thanks.html"))
    page.click("#home")
    page.wait_for_timeout(1300)
    assert sent == []

    page.evaluate("funnel('optin'); funnel('event', 'back_in')")
    page.goto("about:blank")
    events = wait_for_events(fixture_pages, 1, ("type", "name"))
    assert events == [{"type": "event", "name": "back_in"}]
    assert page.console_errors == []


def test_cookieless_stores_nothing_on_the_device(fixture_pages: FixturePages, page: Any) -> None:
    """data-cookieless: no localStorage, no cookies; the collector derives the visitor id."""
    fixture_pages.values["SNIPPET_ATTRS"] = "data-cookieless"
    landing = fixture_pages.url("landing.html", "utm_source=ads")
    page.goto(landing)
    page.click("#cta")
    page.click("#login")  # identify: this page only
    stored = page.evaluate("[Object.keys(localStorage), Object.keys(sessionStorage)]")
    page.goto("about:blank")

    assert stored == [[], []]
    assert page.context.cookies() == []
    events = wait_for_events(fixture_pages, 5, ("type", "name", "user_id", "visitor_id"))
    assert [(e["type"], e["name"], e["user_id"]) for e in events] == [
        ("pageview", "", ""),
        ("event", "stub_call", ""),
        ("click", "", ""),
        ("click", "", ""),
        ("event", "identify", "user-42"),
    ]
    visitors = {e["visitor_id"] for e in events}
    assert len(visitors) == 1 and visitors != {""}


def test_offline_events_are_kept_and_sent_by_the_next_page(
    fixture_pages: FixturePages, page: Any
) -> None:
    landing = fixture_pages.url("landing.html")
    page.goto(landing)
    page.wait_for_timeout(1300)  # the first batch leaves while online
    assert len(wait_for_events(fixture_pages, 2)) == 2

    page.context.set_offline(True)
    page.click("text=Play intro")
    page.evaluate("funnel('event', 'offline_signup', {plan: 'pro'})")
    page.wait_for_timeout(1300)  # the batch cannot leave: it is kept in localStorage
    kept = page.evaluate("JSON.parse(localStorage.funnel_queue)")
    assert [(e["type"], e.get("name")) for e in kept] == [
        ("event", "video_play"),
        ("event", "offline_signup"),
    ]

    page.context.set_offline(False)
    page.goto(fixture_pages.url("thanks.html"))
    page.goto("about:blank")
    events = wait_for_events(fixture_pages, 5, ("event_id", "type", "name", "url"))
    assert [(e["type"], e["name"]) for e in events] == [
        ("pageview", ""),
        ("event", "stub_call"),
        ("event", "video_play"),
        ("event", "offline_signup"),
        ("pageview", ""),
    ]
    # Sent with the ids they were recorded under, so a retry could never count twice.
    assert [str(e["event_id"]) for e in events[2:4]] == [e["id"] for e in kept]
    assert page.console_errors == []


class BrokenCollector(BaseHTTPRequestHandler):
    """Answers every request with a 500 (readable cross-origin), or holds it for 3 s first
    ("hang"); keeps the bodies it was sent."""

    mode = "500"
    bodies: list[dict[str, Any]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        BrokenCollector.bodies.append(json.loads(body))
        if self.mode == "hang":
            time.sleep(3)
        self.send_response(500)
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def broken_collector() -> Iterator[ThreadingHTTPServer]:
    BrokenCollector.bodies = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), BrokenCollector)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def wait_for_requests(count: int) -> list[dict[str, Any]]:
    """The bodies the broken collector has received, once there are `count` of them."""
    deadline = time.monotonic() + 15
    while len(BrokenCollector.bodies) < count and time.monotonic() < deadline:
        time.sleep(0.1)
    return BrokenCollector.bodies


@pytest.mark.parametrize("mode", ["500", "hang"])
def test_a_broken_collector_causes_no_console_errors(
    fixture_pages: FixturePages, page: Any, broken_collector: ThreadingHTTPServer, mode: str
) -> None:
    """Answering 500, or not answering for seconds: the snippet's sends (beacons) leave,
    the page works, and nothing appears in its console."""
    BrokenCollector.mode = mode
    fixture_pages.values["SNIPPET_ATTRS"] = (
        f'data-api="http://127.0.0.1:{broken_collector.server_port}"'
    )
    page.goto(fixture_pages.url("landing.html", QUERY))
    wait_for_requests(1)
    page.click("#cta")
    page.click("text=Sign up")
    page.evaluate("funnel('event', 'still_fine')")
    page.goto(fixture_pages.url("thanks.html"))  # the rest leaves as the page goes
    assert page.title() == "Thanks"  # nothing blocked the way
    page.goto("about:blank")
    assert len(wait_for_requests(2)) >= 2  # it really tried, and really failed
    assert page.console_errors == []


def test_hash_routes_and_back_button(fixture_pages: FixturePages, page: Any) -> None:
    """data-hash: a fragment route is a pageview; going back is one too (popstate)."""
    fixture_pages.values["SNIPPET_ATTRS"] = "data-hash"
    landing = fixture_pages.url("landing.html")
    page.goto(landing)
    page.wait_for_function("typeof window.funnel === 'function' && !window.funnel.q")
    page.click("#cta")  # href="#pricing"
    page.wait_for_url("**#pricing")
    # Routes are noticed by a 300 ms URL poll; a visitor stays longer than that on a route
    # (one left sooner is not counted, which the README states).
    page.wait_for_timeout(700)
    page.go_back()
    page.wait_for_url(landing)
    page.wait_for_timeout(400)  # the URL poll runs every 300 ms
    page.goto("about:blank")

    events = wait_for_events(fixture_pages, 5, ("type", "name", "url", "referrer"))
    assert events == [
        {"type": "pageview", "name": "", "url": landing, "referrer": ""},
        {"type": "event", "name": "stub_call", "url": landing, "referrer": ""},
        {"type": "click", "name": "", "url": landing, "referrer": ""},
        {"type": "pageview", "name": "", "url": landing + "#pricing", "referrer": landing},
        {"type": "pageview", "name": "", "url": landing, "referrer": landing + "#pricing"},
    ]


def test_spa_and_auto_clicks_turned_off(fixture_pages: FixturePages, page: Any) -> None:
    """data-spa="false" and data-auto-clicks="false": only the first pageview, tagged
    elements and API calls are sent."""
    fixture_pages.values["SNIPPET_ATTRS"] = 'data-spa="false" data-auto-clicks="false"'
    landing = fixture_pages.url("landing.html")
    pricing = f"{fixture_pages.server.url}/_fixtures/pricing?tab=monthly"
    page.goto(landing)
    page.wait_for_function("typeof window.funnel === 'function' && !window.funnel.q")
    page.click("#cta")
    page.click("text=Go to pricing")
    page.wait_for_timeout(400)
    page.click("text=Play intro")
    page.evaluate("funnel('pageview')")
    page.goto("about:blank")

    events = wait_for_events(fixture_pages, 4, ("type", "name", "url"))
    assert events == [
        {"type": "pageview", "name": "", "url": landing},
        {"type": "event", "name": "stub_call", "url": landing},
        {"type": "event", "name": "video_play", "url": pricing},
        {"type": "pageview", "name": "", "url": pricing},
    ]


def test_form_controls_never_send_what_was_typed(fixture_pages: FixturePages, page: Any) -> None:
    """A tagged password or email field clicked after typing sends no text at all, nor does a
    textarea; a button's text is its visible label, not its value attribute."""
    controls = fixture_pages.url("controls.html")
    page.goto(controls)
    page.wait_for_function("typeof window.funnel === 'function'")
    page.fill("#email", "ann@example.test")
    page.fill("#password", "hunter2-secret")
    page.fill("#note", "typed note")
    for target in ("#password", "#email", "#note", "#delete", "#save"):
        page.click(target)
    page.goto("about:blank")

    columns = ("type", "name", "element_tag", "element_text", "element_id")
    events = wait_for_events(fixture_pages, 6, columns)
    assert events == [
        {"type": "pageview", "name": "", "element_tag": "", "element_text": "", "element_id": ""},
        {
            "type": "event",
            "name": "password_field",
            "element_tag": "input",
            "element_text": "",
            "element_id": "password",
        },
        {
            "type": "event",
            "name": "email_field",
            "element_tag": "input",
            "element_text": "",
            "element_id": "email",
        },
        {
            "type": "event",
            "name": "note_field",
            "element_tag": "textarea",
            "element_text": "",
            "element_id": "note",
        },
        {
            "type": "click",
            "name": "",
            "element_tag": "button",
            "element_text": "Delete account",
            "element_id": "delete",
        },
        {
            "type": "click",
            "name": "",
            "element_tag": "input",
            "element_text": "Save",
            "element_id": "save",
        },
    ]
    stored = fixture_pages.events(("url", "title", "element_text", "props"))
    assert "hunter2" not in repr(stored) and "ann@example" not in repr(stored)
    assert page.console_errors == []


def test_a_tagged_form_with_a_control_named_id_is_recorded(
    fixture_pages: FixturePages, page: Any
) -> None:
    """form.id and form.host are the form's <input name=id> and <input name=host>: the event
    is described by the form's attributes instead of being dropped as invalid."""
    page.goto(fixture_pages.url("controls.html"))
    page.wait_for_function("typeof window.funnel === 'function'")
    page.click("#join")
    page.goto("about:blank")

    columns = ("type", "name", "element_tag", "element_text", "element_id", "element_selector")
    events = wait_for_events(fixture_pages, 2, (*columns, "outbound"))
    assert events[1:] == [
        {
            "type": "event",
            "name": "newsletter_signup",
            "element_tag": "form",
            "element_text": "Join",
            "element_id": "newsletter",
            "element_selector": "#newsletter",
            "outbound": 0,
        }
    ]
    assert page.console_errors == []


def test_link_text_is_cut_at_100_characters_an_emoji_whole(
    fixture_pages: FixturePages, page: Any
) -> None:
    """99 characters, then an emoji as the 100th: the collector keeps 100 characters of the
    text t.js sends, counting the emoji (two UTF-16 units) as one."""
    page.goto(fixture_pages.url("controls.html"))
    page.wait_for_function("typeof window.funnel === 'function'")
    page.click("#emoji")
    page.goto("about:blank")

    events = wait_for_events(fixture_pages, 2, ("type", "element_text"))
    assert events[1:] == [{"type": "click", "element_text": "a" * 99 + "\U0001f600"}]
    assert page.console_errors == []


def test_bad_props_are_left_out_and_the_event_is_kept(
    fixture_pages: FixturePages, page: Any
) -> None:
    """A list, a null and a numeric string value, each of which made the collector drop the
    whole purchase, reach ClickHouse as the props that are usable and a numeric value."""
    thanks = fixture_pages.url("thanks.html")
    page.goto(thanks)
    page.wait_for_function("typeof window.funnel === 'function'")
    page.evaluate(
        "funnel('event', 'purchase', {items: ['a'], coupon: null, sku: 'A1', qty: 2},"
        " {value: '49.90'})"
    )
    page.goto("about:blank")

    events = wait_for_events(fixture_pages, 2, ("type", "name", "props", "value"))
    assert events[1:] == [
        {"type": "event", "name": "purchase", "props": {"sku": "A1", "qty": "2"}, "value": 49.9}
    ]
    assert page.console_errors == []


def test_the_snippet_included_twice_counts_once(fixture_pages: FixturePages, page: Any) -> None:
    """Two copies of t.js on a page: one pageview and one click per click, and the call queued
    between the copies (by a stub defined again) still arrives."""
    twice = fixture_pages.url("twice.html")
    thanks = fixture_pages.url("thanks.html")
    page.goto(twice)
    page.click("#next")
    page.wait_for_url(thanks)
    page.goto("about:blank")

    events = wait_for_events(fixture_pages, 4, ("type", "name", "url"))
    assert events == [
        {"type": "pageview", "name": "", "url": twice},
        {"type": "event", "name": "between_copies", "url": twice},
        {"type": "click", "name": "", "url": twice},
        {"type": "pageview", "name": "", "url": thanks},
    ]
    assert page.console_errors == []


BLOCKED_STORAGE = (
    "Object.defineProperty(window, 'localStorage', {get() {"
    " throw new DOMException('The operation is insecure.', 'SecurityError') }})"
)


def test_cookie_fallback_keeps_ids_whole_and_no_queue(
    fixture_pages: FixturePages, page: Any
) -> None:
    """Where localStorage throws, ids live in cookies, and the offline queue is never written
    to a cookie."""
    page.add_init_script(BLOCKED_STORAGE)
    thanks = fixture_pages.url("thanks.html")
    page.goto(thanks)
    page.wait_for_function("typeof window.funnel === 'function'")
    page.evaluate("funnel('identify', 'acct-42')")
    page.context.set_offline(True)
    # Ten events make a batch at once, which cannot leave: it is kept, but not in a cookie.
    page.evaluate("for (let i = 0; i < 10; i++) funnel('event', 'offline_' + i)")
    names = sorted(c["name"] for c in page.context.cookies())
    page.context.set_offline(False)
    page.goto(fixture_pages.url("thanks.html", "again=1"))
    page.goto("about:blank")

    assert names == ["funnel_session", "funnel_user", "funnel_visitor"]
    # The offline events wait in memory and leave when the page unloads, back online.
    events = wait_for_events(fixture_pages, 13, ("type", "name", "user_id"))
    assert len([e for e in events if e["name"].startswith("offline_")]) == 10
    assert [e for e in events if not e["name"].startswith("offline_")] == [
        {"type": "pageview", "name": "", "user_id": ""},
        {"type": "event", "name": "identify", "user_id": "acct-42"},
        {"type": "pageview", "name": "", "user_id": "acct-42"},
    ]
    assert page.console_errors == []


def test_a_long_landing_url_is_stored_cut_with_its_campaign(
    fixture_pages: FixturePages, page: Any
) -> None:
    """A landing URL over 2,048 characters whose utm parameters and click id come after the
    cut: its events are stored (not dropped), the URL cut, the campaign attributed."""
    query = "f=" + "x" * 3000 + "&utm_source=ads&utm_campaign=long&gclid=G-9"
    landing = fixture_pages.url("thanks.html", query)
    page.goto(landing)
    page.wait_for_function("typeof window.funnel === 'function'")
    page.evaluate("funnel('event', 'purchase', {sku: 'A1'}, {value: 20})")
    page.goto("about:blank")

    columns = ("type", "name", "url", "utm_source", "utm_campaign", "click_id", "value")
    events = wait_for_events(fixture_pages, 2, columns)
    campaign = {"url": landing[:2048], "utm_source": "ads", "utm_campaign": "long"}
    assert events == [
        {"type": "pageview", "name": "", **campaign, "click_id": "G-9", "value": 0.0},
        {"type": "event", "name": "purchase", **campaign, "click_id": "G-9", "value": 20.0},
    ]
    assert page.console_errors == []


# What Prototype.js 1.6 does to every array: JSON.stringify([1]) is then the string "[1]".
PROTOTYPE_JS_TO_JSON = (
    "Array.prototype.toJSON = function () {"
    " return '[' + this.map(function (v) { return JSON.stringify(v) }).join(', ') + ']' }"
)


def test_a_page_patching_array_tojson_is_still_tracked(
    fixture_pages: FixturePages, page: Any
) -> None:
    """Array.prototype.toJSON (Prototype.js) made the body's events a string: a 400 for every
    batch. And a title holding half a surrogate pair is sent well-formed, not refused."""
    page.add_init_script(PROTOTYPE_JS_TO_JSON)
    thanks = fixture_pages.url("thanks.html")
    page.goto(thanks)
    page.wait_for_function("typeof window.funnel === 'function'")
    page.evaluate("document.title = 'Half \\ud83d pair'; funnel('event', 'titled')")
    page.goto("about:blank")

    events = wait_for_events(fixture_pages, 2, ("type", "name", "title"))
    assert events == [
        {"type": "pageview", "name": "", "title": "Thanks"},
        {"type": "event", "name": "titled", "title": "Half \ufffd pair"},
    ]
    assert page.console_errors == []
