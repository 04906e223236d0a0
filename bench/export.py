"""Export benchmark: events written as import lines (tracker/export.py) against one query
giving the same rows as ClickHouse's own JSON lines, in the same run.

Uses the data of bench/funnel.py (10M events over 30 days; generated there if missing, with
the same --events and --data-dir) and exports the first --days days of it.

    python bench/export.py [--events 10000000] [--data-dir DIR] [--days 3] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from funnel import SITE, generate_sql, timed

DAY_MS = 86_400_000
START_MS = 1_767_225_600_000  # 2026-01-01, where bench/funnel.py's events begin


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--data-dir", default=None, help="chDB data dir (default: temp dir)")
    parser.add_argument("--days", type=int, default=3)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    data_dir = Path(args.data_dir or Path(tempfile.gettempdir()) / f"funnel-bench-{args.events}")
    os.environ["FUNNEL_DATA_DIR"] = str(data_dir)
    os.environ.setdefault("FUNNEL_QUERY_TIMEOUT", "3600")
    from tracker import create_app
    from tracker.app import store_of
    from tracker.ch_migrations import migrate
    from tracker.export import _WHERE, iter_lines, plan

    store = store_of(create_app({}))
    migrate(store)
    have = store.scalar("SELECT count() FROM events WHERE site_id = {s:String}", {"s": SITE})
    if have != args.events:
        store.command("TRUNCATE TABLE events")
        print(f"generating {args.events:,} events in {data_dir} ...", flush=True)
        for offset in range(0, args.events, 2_000_000):
            count = min(2_000_000, args.events - offset)
            store.command(generate_sql(args.events, offset, count))
        store.command("OPTIMIZE TABLE events FINAL")

    start, end = START_MS, START_MS + args.days * DAY_MS

    def raw_fetch() -> int:
        # The same rows in the same order, one query, every column as ClickHouse's own
        # JSON lines: what the export does without its chunks and its import format.
        out = store.raw(
            f"SELECT * EXCEPT (site_id) FROM events WHERE {_WHERE}"
            " ORDER BY visitor_id, ts, event_id",
            {"site": SITE, "start": start, "end": end},
            fmt="JSONEachRow",
        )
        return out.count(b"\n")

    def export() -> int:
        written = 0
        with open(os.devnull, "wb") as sink:
            for lines in iter_lines(store, SITE, start, end, plan(store, SITE, start, end)):
                sink.write(lines)
                written += lines.count(b"\n")
        return written

    base_wall, base_cpu, n_raw = timed(raw_fetch, args.runs)
    wall, cpu, n_out = timed(export, args.runs)
    assert n_raw == n_out, (n_raw, n_out)
    print(f"\n{n_out:,} events ({args.days} days of {args.events:,})\n")
    print(f"{'what':<48}{'wall s':>8}{'cpu s':>9}{'events/s':>12}")
    print(f"{'baseline: one query, JSONEachRow':<48}{base_wall:>8.3f}{base_cpu:>9.3f}"
          f"{n_raw / base_wall:>12,.0f}")  # fmt: skip
    print(f"{'export: visitor-range chunks, import lines':<48}{wall:>8.3f}{cpu:>9.3f}"
          f"{n_out / wall:>12,.0f}")  # fmt: skip
    print(f"{'ratio export / baseline':<48}{wall / base_wall:>7.2f}x{cpu / base_cpu:>8.2f}x")
    return 0


if __name__ == "__main__":
    started = time.perf_counter()
    code = main()
    print(f"\n(total {time.perf_counter() - started:.1f}s)")
    sys.exit(code)
