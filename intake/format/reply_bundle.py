"""The reply bundle: answers written on the air-gapped workstation, carried to
the server, and shown to a witness who logs in with their codename.

A reply bundle is a POSIX tar, manifest first:

    manifest.json        {"format": "intake-replies/1", "day": ...,
                          "replies": [{"reply_id", "witness_id", "name", "size", "sha256"}]}
    replies/<id>.env     an envelope sealed to that witness's reply public key only

Both sides use this module: the workstation writes the bundle, the server
reads it (intake.server.reply_import). The server cannot read a reply.
"""

from __future__ import annotations

import hashlib
import json
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass

from intake.format import bundle, untrusted_json

FORMAT = "intake-replies/1"
MAX_REPLY_BYTES = 1024 * 1024
MAX_REPLIES = 20_000  # far more than a team answers between two trips
_ID = re.compile(r"[0-9a-f]{32}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class ReplyEntry:
    reply_id: str
    witness_id: str
    size: int
    sha256: str
    submission_id: str = ""  # what it answers: for the team's records, not needed here

    @property
    def name(self) -> str:
        return f"replies/{self.reply_id}.env"

    def listed(self) -> dict:
        fields = {k: v for k, v in self.__dict__.items() if v != "" or k != "submission_id"}
        return {**fields, "name": self.name}


def iter_reply_bundle(day: str, replies: list[tuple[ReplyEntry, bytes]]) -> Iterator[bytes]:
    """The reply bundle, as the workstation writes it and the server reads it."""
    manifest = json.dumps({"format": FORMAT, "day": day, "replies": [
        e.listed() for e, _ in replies]}, indent=1, sort_keys=True).encode()
    yield from bundle.member(bundle.MANIFEST, len(manifest), [manifest])
    for entry, data in replies:
        yield from bundle.member(entry.name, len(data), [data])
    yield b"\0" * (2 * bundle.BLOCK)


def entry_for(reply_id: str, witness_id: str, envelope: bytes,
              submission_id: str = "") -> ReplyEntry:
    return ReplyEntry(reply_id, witness_id, len(envelope), hashlib.sha256(envelope).hexdigest(),
                      submission_id)


def read_manifest(tar: tarfile.TarFile) -> dict[str, ReplyEntry]:
    """The manifest's entries by member name. The whole bundle is refused
    (BundleError) when the manifest is not exactly what the workstation
    writes: every field of the type and form written, no reply listed twice,
    at most MAX_REPLIES of them."""
    first = tar.next()
    if first is None or first.name != bundle.MANIFEST:
        raise bundle.BundleError("not a reply bundle (no manifest at the start)")
    try:
        doc = untrusted_json.loads(tar.extractfile(first).read())
    except ValueError as exc:
        raise bundle.BundleError("the reply bundle's manifest is damaged") from exc
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise bundle.BundleError("not a reply bundle (unknown format)")
    listed = doc.get("replies")
    if not isinstance(listed, list):
        raise bundle.BundleError("the reply bundle's manifest is damaged (no list of replies)")
    if len(listed) > MAX_REPLIES:
        raise bundle.BundleError(f"the reply bundle lists more than {MAX_REPLIES} replies")
    entries: dict[str, ReplyEntry] = {}
    for n, r in enumerate(listed, 1):
        entry = _entry(r)
        if entry is None:
            raise bundle.BundleError(f"the reply bundle's manifest is damaged (reply {n})")
        if entry.name in entries:
            raise bundle.BundleError("the reply bundle's manifest is damaged (reply "
                                     f"{entry.reply_id} is listed twice)")
        entries[entry.name] = entry
    return entries


def _entry(r: object) -> ReplyEntry | None:
    """One listing, if every field is what the workstation writes."""
    if not isinstance(r, dict):
        return None
    reply_id, witness_id, size, sha = (r.get(k) for k in ("reply_id", "witness_id", "size",
                                                          "sha256"))
    if not all(isinstance(v, str) and _ID.fullmatch(v) for v in (reply_id, witness_id)):
        return None
    if type(size) is not int or not 0 < size <= MAX_REPLY_BYTES:
        return None
    if not isinstance(sha, str) or not _SHA256.fullmatch(sha):
        return None
    if r.get("name", f"replies/{reply_id}.env") != f"replies/{reply_id}.env":
        return None
    return ReplyEntry(reply_id, witness_id, size, sha)
