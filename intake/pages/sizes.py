"""Sizes as a reader of the page reads them, on the server's pages and the desk alike."""

from __future__ import annotations

from flask_babel import get_locale, ngettext
from flask_babel import gettext as _

# Languages that write a decimal comma. Babel's number formatting would load
# its locale data (about 5 MB in every worker) for this one character.
DECIMAL_COMMA = {"uk", "ru", "be"}


def human_size(n: int) -> str:
    """A size in the page's language: "730 bytes", "2 GiB", "2,5 МіБ"."""
    if n < 1024:
        return ngettext("%(num)d byte", "%(num)d bytes", n)
    value = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    number = f"{value:.1f}".removesuffix(".0")
    locale = get_locale()
    if locale is not None and locale.language in DECIMAL_COMMA:
        number = number.replace(".", ",")
    units = {"KiB": _("%(number)s KiB", number=number),
             "MiB": _("%(number)s MiB", number=number),
             "GiB": _("%(number)s GiB", number=number)}
    return units[unit]
