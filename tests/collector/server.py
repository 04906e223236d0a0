"""A real `funnel serve` subprocess on 127.0.0.1 for fault tests, and a way to read its
embedded ClickHouse afterwards (from another process: chDB allows one engine per process)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import requests

T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def env_for(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNNEL_")}
    env.update({"FUNNEL_DATA_DIR": str(data_dir), "FUNNEL_SECRET_KEY": "x" * 32})
    env.update(extra)
    return env


def funnel(args: list[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "tracker", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def poll(check: Callable[[], T], what: str, timeout: float = 90) -> T:
    """Call `check` until it returns something truthy, and return that: synchronisation on
    the condition itself, not on a sleep. The deadline is generous, only so that a condition
    that never comes fails the test instead of hanging it."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up after {timeout} s waiting for {what}")
        time.sleep(0.1)


class Server:
    def __init__(self, data_dir: Path, **extra: str) -> None:
        self.env = env_for(data_dir, **extra)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir / "server.log"

    def start(self, timeout: float = 90) -> None:
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "tracker", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/readyz", timeout=10).status_code == 200:
                    return
            except requests.RequestException:  # not listening yet, or busy starting up
                pass
            assert self.proc.poll() is None, self.log.read_text()[-3000:]
            time.sleep(0.2)
        raise AssertionError("server did not become ready: " + self.log.read_text()[-3000:])

    def kill9(self) -> None:
        """SIGKILL the whole process group: master and worker die without any cleanup."""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)

    def metric(self, name: str) -> float:
        text = requests.get(f"{self.url}/metrics", timeout=5).text
        for line in text.splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
        raise AssertionError(f"metric {name} missing")

    def wait_drained(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.metric("funnel_spool_depth_events") == 0:
                return
            time.sleep(0.3)
        raise AssertionError("spool did not drain")


class Load:
    """A bounded load generator: a few threads posting batches of page views to
    /api/collect until stopped, recording what was acknowledged (202).

    `new_connections` opens one connection per request, so that every worker of a
    multi-worker server gets some; `visitors` gives each batch a visitor id of its own
    (else the collector derives one from the sender, `headers`)."""

    def __init__(
        self,
        url: str,
        site: str,
        *,
        threads: int = 3,
        batch: int = 10,
        headers: dict[str, str] | None = None,
        new_connections: bool = False,
        visitors: bool = False,
    ) -> None:
        self.url, self.site, self.batch = url, site, batch
        self.headers = dict(headers or {})
        if new_connections:
            self.headers["Connection"] = "close"
        self.new_connections, self.with_visitors = new_connections, visitors
        self.acked: list[str] = []
        self.visitors: set[str] = set()  # of acknowledged batches
        self.attempted: set[str] = set()  # of every batch sent
        self.errors = 0
        self.statuses: dict[int, int] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _events(self, visitor: str | None) -> list[dict[str, Any]]:
        events = []
        for i in range(self.batch):
            event: dict[str, Any] = {
                "id": str(uuid.uuid4()),
                "type": "pageview",
                "url": f"https://example.test/{i}",
            }
            if visitor:
                event["visitor"] = visitor
            events.append(event)
        return events

    def _run(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            visitor = "v-" + uuid.uuid4().hex[:12] if self.with_visitors else None
            batch = self._events(visitor)
            with self._lock:
                self.attempted.add(visitor or "")
            try:
                resp = session.post(
                    f"{self.url}/api/collect",
                    json={"site": self.site, "events": batch},
                    headers=self.headers,
                    timeout=5,
                )
            except requests.RequestException:
                with self._lock:
                    self.errors += 1
                session = requests.Session()
                time.sleep(0.05)
                continue
            with self._lock:
                self.statuses[resp.status_code] = self.statuses.get(resp.status_code, 0) + 1
                if resp.status_code == 202:
                    assert resp.json()["accepted"] == self.batch
                    self.acked.extend(e["id"] for e in batch)
                    self.visitors.add(visitor or "")
            time.sleep(0.01 if self.new_connections else 0.002)

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=10)


COUNT_SCRIPT = """
import json, sys
from tracker import create_app
from tracker.app import store_of
store = store_of(create_app())
rows = store.rows(
    "SELECT toString(event_id), count() FROM events WHERE site_id = {s:String} GROUP BY event_id",
    {"s": sys.argv[1]},
)
print(json.dumps({r[0]: int(r[1]) for r in rows}))
"""


def stored_counts(env: dict[str, str], site: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", COUNT_SCRIPT, site],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


SCAN_SCRIPT = """
import sys
from tracker import create_app
from tracker.app import store_of
store = store_of(create_app())
rows = store.rows("SELECT * FROM events WHERE site_id = {s:String}", {"s": sys.argv[1]})
print(sum(sys.argv[2] in repr(row) for row in rows), len(rows))
"""


def rows_mentioning(env: dict[str, str], site: str, needle: str) -> tuple[int, int]:
    """(rows whose any column mentions `needle`, all rows) for the site."""
    done = subprocess.run(
        [sys.executable, "-c", SCAN_SCRIPT, site, needle],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    hits, total = done.stdout.strip().splitlines()[-1].split()
    return int(hits), int(total)
