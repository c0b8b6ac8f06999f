"""The database schema's history, as Alembic migrations (intake.server.db.migrate)."""
