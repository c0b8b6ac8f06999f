"""Alembic's entry: migrations run on the connection Database.migrate() hands
over, under its lock; never from a URL of their own."""

from alembic import context

from intake.server.models import Base

connection = context.config.attributes["connection"]
# Batch mode: SQLite alters a table by copying it, PostgreSQL in place.
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
