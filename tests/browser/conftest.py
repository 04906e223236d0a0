"""Real-browser fixtures: the app served on 127.0.0.1 from a thread of this process (so it
shares the session's chDB engine with the assertions), and Debian's Chromium via Playwright.

Fixture pages (`fixture_pages`): any file under tests/browser/fixtures/ is served by the live
server at `/_fixtures/<name>` (so a page is `/_fixtures/<name>.html`), with `{{KEY}}`
placeholders substituted from `fixture_pages.values`:

- `{{SITE_KEY}}`: the `site` fixture's key; `{{ORIGIN}}`: the live server's URL;
- `{{SNIPPET_ATTRS}}`: extra attributes for the snippet's script tag (empty by default), e.g.
  `fixture_pages.values["SNIPPET_ATTRS"] = 'data-cookieless'`; any other key a test sets.

Per-file response headers go in `fixture_pages.headers[name]` (e.g. a Content-Security-Policy).
The pages load the snippet from the live server's `/t.js` with `data-allow-local`, the
documented opt-in that lets it send from 127.0.0.1 and from an automated browser.
`fixture_pages.events(columns)` flushes the collector's writer and returns this site's stored
events as dicts, oldest first (within one millisecond: pageview, click, event, which is the
order the snippet records them in). Request the fixture before the app serves its first request:
Flask only accepts new routes until then.
"""

from __future__ import annotations

import mimetypes
import re
import shutil
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from flask import Flask, Response, abort
from werkzeug.serving import BaseWSGIServer, make_server

from tracker.app import store_of
from tracker.models import Site

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
_PLACEHOLDER = re.compile(r"\{\{([A-Z_]+)\}\}")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Headless Chromium announces itself as "HeadlessChrome", which the collector's bot filter
# rightly drops; the tests play a real visitor, so they present an ordinary desktop Chrome.
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    # Also for requests the browser sends after a page is gone (beacons at unload), which
    # the per-context user agent does not cover.
    f"--user-agent={USER_AGENT}",
]


class LiveServer:
    def __init__(self, app: Flask) -> None:
        self.app = app
        self.server: BaseWSGIServer = make_server("127.0.0.1", 0, app, threaded=True)
        self.port = self.server.server_port
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join(timeout=10)


@pytest.fixture
def live_server(app: Flask) -> Iterator[LiveServer]:
    with LiveServer(app) as server:
        yield server


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: run the README's test command, which installs it"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser: object, request: pytest.FixtureRequest) -> Iterator[object]:
    """A fresh context and page; console errors are collected in `page.console_errors`."""
    context = browser.new_context(  # type: ignore[attr-defined]
        viewport={"width": 1280, "height": 900}, user_agent=USER_AGENT
    )
    pg = context.new_page()
    errors: list[str] = []
    pg.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    pg.on("pageerror", lambda exc: errors.append(str(exc)))
    pg.console_errors = errors
    yield pg
    context.close()


def screenshot(page: object, name: str) -> Path:
    """Save a full-page PNG under tests/artifacts/ (kept by CI as an artifact)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)  # type: ignore[attr-defined]
    return path


class FixturePages:
    """Serves tests/browser/fixtures/ on the live server; see the module docstring."""

    def __init__(self, app: Flask, server: LiveServer, site: Site) -> None:
        self.app = app
        self.server = server
        self.site = site
        self.values: dict[str, str] = {
            "SITE_KEY": site.key,
            "ORIGIN": server.url,
            "SNIPPET_ATTRS": "",
        }
        self.headers: dict[str, dict[str, str]] = {}
        app.add_url_rule("/_fixtures/<path:name>", "test_fixture_pages", self._serve)

    def url(self, name: str, query: str = "") -> str:
        """The absolute URL of fixture `name` ("landing.html"), with an optional query."""
        return f"{self.server.url}/_fixtures/{name}" + (f"?{query}" if query else "")

    def _serve(self, name: str) -> Response:
        path = (FIXTURES / name).resolve()
        if FIXTURES not in path.parents or not path.is_file():
            abort(404)
        mimetype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        text = _PLACEHOLDER.sub(lambda m: self.values[m.group(1)], path.read_text("utf-8"))
        response = Response(text, mimetype=mimetype)
        response.headers.update(self.headers.get(name, {}))
        response.headers["Cache-Control"] = "no-store"
        return response

    def events(self, columns: Sequence[str] = ("type", "name", "url")) -> list[dict[str, Any]]:
        """This site's events in ClickHouse, oldest first, once the writer has flushed."""
        assert self.app.extensions["funnel_writer"].flush(timeout=20), "writer did not flush"
        for column in columns:
            assert re.fullmatch(r"[a-z_]+", column), column
        rows = store_of(self.app).rows(
            f"SELECT {', '.join(columns)} FROM events WHERE site_id = {{s:String}} "
            "ORDER BY ts, indexOf(['pageview', 'click', 'event'], type), event_id",
            {"s": self.site.key},
        )
        return [dict(zip(columns, row, strict=True)) for row in rows]


@pytest.fixture
def fixture_pages(app: Flask, live_server: LiveServer, site: Site) -> FixturePages:
    return FixturePages(app, live_server, site)
