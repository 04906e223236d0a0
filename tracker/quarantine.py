"""Frames ClickHouse refused as data, set aside in `spool/slot-N/rejected.log` by the writer so
they cannot hold back the events behind them, and the way back: once the cause is fixed (a column
changed by hand to a type the collector's values do not fit, say), `funnel spool retry`
inserts them again.

An entry is a JSON note line `{"seg", "offset", "reason", "bytes"}` followed by the frame's
JSONEachRow payload of exactly `bytes` bytes. Notes written before `bytes` existed are followed
by payload lines up to the next note.

The owner process appends under an flock on the file; a retry first renames the log aside, so
new rejections go to a fresh file, then takes the same flock on the renamed file, so an append
that opened it just before the rename finishes before the retry reads it.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from tracker.clickhouse import Store
from tracker.spool import slot_dirs

LOG_NAME = "rejected.log"
_NOTE_KEYS = {"seg", "offset", "reason"}


@dataclass(frozen=True)
class Rejected:
    slot: str
    seg: int
    offset: int
    reason: str
    payload: bytes

    @property
    def rows(self) -> int:
        return self.payload.count(b"\n")

    def token(self, spool_id: str) -> str:
        # Deterministic: a retry that is interrupted and run again cannot double a frame.
        return f"rejected-{spool_id}-{self.seg}-{self.offset}"


@dataclass
class RetryResult:
    stored_frames: int = 0
    stored_rows: int = 0
    refused_frames: int = 0
    refused_rows: int = 0
    last_reason: str = ""


def append(slot_dir: Path, seg: int, offset: int, payload: bytes, reason: str) -> None:
    """Append one refused frame (called by the owner's writer thread)."""
    _append_locked(slot_dir, _entry(seg, offset, reason, payload))


def _entry(seg: int, offset: int, reason: str, payload: bytes) -> bytes:
    note = {"seg": seg, "offset": offset, "reason": reason[:500], "bytes": len(payload)}
    return json.dumps(note).encode() + b"\n" + payload


def _append_locked(slot_dir: Path, data: bytes) -> None:
    """Append to the slot's log under its flock, durably."""
    path = slot_dir / LOG_NAME
    while True:
        with open(path, "ab") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                if _same_file(fh, path):
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                    return
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
        # A retry renamed the log between our open and our lock: write to the new one.


def _same_file(fh: IO[bytes], path: Path) -> bool:
    try:
        st = path.stat()
    except FileNotFoundError:
        return False
    own = os.fstat(fh.fileno())
    return (st.st_dev, st.st_ino) == (own.st_dev, own.st_ino)


def parse(data: bytes, slot: str = "") -> Iterator[Rejected]:
    """The entries of a rejected log; a torn last entry (a crash mid-append) is skipped."""
    pos = 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        if end < 0:
            return
        note = _note(data[pos:end])
        pos = end + 1
        if note is None:
            continue  # not a note: stray bytes of a damaged entry
        size = note.get("bytes")
        if isinstance(size, int) and size >= 0:
            payload = data[pos : pos + size]
            if len(payload) < size:
                return
            pos += size
        else:  # an entry from before notes carried their size
            start = pos
            while pos < len(data):
                end = data.find(b"\n", pos)
                end = len(data) if end < 0 else end + 1
                if _note(data[pos:end].rstrip(b"\n")) is not None:
                    break
                pos = end
            payload = data[start:pos]
        yield Rejected(slot, int(note["seg"]), int(note["offset"]), str(note["reason"]), payload)


def _note(line: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(line)
    except ValueError:
        return None
    if isinstance(value, dict) and value.keys() >= _NOTE_KEYS and "site_id" not in value:
        return value
    return None


def pending(spool_root: Path) -> list[Rejected]:
    """Every set-aside frame under the spool root, oldest slot first."""
    found: list[Rejected] = []
    for slot in slot_dirs(spool_root):
        for path in sorted(slot.glob(LOG_NAME + "*")):
            found.extend(parse(path.read_bytes(), slot.name))
    return found


@dataclass
class SlotStatus:
    name: str
    in_use: bool  # held by a running process
    waiting_rows: int
    waiting_bytes: int
    set_aside_frames: int
    set_aside_rows: int


def status(spool_root: Path) -> list[SlotStatus]:
    """What each spool slot holds: events not yet stored, and frames set aside."""
    from tracker.spool import read_frames, segment_path, slot_progress, slot_segments

    found = []
    for slot in slot_dirs(spool_root):
        committed, end, _ = slot_progress(slot)
        rows = size = 0
        for seg in slot_segments(slot):
            if seg < committed[0] or seg > end[0]:
                continue
            start = committed[1] if seg == committed[0] else 0
            with open(segment_path(slot, seg), "rb") as fh:
                limit = os.fstat(fh.fileno()).st_size
                while frames := read_frames(fh, start, limit, 1 << 30, 64 << 20):
                    rows += sum(f[3] for f in frames)
                    size += frames[-1][1] - start
                    start = frames[-1][1]
        aside = [r for r in pending(spool_root) if r.slot == slot.name]
        found.append(
            SlotStatus(slot.name, _in_use(slot), rows, size, len(aside), sum(r.rows for r in aside))
        )
    return found


def _in_use(slot: Path) -> bool:
    try:
        fh = open(slot / "lock", "rb")  # noqa: SIM115 - closed below
    except OSError:
        return False  # no lock file: no process ever took this slot
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        fh.close()  # closing releases a lock we took
    return False


def retry(
    store: Store,
    spool_root: Path,
    progress: Callable[[int], None] | None = None,
) -> RetryResult:
    """Insert every set-aside frame again. Frames ClickHouse still refuses stay in the log;
    a connection failure stops the retry and keeps everything not yet stored."""
    from tracker.writer import ClickHouseRejectedError, insert_raw

    result = RetryResult()
    for slot in slot_dirs(spool_root):
        spool_id = (slot / "id").read_text().strip() if (slot / "id").exists() else slot.name
        for path in _claim(slot):
            keep = bytearray()
            entries = list(parse(path.read_bytes(), slot.name))
            try:
                for n, entry in enumerate(entries):
                    try:
                        insert_raw(store, entry.payload, entry.token(spool_id))
                    except ClickHouseRejectedError as exc:
                        result.refused_frames += 1
                        result.refused_rows += entry.rows
                        result.last_reason = str(exc)
                        keep += _entry(entry.seg, entry.offset, str(exc), entry.payload)
                    except BaseException:
                        for rest in entries[n:]:
                            keep += _entry(rest.seg, rest.offset, rest.reason, rest.payload)
                        raise
                    else:
                        result.stored_frames += 1
                        result.stored_rows += entry.rows
                    if progress is not None:
                        progress(1)
            finally:
                _settle(slot, path, bytes(keep))
    return result


def _claim(slot: Path) -> list[Path]:
    """Rename the slot's log aside (left-over claims of an interrupted retry included) and
    wait out an append that opened it just before."""
    claimed = sorted(slot.glob(LOG_NAME + ".retry-*"))
    live = slot / LOG_NAME
    if live.exists():
        target = slot / f"{LOG_NAME}.retry-{os.getpid()}-{len(claimed)}"
        os.replace(live, target)
        claimed.append(target)
    for path in claimed:
        with open(path, "rb") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)  # blocks while an append is under way
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    return claimed


def _settle(slot: Path, claimed: Path, keep: bytes) -> None:
    """Put what is still refused back into the slot's log, then drop the claimed copy."""
    if keep:
        _append_locked(slot, keep)
    claimed.unlink()
