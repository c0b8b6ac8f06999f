"""Indexes for the daily quota (submissions and bytes received today), and a
staff account's second-factor failures and the day it was locked.

Revision ID: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_index("ix_submissions_received_day", "submissions", ["received_day"])
    op.create_index("ix_items_received_day", "items", ["received_day"])
    with op.batch_alter_table("staff_users") as batch:
        batch.add_column(sa.Column("totp_failures", sa.Integer(), nullable=False,
                                   server_default="0"))
        batch.add_column(sa.Column("locked_day", sa.Date(), nullable=True))
