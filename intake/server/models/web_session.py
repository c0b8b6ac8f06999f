import datetime as dt

from sqlalchemy import Date, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from intake.server.models.base import Base


class WebSession(Base):
    """Server-side session state, sealed with a key only the cookie holder has.

    Without the cookie the row is noise; it names the day it expires, no time.
    """

    __tablename__ = "web_sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    expires_day: Mapped[dt.date] = mapped_column(Date, index=True)
