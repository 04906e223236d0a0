"""Rule values never reach SQL text, and they match literally on the real engine."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracker.clickhouse import Store
from tracker.events import COLUMN_NAMES, to_row
from tracker.reports.engine import build_plan
from tracker.reports.query import ReportQuery
from tracker.stages.compile import compile_mask
from tracker.stages.definitions import validate_definition
from tracker.stages.operators import Params

NASTY = [
    "it's",
    'say "hi"',
    "back\\slash\\",
    "{v0:String}",
    "{{x}}",
    "100%_off",
    "a -- comment",
    "nul\x00byte",
    "ünïcødé ✓ 中文",
    "'); DROP TABLE events; --",
    "*?[]^$.",
]
OPS = ("equals", "contains", "starts_with", "ends_with", "glob", "in")


def _definition(op: str, value: str) -> dict:
    return validate_definition(
        {
            "stages": [
                {"key": "a", "rules": [{"type": "any"}]},
                {
                    "key": "b",
                    "rules": [
                        {
                            "type": "any",
                            "conditions": [
                                {"field": "name", "op": "equals", "value": value},
                                {
                                    "field": "title",
                                    "op": op,
                                    "value": [value] if op == "in" else value,
                                },
                                {"field": "prop." + value, "op": "equals", "value": value},
                            ],
                        }
                    ],
                },
            ]
        }
    )


def test_values_never_appear_in_sql() -> None:
    for op in OPS:
        for value in NASTY:
            params = Params()
            sql = compile_mask(_definition(op, value)["stages"], params)
            assert value not in _without_placeholders(sql)
            assert value in params.values.values() or [value] in params.values.values()
            plan = build_plan(
                value,
                _definition(op, value),
                ReportQuery(datetime(2026, 1, 1).date(), datetime(2026, 1, 2).date()),
            )
            assert value not in _without_placeholders(plan.sql)


def _without_placeholders(sql: str) -> str:
    # The value "{v0:String}" looks like a placeholder; only placeholders may look like it.
    return re.sub(r"\{[a-z]+\d+:[A-Za-z0-9()]+\}", "", sql)


def _glob(pattern: str, text: str) -> bool:
    parts = [".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern]
    return re.fullmatch("".join(parts), text, re.DOTALL) is not None


def _match(store: Store, op: str, value: str, titles: list[str]) -> list[str]:
    site = f"inj{uuid.uuid4().hex[:10]}"
    ts = datetime(2026, 1, 1, tzinfo=UTC)
    rows = [
        to_row(
            {
                "site_id": site,
                "visitor_id": f"v{i}",
                "type": "event",
                "name": value,
                "title": title,
                "props": {value: value},
                "ts": ts + timedelta(seconds=i),
            }
        )
        for i, title in enumerate(titles)
    ]
    store.insert("events", rows, COLUMN_NAMES)
    params = Params()
    mask = compile_mask(_definition(op, value)["stages"], params, "e")
    p_site = params.add(site, "String")
    got = store.rows(
        f"SELECT title FROM events AS e WHERE site_id = {p_site} AND bitTest({mask}, 1) "
        "ORDER BY title",
        params.values,
    )
    return [r[0] for r in got]


def test_nasty_values_match_literally(store: Store) -> None:
    for value in NASTY:
        titles = [value, value + "!", "x" + value, "plain", value.upper() + "?"]
        assert _match(store, "equals", value, titles) == sorted(
            t for t in set(titles) if t == value
        )
        assert _match(store, "contains", value, titles) == sorted(t for t in titles if value in t)
        assert _match(store, "starts_with", value, titles) == sorted(
            t for t in titles if t.startswith(value)
        )
        assert _match(store, "glob", value, titles) == sorted(t for t in titles if _glob(value, t))
        assert _match(store, "in", value, titles) == sorted(t for t in titles if t == value)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=st.text(min_size=1, max_size=12))
def test_generated_values_match_literally(store: Store, value: str) -> None:
    titles = [value, "a" + value + "b", "other"]
    got = _match(store, "contains", value, titles)
    assert got == sorted(t for t in titles if value in t)
