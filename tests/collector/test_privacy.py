"""Cookieless visitor ids: keyed by a daily salt that rotates and is deleted after 48 hours."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select
from sqlalchemy.orm import Session

from tracker.configdb import db
from tracker.ingest.privacy import SaltBook, client_ip, visitor_hash
from tracker.models import DailySalt


def test_salts_rotate_daily_and_old_ones_are_deleted(app: Flask) -> None:
    engine = db.engine(app)
    book = SaltBook(engine)
    day1 = datetime(2026, 3, 1, 12, tzinfo=UTC)
    salt1 = book.salt(day1)
    assert book.salt(day1 + timedelta(hours=5)) == salt1  # same UTC day, same salt
    assert SaltBook(engine).salt(day1) == salt1  # shared through the config store
    with Session(engine) as session:
        row = session.get(DailySalt, "2026-03-01")
        assert row is not None
        row.created_at = day1.replace(tzinfo=None)
        session.commit()
    salt2 = book.salt(day1 + timedelta(days=1))
    assert salt2 != salt1
    a = visitor_hash(salt1, "site", "203.0.113.5", "UA")
    assert a == visitor_hash(salt1, "site", "203.0.113.5", "UA")
    assert a != visitor_hash(salt2, "site", "203.0.113.5", "UA")
    assert a != visitor_hash(salt1, "other-site", "203.0.113.5", "UA")
    assert "203.0.113.5" not in a
    # Two days later the first salt is gone for good.
    book.salt(day1 + timedelta(days=3))
    with Session(engine) as session:
        days = set(session.scalars(select(DailySalt.day)))
    assert "2026-03-01" not in days and "2026-03-04" in days


class Clock:
    """A settable clock for the privacy module (its `time.time` and `datetime.now`), so the
    test does not depend on when it runs (a real UTC midnight mid-test would race)."""

    def __init__(self, now: datetime) -> None:
        self.now = now
        clock = self

        class PinnedDatetime(datetime):
            @classmethod
            def now(cls, tz: Any = None) -> Any:
                return clock.now.astimezone(tz)

        self.datetime = PinnedDatetime

    def time(self) -> float:
        return self.now.timestamp()


def test_the_clock_salt_is_cached_until_utc_midnight(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = Clock(datetime(2026, 3, 5, 23, 59, 58, tzinfo=UTC))
    monkeypatch.setattr("tracker.ingest.privacy.time", clock)
    monkeypatch.setattr("tracker.ingest.privacy.datetime", clock.datetime)
    book = SaltBook(db.engine(app))
    today = book.salt()
    assert today == book.salt(clock.now)
    midnight = datetime(2026, 3, 6, tzinfo=UTC)
    assert book._until == midnight.timestamp()
    # A past day asked for explicitly does not disturb today's cached salt, and once the
    # cached day is over the clock path looks again.
    yesterday = book.salt(clock.now - timedelta(days=1))
    assert yesterday != today
    assert book.salt() == today
    book._until = 0.0
    assert book.salt() == today
    clock.now = midnight - timedelta(milliseconds=1)  # the cached day's last moment
    assert book.salt() == today
    clock.now = midnight  # the next UTC day: a new salt, cached until the next midnight
    tomorrow = book.salt()
    assert tomorrow != today and tomorrow == book.salt(midnight)
    assert book._until == (midnight + timedelta(days=1)).timestamp()


def test_client_ip_trusts_only_the_configured_hops() -> None:
    assert client_ip("10.0.0.1", "198.51.100.1, 203.0.113.5", 0) == "10.0.0.1"
    assert client_ip("10.0.0.1", "198.51.100.1, 203.0.113.5", 1) == "203.0.113.5"
    assert client_ip("10.0.0.1", "198.51.100.1, 203.0.113.5", 2) == "198.51.100.1"
    assert client_ip("10.0.0.1", "203.0.113.5", 3) == "10.0.0.1"
    assert client_ip(None, None, 1) == ""
