"""Import a bundle into the vault: verify, decrypt, index, log.

Each envelope is checked against the manifest's SHA-256 while it is
decrypted into VAULT/tmp, and kept only when the envelope, its metadata and
the content's own SHA-256 all agree. Items already in the vault are skipped,
so importing a bundle twice adds nothing. A damaged envelope is reported by
name and the rest goes on.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from nacl.public import PrivateKey

from intake.format.bundle import BundleReader, Entry
from intake.format.envelope import EnvelopeError, EnvelopeReader, fingerprint, read_header
from intake.format.teamkeys import format_fingerprint
from intake.workstation import custody, document_text, images, language, replies, search
from intake.workstation.vault import Vault

MAX_TEXT_INDEXED = 4 * 1024 * 1024

Progress = Callable[[int], None]


class ImportRefused(Exception):
    """The bundle as a whole cannot be imported with this key. One line, safe to show."""


@dataclass
class Summary:
    new: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    damaged: list[tuple[str, str]] = field(default_factory=list)
    bytes_new: int = 0


class _Hashing:
    """Reads an envelope, hashing it and counting its bytes; can put the header back."""

    def __init__(self, inp: BinaryIO, progress: Progress):
        self._inp, self._progress = inp, progress
        self.sha = hashlib.sha256()
        self._replay = b""

    def read(self, n: int = -1) -> bytes:
        if self._replay:
            if n < 0:
                data, self._replay = self._replay + self.read(-1), b""
                return data
            data, self._replay = self._replay[:n], self._replay[n:]
            return data
        data = self._inp.read(n)
        self.sha.update(data)
        self._progress(len(data))
        return data

    def replay(self, data: bytes) -> None:
        self._replay = data + self._replay


class _Damaged(Exception):
    pass


def _check_key(stream: _Hashing, key: PrivateKey, bundle_name: str, key_name: str) -> None:
    raw, stanzas, _ = read_header(stream)  # type: ignore[arg-type]
    stream.replay(raw)
    mine = fingerprint(key.public_key)
    if any(fp == mine for fp, _sealed in stanzas):
        return
    theirs = ", ".join(":".join(fp.hex()[i:i + 4] for i in range(0, 32, 4))
                       for fp, _ in stanzas)
    raise ImportRefused(
        f"{bundle_name} is not sealed to {key_name} ({format_fingerprint(key.public_key)}) "
        f"but to {theirs}: wrong key, or a bundle for another team")


def _decrypt(stream: _Hashing, key: PrivateKey, entry: Entry, tmp: Path) -> dict:
    content_sha = hashlib.sha256()
    reader = EnvelopeReader(stream, key)  # type: ignore[arg-type]
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        for piece in reader.content():
            content_sha.update(piece)
            f.write(piece)
        f.flush()
        os.fsync(f.fileno())
    meta = reader.metadata or {}
    if stream.sha.hexdigest() != entry.sha256:
        raise _Damaged("damaged: its SHA-256 does not match the manifest")
    for name in ("item_id", "submission_id", "witness_id"):
        if meta.get(name) != getattr(entry, name):
            raise _Damaged(f"tampered: its {name} differs from the manifest's")
    if meta.get("sha256_kept") not in (None, content_sha.hexdigest()):
        raise _Damaged("damaged: its content does not match its recorded SHA-256")
    return {**meta, "sha256_kept": content_sha.hexdigest()}


def _text_of(path: Path, meta: dict) -> str | None:
    if meta.get("kind") == "testimony":
        return path.read_text(errors="replace")
    detected = str(meta.get("detected_type", ""))
    if detected.startswith("text/"):
        with open(path, "rb") as f:
            return f.read(MAX_TEXT_INDEXED).decode(errors="replace")
    return document_text.extract(path, detected, MAX_TEXT_INDEXED)


def _perceptual_hash(path: Path, meta: dict) -> str | None:
    if meta.get("kind") == "testimony" or \
            not str(meta.get("detected_type", "")).startswith("image/"):
        return None
    try:
        return images.dhash(path)
    except images.NotAnImage:
        return None


def _record(vault: Vault, entry: Entry, meta: dict, bundle_sha: str, path: Path) -> None:
    text = _text_of(path, meta)
    lang = language.detect(text) if text is not None else ""
    phash = _perceptual_hash(path, meta)
    with vault.transaction() as conn:
        conn.execute(
            "INSERT OR IGNORE INTO submissions (submission_id, witness_id, received_day, choices)"
            " VALUES (?, ?, ?, ?)",
            (entry.submission_id, entry.witness_id, entry.received_day,
             json.dumps(meta.get("choices") or {}, sort_keys=True)))
        if meta.get("kind") == "testimony" and lang:
            conn.execute("UPDATE submissions SET language = ? WHERE submission_id = ?",
                         (lang, entry.submission_id))
        conn.execute(
            "INSERT INTO items (item_id, submission_id, kind, original_name, detected_type, size,"
            " sha256_received, sha256_kept, sanitized, flags, envelope_sha256, phash, metadata)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (entry.item_id, entry.submission_id, str(meta.get("kind", entry.kind)),
             str(meta.get("original_name") or ""), str(meta.get("detected_type") or ""),
             path.stat().st_size, str(meta.get("sha256_received") or ""), meta["sha256_kept"],
             1 if meta.get("sanitized") else 0, json.dumps(meta.get("flags") or []),
             entry.sha256, phash, json.dumps(meta, ensure_ascii=False, sort_keys=True)))
        if text is not None:
            search.index(conn, entry.item_id, entry.submission_id, text, lang)
        custody.append(conn, "import", f"item:{entry.item_id}", {
            "submission_id": entry.submission_id, "bundle_sha256": bundle_sha,
            "envelope_sha256": entry.sha256, "sha256_kept": meta["sha256_kept"],
            "kind": meta.get("kind")})


def _import_one(vault: Vault, entry: Entry, stream: _Hashing, key: PrivateKey,
                bundle_sha: str) -> None:
    tmp = vault.tmp_dir / f".partial-{entry.item_id}"
    try:
        meta = _decrypt(stream, key, entry, tmp)
        target = vault.item_path(entry.item_id)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        _record(vault, entry, meta, bundle_sha, target)
    except BaseException:
        target.unlink(missing_ok=True)
        raise


def _bundle_sha(path: Path) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1024 * 1024):
            sha.update(block)
    return sha.hexdigest()


def total_size(bundle_path: Path) -> int:
    with BundleReader(bundle_path) as reader:
        return sum(e.size for e in reader.manifest.entries.values())


def import_bundle(vault: Vault, bundle_path: Path, key: PrivateKey, key_name: str = "the key",
                  progress: Progress = lambda n: None) -> Summary:
    summary = Summary()
    bundle_sha = _bundle_sha(bundle_path)
    key_checked = False
    with BundleReader(bundle_path) as reader:
        manifest = reader.manifest
        with vault.transaction() as conn:
            conn.executemany("INSERT OR IGNORE INTO witnesses (witness_id, reply_public_key)"
                             " VALUES (?, ?)", sorted(manifest.witnesses.items()))
            # Replies are also sealed to the team's own key, to be re-read later.
            replies.remember_team_key(conn, key.public_key, key_name)
        known = {r[0] for r in vault.conn.execute(
            "SELECT item_id FROM items UNION SELECT item_id FROM deleted_items")}
        for name, entry, member, problem in reader.envelopes():
            if problem:
                summary.damaged.append((name, problem))
                continue
            if entry.item_id in known:
                summary.duplicates.append(name)
                progress(entry.size)
                continue
            stream = _Hashing(member, progress)
            try:
                if not key_checked:
                    _check_key(stream, key, bundle_path.name, key_name)
                    key_checked = True
                _import_one(vault, entry, stream, key, bundle_sha)
            except (EnvelopeError, _Damaged) as exc:
                summary.damaged.append((name, str(exc)))
                continue
            except (OSError, EOFError, tarfile.TarError) as exc:
                summary.damaged.append((name, f"truncated: the bundle ends inside it ({exc})"))
                continue
            known.add(entry.item_id)
            summary.new.append(name)
            summary.bytes_new += entry.size
    with vault.transaction() as conn:
        custody.append(conn, "import bundle", f"bundle:{bundle_sha}", {
            "file": bundle_path.name, "day": manifest.day, "new": len(summary.new),
            "duplicates": len(summary.duplicates),
            "damaged": [n for n, _ in summary.damaged]})
    return summary
