"""ClickHouse storage: one lazily opened store per process, reached only through clickhouse-connect.

Clients are opened on first use, never at import time, so a gunicorn master can fork safely.
Each thread gets its own handles (a chDB handle serialises calls behind one lock), and report
queries use a separate reader handle that has `readonly=2` set once: on chDB a per-query
readonly setting can leak into the handle after an error.
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import clickhouse_connect
from clickhouse_connect.driver.client import Client
from clickhouse_connect.driver.exceptions import OperationalError
from clickhouse_connect.driver.query import QueryResult

from tracker.datadir_lock import DataDirLock
from tracker.settings import Settings


class StoreUnavailableError(RuntimeError):
    """ClickHouse cannot be reached or refused the operation."""


_SERVER_SAYS = re.compile(r"server response: (.*?)(?: \(for url [^)]*\))?$", re.DOTALL)


def timeout_advice(exc: BaseException, limit: float) -> str | None:
    """What to do when the statement ran past FUNNEL_QUERY_TIMEOUT (max_execution_time), for
    the dashboard and the API alike; None for any other error."""
    if "TIMEOUT_EXCEEDED" not in str(exc):
        return None
    return (
        f"The query ran longer than the {limit} s limit (FUNNEL_QUERY_TIMEOUT). Choose a "
        "shorter date range or fewer breakdown values, then try again."
    )


def describe_error(exc: BaseException) -> str:
    """One line on why ClickHouse failed: the server's own message, or the innermost network
    error (connection refused, a timeout), without the HTTP client's retry narrative."""
    text = str(exc)
    said = _SERVER_SAYS.search(text)
    if said:
        text = said.group(1)
    else:
        root, depth = exc, 0
        while root.__cause__ is not None and depth < 10:
            root, depth = root.__cause__, depth + 1
        text = str(root) or type(root).__name__
    return text.strip().splitlines()[0][:300] if text.strip() else type(exc).__name__


