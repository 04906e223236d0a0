import gzip
import json
import os
import re
import uuid
import zlib
from pathlib import Path

import pytest
from flask.testing import FlaskCliRunner

from tracker import accounts, writer
from tracker.cli import main
from tracker.clickhouse import Store
from tracker.configdb import db
from tracker.ingest import files
from tracker.models import Site

COMMANDS = [
    "serve",
    "migrate",
    "create-user",
    "create-site",
    "sites",
    "create-token",
    "create-link",
    "demo",
    "import",
    "export",
    "prune",
    "erase-person",
    "spool",
    "spool status",
    "spool retry",
]


@pytest.mark.parametrize("command", [[], *[c.split() for c in COMMANDS]])
def test_every_command_has_help(runner: FlaskCliRunner, command: list[str]) -> None:
    result = runner.invoke(main, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_user_site_and_token_round_trip(runner: FlaskCliRunner) -> None:
    result = runner.invoke(
        main,
        [
            "create-user",
            "--email",
            "Ann@Example.com",
            "--password",
            "s3cret-pass",
            "--role",
            "marketer",
        ],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        main,
        [
            "create-site",
            "--name",
            "Shop",
            "--domain",
            "https://shop.example/",
            "--owner",
            "ann@example.com",
            "--base-url",
            "https://stats.example",
            "--currency",
            "eur",
        ],
    )
    assert result.exit_code == 0, result.output
    key = re.search(r"with key (\S+)", result.output).group(1)
    assert (
        f'<script defer src="https://stats.example/t.js" data-site="{key}"></script>'
        in result.output
    )
    token = runner.invoke(main, ["create-token", "--email", "ann@example.com"]).output.strip()
    assert token.startswith("ft_")
    db.session.expire_all()
    user = accounts.user_for_token(db.session, token)
    assert user is not None and user.email == "ann@example.com"
    site = accounts.site_by_key(db.session, key)
    assert site.domains == ["shop.example"]
    assert site.currency == "EUR"
    assert [s.key for s in accounts.sites_for(db.session, user)] == [key]
    assert accounts.user_for_token(db.session, token + "x") is None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create-user", "--email", "nope", "--password", "longenough"], "not a valid email"),
        (["create-user", "--email", "a@b.example", "--password", "short"], "at least 8"),
        (["create-site", "--name", "X", "--timezone", "Mars/Base"], "unknown time zone"),
        # Longer than a file name: the zone lookup's OSError is still "unknown", not a crash.
        (["create-site", "--name", "X", "--timezone", "Z" * 300], "unknown time zone"),
        (["serve", "--port", "99999"], "not in the range 1<=x<=65535"),
        (["create-site", "--name", "X", "--domain", "bad domain!"], "not a valid domain"),
        (["create-site", "--name", "X", "--currency", "euro"], "three-letter ISO 4217"),
        (["create-site", "--name", "X", "--owner", "ghost@x.example"], "no user"),
        (["create-token", "--email", "ghost@x.example"], "no user"),
        (["export", "--site", "ghost"], "no site with key 'ghost' (`funnel sites` lists them)"),
    ],
)
def test_bad_input_is_one_line_and_non_zero(
    runner: FlaskCliRunner, args: list[str], message: str
) -> None:
    result = runner.invoke(main, args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_sites_lists_keys_settings_and_funnels(runner: FlaskCliRunner) -> None:
    import json

    empty = runner.invoke(main, ["sites"])
    assert empty.exit_code == 0 and "No sites yet" in empty.output
    for name, domain in (("Zoo shop", "zoo.example"), ("Art shop", "")):
        args = ["create-site", "--name", name, "--key", name.split()[0].lower()]
        result = runner.invoke(main, args + (["--domain", domain] if domain else []))
        assert result.exit_code == 0, result.output
    table = runner.invoke(main, ["sites"]).output.splitlines()
    assert table[0].split() == ["KEY", "NAME", "TIME", "ZONE", "DOMAINS", "FUNNELS"]
    # By name; every column starts where its header does.
    assert [line.split()[0] for line in table[1:]] == ["art", "zoo"]
    start = table[0].index("DOMAINS")
    assert table[1][start:].startswith("any ") and table[2][start:].startswith("zoo.example ")
    assert table[2].endswith(": Trace to sale")
    listed = json.loads(runner.invoke(main, ["sites", "--json"]).output)["sites"]
    assert [(s["key"], s["name"], s["domains"]) for s in listed] == [
        ("art", "Art shop", []),
        ("zoo", "Zoo shop", ["zoo.example"]),
    ]
    assert [f["name"] for f in listed[1]["funnels"]] == ["Trace to sale"]


def test_duplicate_user_is_refused(runner: FlaskCliRunner) -> None:
    args = ["create-user", "--email", "dup@x.example", "--password", "longenough"]
    assert runner.invoke(main, args).exit_code == 0
    result = runner.invoke(main, args)
    assert result.exit_code == 1 and "already exists" in result.output


def test_demo_is_deterministic_for_a_seed(runner: FlaskCliRunner, store: Store) -> None:
    def run(seed: int) -> int:
        result = runner.invoke(main, ["demo", "--visitors", "400", "--seed", str(seed)])
        assert result.exit_code == 0, result.output
        assert "admin@example.com" in result.output
        return int(store.scalar("SELECT count() FROM events WHERE site_id = 'demo'"))

    first = run(3)
    assert first > 400
    assert run(3) == first
    assert run(4) != first
    mix = dict(
        store.rows(
            "SELECT medium, uniqExact(visitor_id) FROM events WHERE site_id = 'demo' "
            "AND medium != '' GROUP BY medium"
        )
    )
    assert {"paid", "search", "social", "email", "direct"} <= set(mix)
    names = {r[0] for r in store.rows("SELECT DISTINCT name FROM events WHERE site_id = 'demo'")}
    assert {"signup", "purchase"} <= names


def _end_process(spool_root: Path) -> None:
    """What the end of a `funnel` process does to its batch writer: the thread stops and the
    spool slot is released, so the next command starts a writer of its own, as a new process
    would."""
    gone = writer._writers.pop(spool_root, None)
    if gone is not None:
        gone.stop()
        gone.spool.close()


def test_erase_person_again_and_after_an_import(
    runner: FlaskCliRunner,
    store: Store,
    site: Site,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Each erasure waits for every spool slot; the slot a previous command left (empty, with
    no state.json) must not count as events still waiting."""
    data_dir = tmp_path / "data"
    monkeypatch.setenv("FUNNEL_DATA_DIR", str(data_dir))  # a spool of this test's own
    monkeypatch.setenv("FUNNEL_CLICKHOUSE_DSN", store.dsn)
    spool_root = data_dir / "spool"

    def run(*args: str) -> str:
        try:
            result = runner.invoke(main, list(args))
        finally:
            _end_process(spool_root)
        assert result.exit_code == 0, result.output
        return result.output

    def import_visitors(*visitors: str) -> None:
        path = tmp_path / f"{uuid.uuid4().hex}.ndjson"
        events = [
            {"id": str(uuid.uuid4()), "type": "pageview", "url": "https://example.test/",
             "visitor": v, "ts": f"2025-03-0{day}T10:00:00Z"}
            for v in visitors for day in (1, 2)
        ]  # fmt: skip
        path.write_text("\n".join(json.dumps(e) for e in events) + "\n")
        assert f"Imported {len(events)} events" in run("import", str(path), "--site", site.key)

    def stored() -> set[str]:
        sql = "SELECT DISTINCT visitor_id FROM events WHERE site_id = {s:String}"
        return {r[0] for r in store.rows(sql, {"s": site.key})}

    import_visitors("v1", "v2", "v3", "v4")
    assert "Erased 2 events of person v1" in run("erase-person", "v1", "--site", site.key, "--yes")
    assert (spool_root / "slot-0").is_dir()  # left behind, as by a finished process
    assert "Erased 2 events of person v2" in run("erase-person", "v2", "--site", site.key, "--yes")
    import_visitors("v5")
    assert "Erased 2 events of person v3" in run("erase-person", "v3", "--site", site.key, "--yes")
    assert stored() == {"v4", "v5"}


@pytest.mark.parametrize(
    ("where", "reason"),
    [("missing/dir/x.ndjson", "No such file or directory"), ("a-file/x.ndjson", "Not a directory")],
)
def test_export_to_an_unusable_path_is_one_line(
    runner: FlaskCliRunner, site: Site, tmp_path: Path, where: str, reason: str
) -> None:
    (tmp_path / "a-file").write_text("")
    out = tmp_path / where
    result = runner.invoke(main, ["export", "--site", site.key, "-o", str(out)])
    assert result.exit_code == 1
    assert result.output == f"Error: cannot write {out}: {reason}\n"


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_exported_file_gets_the_umask_mode(
    runner: FlaskCliRunner, site: Site, tmp_path: Path, umask: int
) -> None:
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "events.ndjson.gz"
    previous = os.umask(umask)
    try:
        result = runner.invoke(main, ["export", "--site", site.key, "-o", str(out)])
    finally:
        os.umask(previous)
    assert result.exit_code == 0, result.output
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask
    assert list(out.parent.iterdir()) == [out]  # no temporary file left beside it


def _ndjson(n: int) -> bytes:
    """n distinct events as NDJSON, in the import format."""
    return b"".join(
        json.dumps(
            {
                "id": str(uuid.UUID(int=i + 1)),
                "type": "pageview",
                "url": f"https://example.test/p{i}",
                "visitor": f"v{i % 97}",
                "ts": "2025-03-01T10:00:00Z",
            }
        ).encode()
        + b"\n"
        for i in range(n)
    )


def _stored_count(store: Store, site: Site) -> int:
    return int(store.scalar(f"SELECT count() FROM events WHERE site_id = '{site.key}'"))


def _lines_before_the_cut(truncated_gzip: bytes) -> int:
    return zlib.decompressobj(wbits=31).decompress(truncated_gzip).count(b"\n")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"\x1f\x8b\x08\x00" + b"garbage" * 20, "has damaged gzip data at its start: invalid"),
        (b"\x1f\x8b\x09\x00" + bytes(20), "has damaged gzip data at its start: Unknown compr"),
        (b"\x1f\x8b", "is truncated: its gzip data ends at its start"),
    ],
    ids=["corrupt-body", "unknown-method", "header-only"],
)
def test_import_of_a_damaged_gzip_is_one_line(
    runner: FlaskCliRunner, store: Store, site: Site, tmp_path: Path, body: bytes, message: str
) -> None:
    path = tmp_path / "events.ndjson.gz"
    path.write_bytes(body)
    result = runner.invoke(main, ["import", str(path), "--site", site.key])
    assert result.exit_code == 1
    (line,) = result.output.splitlines()
    assert line.startswith(f"Error: events.ndjson.gz {message}")
    assert line.endswith("; nothing was imported")
    assert _stored_count(store, site) == 0


def test_import_of_a_truncated_gzip_names_the_line_and_imports_nothing(
    runner: FlaskCliRunner, store: Store, site: Site, tmp_path: Path
) -> None:
    whole = gzip.compress(_ndjson(3000))
    cut = whole[: len(whole) // 2]
    lines = _lines_before_the_cut(cut)
    assert 0 < lines < 3000
    array = gzip.compress(json.dumps([{}] * 1000).encode())[:-9]
    for name, body, where in (
        ("events.ndjson.gz", cut, f"line {lines}"),
        ("array.json.gz", array, f"{len(zlib.decompressobj(wbits=31).decompress(array))} bytes"),
    ):
        path = tmp_path / name
        path.write_bytes(body)
        result = runner.invoke(main, ["import", str(path), "--site", site.key])
        assert result.exit_code == 1
        assert result.output == (
            f"Error: {name} is truncated: its gzip data ends after {where}; nothing was imported\n"
        )
    assert _stored_count(store, site) == 0


def test_a_file_cut_short_while_importing_keeps_what_was_imported(
    runner: FlaskCliRunner,
    store: Store,
    site: Site,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The file is cut short after it was counted (a download still being written): the
    chunks imported before the cut stay, and a re-run with the whole file adds the rest once."""
    from tracker.ingest.importer import CHUNK

    whole = gzip.compress(_ndjson(CHUNK + 2000), mtime=0)
    path = tmp_path / "events.ndjson.gz"
    path.write_bytes(whole)
    cut = whole[: int(len(whole) * 0.8)]
    assert CHUNK < _lines_before_the_cut(cut) < CHUNK + 2000
    count = files.count_events

    def count_then_cut(file: Path) -> int:
        total = count(file)
        file.write_bytes(cut)
        return total

    monkeypatch.setattr(files, "count_events", count_then_cut)
    result = runner.invoke(main, ["import", str(path), "--site", site.key])
    monkeypatch.setattr(files, "count_events", count)
    assert result.exit_code == 1
    assert result.output.splitlines()[-1] + "\n" == (
        f"Error: events.ndjson.gz is truncated: its gzip data ends after line "
        f"{_lines_before_the_cut(cut)}; {CHUNK} events were imported before that "
        "(0 already present), and a re-run skips them\n"
    )
    assert _stored_count(store, site) == CHUNK
    path.write_bytes(whole)
    again = runner.invoke(main, ["import", str(path), "--site", site.key])
    assert again.exit_code == 0, again.output
    assert f"Imported 2000 events into {site.key} ({CHUNK} already present" in again.output
    assert _stored_count(store, site) == CHUNK + 2000


def test_an_unusable_config_store_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A config store that cannot be opened (here a directory where the database file should
    be; on a server, one that is down) names the setting instead of a traceback."""
    from click.testing import CliRunner

    folder = tmp_path / "not-a-db"
    folder.mkdir()
    monkeypatch.setenv("FUNNEL_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("FUNNEL_DATABASE_URL", f"sqlite:///{folder}")
    result = CliRunner().invoke(main, ["sites"])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: FUNNEL_DATABASE_URL: the config store cannot be used: unable to open database file"
    ]
    assert result.exception is None or isinstance(result.exception, SystemExit)
