"""`funnel serve` as a real subprocess: readiness, and the clear lock on a second instance."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def funnel(
    args: list[str], data_dir: Path, extra_env: dict[str, str] | None = None, **kw: object
) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FUNNEL_")}
    env["FUNNEL_DATA_DIR"] = str(data_dir)
    env.update(extra_env or {})
    return subprocess.Popen(  # type: ignore[call-overload]
        [sys.executable, "-m", "tracker", *args],
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        **kw,
    )


def wait_ready(port: int, timeout: float = 60) -> requests.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            resp = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=2)
            if resp.status_code == 200:
                return resp
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    raise AssertionError("server did not become ready")


def raw_request(port: int, raw: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def test_serve_is_ready_and_a_second_serve_exits_clearly(tmp_path: Path) -> None:
    port = free_port()
    first = funnel(["serve", "--port", str(port)], tmp_path)
    try:
        resp = wait_ready(port)
        assert resp.json()["checks"] == {"clickhouse": "ok", "config_db": "ok", "spool": "ok"}
        second = funnel(["serve", "--port", str(free_port())], tmp_path)
        out, _ = second.communicate(timeout=60)
        assert second.returncode != 0
        assert "in use by pid" in out and str(tmp_path) in out
        assert "Traceback" not in out
        # The CLI on the same embedded store gets the same clear message.
        demo = funnel(["demo", "--visitors", "5"], tmp_path)
        out, _ = demo.communicate(timeout=60)
        assert demo.returncode != 0 and "in use by pid" in out and "Traceback" not in out
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
        # HTTP that gunicorn refuses before the app sees it still answers JSON.
        for raw, status in [
            (b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
            (b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n", 400),
        ]:
            head, body = raw_request(port, raw).split(b"\r\n\r\n", 1)
            assert head.startswith(b"HTTP/1.1 %d " % status)
            assert b"Content-Type: application/json" in head
            answer = json.loads(body)
            assert answer["error"] and answer["detail"] and set(answer) == {"error", "detail"}
    finally:
        first.terminate()
        first.communicate(timeout=30)


@pytest.mark.parametrize(
    ("env", "args", "message"),
    [
        ({"FUNNEL_DATABASE_URL": "foo://x"}, [], "FUNNEL_DATABASE_URL names a database or driver"),
        ({"FUNNEL_GEOIP_DB": "TEXT_FILE"}, [], "FUNNEL_GEOIP_DB TEXT_FILE: not a MaxMind-format"),
        ({"FUNNEL_HOST": "999.1.1.1"}, [], "FUNNEL_HOST is not a valid IP address: '999.1.1.1'"),
        ({"FUNNEL_HOST": "192.0.2.1"}, [], "FUNNEL_HOST 192.0.2.1 is not an address of this"),
        ({}, ["--host", "192.0.2.1"], "--host 192.0.2.1 is not an address of this machine"),
    ],
    ids=["database-url", "geoip-db", "host-syntax", "host-not-here", "host-option"],
)
def test_a_bad_setting_stops_serve_at_once_with_one_line(
    tmp_path: Path, env: dict[str, str], args: list[str], message: str
) -> None:
    text_file = tmp_path / "not-a-database.mmdb"
    text_file.write_text("hello\n")
    env = {k: v.replace("TEXT_FILE", str(text_file)) for k, v in env.items()}
    message = message.replace("TEXT_FILE", str(text_file))
    # 192.0.2.1 is a documentation address (TEST-NET-1): never one of this machine's.
    proc = funnel(["serve", "--port", "8199", *args], tmp_path / "data", extra_env=env)
    try:
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 1
    assert len(out.splitlines()) == 1 and out.startswith(f"Error: {message}"), out
    # At once: gunicorn never started, so it never tried (and retried) to bind, and no
    # migration ran.
    for gunicorn_line in ("Starting gunicorn", "Listening at", "Retrying in", "Connection in use",
                          "Can't connect", "Booting worker"):  # fmt: skip
        assert gunicorn_line not in out, out
    assert not (tmp_path / "data" / "clickhouse").exists()
