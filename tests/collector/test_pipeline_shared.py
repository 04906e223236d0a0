"""`Pipeline.run` applies the sender and page steps once per distinct input and joins cached
JSON fields; `Pipeline.process` runs every step in order on one event. Both must give the same
rows and the same drop reasons for any input, in every mode."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.collector.conftest import CHROME
from tests.collector.test_fuzz import event_like
from tracker.ingest.errors import Drop
from tracker.ingest.geo import GeoLookup
from tracker.ingest.pipeline import Context, Pipeline

BOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
URLS = [
    "https://shop.test/p/1?utm_source=news&utm_medium=email&utm_term=shoes",
    "https://shop.test/?gclid=abc&mtm_campaign=spring",
    "https://shop.test/cart",
    "http://shop.test/\ud800",  # an unpaired surrogate: dropped as invalid_encoding
    # Over 2,048 characters: stored cut, its campaign read past the cut (and not cached).
    "https://shop.test/long?x=" + "a" * 3000 + "&utm_source=late&gclid=g",
    "",
]
REFERRERS = [
    "https://www.google.com/search?q=red+shoes",
    "https://t.co/x",
    "https://shop.test/",
    "",
]
CONTEXTS = [
    None,
    {"ip": "198.51.100.7", "user_agent": CHROME},
    {"ip": "198.51.100.8", "user_agent": BOT},
    {"country": "de", "region": "Berlin", "city": "Berlin"},
    {"user_agent": "", "country": "FR"},
    # An export's context: what the user agent said, which wins over a user agent given too.
    {"device": "tablet", "browser": "Firefox", "os": "Android"},
    {"ip": "198.51.100.7", "user_agent": CHROME, "device": "mobile"},
    {"device": "desktop", "country": "SE", "city": "Malmö"},
]

plain_event = st.fixed_dictionaries(
    {"type": st.sampled_from(["pageview", "click"]), "url": st.sampled_from(URLS)},
    optional={
        "id": st.sampled_from(
            ["6f1c1c47-2f5b-4b8e-9d61-1f4b6a3f0e01", "6f1c1c47-2f5b-4b8e-9d61-1f4b6a3f0e02"]
        ),
        "referrer": st.sampled_from(REFERRERS),
        "visitor": st.sampled_from(["v1", "v2", " v3 "]),
        "user": st.sampled_from(["u1", "u2"]),
        "title": st.text(max_size=8),
        "ts": st.integers(min_value=1_700_000_000_000, max_value=1_800_000_000_000),
        "context": st.sampled_from(CONTEXTS),
    },
)


def stored(line: bytes | str) -> dict[str, Any]:
    """A line as the row ClickHouse stores: an omitted column takes its type's default
    (no column of `events` has a DEFAULT expression; tests/test_schema.py holds that)."""
    return {key: value for key, value in json.loads(line).items() if value not in ("", 0, {})}


def by_steps(pipeline: Pipeline, events: list[Any], ctx: Context) -> tuple[list[dict], Counter]:
    """What `run` must give, from `process` one event at a time (plus the duplicate rule)."""
    rows: list[dict[str, Any]] = []
    dropped: Counter[str] = Counter()
    seen: set[str] = set()
    for raw in events:
        try:
            event_id = pipeline.validate(raw, ctx)["event_id"]
            if event_id in seen:
                raise Drop("duplicate")
            row = json.loads(pipeline.process(raw, ctx))
        except Drop as drop:
            dropped[drop.reason] += 1
            continue
        seen.add(event_id)
        rows.append(row)
    return rows, dropped


def check(events: list[Any], mode: str, user_agent: str) -> None:
    pipeline = Pipeline(GeoLookup())
    ctx = Context(site="s1", ip="203.0.113.9", user_agent=user_agent, headers={},
                  now_ms=1_750_000_000_000, salt=b"salt", mode=mode)  # fmt: skip
    result = pipeline.run(events, ctx)
    rows = [stored(line) for line in result.lines]
    expected, dropped = by_steps(pipeline, events, ctx)
    expected = [stored(json.dumps(row)) for row in expected]
    # Events without an id get a random one in collect mode: compare everything else.
    for row, want in zip(rows, expected, strict=False):
        if mode != "import" and not any(e.get("id") == row["event_id"] for e in events):
            row.pop("event_id"), want.pop("event_id")
    assert rows == expected
    assert result.dropped == dropped
    assert len(result.ids) == len(rows)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(plain_event, max_size=8),
    st.sampled_from(["collect", "import", "link"]),
    st.sampled_from([CHROME, BOT, ""]),
)
def test_run_matches_every_step_in_order(events: list[Any], mode: str, user_agent: str) -> None:
    check(events, mode, user_agent)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event_like, max_size=6), st.sampled_from(["collect", "import"]))
def test_run_matches_every_step_on_arbitrary_input(events: list[Any], mode: str) -> None:
    check(events, mode, CHROME)


def counting(steps: tuple[tuple[str, Any], ...], calls: Counter[str]) -> tuple[Any, ...]:
    def wrap(name: str, step: Any) -> tuple[str, Any]:
        def counted(event: dict[str, Any], ctx: Context) -> Any:
            calls[name] += 1
            return step(event, ctx)

        return name, counted

    return tuple(wrap(name, step) for name, step in steps)


def test_a_batch_pays_the_enrichment_once_per_distinct_input() -> None:
    pipeline = Pipeline(GeoLookup())
    calls: Counter[str] = Counter()
    pipeline.page_steps = counting(pipeline.page_steps, calls)
    pipeline.sender_steps = counting(pipeline.sender_steps, calls)
    ctx = Context(site="s1", ip="203.0.113.9", user_agent=CHROME, headers={},
                  now_ms=1_750_000_000_000, salt=b"salt")  # fmt: skip
    events = [{"url": URLS[i % 2], "visitor": f"v{i}"} for i in range(50)]
    result = pipeline.run(events, ctx)
    assert result.accepted == 50
    assert calls == {"enrich_url": 2, "enrich_referrer": 2, "bot_filter": 1,
                     "enrich_agent": 1, "enrich_geo": 1}  # fmt: skip
    rows = [json.loads(line) for line in result.lines]
    assert [r["visitor_id"] for r in rows] == [f"v{i}" for i in range(50)]
    assert (rows[0]["utm_source"], rows[0]["medium"], rows[0]["utm_term"]) == (
        "news", "email", "shoes")  # fmt: skip
    assert (rows[1]["utm_campaign"], rows[1]["click_id"], rows[1]["medium"]) == (
        "spring", "abc", "paid")  # fmt: skip
    # A second request reuses the page facts; the sender steps run again for its sender.
    pipeline.run(events[:4], ctx)
    assert calls["enrich_url"] == 2 and calls["bot_filter"] == 2