class Store:
    """Process-wide handle on ClickHouse for one DSN."""

    def __init__(self, settings: Settings) -> None:
        self.dsn = settings.clickhouse_dsn
        self.cluster = settings.clickhouse_cluster
        self.query_timeout = settings.query_timeout
        self.embedded = settings.embedded
        self._lock = (
            DataDirLock(settings.chdb_path.with_name("clickhouse.lock"), "The embedded store")
            if self.embedded
            else None
        )
        self._local = threading.local()
        self._open_guard = threading.Lock()
        self._pid = os.getpid()
        # Lets tests and the outage drill make inserts fail without touching the engine.
        self.writes_paused = False

    # -- handles -------------------------------------------------------------------

    def _check_fork(self) -> None:
        if os.getpid() != self._pid:
            # A handle inherited through fork is unusable; start afresh in the child.
            self._local = threading.local()
            self._pid = os.getpid()

    def _open(self, readonly: bool) -> Client:
        settings: dict[str, Any] = {"max_execution_time": self.query_timeout}
        if readonly:
            settings["readonly"] = 2
        with self._open_guard:
            if self._lock is not None:
                self._lock.acquire()
            try:
                extra: dict[str, Any] = {}
                if not self.embedded:
                    # Sessions would serialise a thread's queries; none are needed.
                    extra["autogenerate_session_id"] = False
                return clickhouse_connect.get_client(dsn=self.dsn, settings=settings, **extra)
            except Exception as exc:
                raise StoreUnavailableError(
                    f"cannot open ClickHouse at {self._safe_dsn()}: {describe_error(exc)}"
                ) from exc

    def _handle(self, kind: str) -> Client:
        self._check_fork()
        client: Client | None = getattr(self._local, kind, None)
        if client is None:
            client = self._open(readonly=(kind == "reader"))
            setattr(self._local, kind, client)
        return client

    @property
    def reader(self) -> Client:
        return self._handle("reader")

    @property
    def writer(self) -> Client:
        return self._handle("writer")

    def _safe_dsn(self) -> str:
        if "@" in self.dsn:
            scheme, rest = self.dsn.split("://", 1)
            return f"{scheme}://***@{rest.split('@', 1)[1]}"
        return self.dsn

    @property
    def events_target(self) -> str:
        """What a DELETE or ALTER of events names: on a cluster, the local table on every
        node (the Distributed `events` table takes neither); the cluster name is validated
        by the settings."""
        if self.cluster:
            return f"events_local ON CLUSTER '{self.cluster}'"
        return "events"

    @contextmanager
    def _reaching(self) -> Iterator[None]:
        """A server that cannot be reached (refused, reset, timed out) is an outage to report
        or wait out, not an error in the statement: StoreUnavailableError says so."""
        try:
            yield
        except OperationalError as exc:
            raise StoreUnavailableError(
                f"ClickHouse at {self._safe_dsn()} is not answering: {describe_error(exc)}"
            ) from exc

    # -- operations ----------------------------------------------------------------

    def query(
        self,
        sql: str,
        parameters: Mapping[str, Any] | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> QueryResult:
        """A read-only report query with bound parameters."""
        with self._reaching():
            return self.reader.query(
                sql,
                parameters=dict(parameters or {}),
                settings=dict(settings) if settings else None,
            )

    def raw(
        self, sql: str, parameters: Mapping[str, Any] | None = None, fmt: str = "TSVRaw"
    ) -> bytes:
        """A read-only query's output as ClickHouse formats it: for results that go out as
        they are (an export), with no conversion to Python values in between."""
        with self._reaching():
            return self.reader.raw_query(sql, parameters=dict(parameters or {}), fmt=fmt)

    def rows(self, sql: str, parameters: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return [tuple(r) for r in self.query(sql, parameters).result_rows]

    def scalar(self, sql: str, parameters: Mapping[str, Any] | None = None) -> Any:
        rows = self.rows(sql, parameters)
        return rows[0][0] if rows else None

    def command(self, sql: str, parameters: Mapping[str, Any] | None = None) -> Any:
        """DDL or a write statement, on the writer handle."""
        with self._reaching():
            return self.writer.command(sql, parameters=dict(parameters or {}))

    def insert(
        self,
        table: str,
        rows: Sequence[Sequence[Any]],
        column_names: Sequence[str],
        dedup_token: str | None = None,
        deduplicate: bool = True,
    ) -> None:
        if self.writes_paused:
            raise StoreUnavailableError("ClickHouse writes are paused")
        settings: dict[str, Any] = {}
        if not deduplicate:
            # The table drops a block identical to a recent one; a deliberate rewrite gets a
            # token of its own (insert_deduplicate=0 is ignored by non-replicated tables).
            dedup_token = f"fresh-{uuid.uuid4()}"
        if dedup_token:
            # Replaying the same batch with the same token is a no-op in ClickHouse.
            settings["insert_deduplication_token"] = dedup_token
        with self._reaching():
            self.writer.insert(
                table,
                [tuple(r) for r in rows],
                column_names=list(column_names),
                settings=settings or None,
            )

    def ping(self) -> tuple[bool, str]:
        try:
            self.reader.query("SELECT 1")
        except Exception as exc:
            return False, f"clickhouse: {describe_error(exc)}"
        return True, "ok"

    @contextmanager
    def paused_writes(self) -> Iterator[None]:
        self.writes_paused = True
        try:
            yield
        finally:
            self.writes_paused = False

    def close(self) -> None:
        for kind in ("reader", "writer"):
            client = getattr(self._local, kind, None)
            if client is not None:
                client.close()
                setattr(self._local, kind, None)
        if self._lock is not None:
            self._lock.release()


_stores: dict[str, Store] = {}
_stores_guard = threading.Lock()


def get_store(settings: Settings) -> Store:
    """The process's store for this DSN (chDB allows only one engine path per process)."""
    with _stores_guard:
        store = _stores.get(settings.clickhouse_dsn)
        if store is None:
            store = Store(settings)
            _stores[settings.clickhouse_dsn] = store
        return store
