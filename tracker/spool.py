"""The durable spool: accepted events are appended here (and fsynced) before the collector
answers 202, and the batch writer drains it into ClickHouse.

Layout under `<data dir>/spool/slot-N/` (one slot per serving process, held with an flock):
- `seg-<n>.log`: append-only segments of frames. A frame is one request's events as
  JSONEachRow lines behind a header `F<len:8 hex><rows:8 hex><crc32:8 hex>\\n`, so a torn
  tail left by a crash is recognised and ignored (it was never acknowledged).
- `state.json`: the committed position and the batch being inserted, if any. The batch range
  is written before the insert and replayed with the same dedup token after a crash, so
  ClickHouse drops the replay if the first attempt had already landed.

Every append is written to the segment file before the collector answers 202, so an
acknowledged event survives the process being killed (the kernel holds the bytes). With
`sync_each_append=True` (FUNNEL_SPOOL_FSYNC=always, the default) every append also waits for
fdatasync (group commit: one flush covers every write made so far, so concurrent requests share
its cost) and survives a power cut; otherwise the writer flushes every SYNC_INTERVAL seconds.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import threading
import time
import uuid
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import IO

SYNC_INTERVAL = 0.2  # seconds between background fdatasyncs
HEADER_LEN = 26  # b"F" + 8 + 8 + 8 hex digits + b"\n"
_SEG_RE = re.compile(r"^seg-(\d{12})\.log$")

Position = tuple[int, int]  # (segment number, byte offset)


class SpoolFullError(RuntimeError):
    """The spool reached its configured bound; the caller should answer 503 + Retry-After."""


class SpoolBusyError(RuntimeError):
    """Every spool slot is held by another process."""


@dataclass(frozen=True)
class Batch:
    """A contiguous range of whole frames in one segment, with its deterministic token."""

    seg: int
    start: int
    end: int
    rows: int
    payload: bytes
    frames: tuple[tuple[int, bytes], ...]  # (offset, payload) per frame, for quarantine

    def token(self, spool_id: str) -> str:
        return f"spool-{spool_id}-{self.seg}-{self.start}-{self.end}"


def encode_frame(payload: bytes, rows: int) -> bytes:
    header = b"F%08x%08x%08x\n" % (len(payload), rows, zlib.crc32(payload))
    return header + payload


def _parse_header(header: bytes) -> tuple[int, int, int] | None:
    if len(header) != HEADER_LEN or header[:1] != b"F" or header[-1:] != b"\n":
        return None
    try:
        return int(header[1:9], 16), int(header[9:17], 16), int(header[17:25], 16)
    except ValueError:
        return None


def read_frames(
    fh: IO[bytes], start: int, limit: int, max_rows: int, max_bytes: int
) -> list[tuple[int, int, bytes, int]]:
    """Whole, intact frames from `start` up to `limit` bytes: (offset, end, payload, rows)."""
    frames: list[tuple[int, int, bytes, int]] = []
    pos = start
    rows = 0
    size = 0
    fh.seek(pos)
    while pos + HEADER_LEN <= limit:
        parsed = _parse_header(fh.read(HEADER_LEN))
        if parsed is None:
            break
        length, count, crc = parsed
        end = pos + HEADER_LEN + length
        if end > limit:
            break
        payload = fh.read(length)
        if len(payload) != length or zlib.crc32(payload) != crc:
            break
        if frames and (rows + count > max_rows or size + length > max_bytes):
            break
        frames.append((pos, end, payload, count))
        rows += count
        size += length
        pos = end
    return frames


class Spool:
    """One process's spool slot: appends from request threads, reads by the writer thread."""

    def __init__(
        self,
        root: Path,
        max_bytes: int,
        segment_bytes: int | None = None,
        sync_each_append: bool = False,
    ) -> None:
        self.root = root
        self.sync_each_append = sync_each_append
        self.max_bytes = max_bytes
        self.segment_bytes = segment_bytes or max(64 * 1024, min(64 << 20, max_bytes // 8))
        self.dir: Path | None = None
        self.spool_id = ""
        self._lock_fh: IO[str] | None = None
        self._lock = threading.Lock()
        self._sync_lock = threading.Lock()
        self._fd = -1
        self._seg = 0
        self._size = 0  # bytes in the current segment
        self._seq = 0  # appends so far
        self._synced = 0  # appends covered by an fdatasync
        self._old_fds: list[int] = []
        self.committed: Position = (0, 0)
        self.pending: dict[str, int | str] | None = None
        self.appended_rows = 0
        self.committed_rows = 0
        self._seg_sizes: dict[int, int] = {}
        self._seg_started = time.monotonic()  # when the current segment became current

    # -- opening -------------------------------------------------------------------

    def open(self, slot: Path | None = None) -> None:
        """Take a free slot (or exactly `slot`), recover its state and position the append
        cursor. SpoolBusyError when no slot (or that slot) is free."""
        self.root.mkdir(parents=True, exist_ok=True)
        candidates = [slot] if slot is not None else [self.root / f"slot-{n}" for n in range(256)]
        for path in candidates:
            path.mkdir(exist_ok=True)
            fh = open(path / "lock", "a+")  # noqa: SIM115 - held for the process lifetime
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.close()
                continue
            self._lock_fh = fh
            self.dir = path
            break
        else:
            where = slot if slot is not None else f"all spool slots under {self.root}"
            raise SpoolBusyError(f"{where} in use")
        id_file = self.dir / "id"
        if not id_file.exists():
            _atomic_write(id_file, uuid.uuid4().hex)
        self.spool_id = id_file.read_text().strip()
        self._load_state()
        self._recover_tail()

    def _load_state(self) -> None:
        assert self.dir is not None
        path = self.dir / "state.json"
        if path.exists():
            state = json.loads(path.read_text())
            self.committed = (int(state["seg"]), int(state["off"]))
            self.pending = state.get("pending")
        segs = self.segments()
        if segs and self.committed[0] < segs[0]:
            self.committed = (segs[0], 0)

    def _recover_tail(self) -> None:
        """Scan the uncommitted segments: count rows, and cut a torn tail off the last one."""
        assert self.dir is not None
        segs = self.segments()
        backlog = 0
        for seg in segs:
            path = self._seg_path(seg)
            size = path.stat().st_size
            start = self.committed[1] if seg == self.committed[0] else 0
            if seg < self.committed[0]:
                self._seg_sizes[seg] = size
                continue
            valid_end = start
            with open(path, "rb") as fh:
                while True:
                    frames = read_frames(fh, valid_end, size, 1 << 30, 64 << 20)
                    if not frames:
                        break
                    valid_end = frames[-1][1]
                    backlog += sum(f[3] for f in frames)
            if valid_end < size and seg == segs[-1]:
                # Bytes after the last intact frame were never acknowledged.
                with open(path, "r+b") as fh:
                    fh.truncate(valid_end)
                size = valid_end
            self._seg_sizes[seg] = size
        self.appended_rows = backlog
        self.committed_rows = 0
        if segs:
            self._seg = segs[-1]
            self._size = self._seg_sizes[self._seg]
        else:
            # Never reuse a segment number: batch tokens derive from it, and a reused range
            # would look like a replay to ClickHouse's deduplication.
            self._seg = self.committed[0] + 1
            self._size = 0
            self.committed = (self._seg, 0)
        self._fd = os.open(self._seg_path(self._seg), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._seg_sizes[self._seg] = self._size
        self._seg_started = time.monotonic()
        _fsync_dir(self.dir)

    def segments(self) -> list[int]:
        assert self.dir is not None
        return slot_segments(self.dir)

    def _seg_path(self, seg: int) -> Path:
        assert self.dir is not None
        return segment_path(self.dir, seg)

    # -- appending -------------------------------------------------------------------

    @property
    def used_bytes(self) -> int:
        return sum(self._seg_sizes.values())

    @property
    def end(self) -> Position:
        return (self._seg, self._size)

    @property
    def backlog_rows(self) -> int:
        return max(0, self.appended_rows - self.committed_rows)

    def is_full(self, extra: int = 0) -> bool:
        return self.used_bytes + extra > self.max_bytes

    def append(self, payload: bytes, rows: int) -> Position:
        """Durably append one frame; returns the end position it reached."""
        frame = encode_frame(payload, rows)
        with self._lock:
            if self.is_full(len(frame)):
                raise SpoolFullError(
                    f"spool holds {self.used_bytes} bytes, bound {self.max_bytes} bytes"
                )
            if self._size and self._size + len(frame) > self.segment_bytes:
                self._rotate()
            _write_all(self._fd, frame)
            self._size += len(frame)
            self._seg_sizes[self._seg] = self._size
            self.appended_rows += rows
            self._seq += 1
            my_seq = self._seq
            position = (self._seg, self._size)
        if self.sync_each_append:
            self._sync(my_seq)
        return position

    def sync(self) -> None:
        """Flush every append made so far to the disk (called periodically by the writer)."""
        with self._lock:
            target = self._seq
        if target > self._synced and self._fd >= 0:
            self._sync(target)

    def _rotate(self) -> None:
        """Called with _lock held: finish the current segment and start the next."""
        os.fdatasync(self._fd)
        self._old_fds.append(self._fd)
        self._seg += 1
        self._size = 0
        self._fd = os.open(self._seg_path(self._seg), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._seg_sizes[self._seg] = 0
        self._seg_started = time.monotonic()
        assert self.dir is not None
        _fsync_dir(self.dir)

    def seal(self) -> bool:
        """Start a new segment so that the current one, once stored, is deleted: raw events
        then leave the disk soon after they reach ClickHouse (and at once for an erasure)."""
        with self._lock:
            if self._fd < 0 or not self._size:
                return False
            self._rotate()
            return True

    def seal_due(self, age: float) -> bool:
        """True when everything is stored and the current segment, holding raw events that are
        no longer needed, has been current for `age` seconds."""
        return (
            self.pending is None
            and self._size > 0
            and self.committed >= self.end
            and time.monotonic() - self._seg_started >= age
        )

    def _sync(self, my_seq: int) -> None:
        with self._sync_lock:
            if self._synced >= my_seq:
                return  # another thread's fdatasync already covered this append
            with self._lock:
                target, fd = self._seq, self._fd
            os.fdatasync(fd)
            self._synced = target

    # -- reading and committing (writer thread) -------------------------------------------

    def next_batch(self, max_rows: int, max_bytes: int) -> Batch | None:
        """The pending batch left by a crash, else the next frames after the committed point."""
        if self.pending is not None:
            seg, start, end = (int(self.pending[k]) for k in ("seg", "start", "end"))
            return self._read_batch(seg, start, end, 1 << 30, 1 << 40)
        seg, off = self.committed
        with self._lock:
            end_seg, end_off = self.end
        while True:
            limit = end_off if seg == end_seg else self._seg_sizes.get(seg, 0)
            if off < limit:
                return self._read_batch(seg, off, limit, max_rows, max_bytes)
            if seg >= end_seg:
                return None
            # This segment is fully committed: move on to the next one.
            seg, off = seg + 1, 0
            self._set_committed((seg, 0), None)
            self._drop_old_segments()

    def _read_batch(self, seg: int, start: int, limit: int, max_rows: int, max_bytes: int) -> Batch:
        with open(self._seg_path(seg), "rb") as fh:
            frames = read_frames(fh, start, limit, max_rows, max_bytes)
        if not frames:
            # Unreadable bytes inside a segment (disk damage): skip to the segment's end.
            return Batch(seg, start, limit, 0, b"", ())
        return Batch(
            seg=seg,
            start=start,
            end=frames[-1][1],
            rows=sum(f[3] for f in frames),
            payload=b"".join(f[2] for f in frames),
            frames=tuple((f[0], f[2]) for f in frames),
        )

    def begin(self, batch: Batch) -> None:
        """Record the batch's range before inserting it, so a crash replays the same range."""
        pending: dict[str, int | str] = {
            "seg": batch.seg,
            "start": batch.start,
            "end": batch.end,
            "token": batch.token(self.spool_id),
        }
        if self.pending != pending:
            self._set_committed(self.committed, pending)

    def commit(self, batch: Batch) -> None:
        self._set_committed((batch.seg, batch.end), None)
        self.committed_rows += batch.rows
        self._drop_old_segments()

    def _set_committed(self, position: Position, pending: dict[str, int | str] | None) -> None:
        assert self.dir is not None
        self.committed = position
        self.pending = pending
        state = {"seg": position[0], "off": position[1], "pending": pending}
        _atomic_write(self.dir / "state.json", json.dumps(state))

    def _drop_old_segments(self) -> None:
        for seg in [s for s in self._seg_sizes if s < self.committed[0]]:
            with contextlib.suppress(FileNotFoundError):
                self._seg_path(seg).unlink()
            self._seg_sizes.pop(seg, None)
        if self._old_fds and self.committed[0] == self._seg:
            # _sync_lock too: a concurrent _sync may be flushing one of these descriptors.
            with self._sync_lock, self._lock:
                old, self._old_fds = self._old_fds, []
                for fd in old:
                    os.close(fd)

    def close(self) -> None:
        with self._lock:
            if self._fd >= 0:
                os.fdatasync(self._fd)
                os.close(self._fd)
                self._fd = -1
            for fd in self._old_fds:
                os.close(fd)
            self._old_fds = []
        if self._lock_fh is not None:
            fcntl.flock(self._lock_fh.fileno(), fcntl.LOCK_UN)
            self._lock_fh.close()
            self._lock_fh = None


def slot_dirs(root: Path) -> list[Path]:
    """Every slot directory under the spool root, in slot order."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and re.fullmatch(r"slot-\d+", p.name)]
    return sorted(found, key=lambda p: int(p.name[5:]))


def slot_segments(slot: Path) -> list[int]:
    """The segment numbers present in a slot directory, oldest first."""
    found = (_SEG_RE.match(name) for name in os.listdir(slot))
    return sorted(int(m.group(1)) for m in found if m is not None)


def segment_path(slot: Path, seg: int) -> Path:
    return slot / f"seg-{seg:012d}.log"


def slot_progress(slot: Path) -> tuple[Position, Position, bool]:
    """(committed, end, batch in flight) of any slot, read from its files without its lock,
    so one process can tell whether another's spool has stored everything it accepted."""
    committed: Position = (0, 0)
    pending = False
    try:
        state = json.loads((slot / "state.json").read_text())
        committed = (int(state["seg"]), int(state["off"]))
        pending = state.get("pending") is not None
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        pass
    segs = slot_segments(slot)
    if segs and committed < (segs[0], 0):
        # As Spool._load_state reads it: a slot that never recorded a commit (no state.json:
        # nothing stored yet) starts at its first segment, and segments before the first one
        # present were stored and deleted. Read as (0, 0), an idle slot would seem to hold
        # its whole first segment back forever.
        committed = (segs[0], 0)
    end: Position = committed
    for seg in reversed(segs):
        try:
            end = (seg, segment_path(slot, seg).stat().st_size)
            break
        except FileNotFoundError:  # deleted by its owner meanwhile
            continue
    return committed, end, pending


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
