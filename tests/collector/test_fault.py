"""Fault test: under load from a bounded client, SIGKILL the serving processes mid-stream and
restart them; every event that got a 202 is in ClickHouse exactly once. The outage drill for a
separate server uses the documented PAUSE_WRITES flag file."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from tests.collector.server import Load, Server, funnel, poll, rows_mentioning, stored_counts
from tracker.writer import PAUSE_FLAG

pytestmark = pytest.mark.slow

UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
SITE = "faultsite"
CLIENT_IP = "203.0.113.77"  # sent as X-Forwarded-For through one trusted proxy


def load(server: Server, threads: int = 3) -> Load:
    """10-event batches over keep-alive connections, from one client behind one proxy."""
    headers = {"User-Agent": UA, "X-Forwarded-For": CLIENT_IP}
    return Load(server.url, SITE, threads=threads, headers=headers)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One migrated data directory with the site, shared by this module's servers in turn
    (each test checks only the ids it was acknowledged)."""
    path = tmp_path_factory.mktemp("fault")
    server = make_server(path)
    funnel(["migrate"], server.env)
    funnel(["create-site", "--name", "Fault", "--key", SITE], server.env)
    return path


def make_server(path: Path) -> Server:
    return Server(path, FUNNEL_RATE_LIMIT="0", FUNNEL_THREADS="4", FUNNEL_TRUSTED_PROXIES="1")


def test_kill9_mid_stream_loses_and_duplicates_nothing(data_dir: Path) -> None:
    server = make_server(data_dir)
    server.start()
    try:
        with load(server) as client:
            poll(lambda: len(client.acked) >= 100, "a stream of acknowledged events")
            acked_before_kill = len(client.acked)
            server.kill9()
            acked_while_down = len(client.acked)  # the serving processes are gone
            poll(lambda: client.errors > 0, "the client to meet the dead server")
            server.start()
            poll(lambda: len(client.acked) > acked_while_down, "acknowledgements after restart")
        assert acked_before_kill > 0 and client.errors > 0
        assert set(client.statuses) == {202}
        assert len(client.acked) > acked_while_down
        server.wait_drained()
    finally:
        server.stop()
    counts = stored_counts(server.env, SITE)
    missing = [i for i in client.acked if i not in counts]
    assert not missing, f"{len(missing)} acknowledged events lost"
    assert all(counts[i] == 1 for i in client.acked), "duplicated events"
    assert "Traceback" not in server.log.read_text()
    # After the run, neither ClickHouse, the spool nor the server log holds the client address.
    hits, total = rows_mentioning(server.env, SITE, CLIENT_IP)
    assert total >= len(client.acked) and hits == 0
    assert CLIENT_IP not in server.log.read_text()
    for path in (data_dir / "spool").rglob("*"):
        if path.is_file():
            assert CLIENT_IP.encode() not in path.read_bytes(), path


def test_outage_flag_keeps_sending_then_drains(data_dir: Path) -> None:
    server = make_server(data_dir)
    server.start()
    flag = data_dir / "spool" / PAUSE_FLAG
    try:
        with load(server, threads=2) as client:
            poll(lambda: client.acked, "acknowledged events")
            flag.touch()

            def not_ready() -> dict | None:  # the 503's body (a Response is falsy on a 503)
                answer = requests.get(f"{server.url}/readyz", timeout=5)
                return answer.json() if answer.status_code == 503 else None

            ready = poll(not_ready, "/readyz to report the outage")
            assert "spool" in ready["reason"]
            flag.unlink()
            acked_in_outage = len(client.acked)
            poll(lambda: len(client.acked) > acked_in_outage, "acknowledgements after it")
        server.wait_drained()
        assert requests.get(f"{server.url}/readyz", timeout=5).status_code == 200
    finally:
        server.stop()
    counts = stored_counts(server.env, SITE)
    assert client.statuses.get(202, 0) * 10 == len(client.acked) > 0
    assert {counts.get(i) for i in client.acked} == {1}
