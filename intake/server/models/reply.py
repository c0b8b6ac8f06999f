import datetime as dt

from sqlalchemy import Date, ForeignKey, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from intake.server.models.base import Base


class Reply(Base):
    """A reply from staff: an envelope sealed to the witness's reply key."""

    __tablename__ = "replies"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    witness_id: Mapped[str] = mapped_column(ForeignKey("witnesses.id"), index=True)
    envelope: Mapped[bytes] = mapped_column(LargeBinary)
    received_day: Mapped[dt.date] = mapped_column(Date)
