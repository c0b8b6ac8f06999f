import datetime as dt

from sqlalchemy import Date, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from intake.server.models.base import Base


class Submission(Base):
    __tablename__ = "submissions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    witness_id: Mapped[str] = mapped_column(ForeignKey("witnesses.id"), index=True)
    received_day: Mapped[dt.date] = mapped_column(Date, index=True)  # the daily quota
