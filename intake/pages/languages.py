"""The languages every page speaks."""

from __future__ import annotations

# Each language named in itself: a reader looks for their own word.
LANGUAGES: dict[str, str] = {
    "uk": "Українська",
    "ru": "Русский",
    "be": "Беларуская",
    "en": "English",
}
DEFAULT = "en"
