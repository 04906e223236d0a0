"""A small in-process cache of report panels, keyed by the site's data version.

Reopening a report (back button, a bookmark, toggling a filter back) repeats the same query.
The key holds the site's event count, so any new (or deleted) event is a miss, and entries
also expire after a minute because "now" moves (the pipeline's open attempts). Only the
finished service results are kept, never a half-built page.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from tracker.clickhouse import Store
from tracker.models import Site

TTL_SECONDS = 60.0
MAX_ENTRIES = 256


class ReportCache:
    def __init__(self, ttl: float = TTL_SECONDS, max_entries: int = MAX_ENTRIES) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: OrderedDict[str, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def data_version(store: Store, site: Site) -> int:
        # count() over the primary-key prefix answers from part metadata in milliseconds.
        return int(
            store.scalar(
                "SELECT count() FROM events WHERE site_id = {site:String}", {"site": site.key}
            )
            or 0
        )

    @staticmethod
    def key(*parts: Any) -> str:
        def plain(value: Any) -> Any:
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                return dataclasses.asdict(value)
            return value

        return json.dumps([plain(p) for p in parts], sort_keys=True, default=str)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def get_or_compute(self, key: str, compute: Callable[[], Any]) -> Any:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and now - entry[0] < self.ttl:
                self._entries.move_to_end(key)
                self.hits += 1
                return entry[1]
            self.misses += 1
        value = compute()
        with self._lock:
            self._entries[key] = (time.monotonic(), value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value
