"""In-process token buckets per (site, client): FUNNEL_RATE_LIMIT requests per minute."""

from __future__ import annotations

import math
import threading
import time


class RateLimiter:
    def __init__(self, per_minute: int, max_keys: int = 100_000) -> None:
        self.per_minute = per_minute
        self.rate = per_minute / 60.0
        self.capacity = float(max(1, per_minute))
        self.max_keys = max_keys
        self._buckets: dict[tuple[str, str], list[float]] = {}
        self._lock = threading.Lock()

    def check(self, site: str, client: str) -> float:
        """0 when allowed (a token is taken), else the seconds until the next token."""
        if self.per_minute <= 0:
            return 0.0
        now = time.monotonic()
        key = (site, client)
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None:
                if len(self._buckets) >= self.max_keys:
                    self._prune(now)
                bucket = self._buckets[key] = [self.capacity, now]
            tokens = min(self.capacity, bucket[0] + (now - bucket[1]) * self.rate)
            bucket[1] = now
            if tokens >= 1.0:
                bucket[0] = tokens - 1.0
                return 0.0
            bucket[0] = tokens
            return (1.0 - tokens) / self.rate

    def _prune(self, now: float) -> None:
        """Forget buckets that have refilled completely; they hold no state worth keeping."""
        full = [
            k
            for k, (tokens, last) in self._buckets.items()
            if tokens + (now - last) * self.rate >= self.capacity
        ]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self.max_keys:
            self._buckets.clear()


def retry_after(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
