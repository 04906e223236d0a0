"""ClickHouse's HTTP interface in front of chDB, for the server-mode tests.

No ClickHouse server can be installed on the test machines (Debian's package dates from 2018
and lacks the types the schema uses), but chDB embeds the real engine. This process gives that
engine the HTTP interface clickhouse-connect speaks to a server, so that `http://` DSNs, N
gunicorn workers sharing one store, the HTTP client's parameter binding, settings, compression
and error paths all run for real. Only the transport is ours: each statement reaches the engine
as it was sent, with the request's settings applied on a connection of its own.

Run: python chdb_http.py --path DIR --port N [--user U --password P --database DB]
"""

from __future__ import annotations

import argparse
import base64
import email
import email.policy
import gzip
import json
import os
import re
import tempfile
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import chdb
import lz4.frame
from backports import zstd

# URL parameters of the HTTP interface that are not engine settings.
TRANSPORT = {
    "query",
    "database",
    "default_format",
    "session_id",
    "session_timeout",
    "session_check",
    "query_id",
    "quota_key",
    "compress",
    "decompress",
    "user",
    "password",
    "buffer_size",
    "wait_end_of_query",
    "client_protocol_version",
    "role",
}
# An INSERT's data starts right after its FORMAT name and one line break, in the URL's query or
# in the body (clickhouse-connect puts the statement in either, depending on compression).
_INSERT_RE = re.compile(rb"^\s*(INSERT\s+INTO\s.+?)\s+FORMAT\s+(\w+) ?\r?\n?", re.I | re.DOTALL)
_TRAILING_FORMAT_RE = re.compile(r"\sFORMAT\s+(\w+)\s*;?\s*$", re.IGNORECASE)
_CODE_RE = re.compile(r"Code:\s*(\d+)")
_NAME_RE = re.compile(r"^\w+$")
_NUMBER_RE = re.compile(r"^-?\d+(\.\d+)?$")
# The status a server gives some exception codes (the rest are 500).
_STATUS = {
    47: 400,  # UNKNOWN_IDENTIFIER
    60: 404,  # UNKNOWN_TABLE
    62: 400,  # SYNTAX_ERROR
    81: 404,  # UNKNOWN_DATABASE
    164: 403,  # READONLY
    516: 401,  # AUTHENTICATION_FAILED
}


class Engine:
    def __init__(self, path: str, user: str, password: str) -> None:
        self.path = path
        self.user = user
        self.password = password
        self.spill = Path(tempfile.mkdtemp(prefix="chdb-http-"))
        # Opened once so the engine stays up between requests; requests use their own.
        self.keeper = chdb.connect(path)
        self.queries = 0
        self.count_lock = threading.Lock()

    def connection(self, database: str | None, settings: dict[str, str]) -> Any:
        conn = chdb.connect(self.path)
        if database:
            if not _NAME_RE.match(database):
                raise chdb.ChdbError(f"Code: 81. DB::Exception: Database {database} does not exist")
            conn.query(f"USE {database}")
        # readonly last: once set, a readonly connection refuses to change it.
        for key in sorted(settings, key=lambda k: k == "readonly"):
            if not _NAME_RE.match(key):
                raise chdb.ChdbError(f"Code: 115. DB::Exception: Unknown setting {key}")
            value = settings[key]
            literal = value if _NUMBER_RE.match(value) else _quote(value)
            conn.query(f"SET {key} = {literal}")
        return conn


