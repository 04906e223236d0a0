"""The batch writer: one background thread per serving process that drains the spool into
ClickHouse in batches (by size, or about once a second), retrying while ClickHouse is away.

Each batch is a range of whole spool frames; its range is recorded before the insert and the
insert carries a token derived from that range, so a replay after a crash is dropped by
ClickHouse's insert deduplication instead of doubling the events.

The collector hands events over as JSONEachRow lines, so an insert is one raw block that
ClickHouse parses natively; Python never re-encodes the rows.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from pathlib import Path

from tracker import quarantine
from tracker.clickhouse import Store, StoreUnavailableError, describe_error
from tracker.spool import (
    SYNC_INTERVAL,
    Batch,
    Position,
    Spool,
    SpoolBusyError,
    slot_dirs,
    slot_progress,
)

log = logging.getLogger(__name__)

BATCH_ROWS = 20_000
BATCH_BYTES = 16 << 20
BATCH_INTERVAL = 1.0  # seconds a small backlog may wait for more events
PAUSE_FLAG = "PAUSE_WRITES"  # a file in the spool root that simulates a ClickHouse outage
SEAL_AFTER = 60.0  # seconds stored raw events may stay in the current spool segment
ORPHAN_SCAN_INTERVAL = 30.0  # seconds between looks for slots a vanished process left behind
_MAX_DATA_FAILURES = 3


class ClickHouseRejectedError(RuntimeError):
    pass


class BatchWriter:
    """Owns the spool of this process and the thread that drains it."""

    def __init__(
        self, store: Store, spool_root: Path, max_bytes: int, sync_each_append: bool = True
    ) -> None:
        self.store = store
        self.spool = Spool(spool_root, max_bytes, sync_each_append=sync_each_append)
        self.spool_root = spool_root
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._cond = threading.Condition()
        self._stop = False
        self._flush_requests = 0
        self._first_pending_at: float | None = None
        self.last_error = ""
        self.failing_since: float | None = None
        self.inserted_rows = 0
        self._data_failures = 0
        self._retry: Batch | None = None
        self.observe_insert = _noop_observe
        self.seal_after = SEAL_AFTER
        self.orphan_scan_interval = ORPHAN_SCAN_INTERVAL
        self._next_orphan_scan = 0.0  # at once on start: replay what dead processes left
        self.adopted_rows = 0

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def started(self) -> bool:
        return self._thread is not None

    def start(self) -> None:
        """Open the spool (replaying what a previous process left) and start the thread."""
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is not None:
                return
            self.spool.open()
            if self.spool.backlog_rows:
                log.info(
                    "spool: replaying %d events left by a previous run", self.spool.backlog_rows
                )
                self._first_pending_at = 0.0
            thread = threading.Thread(target=self._run, name="funnel-batch-writer", daemon=True)
            thread.start()
            syncer = threading.Thread(target=self._sync_loop, name="funnel-spool-sync", daemon=True)
            syncer.start()
            self._thread = thread
            atexit.register(self.stop)

    def stop(self, timeout: float = 5.0) -> None:
        """Drain what can be drained quickly, then stop the thread (used at process exit)."""
        if self._thread is None:
            return
        self.flush(timeout=timeout)
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        self._thread.join(timeout=timeout)

    # -- request side ------------------------------------------------------------------------

    def append(self, payload: bytes, rows: int) -> Position:
        """Durably spool one request's rows (raises SpoolFullError when at the bound)."""
        self.start()
        position = self.spool.append(payload, rows)
        with self._cond:
            if self._first_pending_at is None:
                self._first_pending_at = time.monotonic()
            if self.spool.backlog_rows >= BATCH_ROWS:
                self._cond.notify_all()
        return position

    def flush(self, timeout: float = 10.0, seal: bool = False) -> bool:
        """Block until every event acknowledged so far is in ClickHouse, or the timeout. With
        `seal`, the spool segments holding those events are deleted before it returns."""
        self.start()
        if seal:
            self.spool.seal()
        target = self.spool.end
        deadline = time.monotonic() + timeout
        with self._cond:
            self._flush_requests += 1
            self._cond.notify_all()
            try:
                while not self._reached(target):
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        return False
                    self._cond.wait(min(remaining, 0.5))
            finally:
                self._flush_requests -= 1
        return True

    def flush_everywhere(self, timeout: float = 10.0) -> bool:
        """flush(seal=True), then wait until every other process's spool slot has stored what
        it held when this call began; a slot left by a process that is gone is drained here.
        For an erasure: afterwards no event accepted before the call can still arrive."""
        deadline = time.monotonic() + timeout
        # Take this process's own slot first: listed before it is taken, it would count as
        # another process's slot and be waited for.
        self.start()
        others = {slot: slot_progress(slot)[1] for slot in self._other_slots()}
        if not self.flush(timeout=timeout, seal=True):
            return False
        with self._cond:
            self._next_orphan_scan = 0.0
            self._cond.notify_all()
        while others:
            for slot, target in list(others.items()):
                committed, end, pending = slot_progress(slot)
                # A torn tail cut off when the slot was adopted shrinks its end.
                if not pending and committed >= min(target, end):
                    del others[slot]
            if not others:
                break
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)
        return True

    def _reached(self, target: Position) -> bool:
        return self.spool.pending is None and self.spool.committed >= target

    def ready(self) -> tuple[bool, str]:
        """Not ready while a backlog exists that ClickHouse refuses to take, or when full."""
        if not self.started:
            return True, "ok"
        backlog = self.spool.backlog_rows
        if self.spool.is_full():
            return False, f"spool is full ({backlog} events waiting)"
        if self.failing_since is not None and backlog:
            return False, f"spool cannot drain ({backlog} events waiting): {self.last_error}"
        return True, "ok"

    def paused_by_flag(self) -> bool:
        return (self.spool_root / PAUSE_FLAG).exists()

    # -- writer thread ---------------------------------------------------------------------------

    def _run(self) -> None:
        backoff = 0.2
        while True:
            with self._cond:
                while not self._stop and not self._due():
                    self._cond.wait(self._wait_time())
                if self._stop and not self.spool.backlog_rows and self.spool.pending is None:
                    return
            try:
                wrote = self._write_one()
            except Exception as exc:
                if isinstance(exc, FileNotFoundError) and not self.spool_root.exists():
                    log.info("spool directory %s was removed; the writer stops", self.spool_root)
                    return
                self._failed(exc)
                # Back off for the whole interval: new appends must not turn the retry loop
                # into one attempt per request while ClickHouse is away.
                deadline = time.monotonic() + backoff
                with self._cond:
                    while not self._stop and (left := deadline - time.monotonic()) > 0:
                        self._cond.wait(left)
                    if self._stop:
                        return
                backoff = min(backoff * 2, 5.0)
                continue
            if time.monotonic() >= self._next_orphan_scan:
                self._next_orphan_scan = time.monotonic() + self.orphan_scan_interval
                try:
                    self._adopt_orphans()
                except Exception as exc:
                    self._failed(exc)
                    continue
            backoff = 0.2
            if self.failing_since is not None:
                log.info("ClickHouse accepts inserts again; draining the spool")
            self.failing_since = None
            self.last_error = ""
            with self._cond:
                if not wrote:
                    self._first_pending_at = None
                self._cond.notify_all()

    def _sync_loop(self) -> None:
        while not self._stop:
            time.sleep(SYNC_INTERVAL)
            try:
                self.spool.sync()
            except OSError as exc:
                if self.spool_root.exists():  # a vanished directory (tests) is not an error
                    log.error("spool fdatasync failed: %s", exc)
                return

    def _due(self) -> bool:
        if self.spool.pending is not None:
            return True
        if time.monotonic() >= self._next_orphan_scan:
            return True
        if self.spool.committed >= self.spool.end:
            return self.spool.seal_due(self.seal_after)
        if self._flush_requests or self.spool.backlog_rows >= BATCH_ROWS:
            return True
        first = self._first_pending_at
        return first is None or time.monotonic() - first >= BATCH_INTERVAL

    def _wait_time(self) -> float:
        first = self._first_pending_at
        if first is None:
            return min(BATCH_INTERVAL, max(0.01, self._next_orphan_scan - time.monotonic()))
        return max(0.01, BATCH_INTERVAL - (time.monotonic() - first))

    def _write_one(self) -> bool:
        if self._retry is None and self.spool.seal_due(self.seal_after):
            self.spool.seal()  # next_batch below moves past the old segment and deletes it
        # A failed batch is retried as it is, without reading it from disk again.
        batch = self._retry or self.spool.next_batch(BATCH_ROWS, BATCH_BYTES)
        self._retry = batch
        if batch is None:
            return False
        with self._cond:
            self._first_pending_at = time.monotonic()
        self._store(batch, self.spool)
        self._retry = None
        return True

    def _store(self, batch: Batch, spool: Spool) -> None:
        """Record the batch's range, insert it (setting aside frames refused as data), and
        commit it in `spool` (this process's own, or one it adopted)."""
        if batch.rows:
            spool.begin(batch)
            self._insert_with_quarantine(batch, spool)
        spool.commit(batch)

    def _other_slots(self) -> list[Path]:
        own = self.spool.dir
        return [slot for slot in slot_dirs(self.spool_root) if slot != own]

    def _adopt_orphans(self) -> None:
        """Drain every slot whose process is gone (fewer workers than before, a worker that
        was not restarted): its acknowledged events would otherwise never be stored."""
        for slot in self._other_slots():
            committed, end, pending = slot_progress(slot)
            if not pending and committed >= end:
                continue
            orphan = Spool(self.spool_root, self.spool.max_bytes)
            try:
                orphan.open(slot=slot)
            except SpoolBusyError:
                continue  # a live process owns it and drains it itself
            try:
                if orphan.backlog_rows or orphan.pending is not None:
                    log.info(
                        "spool: storing %d events left in %s by a process that is gone",
                        orphan.backlog_rows,
                        slot.name,
                    )
                while (batch := orphan.next_batch(BATCH_ROWS, BATCH_BYTES)) is not None:
                    self._store(batch, orphan)
                    self.adopted_rows += batch.rows
                if orphan.seal():
                    orphan.next_batch(BATCH_ROWS, BATCH_BYTES)  # deletes the stored segment
            finally:
                orphan.close()

    def _insert_with_quarantine(self, batch: Batch, spool: Spool) -> None:
        try:
            self._insert(batch.payload, batch.rows, batch.token(spool.spool_id))
            self._data_failures = 0
            return
        except ClickHouseRejectedError as exc:
            self._data_failures += 1
            if self._data_failures < _MAX_DATA_FAILURES:
                raise
            reason = str(exc)
        # ClickHouse keeps rejecting this batch as data: insert frame by frame and set aside
        # only the frames it refuses, so one bad frame cannot hold back everything after it.
        log.error("spool batch rejected %d times; inserting frame by frame", _MAX_DATA_FAILURES)
        base = batch.token(spool.spool_id)
        for offset, payload in batch.frames:
            try:
                self._insert(payload, payload.count(b"\n"), f"{base}-f{offset}")
            except ClickHouseRejectedError as exc:
                assert spool.dir is not None
                quarantine.append(spool.dir, batch.seg, offset, payload, str(exc) or reason)
        self._data_failures = 0

    def _insert(self, payload: bytes, rows: int, token: str) -> None:
        if self.paused_by_flag():
            raise StoreUnavailableError(f"writes paused by {PAUSE_FLAG} in the spool directory")
        started = time.monotonic()
        insert_raw(self.store, payload, token)
        self.inserted_rows += rows
        self.observe_insert(time.monotonic() - started, rows)

    def _failed(self, exc: BaseException) -> None:
        message = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        if self.failing_since is None:
            self.failing_since = time.monotonic()
            log.warning("ClickHouse insert failed; events stay in the spool: %s", message)
        self.last_error = message


