"""Dashboard page benchmark: full server-side renders (all panels, templates, SVG) through the
Flask test client, on the same synthetic dataset as bench/funnel.py (reused when present).

Times, as median seconds over --runs:
- the report page (funnel, time to engagement, trends, pipeline) with no filters;
- the report page with a campaign breakdown and two filters;
- the drop-off persons page, a journey, a filter-values lookup and the editor's live preview;
each as a first view (report cache emptied) and as a repeat view.

    python bench/report_pages.py [--events 10000000] [--data-dir DIR] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from funnel import DEFINITION, SITE, generate_sql  # the dataset bench/funnel.py times

PASSWORD = "bench-password-1"
RANGE = "range=custom&from=2026-01-01&to=2026-01-30"


def timed(fn: Callable[[], Any], runs: int, before: Callable[[], Any] = lambda: None) -> float:
    before()
    fn()  # warm-up
    times = []
    for _ in range(runs):
        before()
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--data-dir", default=None, help="chDB data dir (default: temp dir)")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    data_dir = Path(args.data_dir or Path(tempfile.gettempdir()) / f"funnel-bench-{args.events}")
    os.environ["FUNNEL_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("FUNNEL_SECRET_KEY", "bench-secret-key-not-for-production")
    from tracker import accounts, create_app
    from tracker.app import store_of
    from tracker.ch_migrations import migrate
    from tracker.configdb import db, upgrade
    from tracker.funnels import create_funnel, list_funnels

    app = create_app({"WTF_CSRF_ENABLED": False})
    upgrade(app.config["FUNNEL_SETTINGS"].database_url)
    store = store_of(app)
    migrate(store)
    have = store.scalar("SELECT count() FROM events WHERE site_id = {s:String}", {"s": SITE})
    if have != args.events:
        store.command("TRUNCATE TABLE events")
        print(f"generating {args.events:,} events in {data_dir} ...")
        started = time.perf_counter()
        store.command(generate_sql(args.events))
        store.command("OPTIMIZE TABLE events FINAL")
        print(f"  generated in {time.perf_counter() - started:.1f}s")
    else:
        print(f"reusing {have:,} events in {data_dir}")

    with app.app_context():
        user = accounts.user_by_email(db.session, "bench@example.test")
        if user is None:
            user = accounts.create_user(db.session, "bench@example.test", PASSWORD, "admin")
        site = accounts.site_by_key(db.session, SITE)
        if site is None:
            site = accounts.create_site(db.session, "Bench", [], owner=user, key=SITE)
        funnels = [f for f in list_funnels(db.session, site) if f.name == "bench"]
        funnel = funnels[0] if funnels else create_funnel(db.session, site, DEFINITION)
        db.session.commit()
        funnel_id = funnel.id
        person = store.scalar(
            "SELECT visitor_id FROM events WHERE site_id = {s:String} LIMIT 1", {"s": SITE}
        )

    client = app.test_client()
    client.post("/login", data={"email": "bench@example.test", "password": PASSWORD})
    base = f"/sites/{SITE}"
    editor = client.get(f"{base}/funnels/{funnel_id}/edit").data.decode()
    assert "stages-0-key" in editor, editor[:300]
    preview_form = {
        "name": "bench",
        "mode": "ordered",
        "window": "7d",
        **{f"stages-{i}-key": s["key"] for i, s in enumerate(DEFINITION["stages"])},
        "stages-0-rules-0-type": "pageview",
        "stages-0-rules-0-conditions-0-field": "path",
        "stages-0-rules-0-conditions-0-op": "starts_with",
        "stages-0-rules-0-conditions-0-value": "/landing",
        "stages-1-rules-0-type": "click",
        "stages-2-rules-0-type": "event",
        "stages-2-rules-0-name": "signup",
        "stages-3-rules-0-type": "event",
        "stages-3-rules-0-name": "purchase",
    }

    def get(url: str) -> Callable[[], Any]:
        def call() -> Any:
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            return response

        return call

    def preview() -> Any:
        response = client.post(f"{base}/funnels/preview.json", data=preview_form)
        assert response.status_code == 200 and response.get_json()["valid"], response.data[:200]
        return response

    pages: list[tuple[str, Callable[[], Any]]] = [
        ("report page, 30 days, no filters", get(f"{base}/report?funnel={funnel_id}&{RANGE}")),
        (
            "report page, campaign breakdown + 2 filters",
            get(
                f"{base}/report?funnel={funnel_id}&{RANGE}&breakdown=campaign&device=mobile"
                "&filter=country:in:US,DE,FR"
            ),
        ),
        (
            "drop-off persons page",
            get(f"{base}/persons?funnel={funnel_id}&{RANGE}&stage=response&status=dropped"),
        ),
        ("journey page", get(f"{base}/persons/{person}?funnel={funnel_id}")),
        ("filter values (campaign)", get(f"{base}/values/campaign.json?{RANGE}")),
        ("editor live preview (30 days)", preview),
    ]
    cache = app.extensions["dashboard_report_cache"]
    print(f"\n{'page (median seconds)':<46}{'first view':>12}{'repeat view':>13}")
    for label, fn in pages:
        try:
            cold = timed(fn, args.runs, before=cache.clear)
            warm = timed(fn, args.runs)
        except AssertionError as exc:  # e.g. 503 past FUNNEL_QUERY_TIMEOUT
            print(f"{label:<46}{'failed: ' + str(exc.args[0][1] if exc.args else exc):>25}")
            continue
        print(f"{label:<46}{cold:>12.3f}{warm:>13.3f}")
    print(f"\n{args.events:,} events, {os.cpu_count()} cores")
    return 0


if __name__ == "__main__":
    sys.exit(main())
