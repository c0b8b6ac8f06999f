"""Import a bundle into the vault: verify, decrypt, index, log.

Each envelope is decrypted into VAULT/tmp in one pass that hashes it and its
content (intake.workstation.unseal), and kept only when the envelope, its
checked sealed metadata (intake.workstation.sealed), the manifest and the
vault all agree:

- the envelope's SHA-256 is the manifest's, and it authenticates to its end;
- its sealed id, submission, witness, day and kind are the manifest's;
- its content's SHA-256 is the sealed sha256_kept;
- a submission already in the vault keeps its witness and day, and takes
  only the items listed for it by the bundle that first brought it: a later
  bundle cannot move it, nor attach anything to it.

Items already in the vault are skipped, so importing a bundle twice adds
nothing. A refused or damaged item is reported by name and the rest goes on.

Then, for each new file, the parsing sandbox (intake.workstation.sandbox)
makes its preview, perceptual hash or words once; they are stored in the
vault, so viewing a file parses nothing.

Each text (a testimony or text file decoded as UTF-8, or the words the
sandbox's child extracted) is given its language (lingua) and search terms
(search, stemming) by one child process for the whole import
(intake.workstation.text_analysis), not here, where the key is: their models
would take this process from about 45 MB to over 200 MB and stall its
decrypting threads for a second. The text is capped (search.MAX_INDEXED_CHARS)
and so is every word an analyser is given (stemming.MAX_WORD_CHARS).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

from nacl.public import PrivateKey

from intake.format.bundle import BundleReader, Candidate, Entry
from intake.format.envelope import EnvelopeError
from intake.workstation import (
    ahead,
    custody,
    document_text,
    images,
    replies,
    sealed,
    search,
)
from intake.workstation.safe_text import for_terminal
from intake.workstation.sandbox import Outcome, Sandbox
from intake.workstation.text_analysis import Analysis, TextAnalyser
from intake.workstation.unseal import Unsealed, WrongKey, check_key, unseal
from intake.workstation.vault import Vault

MAX_TEXT_INDEXED = 4 * 1024 * 1024
BATCH_ITEMS = 256  # items per transaction
BATCH_BYTES = 256 * 1024 * 1024
SVG = "image/svg+xml"

Progress = Callable[[int], None]


class ImportRefused(Exception):
    """The bundle as a whole cannot be imported with this key. One line, safe to show."""


@dataclass
class Summary:
    new: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    damaged: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    limits: list[tuple[str, str]] = field(default_factory=list)  # item id, limit broken
    bytes_new: int = 0


class _Refused(Exception):
    pass


def _vault_agrees(conn, entry: Entry) -> None:
    """A submission in the vault keeps its witness and day, and its items."""
    row = conn.execute("SELECT witness_id, received_day FROM submissions WHERE "
                       "submission_id = ?", (entry.submission_id,)).fetchone()
    listed = conn.execute("SELECT submission_id FROM submission_items WHERE item_id = ?",
                          (entry.item_id,)).fetchone()
    if listed is not None and listed[0] != entry.submission_id:
        raise _Refused(f"refused: item {entry.item_id} belongs to another submission "
                       "in the vault")
    if row is None:
        return
    if (row["witness_id"], row["received_day"]) != (entry.witness_id, entry.received_day):
        raise _Refused(f"refused: submission {entry.submission_id} is in the vault with "
                       "another witness or day")
    if listed is None:
        raise _Refused(f"refused: submission {entry.submission_id} is in the vault already, "
                       "and its bundle did not list this item")


def _text_of(vault: Vault, item: sealed.SealedItem) -> str | None:
    """Text read here, without parsing: a testimony, or a file of a text type."""
    if item.kind == "testimony" or (item.kind == "file" and item.mime.startswith("text/")):
        return vault.read_item(item.item_id, MAX_TEXT_INDEXED).decode(errors="replace")
    return None


@dataclass
class _Batch:
    """Items written to VAULT/items whose rows are not committed yet: committed
    together (fewer fsyncs), removed again if the run stops before. Their
    texts are being analysed meanwhile (`texts`); each one's language and
    search row join the batch's transaction before it commits."""

    vault: Vault
    summary: Summary
    placed: list[str] = field(default_factory=list)
    texts: list[tuple[sealed.SealedItem, Future[Analysis]]] = field(default_factory=list)
    size: int = 0
    open: bool = False

    def begin(self) -> None:
        if not self.open:
            self.vault.conn.execute("BEGIN IMMEDIATE")
            self.open = True

    def placed_item(self, item_id: str) -> None:
        self.placed.append(item_id)

    def recorded(self, size: int) -> None:
        self.size += size
        if len(self.placed) >= BATCH_ITEMS or self.size >= BATCH_BYTES:
            self.commit()

    def commit(self) -> None:
        if self.open:
            for item, analysing in self.texts:
                record_text(self.vault.conn, item, _noted(analysing.result(), item.item_id,
                                                          self.summary))
            if self.placed:
                self.vault.items.sync()  # the files, and their names, before the rows
            self.vault.conn.execute("COMMIT")
        self.placed, self.texts, self.size, self.open = [], [], 0, False

    def abandon(self) -> None:
        if self.open:
            self.vault.conn.execute("ROLLBACK")
            for item_id in self.placed:
                self.vault.items.unlink(item_id)
        self.placed, self.texts, self.size, self.open = [], [], 0, False


