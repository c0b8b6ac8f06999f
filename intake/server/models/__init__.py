"""Data-only models: no crypto, no HTTP."""

from intake.server.models.audit_entry import AuditEntry
from intake.server.models.base import Base
from intake.server.models.item import Item
from intake.server.models.reply import Reply
from intake.server.models.staff_user import StaffUser
from intake.server.models.submission import Submission
from intake.server.models.web_session import WebSession
from intake.server.models.witness import Witness

__all__ = ["AuditEntry", "Base", "Item", "Reply", "StaffUser", "Submission", "WebSession",
           "Witness"]
