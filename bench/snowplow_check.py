"""Cross-check our campaign, click-id and referrer parsing against Snowplow's enrichment.

Snowplow's canonical event model carries the fields its own enrichment parsed from each page
URL and referrer (`mkt_*`, `refr_*`). We parse the same raw URLs with tracker.ingest and print
how often we agree, field by field, with every disagreement shown. Prints; asserts nothing.

    python bench/snowplow_check.py [CSV]

CSV defaults to ../shared/datasets/snowplow_web_events.csv (not part of the repository).
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from pathlib import Path

from tracker.ingest.referrer import attribute
from tracker.ingest.urls import url_facts

DEFAULT_CSV = (
    Path(__file__).resolve().parents[2] / "shared" / "datasets" / "snowplow_web_events.csv"
)
# (Snowplow column, ours): campaign fields from the page URL.
CAMPAIGN = (
    ("mkt_source", "utm_source"),
    ("mkt_medium", "utm_medium"),
    ("mkt_campaign", "utm_campaign"),
    ("mkt_term", "utm_term"),
    ("mkt_content", "utm_content"),
    ("mkt_clickid", "click_id"),
)
# Snowplow's referrer mediums against ours (theirs: search, social, email, internal, unknown).
MEDIUM = {
    "search": "search",
    "social": "social",
    "email": "email",
    "internal": "",
    "unknown": "referral",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("csv", nargs="?", type=Path, default=DEFAULT_CSV)
    args = parser.parse_args()
    if not args.csv.is_file():
        sys.exit(f"no CSV at {args.csv}")
    with args.csv.open(newline="") as fh:
        rows = list(csv.DictReader(fh))

    agree: Counter[str] = Counter()
    compared: Counter[str] = Counter()
    differences: list[str] = []
    for row in rows:
        host, _, _, campaign_items, click, click_type = url_facts(row["page_url"])
        ours = dict(campaign_items) | {"click_id": click}
        for theirs_col, ours_col in CAMPAIGN:
            theirs = row.get(theirs_col, "")
            mine = ours.get(ours_col, "")
            if not theirs and not mine:
                continue
            compared[ours_col] += 1
            if theirs == mine:
                agree[ours_col] += 1
            else:
                differences.append(f"{ours_col}: snowplow {theirs!r} ours {mine!r}")
        if row.get("refr_medium") and not ours.get("utm_medium") and not click:
            facts = attribute(row["page_referrer"], host, ours, click_type)
            compared["referrer medium"] += 1
            expected = MEDIUM.get(row["refr_medium"], row["refr_medium"])
            if facts.get("medium", "") == expected:
                agree["referrer medium"] += 1
            else:
                differences.append(
                    f"referrer medium for {row['page_referrer'][:60]!r}: snowplow "
                    f"{row['refr_medium']!r} ours {facts.get('medium')!r}"
                )
            if row.get("refr_term"):
                compared["search keyword"] += 1
                if facts.get("utm_term", "") == row["refr_term"]:
                    agree["search keyword"] += 1
                else:
                    differences.append(
                        f"keyword: snowplow {row['refr_term']!r} ours {facts.get('utm_term')!r}"
                    )

    print(f"{len(rows)} Snowplow events")
    for field in compared:
        print(f"{field:16} {agree[field]:4} of {compared[field]:4} agree")
    for line in sorted(set(differences))[:20]:
        print("  differs:", line)


if __name__ == "__main__":
    main()