def record_item(conn, listed: dict[str, list[str]], item: sealed.SealedItem,
                envelope_sha: str, size: int, text: Analysis | None, bundle_id: str) -> None:
    """The rows of one checked item whose bytes are in VAULT/items: its
    submission (with the items `listed` for it, the first time), the item,
    the testimony's language, the search index of its `text`, the custody
    entry. Call in a transaction, with the custody key unlocked."""
    if conn.execute("SELECT 1 FROM submissions WHERE submission_id = ?",
                    (item.submission_id,)).fetchone() is None:
        conn.execute("INSERT INTO submissions (submission_id, witness_id, received_day, choices)"
                     " VALUES (?, ?, ?, ?)",
                     (item.submission_id, item.witness_id, item.received_day,
                      json.dumps(item.choices, sort_keys=True)))
        # The bundle that brings a submission says, once, which items are its.
        conn.executemany("INSERT OR IGNORE INTO submission_items (item_id, submission_id)"
                         " VALUES (?, ?)", [(i, item.submission_id)
                                            for i in listed[item.submission_id]])
    conn.execute(
        "INSERT INTO items (item_id, submission_id, kind, original_name, detected_type, size,"
        " sha256_received, sha256_kept, sanitized, flags, envelope_sha256, phash, metadata)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (item.item_id, item.submission_id, item.kind, item.original_name, item.detected_type,
         size, item.metadata["sha256_received"], item.sha256_kept, int(item.sanitized),
         json.dumps(item.flags), envelope_sha, None,
         json.dumps(item.metadata, ensure_ascii=False, sort_keys=True)))
    if text is not None:
        record_text(conn, item, text)
    custody.append(conn, "import", f"item:{item.item_id}", {
        "submission_id": item.submission_id, "bundle": bundle_id,
        "envelope_sha256": envelope_sha, "sha256_kept": item.sha256_kept, "kind": item.kind})


def record_text(conn, item: sealed.SealedItem, text: Analysis) -> None:
    """The item's search row, and its submission's language if it is the
    testimony. In the item's transaction."""
    if item.kind == "testimony":
        conn.execute("UPDATE submissions SET language = ? WHERE submission_id = ?",
                     (text.lang, item.submission_id))
    search.insert(conn, item.item_id, item.submission_id, text.body, text.terms, text.more)


@dataclass(frozen=True)
class _Opened:
    """An envelope decrypted into VAULT/tmp, not checked against the manifest yet."""

    tmp: str
    unsealed: Unsealed


def _open_into_tmp(vault: Vault, reader: BundleReader, cand: Candidate, key: PrivateKey,
                   alone: bool) -> _Opened:
    """A job (intake.workstation.ahead): may run beside others."""
    entry = cand.entry
    assert entry is not None
    # A name of this run's own: whatever an interrupted run left is not touched.
    tmp = f".partial-{entry.item_id}-{secrets.token_hex(4)}"
    fd = vault.tmp.create(tmp)
    try:
        try:
            # Made durable with the rest of its batch, before its rows commit.
            return _Opened(tmp, unseal(reader.fd, cand.offset, cand.size, key, fd, alone=alone))
        finally:
            os.close(fd)
    except BaseException:
        vault.tmp.remove_own(tmp)
        raise


def _keep(vault: Vault, entry: Entry, opened: _Opened) -> tuple[sealed.SealedItem, str, int]:
    """Checks an opened envelope against the manifest and moves it into
    VAULT/items; removes it if it is refused."""
    try:
        got = opened.unsealed
        if got.envelope_sha256 != entry.sha256:
            raise _Refused("damaged: its SHA-256 does not match the manifest")
        item = sealed.check(got.metadata, entry)
        if got.content_sha256 != item.sha256_kept:
            raise _Refused("damaged: its content does not match its recorded SHA-256")
        vault.tmp.replace(opened.tmp, entry.item_id, into=vault.items)
    except BaseException:
        vault.tmp.remove_own(opened.tmp)
        raise
    return item, got.envelope_sha256, got.content_size


