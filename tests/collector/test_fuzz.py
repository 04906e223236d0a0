"""No input ever produces a 5xx or kills a worker: a hypothesis fuzz of the decoder and
pipeline, and a schemathesis run against the served OpenAPI spec."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error

from tests.collector.conftest import CHROME, post
from tracker import create_app
from tracker.api import openapi as v1_openapi
from tracker.ingest import decode
from tracker.ingest.errors import RequestError
from tracker.ingest.geo import GeoLookup
from tracker.ingest.pipeline import Context, Pipeline, now_ms

PIPELINE = Pipeline(GeoLookup())

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.text(max_size=40),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = [
    "id", "type", "name", "ts", "url", "referrer", "title", "visitor", "session", "user",
    "element", "props", "value", "screen_width", "language", "outbound", "context",
]  # fmt: skip
event_like = st.dictionaries(
    st.sampled_from(FIELDS),
    st.one_of(
        json_values,
        st.sampled_from(["pageview", "click", "event"]),
        st.just("https://example.test/?utm_source=x&gclid=1"),
        st.text(alphabet=st.characters(codec="utf-8"), max_size=3000),
    ),
    max_size=10,
)


def run_decoder(raw: bytes, encoding: str = "") -> None:
    # As /api/collect parses (plain and ?tidy, t.js's) and as the import does.
    for mode, tidy in (("collect", False), ("collect", True), ("import", False)):
        try:
            data = decode.decompress(raw, encoding)
            site, events = decode.split_collect_body(decode.parse_json(data, repair=tidy))
        except RequestError as exc:
            assert 400 <= exc.status < 500
            continue
        ctx = Context(site=site, ip="203.0.113.1", user_agent=CHROME, now_ms=now_ms(),
                      headers={"Accept-Language": "de-DE,de;q=0.9"}, salt=b"s", mode=mode,
                      tidy=tidy)  # fmt: skip
        result = PIPELINE.run(events, ctx)
        assert result.accepted + sum(result.dropped.values()) == len(events)
        for line in result.lines:
            row = json.loads(line)  # every spooled line is valid JSON ClickHouse can parse
            assert row["site_id"] == site and "_ip" not in row
        if tidy:  # a detail never costs the event: only its core fields can
            assert not {"invalid_props", "too_many_props", "invalid_encoding"} & set(result.dropped)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_escape_as_anything_but_a_4xx(raw: bytes) -> None:
    run_decoder(raw)
    run_decoder(gzip.compress(raw), "gzip")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(event_like, max_size=5), st.booleans())
def test_arbitrary_events_are_kept_or_dropped_with_a_reason(
    events: list[dict[str, Any]], batch: bool
) -> None:
    body: Any = (
        {"site": "fuzz", "events": events} if batch else {"site": "fuzz", **(events or [{}])[0]}
    )
    run_decoder(json.dumps(body).encode())


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
          HealthCheck.function_scoped_fixture])  # fmt: skip
@given(st.lists(event_like, max_size=5))
def test_collect_endpoint_fuzz_gives_no_5xx(fuzz_app: Flask, events: list[dict[str, Any]]) -> None:
    key = fuzz_app.config["FUZZ_SITE"]
    for query in ("", "?tidy"):
        resp = post(fuzz_app.test_client(), {"site": key, "events": events}, query=query)
        assert resp.status_code < 500, resp.data[:300]
        assert resp.status_code in (202, 400)


@pytest.fixture
def fuzz_app(app: Flask, site: Any) -> Iterator[Flask]:
    fuzzed = create_app({"TESTING": True, "rate_limit": 0})
    fuzzed.config["FUZZ_SITE"] = site.key
    yield fuzzed


def test_openapi_spec_fuzz_gives_no_5xx(fuzz_app: Flask) -> None:
    """Every collector operation of the served spec, schemathesis-generated cases, no 5xx."""
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", fuzz_app)
    key = fuzz_app.config["FUZZ_SITE"]
    # The funnel resources are fuzzed with a token in tests/stages/test_api_fuzz.py.
    funnel_paths = set(v1_openapi.paths())
    operations = [
        result.ok()
        for result in schema.get_all_operations()
        if result.ok().path not in funnel_paths
    ]
    assert {op.path for op in operations} >= {"/api/collect", "/r/{code}", "/t.js"}
    calls = 0
    for operation in operations:

        @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            nonlocal calls
            # Half the generated bodies use the real site key, so the fuzz reaches the pipeline.
            if isinstance(case.body, dict) and "site" in case.body and len(str(case.body)) % 2:
                case.body["site"] = key
            case.call_and_validate(checks=[not_a_server_error])
            calls += 1

        check()
    assert calls > len(operations)
