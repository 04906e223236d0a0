"""`funnel serve`: gunicorn with the worker model the DSN needs.

The embedded store belongs to one process, so chdb:// runs one gthread worker; a ClickHouse
server DSN runs N workers. The master never opens ClickHouse: migrations run in a child
process before gunicorn starts, and each worker opens its client after fork.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from typing import Any

from gunicorn import util as gunicorn_util
from gunicorn.app.base import BaseApplication

from tracker.datadir_lock import DataDirLock
from tracker.settings import Settings, SettingsError


class _Gunicorn(BaseApplication):
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            if key in self.cfg.settings:  # options newer than the installed gunicorn are skipped
                self.cfg.set(key, value)

    def load(self) -> Any:
        # Runs in the worker after fork (no preload), so the client is opened there.
        from tracker import create_app

        return create_app()


def _post_worker_init(worker: Any) -> None:
    """Open the store as soon as the worker starts, so the data-dir lock is held from then on."""
    app = worker.wsgi
    with app.app_context():
        from tracker.app import store_of

        store_of(app).ping()


def write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """gunicorn answers malformed HTTP itself (400, 414 for a too-long URL, 431 for headers too
    large) before the app sees it, with an HTML page; this gives those the JSON shape of every
    other error here, `{"error": code, "detail": text}`."""
    code = "_".join(reason.lower().split()) or "bad_request"
    body = json.dumps({"error": code, "detail": mesg}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    gunicorn_util.write_nonblock(sock, head.encode("latin-1", "replace") + body)


def gunicorn_options(settings: Settings, bind: str | None = None) -> dict[str, Any]:
    workers = settings.default_workers()
    options: dict[str, Any] = {
        "bind": bind or bind_address(settings.host, settings.port),
        "workers": workers,
        "worker_class": "gthread",
        "threads": settings.threads,
        "timeout": 60,
        "graceful_timeout": 20,
        "keepalive": 5,
        "loglevel": settings.log_level,
        "accesslog": None,  # access logs would carry client IPs; the app never stores them
        "errorlog": "-",
        "preload_app": False,
        "post_worker_init": _post_worker_init,
        "proc_name": "funnel-tracker",
        # The control socket lives in $HOME and would be shared by every instance; unused.
        "control_socket_disable": True,
    }
    return options


def bind_address(host: str, port: int) -> str:
    """host:port as gunicorn reads it: an IPv6 address goes in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_host(host: str, name: str) -> None:
    """Fail at once, naming the setting (`name`), when `host` cannot be bound here: gunicorn
    would retry for seconds and never say which setting is wrong. Port 0, so a port in use
    (gunicorn's retries wait for it) is not the question."""
    try:
        found = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as exc:
        reason = exc.strerror if isinstance(exc, socket.gaierror) else exc
        raise SettingsError(f"{name} {host} cannot be resolved: {reason}") from None
    problem: OSError | None = None
    for family, kind, proto, _, address in found:
        with socket.socket(family, kind, proto) as probe:
            try:
                probe.bind(address)
                return
            except OSError as exc:
                problem = exc
    reason = problem.strerror if problem is not None else "no address"
    raise SettingsError(f"{name} {host} is not an address of this machine: {reason}")


def run_migrations_in_child() -> None:
    """Migrate both stores in a separate process so this one never opens chDB before forking."""
    result = subprocess.run([sys.executable, "-m", "tracker", "migrate"], check=False)
    if result.returncode != 0:
        raise SystemExit(result.returncode)


def serve(settings: Settings, bind: str | None = None, migrate: bool = True) -> None:
    serve_lock = None
    if settings.embedded:
        settings.ensure_data_dir()
        # Held by the master for its whole life, so a second `serve` fails at once and clearly.
        serve_lock = DataDirLock(settings.data_dir / "serve.lock", "funnel serve for this data dir")
        serve_lock.acquire()
    try:
        if migrate:
            run_migrations_in_child()
        # gunicorn's workers call util.write_error by module attribute, so this reaches them.
        gunicorn_util.write_error = write_json_error
        _Gunicorn(gunicorn_options(settings, bind)).run()
    finally:
        if serve_lock is not None:
            serve_lock.release()
