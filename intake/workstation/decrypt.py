"""The air-gapped side: verify a bundle and decrypt it into a folder per submission.

    OUT/<day>_<submission id>/testimony.txt
    OUT/<day>_<submission id>/files/<safe name>       working copies
    OUT/<day>_<submission id>/originals/<safe name>   untouched originals, with a
                                                     README.txt that says so
    OUT/<day>_<submission id>/metadata.json           one record per item, as sealed

Every path is made from validated ids (the submission's folder) and the
safe-name rule (a file's name), under open folder handles, never through a
link and never over an existing file (intake.workstation.folders); folders
0700, files 0600. A submission's folder is made by this run or not used: one
already there (decrypted before, or put there by someone) is left alone and
its items are skipped. A damaged or refused item is reported by name and
leaves nothing behind; the rest goes on. docs/bundle.md has the rules.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from nacl.public import PrivateKey

from intake.format.bundle import BundleReader, Candidate
from intake.format.envelope import EnvelopeError
from intake.workstation import ahead, sealed
from intake.workstation.folders import Folder, FolderError
from intake.workstation.safe_names import safe_output_name
from intake.workstation.unseal import Unsealed, check_key, unseal

ORIGINALS_README = """\
Untouched originals, exactly as the witness sent them, kept because the
witness chose that. They may reveal where, when and with what device they
were made, and may be harmful to open: open them only on this computer, with
care. The cleaned working copies are in ../files/.
"""
MAX_SAME_NAME = 100


@dataclass
class ItemResult:
    name: str
    ok: bool
    message: str = ""
    metadata: dict | None = None
    path: Path | None = None
    skipped: bool = False  # not decrypted here, but not damaged either


@dataclass
class Report:
    results: list[ItemResult] = field(default_factory=list)

    @property
    def damaged(self) -> list[ItemResult]:
        return [r for r in self.results if not r.ok and not r.skipped]

    @property
    def skipped(self) -> list[ItemResult]:
        return [r for r in self.results if r.skipped]

    @property
    def decrypted(self) -> list[ItemResult]:
        return [r for r in self.results if r.ok]


class _Damaged(Exception):
    pass


@dataclass
class _Submission:
    """A submission's folder, made by this run, and what went into it."""

    folder: Folder
    records: list[dict] = field(default_factory=list)
    subfolders: dict[str, Folder] = field(default_factory=dict)

    def sub(self, name: str) -> Folder:
        if name not in self.subfolders:
            self.subfolders[name] = self.folder.sub(name)
            if name == "originals":
                self.subfolders[name].write_new("README.txt", ORIGINALS_README.encode())
        return self.subfolders[name]

    def close(self) -> None:
        if self.records:
            self.folder.write_new("metadata.json", (json.dumps(
                self.records, indent=2, ensure_ascii=False, sort_keys=True) + "\n").encode())
        for folder in self.subfolders.values():
            folder.close()
        self.folder.close()


def _names(name: str) -> list[str]:
    """`name`, then `name (2)`, `name (3)`...: the first free one is taken."""
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    return [name] + [f"{stem} ({n}){'.' + ext if ext else ''}"
                     for n in range(2, MAX_SAME_NAME + 1)]


def _place(sub: _Submission, tmp: str, item: sealed.SealedItem) -> str:
    if item.kind == "testimony":
        into, base, where = sub.folder, "testimony.txt", ""
    else:
        where = "originals" if item.kind == "original" else "files"
        into = sub.sub(where)
        base = safe_output_name(item.original_name, f"file-{item.item_id[:8]}")
    for name in [*_names(base), f"{item.item_id}-{base}"]:
        try:
            sub.folder.place(tmp, name, into=into)
        except FileExistsError:
            continue
        return f"{where}/{name}" if where else name
    raise _Damaged("refused: every name for it is taken in its folder")


@dataclass(frozen=True)
class _Opened:
    """An envelope decrypted into its submission's folder under a temporary
    name, not checked against the manifest yet."""

    sub: _Submission
    tmp: str
    unsealed: Unsealed


