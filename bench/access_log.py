"""Replay a real Apache combined access log through `funnel import` and report what came out.

Real user agents (browsers and crawlers), search-engine referrers and utm-tagged URLs exercise
the whole ingest pipeline: bot filter, enrichment, cookieless visitor ids from (IP, user agent),
and the no-raw-IP rule. Prints figures; asserts nothing.

    python bench/access_log.py [LOG] [--host example.org]

LOG defaults to ../shared/datasets/apache_access_2015.log (not part of the repository).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_LOG = REPO.parent / "shared" / "datasets" / "apache_access_2015.log"
LINE = re.compile(
    r'^(?P<ip>\S+) \S+ \S+ \[(?P<ts>[^\]]+)\] "(?P<method>[A-Z]+) (?P<target>\S+) [^"]*" '
    r'(?P<status>\d{3}) \S+ "(?P<referrer>[^"]*)" "(?P<ua>[^"]*)"$'
)
# Requests for assets are not pageviews; a tracker sees only pages.
ASSET = re.compile(r"\.(png|jpe?g|gif|ico|css|js|svg|woff2?|ttf|xml|txt|json|gz|zip)(\?|$)", re.I)
SITE = "accesslog"


def to_events(log: Path, host: str) -> tuple[list[dict[str, object]], dict[str, int], set[str]]:
    events: list[dict[str, object]] = []
    skipped = {"malformed": 0, "asset_or_not_get": 0, "error_status": 0}
    ips: set[str] = set()
    for number, raw in enumerate(log.read_text(errors="replace").splitlines(), 1):
        match = LINE.match(raw)
        if not match:
            skipped["malformed"] += 1
            continue
        if match["method"] != "GET" or ASSET.search(match["target"]):
            skipped["asset_or_not_get"] += 1
            continue
        if int(match["status"]) >= 400:
            skipped["error_status"] += 1
            continue
        ts = datetime.strptime(match["ts"], "%d/%b/%Y:%H:%M:%S %z")
        ips.add(match["ip"])
        events.append(
            {
                # A stable id per log line: re-running the import stores nothing twice.
                "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{log.name}:{number}")),
                "type": "pageview",
                "ts": ts.isoformat(),
                "url": f"https://{host}{match['target']}",
                "referrer": "" if match["referrer"] == "-" else match["referrer"],
                "context": {"ip": match["ip"], "user_agent": match["ua"]},
            }
        )
    return events, skipped, ips


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("log", nargs="?", type=Path, default=DEFAULT_LOG)
    parser.add_argument("--host", default="semicomplete.com", help="host the paths belong to")
    args = parser.parse_args()
    if not args.log.is_file():
        sys.exit(f"no log at {args.log}: pass the path of an Apache combined log")

    events, skipped, ips = to_events(args.log, args.host)
    data_dir = Path(tempfile.mkdtemp(prefix="funnel-accesslog-"))
    ndjson = data_dir / "events.ndjson"
    ndjson.write_text("".join(json.dumps(e) + "\n" for e in events))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNNEL_")}
    env["FUNNEL_DATA_DIR"] = str(data_dir / "data")
    py = [sys.executable, "-m", "tracker"]
    subprocess.run([*py, "migrate"], env=env, check=True, capture_output=True)
    subprocess.run(
        [*py, "create-site", "--name", "Access log", "--key", SITE],
        env=env,
        check=True,
        capture_output=True,
    )
    runs = []
    for _ in range(2):  # the second run shows idempotency
        started = time.perf_counter()
        done = subprocess.run(
            [*py, "import", str(ndjson), "--site", SITE],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        runs.append((time.perf_counter() - started, done.stdout.strip().splitlines()[-1]))

    os.environ.update({k: v for k, v in env.items() if k.startswith("FUNNEL_")})
    from tracker import create_app
    from tracker.app import store_of

    store = store_of(create_app())
    where = {"s": SITE}
    stored = store.scalar("SELECT count() FROM events WHERE site_id = {s:String}", where)
    print(f"log lines: {sum(skipped.values()) + len(events)}; not pageviews: {skipped}")
    print(f"pageview events offered: {len(events)} from {len(ips)} client addresses")
    for n, (secs, summary) in enumerate(runs, 1):
        print(f"import run {n}: {secs:.1f} s wall (process start included): {summary}")
    visitors = store.scalar(
        "SELECT uniqExact(visitor_id) FROM events WHERE site_id = {s:String}", where
    )
    print(f"stored: {stored} events, {visitors} visitors")
    for title, column in (
        ("medium", "medium"),
        ("source", "source"),
        ("device", "device"),
        ("browser", "browser"),
        ("keyword", "utm_term"),
        ("campaign", "utm_campaign"),
    ):
        rows = store.rows(
            f"SELECT {column}, count() AS n FROM events WHERE site_id = {{s:String}} "
            f"AND {column} != '' GROUP BY {column} ORDER BY n DESC, {column} LIMIT 6",
            where,
        )
        print(f"top {title}: " + ", ".join(f"{v} ({n})" for v, n in rows))
    text_columns = [
        r[0]
        for r in store.rows(
            "SELECT name FROM system.columns WHERE database = currentDatabase() "
            "AND table = 'events' AND type LIKE '%String%' AND type NOT LIKE 'Map%'"
        )
    ]
    # Every dotted quad in any text column, checked against the log's client addresses.
    leaked = store.scalar(
        "SELECT count() FROM events WHERE site_id = {s:String} AND arrayExists("
        "x -> has({ips:Array(String)}, x), extractAll(concat("
        + ", ' ', ".join(text_columns)
        + "), '[0-9]+[.][0-9]+[.][0-9]+[.][0-9]+'))",
        {**where, "ips": sorted(ips)},
    )
    print(f"events containing a raw client address in any text column: {leaked}")


if __name__ == "__main__":
    main()
