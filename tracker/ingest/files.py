"""Reading event files for `funnel import`: a JSON array or NDJSON, optionally gzipped."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, cast

from tracker.ingest.decode import parse_json
from tracker.ingest.errors import RequestError


def _open(path: Path) -> IO[bytes]:
    with open(path, "rb") as probe:
        magic = probe.read(2)
    if magic == b"\x1f\x8b":
        return cast(IO[bytes], gzip.open(path, "rb"))
    return open(path, "rb")


def _first_char(path: Path) -> bytes:
    with _open(path) as fh:
        while True:
            chunk = fh.read(4096)
            if not chunk:
                return b""
            stripped = chunk.lstrip().lstrip(b"\xef\xbb\xbf").lstrip()
            if stripped:
                return stripped[:1]


def count_events(path: Path) -> int:
    """How many events the file holds (array length or non-empty lines), for the progress bar."""
    if _first_char(path) == b"[":
        return len(_load_array(path))
    with _open(path) as fh:
        return sum(1 for line in fh if line.strip())


def _load_array(path: Path) -> list[Any]:
    with _open(path) as fh:
        try:
            data = json.loads(fh.read().decode("utf-8-sig"))
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
    with _open(path) as fh:
        for number, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            try:
                yield parse_json(line)
            except RequestError:
                bad_lines.append(number)
