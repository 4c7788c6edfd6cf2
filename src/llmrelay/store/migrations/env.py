"""Alembic's entry point: runs on the connection ``Database.migrate`` hands it."""

from alembic import context

from llmrelay.store.schema import Base

context.configure(
    connection=context.config.attributes["connection"],
    target_metadata=Base.metadata,
    render_as_batch=True,  # SQLite alters tables by copying them
)
with context.begin_transaction():
    context.run_migrations()
