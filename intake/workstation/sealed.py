"""The metadata sealed inside an envelope, checked before anything uses it.

The sealed metadata is the truth about an item: where the manifest also
names the item's id, submission, witness, day or kind, the two must agree or
the item is refused. It is still untrusted input (anyone holding a team
public key can seal an envelope), so every member is checked for its type,
length and characters first (docs/bundle.md, "What decrypt checks").
"""

from __future__ import annotations

from dataclasses import dataclass

from intake.format.bundle import KINDS, Entry, check_day, check_id, check_sha256

ITEM_FORMAT = "intake-item/1"
MAX_NAME_CHARS = 1024
MAX_TYPE_CHARS = 255
MAX_TEXT_CHARS = 1000
MAX_LIST = 1000


class Refused(Exception):
    """An item that is not taken; the message (one line) says why."""


@dataclass(frozen=True)
class SealedItem:
    item_id: str
    submission_id: str
    witness_id: str
    received_day: str
    kind: str
    original_name: str
    detected_type: str
    sha256_kept: str
    sanitized: bool
    flags: list[str]
    original_of: str | None
    choices: dict
    metadata: dict  # everything, exactly as sealed

    @property
    def mime(self) -> str:
        return self.detected_type.split(";")[0].strip().lower()


def _malformed(field: str) -> Refused:
    return Refused(f"refused: its sealed metadata is malformed ({field})")


def _text(meta: dict, field: str, limit: int, *, optional: bool = True,
          nullable: bool = False) -> str | None:
    value = meta.get(field)
    if value is None and (nullable or (optional and field not in meta)):
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise _malformed(field)
    return value


def _texts(meta: dict, field: str) -> list[str]:
    value = meta.get(field, [])
    if not isinstance(value, list) or len(value) > MAX_LIST or \
            not all(isinstance(v, str) and len(v) <= MAX_TEXT_CHARS for v in value):
        raise _malformed(field)
    return value


def _flag(meta: dict, field: str) -> bool:
    value = meta.get(field, False)
    if not isinstance(value, bool):
        raise _malformed(field)
    return value


def check(meta: dict, entry: Entry) -> SealedItem:
    """The checked metadata of the envelope the manifest lists as `entry`."""
    if meta.get("format") != ITEM_FORMAT:
        raise Refused(f"refused: its sealed metadata is not {ITEM_FORMAT}")
    if check_id(meta.get("item_id")) is None:
        raise _malformed("item_id")
    if meta["item_id"] != entry.item_id:
        raise Refused("tampered: the envelope was moved from another item")
    for field, valid in (("submission_id", check_id), ("witness_id", check_id),
                         ("received_day", check_day)):
        if valid(meta.get(field)) is None:
            raise _malformed(field)
    if meta.get("kind") not in KINDS:
        raise _malformed("kind")
    for field in ("submission_id", "witness_id", "received_day", "kind"):
        if meta[field] != getattr(entry, field):
            raise Refused(f"tampered: its sealed {field} differs from the manifest's")
    detected = _text(meta, "detected_type", MAX_TYPE_CHARS, optional=False)
    assert detected is not None
    if not detected.isascii() or not detected.isprintable():
        raise _malformed("detected_type")
    name = _text(meta, "original_name", MAX_NAME_CHARS) or ""
    size = meta.get("size")
    if type(size) is not int or size < 0:
        raise _malformed("size")
    for field in ("sha256_received", "sha256_kept"):
        if check_sha256(meta.get(field)) is None:
            raise _malformed(field)
    _text(meta, "sanitizer", MAX_TEXT_CHARS, nullable=True)
    _text(meta, "sanitizer_version", MAX_TEXT_CHARS, nullable=True)
    _texts(meta, "removed")
    flags = _texts(meta, "flags")
    sanitized = _flag(meta, "sanitized")
    _flag(meta, "original_kept")
    choices = meta.get("choices", {})
    if not isinstance(choices, dict) or not isinstance(choices.get("keep_original", False),
                                                       bool):
        raise _malformed("choices")
    original_of = meta.get("original_of")
    if original_of is not None and (meta["kind"] != "original" or check_id(original_of) is None):
        raise _malformed("original_of")
    return SealedItem(entry.item_id, entry.submission_id, entry.witness_id, entry.received_day,
                      entry.kind, name, detected, meta["sha256_kept"], sanitized, flags,
                      original_of, choices, meta)
