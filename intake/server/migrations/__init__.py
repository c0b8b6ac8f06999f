"""The database schema's history, as Alembic migrations (intake.server.db.migrate)."""

# The newest revision (versions/): a worker that finds the database at it
# need not load Alembic at all. tests/test_faults.py keeps it in step.
HEAD = "0003"
