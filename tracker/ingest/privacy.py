"""Privacy: cookieless visitor ids and the client address.

A visitor without an id gets HMAC(daily salt, site | IP | user agent). Salts live in the
config store, one per UTC day, and rows older than 48 hours are deleted, after which nobody
(not even the operator) can link that day's ids back to an address. The raw IP is used only
inside this request and is never stored or logged.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tracker.models import DailySalt

SALT_MAX_AGE = timedelta(hours=48)


class SaltBook:
    """Today's salt, cached in-process; created and rotated in the config store."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._lock = threading.Lock()
        self._day = ""
        self._salt = b""
        self._until = 0.0  # epoch seconds at which the cached day ends

    def salt(self, now: datetime | None = None) -> bytes:
        if now is not None:
            return self._for_day(now)
        if time.time() < self._until:
            return self._salt  # every request asks: skip the date arithmetic
        now = datetime.now(UTC)
        salt = self._for_day(now)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        self._until = midnight.timestamp()
        return salt

    def _for_day(self, now: datetime) -> bytes:
        day = now.strftime("%Y-%m-%d")
        if day == self._day:
            return self._salt
        with self._lock:
            if day != self._day:
                self._salt = self._load(day, now).encode()
                self._day = day
                self._until = 0.0  # set by the caller when it reads the real clock
        return self._salt

    def _load(self, day: str, now: datetime) -> str:
        with Session(self.engine) as session:
            row = session.get(DailySalt, day)
            if row is None:
                session.add(DailySalt(day=day, salt=secrets.token_hex(32)))
                try:
                    session.commit()
                except IntegrityError:  # another process created it first
                    session.rollback()
                row = session.get(DailySalt, day)
            assert row is not None
            salt = row.salt
            self.rotate(session, now)
        return salt

    @staticmethod
    def rotate(session: Session, now: datetime) -> int:
        """Delete salts older than 48 hours; returns how many were deleted."""
        cutoff = (now - SALT_MAX_AGE).replace(tzinfo=None)
        old = list(session.scalars(select(DailySalt.day).where(DailySalt.created_at < cutoff)))
        if old:
            session.execute(delete(DailySalt).where(DailySalt.day.in_(old)))
            session.commit()
        return len(old)


def visitor_hash(salt: bytes, site: str, ip: str, user_agent: str) -> str:
    message = f"{site}\x00{ip}\x00{user_agent}".encode("utf-8", "replace")
    return "h" + hmac.new(salt, message, hashlib.sha256).hexdigest()[:24]


def client_ip(remote_addr: str | None, forwarded_for: str | None, trusted_proxies: int) -> str:
    """The client address: X-Forwarded-For honoured only through `trusted_proxies` hops."""
    if trusted_proxies and forwarded_for:
        hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
        if len(hops) >= trusted_proxies:
            return hops[-trusted_proxies][:64]
    return (remote_addr or "")[:64]
