"""Refusals that explain themselves in their reader's language.

A refusal's message is an English sentence with named values (%(name)s),
marked for translation with N_(): the console prints it as it is, the desk
shows it in the page's language (intake.workstation.desk).
"""

from __future__ import annotations


def N_(message: str) -> str:  # noqa: N802 - gettext's own name for "mark only"
    """Marks a message for the translators; it is translated where it is shown."""
    return message


class Refusal(Exception):
    """Something the workstation will not do; str() is the English sentence."""

    field: str | None = None  # the form field it is about, where there is one

    def __init__(self, message: str, **values: object):
        super().__init__(message % values if values else message)
        self.message, self.values = message, values

    def at(self, field: str) -> Refusal:
        """The same refusal, naming the form field it is about."""
        self.field = field
        return self
