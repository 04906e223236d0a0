"""api_tokens.read_only and api_tokens.expires_at

Every token could do everything its user can (delete funnels, erase persons) and never
expired; a token for a BI tool now reads only, and any token may carry an end date.
Existing tokens keep full access and no end date.

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# On SQLite the batch rebuilds the table: it must keep AUTOINCREMENT (revision 0002), or
# revoked tokens' ids would be handed out again.
_KEEP = {"sqlite_autoincrement": True}


def upgrade() -> None:
    with op.batch_alter_table("api_tokens", table_kwargs=_KEEP) as batch:
        batch.add_column(
            sa.Column("read_only", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("expires_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_tokens", table_kwargs=_KEEP) as batch:
        batch.drop_column("expires_at")
        batch.drop_column("read_only")