def _open(reader: BundleReader, cand: Candidate, key: PrivateKey, sub: _Submission,
          alone: bool) -> _Opened:
    """A job (intake.workstation.ahead): may run beside others."""
    entry = cand.entry
    assert entry is not None
    tmp = f".partial-{entry.item_id}"
    fd = sub.folder.create(tmp)
    try:
        try:
            # The content's own SHA-256 is not recomputed here (vault import does it):
            # the envelope authenticates every byte, and metadata.json gives the
            # sealed sha256_kept for `sha256sum` to check.
            return _Opened(sub, tmp, unseal(reader.fd, cand.offset, cand.size, key, fd,
                                            hash_content=False, alone=alone))
        finally:
            os.close(fd)
    except BaseException:
        sub.folder.remove_own(tmp)
        raise


def _keep(cand: Candidate, opened: _Opened) -> tuple[dict, str]:
    """Checks an opened envelope against the manifest and gives it its name;
    removes it if it is refused."""
    entry = cand.entry
    assert entry is not None
    try:
        got = opened.unsealed
        if got.envelope_sha256 != entry.sha256:
            raise _Damaged("damaged: its SHA-256 does not match the manifest")
        item = sealed.check(got.metadata, entry)
        saved_as = _place(opened.sub, opened.tmp, item)
    except BaseException:
        opened.sub.folder.remove_own(opened.tmp)
        raise
    return {**got.metadata, "saved_as": saved_as}, saved_as


def decrypt_bundle(bundle_path: Path, key: PrivateKey, out: Path,
                   key_name: str = "the key") -> Report:
    """Decrypts every sound item of the bundle into `out` (made if missing).
    Raises BundleError, before anything is written, if the bundle as a whole
    cannot be read, and WrongKey if it is not sealed to `key`; FolderError if
    `out` cannot be used."""
    report = Report()
    with BundleReader(bundle_path) as reader:
        first = next((c for c in reader.envelopes() if not c.refusal and c.entry), None)
        if first is not None:
            check_key(reader, first, key, bundle_path.name, key_name)
        run = _Run(reader, key, Folder.open(out))
        try:
            for refusal in reader.manifest.refused:
                report.results.append(ItemResult(refusal.label, False, refusal.reason))
            with contextlib.closing(ahead.in_order(reader.envelopes(), run.start,
                                                   run.discard)) as members:
                for cand, opening in members:
                    report.results.append(run.decide(cand, opening))
        finally:
            run.close()
    return report


class _Run:
    """One decrypt's members: which to open (start, ahead of the decisions, in
    the bundle's order; it makes each submission's folder), and each one's
    fate (decide, in the same order)."""

    def __init__(self, reader: BundleReader, key: PrivateKey, root: Folder):
        self.reader, self.key, self.root = reader, key, root
        self.subs: dict[str, _Submission] = {}
        self.blocked: dict[str, str] = {}

    def start(self, cand: Candidate) -> Callable[[bool], _Opened] | None:
        if cand.problem or cand.entry is None:
            return None
        name = _folder_name(cand)
        if name in self.blocked:
            return None
        if name not in self.subs:
            try:
                self.subs[name] = _Submission(self.root.sub(name, exclusive=True))
            except (FileExistsError, FolderError):
                self.blocked[name] = (f"skipped: {name} is already in {self.root.path} "
                                      "(decrypted before?); decrypt into a new folder")
                return None
        sub = self.subs[name]
        return lambda alone: _open(self.reader, cand, self.key, sub, alone)

    @staticmethod
    def discard(opened: _Opened) -> None:
        opened.sub.folder.remove_own(opened.tmp)

    def decide(self, cand: Candidate, opening: ahead.Opening[_Opened] | None) -> ItemResult:
        if cand.problem:
            return ItemResult(cand.name, False, cand.problem)
        name = _folder_name(cand)
        if name in self.blocked:
            return ItemResult(cand.name, False, self.blocked[name], skipped=True)
        assert opening is not None
        try:
            meta, saved_as = _keep(cand, opening.result())
        except (EnvelopeError, sealed.Refused, _Damaged) as exc:
            return ItemResult(cand.name, False, str(exc))
        except OSError as exc:
            return ItemResult(cand.name, False, f"not written: {exc.strerror or exc}")
        cand.accept()
        self.subs[name].records.append(meta)
        return ItemResult(cand.name, True, metadata=meta, path=self.root.path / name / saved_as)

    def close(self) -> None:
        for name, sub in self.subs.items():
            sub.close()
            if not sub.records:
                self.root.remove_own(name)  # made for items that all failed: empty
        self.root.close()


def _folder_name(cand: Candidate) -> str:
    entry = cand.entry
    assert entry is not None
    return f"{entry.received_day}_{entry.submission_id}"  # validated: digits, hex, - and _
