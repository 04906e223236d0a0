"""Durability on the real engine: an outage keeps events in the spool and loses none; a crash
between insert and checkpoint replays the same range and ClickHouse drops the duplicate; a torn
spool tail is cut off on restart."""

from __future__ import annotations

import json
import os
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.collector.conftest import event, flush, post
from tracker import quarantine
from tracker.clickhouse import Store
from tracker.spool import Spool, slot_progress
from tracker.writer import PAUSE_FLAG, BatchWriter


def count_by_id(store: Store, site: str) -> dict[str, int]:
    rows = store.rows(
        "SELECT toString(event_id), count() FROM events WHERE site_id = {s:String} "
        "GROUP BY event_id",
        {"s": site},
    )
    return {r[0]: int(r[1]) for r in rows}


def lines(site: str, n: int) -> tuple[list[str], bytes]:
    ids = [str(uuid.uuid4()) for _ in range(n)]
    payload = b"".join(
        json.dumps(
            {
                "site_id": site,
                "event_id": i,
                "type": "pageview",
                "ts": "2026-01-02 03:04:05.678",
                "received_at": "2026-01-02 03:04:05.678",
                "visitor_id": "v",
            }
        ).encode()
        + b"\n"
        for i in ids
    )
    return ids, payload


def test_outage_keeps_everything_and_readiness_reports_it(
    app: Flask, client: FlaskClient, store: Store, key: str
) -> None:
    writer = app.extensions["funnel_writer"]
    sent: list[str] = []
    with store.paused_writes():
        for _ in range(20):
            batch = [event() for _ in range(10)]
            resp = post(client, {"site": key, "events": batch})
            assert resp.status_code == 202
            sent.extend(e["id"] for e in batch)
        assert writer.flush(timeout=1.5) is False
        ready = client.get("/readyz")
        assert ready.status_code == 503
        assert "spool cannot drain" in ready.json["checks"]["spool"]
        assert "funnel_writer_failing 1.0" in client.get("/metrics").data.decode()
        assert count_by_id(store, key) == {}
    flush(app)
    assert client.get("/readyz").status_code == 200
    assert count_by_id(store, key) == dict.fromkeys(sent, 1)


def test_pause_flag_file_simulates_an_outage_for_a_server(
    app: Flask, client: FlaskClient, store: Store, key: str
) -> None:
    writer = app.extensions["funnel_writer"]
    writer.start()
    flag = writer.spool_root / PAUSE_FLAG
    batch = [event() for _ in range(5)]
    flag.touch()
    try:
        assert post(client, {"site": key, "events": batch}).status_code == 202
        assert writer.flush(timeout=1.0) is False
        assert count_by_id(store, key) == {}
    finally:
        flag.unlink()
    flush(app)
    assert count_by_id(store, key) == {e["id"]: 1 for e in batch}


def test_crash_after_insert_before_checkpoint_replays_without_duplicates(
    store: Store, tmp_path: Path, key: str
) -> None:
    root = tmp_path / "spool"
    first = BatchWriter(store, root, 10 << 20)
    first.spool.open()
    ids_a, payload_a = lines(key, 30)
    ids_b, payload_b = lines(key, 20)
    first.spool.append(payload_a, 30)
    first.spool.append(payload_b, 20)
    batch = first.spool.next_batch(10_000, 1 << 20)
    assert batch is not None and batch.rows == 50
    first.spool.begin(batch)
    # The insert lands, then the process dies before recording the commit.
    first._insert(batch.payload, batch.rows, batch.token(first.spool.spool_id))
    first.spool.close()

    second = BatchWriter(store, root, 10 << 20)
    second.start()
    assert second.spool.backlog_rows == 50
    assert second.flush(timeout=30)
    second.stop()
    assert count_by_id(store, key) == dict.fromkeys(ids_a + ids_b, 1)


class Crash(BaseException):
    """The process dies here: nothing after this point of the writer's code runs."""


