"""What an operator and an API client see when the ClickHouse server is away, refuses the
credentials, lacks the database, or a report runs past FUNNEL_QUERY_TIMEOUT: one clear line
or a 503 with a reason, never a traceback or a bare 500."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from itertools import chain
from pathlib import Path

import clickhouse_connect
import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.collector.server import env_for, free_port
from tests.server_mode.conftest import PASSWORD, USER, ClickHouseServer
from tests.stages.conftest import load
from tracker.ch_migrations import migrate
from tracker.clickhouse import Store, StoreUnavailableError, describe_error
from tracker.demo import generate
from tracker.models import Site
from tracker.settings import Settings


def server_store(dsn: str, data_dir: Path, timeout: float | None = None) -> Store:
    store = Store(Settings.from_env(overrides={"clickhouse_dsn": dsn, "data_dir": data_dir}))
    if timeout is not None:
        store.query_timeout = timeout  # type: ignore[assignment]  # seconds; fractions allowed
    return store


def test_describe_error_gives_the_cause_in_one_line(clickhouse_server: ClickHouseServer) -> None:
    closed = f"http://{USER}:x@127.0.0.1:{free_port()}/funnel"
    cases = [
        (closed, "Connection refused"),
        (clickhouse_server.dsn("wrong"), "Code: 516. DB::Exception: Authentication failed"),
        (clickhouse_server.dsn(database="nodb"), "Database nodb does not exist"),
    ]
    for dsn, expected in cases:
        with pytest.raises(Exception) as caught:
            clickhouse_connect.get_client(dsn=dsn, connect_timeout=5)
        line = describe_error(caught.value)
        assert expected in line and "\n" not in line, line
        assert "for url" not in line and "HTTPConnectionPool" not in line, line
    # A statement's own error keeps the server's words, the code and the name.
    reader = clickhouse_connect.get_client(dsn=clickhouse_server.dsn())
    with pytest.raises(Exception) as caught:
        reader.query("SELECT no_such_column")
    assert describe_error(caught.value).startswith("Code: 47. DB::Exception: Unknown expression")
    assert describe_error(caught.value).endswith("(UNKNOWN_IDENTIFIER)")


@pytest.mark.parametrize(
    ("password", "database", "expected"),
    [
        ("wrong", "funnel", "Authentication failed"),
        (PASSWORD, "nodb", "Database nodb does not exist"),
        (None, "funnel", "Connection refused"),
    ],
    ids=["bad-password", "no-database", "server-down"],
)
def test_migrate_says_why_it_cannot_reach_the_server(
    clickhouse_server: ClickHouseServer,
    tmp_path: Path,
    password: str | None,
    database: str,
    expected: str,
) -> None:
    if password is None:
        dsn = f"http://{USER}:pw@127.0.0.1:{free_port()}/funnel"
    else:
        dsn = clickhouse_server.dsn(password, database)
    done = subprocess.run(
        [sys.executable, "-m", "tracker", "migrate"],
        env=env_for(tmp_path, FUNNEL_CLICKHOUSE_DSN=dsn),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1
    error = [line for line in done.stderr.splitlines() if line.startswith("Error: ")]
    assert len(error) == 1, done.stderr
    assert error[0].startswith("Error: cannot open ClickHouse at http://***@127.0.0.1:")
    assert expected in error[0], error[0]
    assert "Traceback" not in done.stderr and "wrong" not in done.stderr


def test_api_answers_503_while_the_server_is_away(
    app: Flask, client: FlaskClient, site: Site, auth: dict, tmp_path: Path
) -> None:
    closed = f"http://{USER}:pw@127.0.0.1:{free_port()}/funnel"
    app.extensions["funnel_store"] = server_store(closed, tmp_path)
    base = f"/api/v1/sites/{site.key}"
    fid = client.get(f"{base}/funnels", headers=auth).get_json()["funnels"][0]["id"]
    for path in (
        f"{base}/funnels/{fid}/report",
        f"{base}/funnels/{fid}/trends",
        f"{base}/funnels/{fid}/persons?stage=trace",
        f"{base}/values/campaign",
        f"{base}/persons/someone/journey",
    ):
        res = client.get(path, headers=auth)
        assert res.status_code == 503, (path, res.get_data(as_text=True))
        assert res.get_json()["error"] == "clickhouse_unavailable"
        assert int(res.headers["Retry-After"]) > 0
    # Definitions live in the config database and stay available.
    assert client.get(f"{base}/funnels/{fid}", headers=auth).status_code == 200


def test_report_past_the_query_time_limit_is_a_503_that_says_so(
    app: Flask,
    client: FlaskClient,
    site: Site,
    auth: dict,
    tmp_path: Path,
    clickhouse_server: ClickHouseServer,
) -> None:
    store = server_store(clickhouse_server.dsn(), tmp_path)
    migrate(store)
    end = datetime(2026, 6, 1, tzinfo=UTC)
    load(store, chain.from_iterable(generate(300, seed=3, days=30, site_id=site.key, end=end)))
    # A second handle on the same server whose queries may run 1 ms: every report overruns.
    app.extensions["funnel_store"] = server_store(
        clickhouse_server.dsn(host="localhost"), tmp_path, timeout=0.001
    )
    fid = client.get(f"/api/v1/sites/{site.key}/funnels", headers=auth).get_json()["funnels"][0]
    res = client.get(
        f"/api/v1/sites/{site.key}/funnels/{fid['id']}/report?from=2026-05-01&to=2026-05-31",
        headers=auth,
    )
    assert res.status_code == 503, res.get_data(as_text=True)
    body = res.get_json()
    assert body["error"] == "query_timeout" and "FUNNEL_QUERY_TIMEOUT" in body["detail"]
    # The same report within the normal limit answers.
    app.extensions["funnel_store"] = store
    ok = client.get(
        f"/api/v1/sites/{site.key}/funnels/{fid['id']}/report?from=2026-05-01&to=2026-05-31",
        headers=auth,
    )
    assert ok.status_code == 200 and ok.get_json()["stages"][0]["persons"] > 0


def test_unreachable_store_is_a_store_error(tmp_path: Path) -> None:
    store = server_store(f"http://{USER}:pw@127.0.0.1:{free_port()}/funnel", tmp_path)
    with pytest.raises(StoreUnavailableError, match="Connection refused"):
        store.rows("SELECT 1")
    ok, reason = store.ping()
    assert not ok and reason.startswith("clickhouse: ") and "Connection refused" in reason
