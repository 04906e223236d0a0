"""Collector test helpers: post events as a browser would, and read them back from ClickHouse."""

from __future__ import annotations

import gzip
import json
import uuid
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tracker.clickhouse import Store

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)


def post(
    client: FlaskClient,
    body: Any,
    *,
    gz: bool = False,
    content_type: str = "application/json",
    ua: str = CHROME,
    origin: str | None = "https://example.test",
    ip: str | None = None,
    headers: dict[str, str] | None = None,
    query: str = "",
) -> Any:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    hdrs = {"User-Agent": ua, "Content-Type": content_type}
    if origin:
        hdrs["Origin"] = origin
    if gz:
        data = gzip.compress(data)
        hdrs["Content-Encoding"] = "gzip"
    if ip:
        hdrs["X-Forwarded-For"] = ip
    hdrs.update(headers or {})
    return client.post("/api/collect" + query, data=data, headers=hdrs)


def event(**fields: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "type": "pageview",
        "url": "https://example.test/",
        "visitor": "v-" + uuid.uuid4().hex[:8],
    }
    base.update(fields)
    return base


def flush(app: Flask) -> None:
    assert app.extensions["funnel_writer"].flush(timeout=30)


def stored(store: Store, site: str, columns: str = "*") -> list[dict[str, Any]]:
    result = store.query(
        f"SELECT {columns} FROM events WHERE site_id = {{site:String}} ORDER BY ts, event_id",
        {"site": site},
    )
    return [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]


@pytest.fixture
def key(site: Any) -> str:
    return str(site.key)
