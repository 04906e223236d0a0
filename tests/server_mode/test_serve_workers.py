"""`funnel serve` on a ClickHouse server DSN: several gunicorn workers share one store. Through
a ClickHouse outage and a SIGKILL of every serving process, every acknowledged event is
stored exactly once, the API answers 503 with a reason while the store is away, and the
reports count what was collected."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import clickhouse_connect
import pytest
import requests

from tests.collector.server import Load, Server, funnel, poll
from tests.server_mode.conftest import ClickHouseServer

pytestmark = pytest.mark.slow

SITE = "serversite"
UA = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)
_SLOT = re.compile(r"^(slot-\d+) \(([^)]*)\): (\d+) events waiting", re.MULTILINE)


def spool_slots(env: dict[str, str]) -> dict[str, int]:
    """Events waiting per spool slot, as `funnel spool status` prints them."""
    return {m[0]: int(m[2]) for m in _SLOT.findall(funnel(["spool", "status"], env))}


@pytest.fixture
def clickhouse(tmp_path: Path) -> Iterator[ClickHouseServer]:
    server = ClickHouseServer(tmp_path / "clickhouse")
    server.start()
    yield server
    server.stop()


def test_workers_keep_every_event_through_outages(
    tmp_path: Path, clickhouse: ClickHouseServer
) -> None:
    server = Server(
        tmp_path / "app",
        FUNNEL_CLICKHOUSE_DSN=clickhouse.dsn(),
        FUNNEL_WORKERS="2",
        FUNNEL_THREADS="4",
        FUNNEL_RATE_LIMIT="0",
    )
    (tmp_path / "app").mkdir()
    funnel(["migrate"], server.env)
    funnel(["create-site", "--name", "Server mode", "--key", SITE], server.env)
    funnel(
        ["create-user", "--email", "ops@example.com", "--password", "x" * 12, "--site", SITE],
        server.env,
    )
    token = funnel(["create-token", "--email", "ops@example.com"], server.env).split()[-1]
    auth = {"Authorization": f"Bearer {token}"}
    server.start()
    try:
        funnels = requests.get(f"{server.url}/api/v1/sites/{SITE}/funnels", headers=auth)
        fid = funnels.json()["funnels"][0]["id"]
        report_url = f"{server.url}/api/v1/sites/{SITE}/funnels/{fid}/report"
        # 5-event batches, a new visitor each, one connection per request (both workers).
        headers = {"User-Agent": UA}
        with Load(
            server.url, SITE, batch=5, headers=headers, new_connections=True, visitors=True
        ) as loader:
            poll(lambda: loader.acked, "acknowledged events")
            clickhouse.stop()  # the ClickHouse server goes away; collection goes on

            def not_ready() -> dict | None:  # the 503's body (a Response is falsy on a 503)
                answer = requests.get(f"{server.url}/readyz", timeout=10)
                return answer.json() if answer.status_code == 503 else None

            ready = poll(not_ready, "/readyz to report the outage")
            assert "clickhouse" in ready["reason"]
            report = requests.get(report_url, headers=auth, timeout=30)
            assert report.status_code == 503, report.text
            assert report.json()["error"] == "clickhouse_unavailable"
            assert int(report.headers["Retry-After"]) > 0

            def both_waiting() -> dict[str, int] | None:
                waiting = spool_slots(server.env)
                return waiting if len([n for n in waiting.values() if n > 0]) >= 2 else None

            # Both workers take events, and each holds its own in its own slot.
            poll(both_waiting, "events waiting in both workers' spool slots")
            acked_in_outage = len(loader.acked)
            server.kill9()  # and every serving process dies without cleanup
            acked_while_down = len(loader.acked)
            clickhouse.start()
            server.start()
            poll(lambda: len(loader.acked) > acked_while_down, "acknowledgements after restart")
        assert len(loader.acked) > acked_while_down >= acked_in_outage > 0
        assert set(loader.statuses) == {202}, loader.statuses
        deadline = time.monotonic() + 60
        while any(spool_slots(server.env).values()) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert not any(spool_slots(server.env).values()), "the spool did not drain"

        reader = clickhouse_connect.get_client(dsn=clickhouse.dsn())
        counts = dict(
            reader.query(
                "SELECT toString(event_id), count() FROM events WHERE site_id = {s:String}"
                " GROUP BY event_id",
                parameters={"s": SITE},
            ).result_rows
        )
        missing = [i for i in loader.acked if i not in counts]
        assert not missing, f"{len(missing)} of {len(loader.acked)} acknowledged events lost"
        assert {counts[i] for i in loader.acked} == {1}, "duplicated events"

        # The report through the server counts the collected visitors at the first stage
        # (a pageview); a visitor whose answer was cut by the kill may be stored unacknowledged.
        body = requests.get(report_url, headers=auth, timeout=60).json()
        first = body["stages"][0]["persons"]
        assert len(loader.visitors) <= first <= len(loader.attempted)
        assert requests.get(f"{server.url}/readyz", timeout=10).status_code == 200
    finally:
        server.stop()
    assert "Traceback" not in server.log.read_text()
