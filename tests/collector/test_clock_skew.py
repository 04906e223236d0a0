"""The client clock check on POST /api/collect: a timestamp more than a day away from the
server's clock, in the past or in the future, is replaced by the server's and flagged."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.collector.conftest import event, flush, post, stored
from tracker.clickhouse import Store
from tracker.ingest.limits import CLOCK_SKEW_MS
from tracker.ingest.pipeline import now_ms

DAY_MS = 24 * 3600 * 1000


def test_a_timestamp_more_than_a_day_off_either_way_is_replaced_and_flagged(
    app: Flask, client: FlaskClient, store: Store, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server's clock is pinned, so the limit itself can be tried: exactly a day off is
    kept, a millisecond more is not, on both sides. Kills the mutation of `abs(ts - now_ms)`
    into `(now_ms - ts)` in validate_event, which let any future timestamp through."""
    now = now_ms() // 1000 * 1000
    monkeypatch.setattr("tracker.collector.views.now_ms", lambda: now)
    sent = {
        "past_2d": now - 2 * DAY_MS,
        "past_over": now - CLOCK_SKEW_MS - 1,
        "past_limit": now - CLOCK_SKEW_MS,
        "past_1h": now - 3600 * 1000,
        "future_1h": now + 3600 * 1000,
        "future_limit": now + CLOCK_SKEW_MS,
        "future_over": now + CLOCK_SKEW_MS + 1,
        "future_2d": now + 2 * DAY_MS,
    }
    events = [event(site=key, name=label, type="event", ts=ts) for label, ts in sent.items()]
    response = post(client, {"site": key, "events": events})
    assert response.status_code == 202
    assert response.json == {"accepted": len(sent), "dropped": {}}
    flush(app)
    rows = stored(store, key, "name, clock_skewed, toUnixTimestamp64Milli(ts) AS ms")
    got = {r["name"]: (r["clock_skewed"], r["ms"]) for r in rows}
    off = {"past_2d", "past_over", "future_over", "future_2d"}
    assert got == {label: (1, now) if label in off else (0, ts) for label, ts in sent.items()}
