"""Frames ClickHouse refused, set aside in rejected.log: the log's format (old and new notes,
torn tails) and the way back, `funnel spool retry`, on the real engine."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest
from flask.testing import FlaskCliRunner

from tracker import quarantine
from tracker.cli import main
from tracker.clickhouse import Store

# The session's embedded ClickHouse (tests/conftest.py points FUNNEL_DATA_DIR at it first).
SESSION_CH = f"chdb://{Path(os.environ['FUNNEL_DATA_DIR']) / 'clickhouse'}"


def row(site: str, visitor: str = "v") -> tuple[str, bytes]:
    event_id = str(uuid.uuid4())
    line = {
        "site_id": site,
        "event_id": event_id,
        "type": "pageview",
        "ts": "2026-01-02 03:04:05.678",
        "received_at": "2026-01-02 03:04:05.678",
        "visitor_id": visitor,
    }
    return event_id, json.dumps(line).encode() + b"\n"


def note(seg: int, offset: int, reason: str, size: int | None = None) -> bytes:
    fields: dict[str, object] = {"seg": seg, "offset": offset, "reason": reason}
    if size is not None:
        fields["bytes"] = size
    return json.dumps(fields).encode() + b"\n"


A = b'{"site_id": "s", "x": 1}\n'
B = b'{"site_id": "s", "x": 2}\n{"site_id": "s", "x": 3}\n'


@pytest.mark.parametrize(
    ("log", "expected"),
    [
        (b"", []),
        (note(1, 0, "r", len(A)) + A, [(1, 0, A)]),
        (note(1, 0, "r", len(A)) + A + note(2, 26, "q", len(B)) + B, [(1, 0, A), (2, 26, B)]),
        # Notes written before they carried their size: payload lines up to the next note.
        (note(1, 0, "r") + A + note(2, 26, "q") + B, [(1, 0, A), (2, 26, B)]),
        (note(1, 0, "r") + A + note(2, 26, "q", len(B)) + B, [(1, 0, A), (2, 26, B)]),
        # A crash in the middle of an append: the torn entry is not an entry.
        (note(1, 0, "r", len(A)) + A + note(2, 26, "q", len(B)) + B[:10], [(1, 0, A)]),
        (note(1, 0, "r", len(A)) + A + b'{"seg": 2, "off', [(1, 0, A)]),
        # A payload line that looks a bit like a note is still payload (it names a site).
        (
            note(1, 0, "r") + b'{"seg": 1, "offset": 2, "reason": "x", "site_id": "s"}\n',
            [(1, 0, b'{"seg": 1, "offset": 2, "reason": "x", "site_id": "s"}\n')],
        ),
    ],
)
def test_parse(log: bytes, expected: list[tuple[int, int, bytes]]) -> None:
    assert [(e.seg, e.offset, e.payload) for e in quarantine.parse(log)] == expected


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The CLI on the session's ClickHouse, with its own data dir (and so its own spool)."""
    monkeypatch.setenv("FUNNEL_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FUNNEL_CLICKHOUSE_DSN", SESSION_CH)
    return tmp_path / "spool"


def count(store: Store, event_ids: list[str]) -> dict[str, int]:
    rows = store.rows(
        "SELECT toString(event_id), count() FROM events WHERE event_id IN {ids:Array(UUID)}"
        " GROUP BY event_id",
        {"ids": event_ids},
    )
    return {r[0]: int(r[1]) for r in rows}


def test_retry_stores_what_is_accepted_now_and_keeps_the_rest(
    runner: FlaskCliRunner, store: Store, cli_env: Path, key: str
) -> None:
    slot = cli_env / "slot-0"
    slot.mkdir(parents=True)
    (slot / "id").write_text("abc")
    a, frame_a = row(key)
    b1, line_b1 = row(key)
    b2, line_b2 = row(key)
    poison = json.dumps({"site_id": key, "event_id": "not-a-uuid", "ts": "yesterday"}).encode()
    log = (
        note(3, 0, "Cannot parse (a column that was missing)", len(frame_a))
        + frame_a
        + note(3, 400, "old note without size")
        + line_b1
        + line_b2
        + note(4, 0, "Cannot parse", len(poison) + 1)
        + poison
        + b"\n"
    )
    (slot / "rejected.log").write_bytes(log)

    status = runner.invoke(main, ["spool", "status"])
    assert status.exit_code == 0, status.output
    assert "slot-0 (free): 0 events waiting (0 bytes), 3 frames set aside (4 events)" in (
        status.output
    )

    result = runner.invoke(main, ["spool", "retry"])
    assert result.exit_code == 1
    assert "Stored 3 events (2 frames)." in result.output
    assert "1 frames (1 events) are still refused" in result.output
    assert count(store, [a, b1, b2]) == {a: 1, b1: 1, b2: 1}
    left = list(quarantine.parse((slot / "rejected.log").read_bytes()))
    assert [(e.seg, e.payload) for e in left] == [(4, poison + b"\n")]
    assert sorted(p.name for p in slot.iterdir()) == ["id", "rejected.log"]

    # Run again, as after an interruption that left stored frames in the log: no doubles.
    (slot / "rejected.log").write_bytes(log)
    result = runner.invoke(main, ["spool", "retry"])
    assert result.exit_code == 1 and "Stored 3 events" in result.output
    assert count(store, [a, b1, b2]) == {a: 1, b1: 1, b2: 1}

    (slot / "rejected.log").unlink()
    result = runner.invoke(main, ["spool", "retry"])
    assert result.exit_code == 0 and "No frames are set aside." in result.output


def test_status_counts_what_waits_in_each_slot(
    runner: FlaskCliRunner, cli_env: Path, key: str
) -> None:
    from tracker.spool import Spool

    live = Spool(cli_env, 10 << 20)
    live.open()
    gone = Spool(cli_env, 10 << 20)
    gone.open()
    for _ in range(3):
        gone.append(row(key)[1] + row(key)[1], 2)
    gone.close()
    result = runner.invoke(main, ["spool", "status"])
    live.close()
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("slot-0 (in use by a running process): 0 events waiting")
    assert lines[1].startswith("slot-1 (free): 6 events waiting (")
    assert "0 frames set aside" in lines[1]
