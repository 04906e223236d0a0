"""Historical import: the collect pipeline in import mode, written straight to ClickHouse.

Idempotent by event id: ids already stored for the site are skipped (the bloom-filter index on
event_id keeps the check cheap), each chunk carries a dedup token derived from its content,
and the ReplacingMergeTree collapses anything that slips through on merge. Events without an
id get one derived from their content, so re-importing the same file adds nothing.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tracker.clickhouse import Store
from tracker.ingest.pipeline import Context, Pipeline, now_ms
from tracker.writer import insert_raw

CHUNK = 5000


@dataclass
class ImportSummary:
    imported: int = 0
    existing: int = 0
    dropped: Counter[str] = field(default_factory=Counter)
    details: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "imported": self.imported,
            "accepted": self.imported,
            "existing": self.existing,
            "dropped": dict(self.dropped),
        }
        if self.details:
            body["detail"] = self.details[:5]
        return body


def existing_ids(store: Store, site: str, ids: list[str]) -> set[str]:
    if not ids:
        return set()
    rows = store.rows(
        "SELECT DISTINCT toString(event_id) FROM events "
        "WHERE site_id = {site:String} AND event_id IN {ids:Array(UUID)}",
        {"site": site, "ids": ids},
    )
    return {r[0] for r in rows}


def import_chunk(
    store: Store, pipeline: Pipeline, site: str, raw_events: list[Any], salt: bytes
) -> ImportSummary:
    summary = ImportSummary()
    ctx = Context(site=site, ip="", user_agent="", headers={}, now_ms=now_ms(), salt=salt)
    ctx.mode = "import"
    result = pipeline.run(raw_events, ctx)
    summary.dropped.update(result.dropped)
    summary.details.extend(result.details)
    present = existing_ids(store, site, result.ids)
    lines = [line for eid, line in zip(result.ids, result.lines, strict=True) if eid not in present]
    summary.existing = len(result.lines) - len(lines)
    if lines:
        # The same events give the same token, so a concurrent or retried import of the same
        # chunk is dropped by ClickHouse even if both passed the id check.
        ids = "\n".join(eid for eid in result.ids if eid not in present)
        token = "import-" + hashlib.sha256(f"{site}\n{ids}".encode()).hexdigest()
        insert_raw(store, b"".join(lines), token)
    summary.imported = len(lines)
    return summary


def import_events(
    store: Store, pipeline: Pipeline, site: str, events: Iterable[Any], salt: bytes
) -> ImportSummary:
    total = ImportSummary()
    chunk: list[Any] = []

    def run() -> None:
        part = import_chunk(store, pipeline, site, chunk, salt)
        total.imported += part.imported
        total.existing += part.existing
        total.dropped.update(part.dropped)
        total.details.extend(part.details[: max(0, 5 - len(total.details))])
        chunk.clear()

    for event in events:
        chunk.append(event)
        if len(chunk) >= CHUNK:
            run()
    if chunk:
        run()
    return total