def insert_raw(store: Store, payload: bytes, token: str) -> None:
    """One JSONEachRow insert with its dedup token. ClickHouseRejectedError when ClickHouse
    refuses the data itself, StoreUnavailableError for everything else (retry later)."""
    if store.writes_paused:
        raise StoreUnavailableError("ClickHouse writes are paused")
    try:
        store.writer.raw_insert(
            "events",
            None,
            payload,
            settings={"insert_deduplication_token": token},
            fmt="JSONEachRow",
        )
    except StoreUnavailableError:
        raise
    except Exception as exc:
        if _is_data_error(exc):
            raise ClickHouseRejectedError(describe_error(exc)) from exc
        raise StoreUnavailableError(describe_error(exc)) from exc


def _noop_observe(seconds: float, rows: int) -> None:
    return None


def _is_data_error(exc: BaseException) -> bool:
    """True when ClickHouse refused the data itself (parse errors), not the connection."""
    text = str(exc)
    markers = (
        "CANNOT_PARSE",
        "Cannot parse",
        "INCORRECT_DATA",
        "TYPE_MISMATCH",
        "Code: 27",
        "Code: 117",
    )
    return any(m in text for m in markers)


_writers: dict[Path, BatchWriter] = {}
_writers_guard = threading.Lock()


def get_writer(
    store: Store, spool_root: Path, max_bytes: int, sync_each_append: bool = True
) -> BatchWriter:
    """The process's writer for this spool directory (created, not started)."""
    with _writers_guard:
        writer = _writers.get(spool_root)
        if writer is None:
            writer = BatchWriter(store, spool_root, max_bytes, sync_each_append)
            _writers[spool_root] = writer
        return writer
