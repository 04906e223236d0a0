"""Site lookups for the hot path: key -> allowed domains, cached in-process for a few seconds
so a collect request does not touch the config store."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tracker.models import Site

TTL_SECONDS = 10.0


@dataclass(frozen=True)
class SiteInfo:
    id: int
    key: str
    domains: tuple[str, ...]

    def allows_origin(self, origin: str | None) -> bool:
        """No domains configured, or no Origin header (a server-side sender), allows all."""
        if not self.domains or origin is None:
            return True
        try:
            parts = urlsplit(origin)
            host = (parts.hostname or "").lower()
            port = parts.port
        except ValueError:
            return False
        if not host:
            return False
        for domain in self.domains:
            name, _, want_port = domain.partition(":")
            if want_port and str(port or "") != want_port:
                continue
            if name.startswith("*."):
                if host == name[2:] or host.endswith(name[1:]):
                    return True
            elif host == name or host == "www." + name:
                return True
        return False


class SiteCache:
    def __init__(self, engine: Engine, ttl: float = TTL_SECONDS) -> None:
        self.engine = engine
        self.ttl = ttl
        self._cache: dict[str, tuple[float, SiteInfo | None]] = {}
        self._lock = threading.Lock()

    def get(self, key: str) -> SiteInfo | None:
        now = time.monotonic()
        hit = self._cache.get(key)
        if hit is not None and hit[0] > now:
            return hit[1]
        info = self._load(key)
        with self._lock:
            if len(self._cache) > 50_000:
                self._cache.clear()  # unknown keys from a flood must not grow memory forever
            self._cache[key] = (now + self.ttl, info)
        return info

    def _load(self, key: str) -> SiteInfo | None:
        if len(key) > 64:
            return None
        with Session(self.engine) as session:
            row = session.execute(
                select(Site.id, Site.key, Site.domains).where(Site.key == key)
            ).first()
        if row is None:
            return None
        return SiteInfo(id=row[0], key=row[1], domains=tuple(row[2] or ()))

    def invalidate(self, key: str | None = None) -> None:
        with self._lock:
            if key is None:
                self._cache.clear()
            else:
                self._cache.pop(key, None)
