"""Reply bundles: answers written on the air-gapped workstation, carried to the
server, and shown to a witness who logs in with their codename.

A reply bundle is a POSIX tar, manifest first:

    manifest.json        {"format": "intake-replies/1", "day": ...,
                          "replies": [{"reply_id", "witness_id", "name", "size", "sha256"}]}
    replies/<id>.env     an envelope sealed to that witness's reply public key only

The server cannot read a reply. It checks the bundle is whole and that each
envelope is sealed to the named witness's key, then stores it.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from nacl.public import PublicKey
from sqlalchemy import select

from intake import bundle
from intake.envelope import EnvelopeError, fingerprint, read_header
from intake.models import Reply, Witness
from intake.store import today

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


@dataclass
class ImportReport:
    added: int = 0
    duplicates: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)


def _manifest(tar: tarfile.TarFile) -> dict[str, ReplyEntry]:
    first = tar.next()
    if first is None or first.name != bundle.MANIFEST:
        raise bundle.BundleError("not a reply bundle (no manifest at the start)")
    try:
        doc = json.loads(tar.extractfile(first).read())
        if doc.get("format") != FORMAT:
            raise bundle.BundleError("not a reply bundle (unknown format)")
        entries = [ReplyEntry(r["reply_id"], r["witness_id"], int(r["size"]), r["sha256"])
                   for r in doc["replies"]]
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise bundle.BundleError("the reply bundle's manifest is damaged") from exc
    return {e.name: e for e in entries
            if _ID.match(e.reply_id) and _ID.match(e.witness_id)}


def import_replies(intake, source: BinaryIO) -> ImportReport:
    """Stores every sound reply of the bundle; reports the others by name."""
    report = ImportReport()
    try:
        tar = tarfile.open(fileobj=source, mode="r:")  # noqa: SIM115 (closed below)
    except (tarfile.TarError, OSError) as exc:
        raise bundle.BundleError("not a readable reply bundle") from exc
    with tar:
        try:
            expected = _manifest(tar)
            members = list(_members(tar))
        except (tarfile.TarError, OSError) as exc:
            raise bundle.BundleError("the reply bundle is damaged") from exc
    with intake.db.sessions() as s:
        for name, data in members:
            entry = expected.pop(name, None)
            problem = _check(s, entry, data) if entry else "not in the manifest"
            if problem:
                report.rejected.append((name, problem))
                continue
            if s.get(Reply, entry.reply_id) is not None:
                report.duplicates += 1
                continue
            s.add(Reply(id=entry.reply_id, witness_id=entry.witness_id, envelope=data,
                        received_day=today()))
            report.added += 1
        s.commit()
    report.rejected += [(name, "missing from the bundle") for name in expected]
    return report


def _members(tar: tarfile.TarFile) -> Iterator[tuple[str, bytes]]:
    for info in tar:  # iterating a TarFile starts again from the first member
        if not info.isfile() or info.name == bundle.MANIFEST:
            continue
        if info.size > MAX_REPLY_BYTES:
            yield info.name, b""
            continue
        yield info.name, tar.extractfile(info).read()


def _check(s, entry: ReplyEntry, data: bytes) -> str:
    if not data or len(data) != entry.size or \
            hashlib.sha256(data).hexdigest() != entry.sha256:
        return "damaged: size or SHA-256 does not match the manifest"
    witness = s.scalars(select(Witness).where(Witness.id == entry.witness_id)).first()
    if witness is None:
        return "no such witness on this server (deleted, or another server's)"
    try:
        _raw, stanzas, _ss = read_header(io.BytesIO(data))
    except EnvelopeError as exc:
        return str(exc)
    mine = fingerprint(PublicKey(witness.reply_public_key))
    if [fp for fp, _ in stanzas] != [mine]:
        return "not sealed to this witness's reply key"
    return ""
