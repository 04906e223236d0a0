"""Schemathesis against the served OpenAPI document, authenticated: every /api/v1 funnel
operation, with generated parameters and bodies on a site with real events, answers without a
5xx, with a status the document lists and a body that matches its schema."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.stages.conftest import load
from tracker import funnels as funnel_service
from tracker.clickhouse import Store
from tracker.configdb import db
from tracker.models import Site

NOW = datetime.now(UTC).replace(microsecond=0)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def history(site: Site) -> list[dict[str, Any]]:
    """Four persons through the template funnel in the last days, going 4, 3, 2 and 1 stages
    deep; the two deepest share a user id."""
    steps = [
        {"type": "pageview", "path": "/", "utm_campaign": "spring"},
        {"type": "click", "element_text": "Buy"},
        {"type": "event", "name": "signup", "user_id": "u1"},
        {"type": "event", "name": "purchase", "value": 20.5},
    ]
    rows = []
    for i, visitor in enumerate(("v1", "v2", "v3", "v4")):
        start = NOW - timedelta(days=i + 1)
        for minute, step in enumerate(steps[: 4 - i]):
            at = start + timedelta(minutes=minute)
            rows.append({"site_id": site.key, "visitor_id": visitor, "ts": at, **step})
    return rows


def test_v1_api_fuzz_conforms_to_the_document(
    app: Flask, store: Store, site: Site, token: str
) -> None:
    load(store, history(site))
    funnel = funnel_service.list_funnels(db.session, site)[0]
    funnel_id = funnel.id
    headers = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    operations = [
        result.ok()
        for result in schema.get_all_operations()
        if result.ok().path.startswith("/api/v1/")
        and not result.ok().path.endswith(("events:import", "events:export"))
    ]
    assert len(operations) >= 20
    pick = random.Random(7)
    statuses: dict[str, set[int]] = {}

    def fuzz(operation: Any) -> None:
        label = f"{operation.method.upper()} {operation.path}"

        @settings(max_examples=20, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def check(case: Any) -> None:
            # Most cases use the real site and funnel, so the fuzz reaches the report engine
            # rather than stopping at a 404.
            params = case.path_parameters
            if pick.random() < 0.9:
                params["site"] = site.key
            if "id" in params and "/persons/" in case.path:
                params["id"] = pick.choice(["v1", "u1", params["id"]])
            elif "id" in params and case.method != "DELETE" and pick.random() < 0.8:
                params["id"] = funnel_id
            if "stage" in (case.query or {}) and pick.random() < 0.7:
                case.query["stage"] = pick.choice(["trace", "response", "sale"])
            response = case.call_and_validate(headers=headers, checks=CHECKS)
            statuses.setdefault(label, set()).add(response.status_code)

        check()

    # Reads first: a fuzzed PUT replaces the funnel's stages with generated ones.
    order = {"GET": 0, "POST": 1, "PUT": 2, "DELETE": 3}
    for operation in sorted(operations, key=lambda op: order[op.method.upper()]):
        fuzz(operation)
    # The fuzz got past validation into the engine on every report-shaped operation.
    for label, codes in statuses.items():
        if "/report" in label or "/trends" in label or "/pipeline" in label:
            assert 200 in codes, (label, codes)
