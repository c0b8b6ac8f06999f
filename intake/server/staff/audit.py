"""The staff audit log: who did what, on which day. Never content."""

from __future__ import annotations

from intake.server.models import AuditEntry
from intake.server.store import today


def record(db, staff_name: str, action: str, detail: str = "") -> None:
    with db.sessions() as s:
        s.add(AuditEntry(day=today(), staff_name=staff_name, action=action, detail=detail))
        s.commit()
