"""Server mode: the product with an `http://` DSN, against ClickHouse's HTTP interface served
by `chdb_http.py` (the real engine, in its own process) on 127.0.0.1."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from tests.collector.server import free_port

SHIM = Path(__file__).with_name("chdb_http.py")
USER = "funnel"
PASSWORD = "s3cret:@/ pass"  # characters a DSN must percent-encode


class ClickHouseServer:
    """A ClickHouse HTTP endpoint on 127.0.0.1 over a chDB directory; stop and start it again
    to simulate an outage (the data stays in the directory)."""

    def __init__(self, path: Path, database: str = "funnel") -> None:
        self.path = path
        self.database = database
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = path.with_name(path.name + ".log")

    def dsn(
        self, password: str = PASSWORD, database: str | None = None, host: str = "127.0.0.1"
    ) -> str:
        secret = quote(password, safe="")
        return f"http://{USER}:{secret}@{host}:{self.port}/{database or self.database}"

    def start(self, timeout: float = 60) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [
                    *(sys.executable, str(SHIM), "--path", str(self.path)),
                    *("--port", str(self.port), "--user", USER, "--password", PASSWORD),
                    *("--database", self.database),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            try:
                if requests.get(f"{self.url}/ping", timeout=5).content == b"Ok.\n":
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError("ClickHouse HTTP shim did not start: " + self.log.read_text()[-3000:])

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)


@pytest.fixture(scope="session")
def clickhouse_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseServer]:
    server = ClickHouseServer(tmp_path_factory.mktemp("chserver") / "data")
    server.start()
    yield server
    server.stop()
