"""Usage rows name the API a request came by, and a request id is unique (a row replayed from
the spool after a crash is not written twice).

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("usage") as table:
        table.add_column(
            sa.Column("endpoint", sa.String(16), nullable=False, server_default="chat")
        )
    op.create_index("ux_usage_request_id", "usage", ["request_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ux_usage_request_id", "usage")
    with op.batch_alter_table("usage") as table:
        table.drop_column("endpoint")