def _witnesses(conn, keys: dict[str, str], summary: Summary) -> None:
    for witness_id, key in sorted(keys.items()):
        row = conn.execute("SELECT reply_public_key FROM witnesses WHERE witness_id = ?",
                           (witness_id,)).fetchone()
        if row is None:
            conn.execute("INSERT INTO witnesses (witness_id, reply_public_key) VALUES (?, ?)",
                         (witness_id, key))
        elif row[0] != key:
            summary.notes.append(f"witness {witness_id}: the bundle gives another reply "
                                 "key than the vault holds; the vault's is kept")


def import_bundle(vault: Vault, bundle_path: Path, key: PrivateKey, key_name: str = "the key",
                  progress: Progress = lambda n: None, sandbox: Sandbox | None = None
                  ) -> Summary:
    """Imports every sound item; the custody key must be unlocked (vault.unlock)."""
    summary = Summary()
    sandbox = sandbox or Sandbox()
    with BundleReader(bundle_path) as reader, TextAnalyser(sandbox) as texts:
        manifest = reader.manifest
        summary.damaged += [(r.label, r.reason) for r in manifest.refused]
        summary.notes += [f"{r.label}: {r.reason}" for r in manifest.refused_witnesses]
        with vault.transaction() as conn:
            _witnesses(conn, manifest.witnesses, summary)
            # Every reply is also sealed to the team's keys, to be re-read later.
            replies.remember_team_key(conn, key.public_key, key_name)
        run = _Run(vault, reader, key, bundle_path.name, key_name, summary, progress, texts)
        try:
            with contextlib.closing(ahead.in_order(reader.envelopes(), run.start,
                                                   run.discard)) as members:
                for cand, opening in members:
                    run.decide(cand, opening)
            run.batch.commit()
        except BaseException:
            run.batch.abandon()
            raise
        with vault.transaction() as c:
            custody.append(c, "import bundle", f"bundle:{run.bundle_id}", {
                "file": bundle_path.name, "day": manifest.day, "new": len(summary.new),
                "duplicates": len(summary.duplicates),
                # Names from the bundle, as the terminal showed them: never obeyed
                # by whatever later prints the log.
                "damaged": [for_terminal(n) for n, _ in summary.damaged]})
        _parse_new(vault, run.new_items, sandbox, texts, summary)
    return summary


def _noted(got: Analysis, item_id: str, summary: Summary) -> Analysis:
    if got.problem:
        summary.notes.append(f"item {item_id}: its text is searchable as written only, its "
                             f"language undetermined ({got.problem})")
    return got


class _Run:
    """One import's members: which to open (start, ahead of the decisions, in
    the bundle's order), and each one's fate (decide, in the same order)."""

    def __init__(self, vault: Vault, reader: BundleReader, key: PrivateKey, bundle_name: str,
                 key_name: str, summary: Summary, progress: Progress, texts: TextAnalyser):
        self.vault, self.reader, self.key, self.texts = vault, reader, key, texts
        self.bundle_name, self.key_name = bundle_name, key_name
        self.summary, self.progress = summary, progress
        # The custody log names a bundle by its manifest's SHA-256: the manifest
        # lists every envelope's SHA-256.
        self.bundle_id = reader.manifest_sha256
        self.listed: dict[str, list[str]] = {}  # submission -> the items the manifest lists
        for e in reader.manifest.entries.values():
            self.listed.setdefault(e.submission_id, []).append(e.item_id)
        self.known: dict[str, str | None] = {r[0]: r[1] for r in vault.conn.execute(
            "SELECT item_id, envelope_sha256 FROM items UNION ALL "
            "SELECT item_id, NULL FROM deleted_items")}
        self.key_checked = False
        self.batch = _Batch(vault, summary)
        self.new_items: list[sealed.SealedItem] = []

    def start(self, cand: Candidate) -> Callable[[bool], _Opened] | None:
        if cand.problem or cand.entry is None or cand.entry.item_id in self.known:
            return None
        if not self.key_checked:
            try:
                check_key(self.reader, cand, self.key, self.bundle_name, self.key_name)
            except WrongKey as exc:
                raise ImportRefused(str(exc)) from exc
            self.key_checked = True
        return lambda alone: _open_into_tmp(self.vault, self.reader, cand, self.key, alone)

    def discard(self, opened: _Opened) -> None:
        self.vault.tmp.remove_own(opened.tmp)

    def decide(self, cand: Candidate, opening: ahead.Opening[_Opened] | None) -> None:
        """Refused, a duplicate, or checked and recorded. Its envelope was
        opened ahead (`opening`) if it needed to be."""
        summary = self.summary
        if cand.problem:
            summary.damaged.append((cand.name, cand.problem))
            return
        entry = cand.entry
        assert entry is not None
        if entry.item_id in self.known:
            if self.known[entry.item_id] not in (None, entry.sha256):
                summary.damaged.append((cand.name, "refused: the vault holds this "
                                        "item from another envelope"))
            else:
                summary.duplicates.append(cand.name)
                cand.accept()
            self.progress(entry.size)
            return
        assert opening is not None
        conn = self.vault.conn
        self.batch.begin()
        try:
            _vault_agrees(conn, entry)
            item, envelope_sha, size = _keep(self.vault, entry, opening.result())
        except (EnvelopeError, sealed.Refused, _Refused) as exc:
            summary.damaged.append((cand.name, str(exc)))
            self.progress(entry.size)
            return
        except OSError as exc:
            summary.damaged.append((cand.name, f"not written: {exc.strerror or exc}"))
            return
        self.batch.placed_item(item.item_id)
        record_item(conn, self.listed, item, envelope_sha, size, None, self.bundle_id)
        text = _text_of(self.vault, item)
        if text is not None:  # analysed while the next items are decided
            self.batch.texts.append((item, self.texts.submit(text)))
        self.batch.recorded(size)
        cand.accept()
        self.known[entry.item_id] = envelope_sha
        summary.new.append(cand.name)
        summary.bytes_new += entry.size
        self.new_items.append(item)
        self.progress(entry.size)


