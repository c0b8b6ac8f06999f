import datetime as dt

from sqlalchemy import Date, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from intake.server.models.base import Base


class Witness(Base):
    """One codename. Only derived values are kept, never the codename."""

    __tablename__ = "witnesses"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    lookup_hash: Mapped[str] = mapped_column(String(64), unique=True)
    reply_public_key: Mapped[bytes] = mapped_column(LargeBinary(32))
    created_day: Mapped[dt.date] = mapped_column(Date)
    last_active_day: Mapped[dt.date] = mapped_column(Date)
    # How lookup_hash and the reply key were derived (intake.server.codename).
    derivation: Mapped[int] = mapped_column(Integer, server_default="1",
                                            index=True)
