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
_ID = re.compile(r"^[0-9a-f]{32}$")


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
    first = tar.next()
    if first is None or first.name != bundle.MANIFEST:
        raise bundle.BundleError("not a reply bundle (no manifest at the start)")
    try:
        doc = untrusted_json.loads(tar.extractfile(first).read())
        if doc.get("format") != FORMAT:
            raise bundle.BundleError("not a reply bundle (unknown format)")
        entries = [ReplyEntry(r["reply_id"], r["witness_id"], int(r["size"]), r["sha256"])
                   for r in doc["replies"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise bundle.BundleError("the reply bundle's manifest is damaged") from exc
    return {e.name: e for e in entries
            if _ID.match(e.reply_id) and _ID.match(e.witness_id)}