# -- derived data, made once in the sandbox ---------------------------------------------

def job_for(item: sealed.SealedItem) -> tuple[str, str] | None:
    """The sandbox job a working copy gets, if any. Originals get none: they are
    never previewed, and their cleaned copy carries the same words."""
    if item.kind != "file":
        return None
    fmt = images.pillow_format(item.detected_type)
    if fmt is not None:
        return "image", fmt
    kind = document_text.kind_of(item.detected_type)
    if kind == "pdf":
        return "pdf", "-"
    if kind == "office":
        return "office", item.mime
    return None


def _store(vault: Vault, item: sealed.SealedItem, outcome: Outcome, texts: TextAnalyser,
           summary: Summary) -> None:
    got = None
    if outcome.ok and outcome.png is None and outcome.text:  # analysed before the write lock
        got = _noted(texts.analyse(outcome.text), item.item_id, summary)
    with vault.transaction() as conn:
        if outcome.ok and outcome.png is not None:
            conn.execute("INSERT OR REPLACE INTO previews (item_id, state, reason, png, width,"
                         " height) VALUES (?, 'picture', '', ?, ?, ?)",
                         (item.item_id, outcome.png, outcome.width, outcome.height))
            conn.execute("UPDATE items SET phash = ? WHERE item_id = ?",
                         (outcome.dhash, item.item_id))
            return
        if got is not None:
            search.insert(conn, item.item_id, item.submission_id, got.body, got.terms, got.more)
            return
        if not outcome.ok:
            conn.execute("INSERT OR REPLACE INTO previews (item_id, state, reason) VALUES"
                         " (?, ?, ?)", (item.item_id, "limit" if outcome.limit else "none",
                                        outcome.reason))


def _parse_new(vault: Vault, items: list[sealed.SealedItem], sandbox: Sandbox,
               texts: TextAnalyser, summary: Summary) -> None:
    jobs = [(item, job) for item in items if (job := job_for(item)) is not None]
    svgs = [item for item in items if item.kind == "file" and item.mime == SVG]
    if svgs:
        with vault.transaction() as conn:
            conn.executemany("INSERT OR REPLACE INTO previews (item_id, state, reason) VALUES"
                             " (?, 'none', 'svg')", [(item.item_id,) for item in svgs])
    if jobs and not sandbox.available:
        summary.notes.append(f"{len(jobs)} file(s) not previewed nor searched: the parser "
                             f"cannot be isolated on this computer ({sandbox.why_not})")
    for item, (job, arg) in jobs:
        fd = vault.open_item(item.item_id)
        try:
            outcome = sandbox.run(job, arg, fd, os.fstat(fd).st_size)
        finally:
            os.close(fd)
        _store(vault, item, outcome, texts, summary)
        if outcome.limit:
            summary.limits.append((item.item_id, outcome.reason))