def test_a_crash_in_the_writers_own_commit_replays_exactly_once(
    store: Store, tmp_path: Path, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer's own path (`_write_one` -> `_store`), not spool.begin called by hand: the
    insert lands, the process dies before the spool records the commit, and more frames
    were appended meanwhile. The next process must replay the same range (its token makes
    ClickHouse drop it), not that range grown by the new frames (a new token: doubles).
    Kills the mutation that removes `spool.begin(batch)` from BatchWriter._store."""
    root = tmp_path / "spool"
    first = BatchWriter(store, root, 10 << 20)
    first.spool.open()  # no writer thread: this test runs the writer's step itself
    ids_a, payload_a = lines(key, 30)
    first.spool.append(payload_a, 30)

    def crash(batch: object) -> None:
        raise Crash

    monkeypatch.setattr(first.spool, "commit", crash)
    with pytest.raises(Crash):
        first._write_one()
    assert count_by_id(store, key) == dict.fromkeys(ids_a, 1)  # the insert landed
    ids_b, payload_b = lines(key, 20)  # a request thread's append, before the process dies
    first.spool.append(payload_b, 20)
    first.spool.close()

    second = BatchWriter(store, root, 10 << 20)
    second.start()
    assert second.spool.dir == first.spool.dir  # the same slot, taken over
    assert second.flush(timeout=30)
    second.stop()
    assert count_by_id(store, key) == dict.fromkeys(ids_a + ids_b, 1)


def test_crash_before_insert_replays_the_pending_batch(
    store: Store, tmp_path: Path, key: str
) -> None:
    root = tmp_path / "spool"
    first = BatchWriter(store, root, 10 << 20)
    first.spool.open()
    ids, payload = lines(key, 12)
    first.spool.append(payload, 12)
    batch = first.spool.next_batch(10_000, 1 << 20)
    assert batch is not None
    first.spool.begin(batch)
    first.spool.close()  # dies before inserting

    second = BatchWriter(store, root, 10 << 20)
    second.start()
    assert second.flush(timeout=30)
    second.stop()
    assert count_by_id(store, key) == dict.fromkeys(ids, 1)


def test_torn_tail_is_cut_and_appends_continue(tmp_path: Path, key: str) -> None:
    spool = Spool(tmp_path / "spool", 10 << 20)
    spool.open()
    _, payload = lines(key, 3)
    spool.append(payload, 3)
    seg = spool.segments()[-1]
    path = spool.dir / f"seg-{seg:012d}.log"  # type: ignore[operator]
    good_size = path.stat().st_size
    spool.close()
    with open(path, "ab") as fh:
        fh.write(b"F0000ffff000000")  # a header cut short by a crash
    again = Spool(tmp_path / "spool", 10 << 20)
    again.open()
    assert path.stat().st_size == good_size
    assert again.backlog_rows == 3
    _, more = lines(key, 2)
    again.append(more, 2)
    batch = again.next_batch(10_000, 1 << 20)
    assert batch is not None and batch.rows == 5
    again.close()


def test_segments_rotate_and_are_deleted_once_committed(
    store: Store, tmp_path: Path, key: str
) -> None:
    writer = BatchWriter(store, tmp_path / "spool", 10 << 20)
    writer.spool.segment_bytes = 4096
    writer.start()
    sent: list[str] = []
    for _ in range(40):
        ids, payload = lines(key, 5)
        writer.append(payload, 5)
        sent += ids
    assert len(writer.spool.segments()) > 3
    assert writer.flush(timeout=30)
    assert len(writer.spool.segments()) == 1
    assert writer.spool.backlog_rows == 0
    writer.stop()
    assert count_by_id(store, key) == dict.fromkeys(sent, 1)


def spooled(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.glob("slot-*/seg-*.log")))


def wait_for(check: Callable[[], bool], seconds: float = 30.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_slot_left_by_a_vanished_process_is_stored_by_another(
    store: Store, tmp_path: Path, key: str
) -> None:
    """Four workers became two, or a worker died and was not replaced: the events its slot
    acknowledged must still reach ClickHouse, through a process that is alive."""
    root = tmp_path / "spool"
    first = Spool(root, 10 << 20)
    first.open()  # slot-0, so that the dying process gets slot-1
    dead = Spool(root, 10 << 20)
    dead.open()
    ids, payload = lines(key, 7)
    dead.append(payload, 7)
    dead.close()
    first.close()

    writer = BatchWriter(store, root, 10 << 20)
    writer.start()
    assert writer.spool.dir == root / "slot-0"
    assert wait_for(lambda: count_by_id(store, key) == dict.fromkeys(ids, 1))

    def recorded() -> bool:
        # The slot's progress is written after the insert it records: wait for both.
        committed, end, pending = slot_progress(root / "slot-1")
        return writer.adopted_rows == 7 and committed >= end and not pending

    assert wait_for(recorded)
    assert not any(i.encode() in spooled(root) for i in ids)  # stored, so deleted
    # Adopting again (the next periodic look) finds nothing to do and doubles nothing.
    writer._adopt_orphans()
    writer.stop()
    assert writer.adopted_rows == 7
    assert count_by_id(store, key) == dict.fromkeys(ids, 1)


def test_a_live_processs_slot_is_left_to_it(store: Store, tmp_path: Path, key: str) -> None:
    root = tmp_path / "spool"
    writer = BatchWriter(store, root, 10 << 20)
    writer.start()
    live = Spool(root, 10 << 20)
    live.open()
    ids, payload = lines(key, 4)
    live.append(payload, 4)
    writer._adopt_orphans()
    assert count_by_id(store, key) == {}
    assert writer.flush_everywhere(timeout=0.5) is False  # waits for it, cannot drain it
    live.close()
    assert writer.flush_everywhere(timeout=30)
    writer.stop()
    assert count_by_id(store, key) == dict.fromkeys(ids, 1)


def test_a_slot_that_never_stored_anything_holds_nothing_back(store: Store, tmp_path: Path) -> None:
    """A process that took its slot but has not stored a batch yet (a worker that received no
    events, or a finished `funnel` command) has no state.json: nothing of it is waiting."""
    root = tmp_path / "spool"
    idle = Spool(root, 10 << 20)
    idle.open()
    assert idle.dir is not None and not (idle.dir / "state.json").exists()
    committed, end, pending = slot_progress(idle.dir)
    assert committed == end and not pending
    writer = BatchWriter(store, root, 10 << 20)
    try:
        assert writer.flush_everywhere(timeout=5)
    finally:
        writer.stop()
        idle.close()


def test_stored_raw_events_leave_the_spool_after_a_while(
    store: Store, tmp_path: Path, key: str
) -> None:
    writer = BatchWriter(store, tmp_path / "spool", 10 << 20)
    writer.seal_after = 0.3
    writer.start()
    ids, payload = lines(key, 3)
    writer.append(payload, 3)
    assert writer.flush(timeout=30)
    first_segment = writer.spool.segments()
    assert wait_for(lambda: not any(i.encode() in spooled(writer.spool_root) for i in ids), 10)
    assert writer.spool.segments() != first_segment and len(writer.spool.segments()) == 1
    more, payload = lines(key, 2)
    writer.append(payload, 2)  # appends go on into the new segment
    assert writer.flush(timeout=30)
    writer.stop()
    assert count_by_id(store, key) == dict.fromkeys(ids + more, 1)


def test_a_sealing_flush_deletes_the_stored_segment_before_it_returns(
    store: Store, tmp_path: Path, key: str
) -> None:
    writer = BatchWriter(store, tmp_path / "spool", 10 << 20)
    writer.start()
    ids, payload = lines(key, 3)
    writer.append(payload, 3)
    assert writer.flush(timeout=30)
    assert ids[0].encode() in spooled(writer.spool_root)  # kept for SEAL_AFTER by default
    assert writer.flush(timeout=30, seal=True)
    assert not any(i.encode() in spooled(writer.spool_root) for i in ids)
    writer.stop()


def test_a_frame_clickhouse_refuses_is_set_aside_and_the_rest_lands(
    store: Store, tmp_path: Path, key: str
) -> None:
    writer = BatchWriter(store, tmp_path / "spool", 10 << 20)
    writer.start()
    good_a, payload_a = lines(key, 3)
    writer.append(payload_a, 3)
    poison = json.dumps({"site_id": key, "event_id": "not-a-uuid", "ts": "yesterday"}).encode()
    writer.append(poison + b"\n", 1)
    good_b, payload_b = lines(key, 2)
    writer.append(payload_b, 2)
    assert writer.flush(timeout=60)
    writer.stop()
    assert count_by_id(store, key) == dict.fromkeys(good_a + good_b, 1)
    rejected = (writer.spool.dir / "rejected.log").read_bytes()  # type: ignore[operator]
    assert b"not-a-uuid" in rejected
    assert not any(i.encode() in rejected for i in good_a + good_b)
    (aside,) = quarantine.pending(writer.spool_root)
    assert aside.payload == poison + b"\n" and aside.rows == 1 and aside.reason


def test_every_append_is_on_disk_before_it_returns_by_default(
    tmp_path: Path, key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FUNNEL_SPOOL_FSYNC=always: a 202 is only sent after fdatasync covered the append; with
    concurrent appends one fdatasync may cover several (group commit)."""
    synced_at: list[int] = []
    real = os.fdatasync
    spool = Spool(tmp_path / "spool", 10 << 20, sync_each_append=True)

    def spy(fd: int) -> None:
        real(fd)
        synced_at.append(spool._seq)

    monkeypatch.setattr(os, "fdatasync", spy)
    spool.open()
    returned: list[int] = []

    def append() -> None:
        _, payload = lines(key, 2)
        spool.append(payload, 2)
        returned.append(max(synced_at))  # the newest append a flush had covered on return

    threads = [threading.Thread(target=append) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(returned) == 16
    assert spool._synced == spool._seq == 16
    assert 1 <= len(synced_at) <= 16
    spool.close()


def test_interval_mode_leaves_the_flush_to_the_writer(tmp_path: Path, key: str) -> None:
    spool = Spool(tmp_path / "spool", 10 << 20, sync_each_append=False)
    spool.open()
    _, payload = lines(key, 2)
    spool.append(payload, 2)
    assert spool._synced == 0
    spool.sync()
    assert spool._synced == spool._seq == 1
    spool.close()


@pytest.mark.parametrize(("value", "expected"), [(None, True), ("interval", False)])
def test_fsync_setting_reaches_the_spool(
    store: Store,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    value: str | None,
    expected: bool,
) -> None:
    from tracker import create_app
    from tracker.collector.state import collector_of
    from tracker.configdb import upgrade

    monkeypatch.setenv("FUNNEL_DATA_DIR", str(tmp_path))
    url = f"sqlite:///{tmp_path / 'c.db'}"
    monkeypatch.setenv("FUNNEL_DATABASE_URL", url)
    if value:
        monkeypatch.setenv("FUNNEL_SPOOL_FSYNC", value)
    upgrade(url)
    app = create_app({"TESTING": True})
    assert collector_of(app).writer.spool.sync_each_append is expected
