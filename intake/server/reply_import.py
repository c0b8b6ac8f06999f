"""The server's side of reply bundles: check each reply and store it for its
witness. The format is in intake.format.reply_bundle."""

from __future__ import annotations

import hashlib
import io
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from nacl.public import PublicKey
from sqlalchemy import select

from intake.format import bundle
from intake.format.envelope import EnvelopeError, fingerprint, read_header
from intake.format.reply_bundle import MAX_REPLY_BYTES, ReplyEntry, read_manifest
from intake.server.models import Reply, Witness
from intake.server.store import today


@dataclass
class ImportReport:
    added: int = 0
    duplicates: int = 0
    rejected: list[tuple[str, str]] = field(default_factory=list)


def import_replies(intake, source: BinaryIO) -> ImportReport:
    """Stores every sound reply of the bundle; reports the others by name."""
    report = ImportReport()
    try:
        tar = tarfile.open(fileobj=source, mode="r:")  # noqa: SIM115 (closed below)
    except (tarfile.TarError, OSError) as exc:
        raise bundle.BundleError("not a readable reply bundle") from exc
    with tar:
        try:
            expected = read_manifest(tar)
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
