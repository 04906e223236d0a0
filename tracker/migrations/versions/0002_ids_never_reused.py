"""ids of funnels, users and API tokens are never reused (SQLite AUTOINCREMENT)

SQLite hands a deleted row's id (when it was the highest) to the next row. These ids are in
URLs and API paths, so a bookmark of a deleted funnel would open, and a stale client's DELETE
would remove, the next one created. PostgreSQL sequences never reuse ids: nothing to do there.

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("users", "api_tokens", "funnels")


def _recreate(autoincrement: bool) -> None:
    bind = op.get_bind()
    if bind.dialect.name != "sqlite":
        return
    # Recreating a table drops the old one: with foreign keys enforced, that would cascade
    # into the rows referring to it (memberships, stages). Alembic's own connection does not
    # enforce them; refuse rather than lose data if some setup made it do so.
    if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("run this migration with SQLite foreign keys off")
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def upgrade() -> None:
    _recreate(True)


def downgrade() -> None:
    _recreate(False)
