"""Data-only models: no crypto, no HTTP."""

from intake.models.audit_entry import AuditEntry
from intake.models.item import Item
from intake.models.reply import Reply
from intake.models.staff_user import StaffUser
from intake.models.submission import Submission
from intake.models.web_session import WebSession
from intake.models.witness import Witness

__all__ = ["AuditEntry", "Item", "Reply", "StaffUser", "Submission", "WebSession", "Witness"]
