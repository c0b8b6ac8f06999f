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

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from nacl.public import PrivateKey

from intake.format.bundle import BundleReader, Candidate
from intake.format.envelope import EnvelopeError
from intake.workstation import sealed
from intake.workstation.folders import Folder, FolderError
from intake.workstation.safe_names import safe_output_name
from intake.workstation.unseal import unseal

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


def _decrypt_one(reader: BundleReader, cand: Candidate, key: PrivateKey,
                 sub: _Submission) -> tuple[dict, str]:
    entry = cand.entry
    assert entry is not None
    tmp = f".partial-{entry.item_id}"
    fd = sub.folder.create(tmp)
    try:
        try:
            # The content's own SHA-256 is not recomputed here (vault import does it):
            # the envelope authenticates every byte, and metadata.json gives the
            # sealed sha256_kept for `sha256sum` to check.
            opened = unseal(reader.fd, cand.offset, cand.size, key, fd, hash_content=False)
        finally:
            os.close(fd)
        if opened.envelope_sha256 != entry.sha256:
            raise _Damaged("damaged: its SHA-256 does not match the manifest")
        item = sealed.check(opened.metadata, entry)
        saved_as = _place(sub, tmp, item)
    except BaseException:
        sub.folder.remove_own(tmp)
        raise
    return {**opened.metadata, "saved_as": saved_as}, saved_as


def decrypt_bundle(bundle_path: Path, key: PrivateKey, out: Path) -> Report:
    """Decrypts every sound item of the bundle into `out` (made if missing).
    Raises BundleError, before anything is written, if the bundle as a whole
    cannot be read; FolderError if `out` cannot be used."""
    report = Report()
    with BundleReader(bundle_path) as reader:
        root = Folder.open(out)
        subs: dict[str, _Submission] = {}
        blocked: dict[str, str] = {}
        try:
            for refusal in reader.manifest.refused:
                report.results.append(ItemResult(refusal.label, False, refusal.reason))
            for cand in reader.envelopes():
                report.results.append(_one(reader, cand, key, root, subs, blocked))
        finally:
            for name, sub in subs.items():
                sub.close()
                if not sub.records:
                    root.remove_own(name)  # made for items that all failed: empty
            root.close()
    return report


def _one(reader: BundleReader, cand: Candidate, key: PrivateKey, root: Folder,
         subs: dict[str, _Submission], blocked: dict[str, str]) -> ItemResult:
    if cand.problem:
        return ItemResult(cand.name, False, cand.problem)
    entry = cand.entry
    assert entry is not None
    name = f"{entry.received_day}_{entry.submission_id}"  # validated: digits, hex, - and _
    if name in blocked:
        return ItemResult(cand.name, False, blocked[name], skipped=True)
    if name not in subs:
        try:
            subs[name] = _Submission(root.sub(name, exclusive=True))
        except (FileExistsError, FolderError):
            blocked[name] = (f"skipped: {name} is already in {root.path} (decrypted "
                             "before?); decrypt into a new folder")
            return ItemResult(cand.name, False, blocked[name], skipped=True)
    sub = subs[name]
    try:
        meta, saved_as = _decrypt_one(reader, cand, key, sub)
    except (EnvelopeError, sealed.Refused, _Damaged) as exc:
        return ItemResult(cand.name, False, str(exc))
    except OSError as exc:
        return ItemResult(cand.name, False, f"not written: {exc.strerror or exc}")
    cand.accept()
    sub.records.append(meta)
    return ItemResult(cand.name, True, metadata=meta, path=root.path / name / saved_as)
