"""The first schema, as servers made it before migrations: created where it
is missing, left alone where create_all() made it already.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None


def _tables() -> dict[str, tuple]:
    return {
        "witnesses": (
            sa.Column("id", sa.String(32), primary_key=True),
            sa.Column("lookup_hash", sa.String(64), nullable=False),
            sa.Column("reply_public_key", sa.LargeBinary(32), nullable=False),
            sa.Column("created_day", sa.Date(), nullable=False),
            sa.Column("last_active_day", sa.Date(), nullable=False),
            sa.UniqueConstraint("lookup_hash", name="uq_witnesses_lookup_hash"),
        ),
        "submissions": (
            sa.Column("id", sa.String(32), primary_key=True),
            sa.Column("witness_id", sa.String(32),
                      sa.ForeignKey("witnesses.id",
                                    name="fk_submissions_witness_id_witnesses"),
                      nullable=False, index=True),
            sa.Column("received_day", sa.Date(), nullable=False),
        ),
        "items": (
            sa.Column("id", sa.String(32), primary_key=True),
            sa.Column("submission_id", sa.String(32),
                      sa.ForeignKey("submissions.id",
                                    name="fk_items_submission_id_submissions"),
                      nullable=False, index=True),
            sa.Column("kind", sa.String(16), nullable=False),
            sa.Column("size", sa.BigInteger(), nullable=False),
            sa.Column("sha256", sa.String(64), nullable=False),
            sa.Column("received_day", sa.Date(), nullable=False),
            sa.Column("state", sa.String(16), nullable=False, index=True),
            sa.Column("exported_day", sa.Date(), nullable=True),
        ),
        "replies": (
            sa.Column("id", sa.String(32), primary_key=True),
            sa.Column("witness_id", sa.String(32),
                      sa.ForeignKey("witnesses.id", name="fk_replies_witness_id_witnesses"),
                      nullable=False, index=True),
            sa.Column("envelope", sa.LargeBinary(), nullable=False),
            sa.Column("received_day", sa.Date(), nullable=False),
        ),
        "web_sessions": (
            sa.Column("id", sa.String(64), primary_key=True),
            sa.Column("sealed", sa.LargeBinary(), nullable=False),
            sa.Column("expires_day", sa.Date(), nullable=False, index=True),
        ),
        "staff_users": (
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("name", sa.String(64), nullable=False),
            sa.Column("password_hash", sa.String(255), nullable=False),
            sa.Column("totp_secret", sa.String(64), nullable=False),
            sa.Column("last_totp_counter", sa.BigInteger(), nullable=False),
            sa.Column("is_admin", sa.Boolean(), nullable=False),
            sa.UniqueConstraint("name", name="uq_staff_users_name"),
        ),
        "staff_audit": (
            sa.Column("id", sa.Integer(), primary_key=True),
            sa.Column("day", sa.Date(), nullable=False),
            sa.Column("staff_name", sa.String(64), nullable=False),
            sa.Column("action", sa.String(64), nullable=False),
            sa.Column("detail", sa.Text(), nullable=False),
        ),
    }


def upgrade() -> None:
    existing = set(sa.inspect(op.get_bind()).get_table_names())
    for name, columns in _tables().items():
        if name not in existing:
            op.create_table(name, *columns)
