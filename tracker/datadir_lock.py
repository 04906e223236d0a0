"""Advisory file locks that say who holds the embedded store.

chDB allows one process per data directory, and its own error is cryptic. We take an flock
first and, when it is held, report the holder's pid and command so the user knows what to stop.
"""

from __future__ import annotations

import fcntl
import os
import sys
from pathlib import Path
from typing import IO


class StoreLockedError(RuntimeError):
    """The embedded store (or the serve slot) belongs to another running process."""


class DataDirLock:
    def __init__(self, path: Path, what: str) -> None:
        self.path = path
        self.what = what
        self._fh: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._fh is not None

    def acquire(self) -> None:
        if self._fh is not None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")  # noqa: SIM115 - kept open while the lock is held
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown process"
            fh.close()
            raise StoreLockedError(
                f"{self.what} at {self.path.parent} is in use by {holder}. "
                "Stop that process first, or point FUNNEL_DATA_DIR at another directory, "
                "or use a ClickHouse server (FUNNEL_CLICKHOUSE_DSN=http://...) "
                "to share the data between processes."
            ) from None
        fh.seek(0)
        fh.truncate()
        command = " ".join(Path(a).name if i == 0 else a for i, a in enumerate(sys.argv))
        fh.write(f"pid {os.getpid()} ({command})\n")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is None:
            return
        try:
            self._fh.seek(0)
            self._fh.truncate()
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
        finally:
            self._fh.close()
            self._fh = None
