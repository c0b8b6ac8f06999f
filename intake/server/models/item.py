import datetime as dt

from sqlalchemy import BigInteger, Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from intake.server.models.base import Base


class Item(Base):
    """One envelope in the store, waiting in the queue or already exported."""

    __tablename__ = "items"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    submission_id: Mapped[str] = mapped_column(ForeignKey("submissions.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # testimony | file | original
    size: Mapped[int] = mapped_column(BigInteger)  # of the envelope
    sha256: Mapped[str] = mapped_column(String(64))  # of the envelope
    received_day: Mapped[dt.date] = mapped_column(Date, index=True)  # the daily quota
    state: Mapped[str] = mapped_column(String(16), default="waiting", index=True)
    exported_day: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
