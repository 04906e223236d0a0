"""Numbered ClickHouse migrations from schema/*.sql, recorded in a ledger table.

Each file is a Jinja2 template so one source renders both layouts: plain MergeTree tables on a
single node, or Replicated* tables with a Distributed table in front, ON CLUSTER, when
FUNNEL_CLICKHOUSE_CLUSTER is set. Only validated identifiers are rendered into DDL.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, StrictUndefined

from tracker.clickhouse import Store

LEDGER = "funnel_schema_migrations"
_FILE_RE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


def schema_dir() -> Path:
    """The repository's schema/ in a checkout, else the copy packaged into the wheel."""
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "schema", here / "_schema"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError("schema/ directory not found next to the tracker package")


@dataclass(frozen=True)
class Migration:
    version: str
    name: str
    template: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.template.encode()).hexdigest()[:16]


def load_migrations(directory: Path | None = None) -> list[Migration]:
    directory = directory or schema_dir()
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_RE.match(path.name)
        if not match:
            raise ValueError(f"schema file {path.name} is not named NNNN_name.sql")
        found.append(Migration(match.group(1), match.group(2), path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"duplicate schema migration numbers in {directory}")
    return found


def _env(cluster: str) -> Environment:
    env = Environment(autoescape=False, undefined=StrictUndefined, keep_trailing_newline=True)  # noqa: S701 - renders DDL, not HTML
    quoted = "'" + cluster + "'"

    def local_table(name: str) -> str:
        return f"{name}_local" if cluster else name

    def engine(kind: str, table: str) -> str:
        if not cluster:
            return f"{kind}()"
        path = f"'/clickhouse/tables/{{shard}}/{{database}}/{table}_local'"
        return f"Replicated{kind}({path}, '{{replica}}')"

    env.globals.update(
        cluster=cluster,
        cluster_literal=quoted,
        on_cluster=f"ON CLUSTER {quoted}" if cluster else "",
        local_table=local_table,
        engine=engine,
    )
    return env


def render(migration: Migration, cluster: str = "") -> list[str]:
    """The migration's statements for this layout, one string per statement."""
    sql = _env(cluster).from_string(migration.template).render()
    statements = []
    for chunk in re.split(r";\s*(?:\n|$)", sql):
        lines = [ln for ln in chunk.splitlines() if not ln.strip().startswith("--")]
        text = "\n".join(lines).strip()
        if text:
            statements.append(text)
    return statements


def ledger_ddl(cluster: str = "") -> str:
    on_cluster = f" ON CLUSTER '{cluster}'" if cluster else ""
    engine = (
        "ReplicatedReplacingMergeTree('/clickhouse/tables/{database}/" + LEDGER + "', '{replica}')"
        if cluster
        else "ReplacingMergeTree()"
    )
    return (
        f"CREATE TABLE IF NOT EXISTS {LEDGER}{on_cluster} "
        "(version String, name String, checksum String, applied_at DateTime DEFAULT now()) "
        f"ENGINE = {engine} ORDER BY version"
    )


def applied_versions(store: Store) -> set[str]:
    store.command(ledger_ddl(store.cluster))
    return {row[0] for row in store.writer.query(f"SELECT version FROM {LEDGER}").result_rows}


def migrate(store: Store, migrations: list[Migration] | None = None) -> list[str]:
    """Apply pending migrations in order; returns the versions applied (none on a re-run)."""
    migrations = load_migrations() if migrations is None else migrations
    done = applied_versions(store)
    applied = []
    for migration in migrations:
        if migration.version in done:
            continue
        for statement in render(migration, store.cluster):
            store.command(statement)
        store.writer.insert(
            LEDGER,
            [[migration.version, migration.name, migration.checksum]],
            column_names=["version", "name", "checksum"],
        )
        applied.append(migration.version)
    return applied
