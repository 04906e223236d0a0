"""sites.currency: the currency sale values are in

Empty for existing sites, which keep showing plain numbers until someone picks a currency.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("sites") as batch_op:
        batch_op.add_column(
            sa.Column("currency", sa.String(length=3), nullable=False, server_default="")
        )


def downgrade() -> None:
    bind = op.get_bind()
    # SQLite drops a column by rebuilding the table: with foreign keys enforced, dropping the
    # old `sites` would cascade into funnels, memberships and links (see 0002).
    if bind.dialect.name == "sqlite" and bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("run this migration with SQLite foreign keys off")
    with op.batch_alter_table("sites") as batch_op:
        batch_op.drop_column("currency")
