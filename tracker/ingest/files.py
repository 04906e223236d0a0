"""Reading event files for `funnel import`: a JSON array or NDJSON, optionally gzipped.

A file that cannot be read to its end (gzip data damaged or cut short, a read error) raises
EventFileError naming the file, the fault and how far reading got.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tracker.ingest.decode import parse_json
from tracker.ingest.errors import RequestError


class EventFileError(ValueError):
    """The file cannot be read to its end; the message says why and how far reading got."""


@contextlib.contextmanager
def _reading(path: Path, where: Callable[[], str]) -> Iterator[None]:
    """Turns what gzip, zlib and the OS raise into EventFileError; `where` says how far
    reading got ("after line 12")."""
    try:
        yield
    except EOFError:
        raise EventFileError(f"{path.name} is truncated: its gzip data ends {where()}") from None
    except (gzip.BadGzipFile, zlib.error) as exc:
        # zlib says "Error -3 while decompressing data: invalid code lengths set"
        reason = str(exc).rpartition("data: ")[2] or type(exc).__name__
        raise EventFileError(f"{path.name} has damaged gzip data {where()}: {reason}") from None
    except OSError as exc:
        raise EventFileError(f"cannot read {path.name} {where()}: {exc.strerror or exc}") from None


def _after_lines(lines: int) -> str:
    return f"after line {lines}" if lines else "at its start"


def _open(path: Path) -> io.BufferedIOBase:
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return gzip.GzipFile(path, "rb")
    return open(path, "rb")


def _first_char(path: Path) -> bytes:
    with _reading(path, lambda: _after_lines(0)), _open(path) as fh:
        while True:
            chunk = fh.read1(4096)  # what is readable: a truncated file fails further on
            if not chunk:
                return b""
            stripped = chunk.lstrip().lstrip(b"\xef\xbb\xbf").lstrip()
            if stripped:
                return stripped[:1]


def _lines(path: Path) -> Iterator[tuple[int, bytes]]:
    """(line number, line) of the whole file; EventFileError when it cannot be read to its end."""
    number = 0
    with _reading(path, lambda: _after_lines(number)), _open(path) as fh:
        for number, line in enumerate(fh, start=1):
            yield number, line


def count_events(path: Path) -> int:
    """How many events the file holds (array length or non-empty lines), for the progress bar."""
    if _first_char(path) == b"[":
        return len(_load_array(path))
    return sum(1 for _, line in _lines(path) if line.strip())


def _load_array(path: Path) -> list[Any]:
    body = bytearray()
    with _reading(path, lambda: f"after {len(body)} bytes"), _open(path) as fh:
        while chunk := fh.read1(1 << 20):
            body += chunk
    try:
        data = json.loads(body.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise ValueError(f"{path.name} is not a valid JSON array: {exc}") from None
    if not isinstance(data, list):
        raise ValueError(f"{path.name} holds JSON but not an array of events")
    return data


def iter_events(path: Path, bad_lines: list[int]) -> Iterator[Any]:
    """Events from the file; NDJSON lines that are not JSON are skipped and recorded."""
    if _first_char(path) == b"[":
        yield from _load_array(path)
        return
    for number, line in _lines(path):
        if not line.strip():
            continue
        try:
            yield parse_json(line)
        except RequestError:
            bad_lines.append(number)
