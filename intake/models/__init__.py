"""Data-only models: no crypto, no HTTP."""

from intake.models.item import Item
from intake.models.submission import Submission
from intake.models.web_session import WebSession
from intake.models.witness import Witness

__all__ = ["Item", "Submission", "WebSession", "Witness"]
