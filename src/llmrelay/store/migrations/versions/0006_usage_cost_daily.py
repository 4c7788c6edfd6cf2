"""Keys may have a money budget; usage rows carry their cached tokens and cost; daily totals
per key and model (``usage_daily``), filled from the rows there are; indexes for the views by
key and by model.

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op

from llmrelay.store.rollup import TOTAL_COLUMNS, rollup_sql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as table:
        table.add_column(sa.Column("budget_nanousd", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("usage") as table:
        table.add_column(
            sa.Column("cached_tokens", sa.Integer(), nullable=False, server_default="0")
        )
        table.add_column(
            sa.Column("cache_write_tokens", sa.Integer(), nullable=False, server_default="0")
        )
        table.add_column(sa.Column("cost_nanousd", sa.BigInteger(), nullable=True))
    op.drop_index("ix_usage_key_id", "usage")
    op.create_index("ix_usage_key_created", "usage", ["key_id", "created_at"])
    op.create_index("ix_usage_model_created", "usage", ["model_requested", "created_at"])
    op.create_table(
        "usage_daily",
        sa.Column("day", sa.String(10), primary_key=True),
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("model", sa.String(200), primary_key=True),
        *(
            sa.Column(name, sa.BigInteger(), nullable=False, server_default="0")
            for name in TOTAL_COLUMNS
        ),
    )
    op.create_index("ix_usage_daily_key_day", "usage_daily", ["key_id", "day"])
    # the rows written before: priced at nothing known (unpriced where they used tokens)
    op.execute(rollup_sql(op.get_bind().dialect.name, since_id=0))


def downgrade() -> None:
    op.drop_table("usage_daily")
    op.drop_index("ix_usage_model_created", "usage")
    op.drop_index("ix_usage_key_created", "usage")
    op.create_index("ix_usage_key_id", "usage", ["key_id"])
    with op.batch_alter_table("usage") as table:
        table.drop_column("cost_nanousd")
        table.drop_column("cache_write_tokens")
        table.drop_column("cached_tokens")
    with op.batch_alter_table("api_keys") as table:
        table.drop_column("budget_nanousd")