def _quote(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _decompress(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding == "lz4":
        return bytes(lz4.frame.decompress(body))
    if encoding == "zstd":
        return bytes(zstd.decompress(body))
    if encoding == "gzip":
        return gzip.decompress(body)
    raise ValueError(f"unsupported Content-Encoding {encoding}")


def _form_fields(content_type: str, body: bytes) -> dict[str, str]:
    message = email.message_from_bytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body, policy=email.policy.HTTP
    )
    fields = {}
    for part in message.iter_parts():  # type: ignore[attr-defined]
        name = part.get_param("name", header="content-disposition")
        fields[str(name)] = part.get_payload(decode=True).decode()
    return fields


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        return None

    # -- transport -----------------------------------------------------------------

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            body = b"".join(parts)
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        return _decompress(body, self.headers.get("Content-Encoding", ""))

    def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        extra = dict(headers or {})
        if body and "lz4" in self.headers.get("Accept-Encoding", ""):
            # As a server does for clickhouse-connect, which asks for lz4 first.
            body = lz4.frame.compress(body)
            extra["Content-Encoding"] = "lz4"
        self.send_response(status)
        for key, value in extra.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, message: str, query_id: str) -> None:
        match = _CODE_RE.search(message)
        code = int(match.group(1)) if match else 1002
        text = message if message.startswith("Code:") else f"Code: {code}. DB::Exception: {message}"
        self._send(
            _STATUS.get(code, 500),
            (text + "\n").encode(),
            {"X-ClickHouse-Exception-Code": str(code), "X-ClickHouse-Query-Id": query_id},
        )

    def _authorised(self, params: dict[str, str]) -> bool:
        engine = self.server.engine
        user, password = params.get("user", "default"), params.get("password", "")
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Basic "):
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        user = self.headers.get("X-ClickHouse-User", user)
        password = self.headers.get("X-ClickHouse-Key", password)
        return user == engine.user and password == engine.password

    # -- requests ------------------------------------------------------------------

    def do_GET(self) -> None:
        self._handle(b"")

    def do_POST(self) -> None:
        self._handle(self._body())

    def _handle(self, body: bytes) -> None:
        url = urlsplit(self.path)
        if url.path in ("/ping", "/") and not url.query and not body:
            self._send(200, b"Ok.\n", {"Content-Type": "text/plain; charset=UTF-8"})
            return
        params = dict(parse_qsl(url.query, keep_blank_values=True))
        content_type = self.headers.get("Content-Type", "")
        if content_type.startswith("multipart/form-data"):
            # Long queries and bind parameters come as form fields instead of the URL.
            params.update(_form_fields(content_type, body))
            body = b""
        query_id = params.get("query_id") or str(uuid.uuid4())
        if not self._authorised(params):
            self._error(
                "Code: 516. DB::Exception: Authentication failed: password is incorrect, "
                "or there is no user with such name. (AUTHENTICATION_FAILED)",
                query_id,
            )
            return
        bound = {k[6:]: v for k, v in params.items() if k.startswith("param_")}
        settings = {
            k: v for k, v in params.items() if k not in TRANSPORT and not k.startswith("param_")
        }
        fmt = params.get("default_format", "TabSeparated")
        text = params.get("query", "").encode()
        if text and body:
            text += b"\n"
        text += body
        insert = _INSERT_RE.match(text)
        try:
            query = insert.group(0).decode() if insert else text.decode()
        except UnicodeDecodeError:
            self._error("Code: 62. DB::Exception: The query is not UTF-8. (SYNTAX_ERROR)", "")
            return
        if not query.strip():
            self._error("Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)", query_id)
            return
        started = time.perf_counter()
        try:
            conn = self.server.engine.connection(params.get("database"), settings)
            try:
                if insert:
                    result = self._insert(conn, insert, text[insert.end() :])
                    result_format = None
                else:
                    embedded = _TRAILING_FORMAT_RE.search(query)
                    result = (
                        conn.query(query, fmt, params=bound) if bound else conn.query(query, fmt)
                    )
                    result_format = embedded.group(1) if embedded else fmt
            finally:
                conn.close()
        except Exception as exc:
            self._error(str(exc), query_id)
            return
        with self.server.engine.count_lock:
            self.server.engine.queries += 1
        output = result.bytes() or b""
        summary = {
            "read_rows": str(result.rows_read()),
            "read_bytes": str(result.bytes_read()),
            "written_rows": "0",
            "written_bytes": "0",
            "total_rows_to_read": "0",
            "result_rows": "0",
            "result_bytes": str(len(output)),
            "elapsed_ns": str(int((time.perf_counter() - started) * 1e9)),
        }
        headers = {
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Timezone": "UTC",
            "X-ClickHouse-Summary": json.dumps(summary),
            "Content-Type": "application/octet-stream",
        }
        if result_format and (output or query.lstrip()[:6].upper() in ("SELECT", "WITH (")):
            headers["X-ClickHouse-Format"] = result_format
        self._send(200, output, headers)

    def _insert(self, conn: Any, insert: re.Match[bytes], data: bytes) -> Any:
        """The engine reads the data from a file with the table's own input format parser."""
        statement, fmt = insert.group(1).decode(), insert.group(2).decode()
        spill = self.server.engine.spill / f"{uuid.uuid4().hex}.data"
        spill.write_bytes(data)
        try:
            return conn.query(f"{statement} FROM INFILE '{spill}' FORMAT {fmt}")
        finally:
            spill.unlink()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    engine: Engine


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--path", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", default="default")
    parser.add_argument("--password", default="")
    parser.add_argument("--database", default="default")
    args = parser.parse_args()
    os.environ["TZ"] = "UTC"
    time.tzset()
    engine = Engine(args.path, args.user, args.password)
    if _NAME_RE.match(args.database):
        engine.keeper.query(f"CREATE DATABASE IF NOT EXISTS {args.database}")
    server = Server(("127.0.0.1", args.port), Handler)
    server.engine = engine
    print(f"listening on 127.0.0.1:{args.port}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
