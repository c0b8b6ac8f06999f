"""How each witness record was derived: 1 (Argon2id) for the records already
there, 2 (keyed BLAKE2b) for every new one (intake.server.codename).

Revision ID: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    with op.batch_alter_table("witnesses") as batch:
        batch.add_column(sa.Column("derivation", sa.Integer(), nullable=False,
                                   server_default="1"))
    op.create_index("ix_witnesses_derivation", "witnesses", ["derivation"])
