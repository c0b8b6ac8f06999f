import datetime as dt

from sqlalchemy import BigInteger, Boolean, Date, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from intake.server.models.base import Base


class StaffUser(Base):
    __tablename__ = "staff_users"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))  # Argon2id, libsodium's string
    totp_secret: Mapped[str] = mapped_column(String(64))
    last_totp_counter: Mapped[int] = mapped_column(BigInteger, default=0)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    # Wrong second factors after a right password, in a row: only someone who
    # has the password can count them. At the limit the account is locked for
    # the rest of the day (locked_day), or until `intake staff unlock`.
    totp_failures: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    locked_day: Mapped[dt.date | None] = mapped_column(Date, nullable=True)
