"""Named cases and the case package handed to prosecutors.

A case is a name to which submissions are added (on the triage page or with
`intake vault case-add`). Its package is a plain folder that anyone can check
with `sha256sum -c SHA256SUMS`; docs/workstation.md describes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from intake.workstation import custody, triage
from intake.workstation.folders import Folder, Made
from intake.workstation.refusals import N_, Refusal
from intake.workstation.safe_names import safe_output_name
from intake.workstation.safe_text import is_hidden
from intake.workstation.vault import Vault, valid_id

READ_ONLY = 0o400
NAME_CHARS = 100  # as the refusal in _check_name says

README = """\
Case package: {case}
Exported {at} by {actor} from an Intake vault.

What is here
  case.json          the case: every submission, and for every item its kind,
                     original file name, detected type, sizes, the SHA-256 of
                     the bytes the service received and of the bytes kept, what
                     the sanitizer removed (field names), and any flags
  submissions/<id>/  one folder per submission:
      testimony.txt        the witness's words, as received (UTF-8)
      files/               the working copies (sanitized unless flagged)
      originals/           the untouched originals, where the witness chose to
                           keep them
      choices.json         what the witness chose on the form
      metadata.json        each item's metadata, exactly as sealed on arrival
  custody.jsonl      the custody log entries for these submissions and this
                     case, one JSON object per line, in order, each signed
  custody-head.json  the full log's last entry at export time (its number,
                     hash and signature) and the vault's custody public key
  SHA256SUMS         the SHA-256 of every other file in this folder

How to verify
  1. Check that nothing was changed or lost since export. In this folder run
         sha256sum -c SHA256SUMS
     Every line must end in "OK". (On macOS: shasum -a 256 -c SHA256SUMS.)
  2. Check that a file is what the witness sent. For an original (or a
     working copy that was not sanitized), its SHA-256 printed by
         sha256sum submissions/<id>/originals/<name>
     equals "sha256_received" for that item in case.json and metadata.json;
     a sanitized copy's equals "sha256_kept". Those values were recorded on
     arrival, inside the encryption, before any person saw the file.
  3. Check the custody log. Each line of custody.jsonl carries its own "hash"
     and the "prev_hash" of the entry before it in the full log; an entry's
     hash is the SHA-256 of the compact JSON array
         [seq, at, actor, action, subject, detail, prev_hash]
     and its "signature" is an Ed25519 signature, by the vault's custody key,
     of the text "intake-custody/1" and a line break followed by that hash.
     The custody public key (hex) is
         {key}
     Entries about other submissions are left out, so here each entry can be
     checked by itself; the full log, with `intake vault verify-log`, checks
     every link. The full log's last entry at export time was number {seq},
     with the hash
         {head}
     Keep this package: `intake vault verify-log --against <this folder>`
     shows whether the vault's log still holds that entry unchanged, so a
     later rewrite of the log is caught.
"""


class CaseError(Refusal, ValueError):
    """A case operation that cannot be done; the message says why."""


def _check_name(name: str) -> str:
    name = " ".join(name.split())
    if not name or len(name) > NAME_CHARS:
        raise CaseError(N_("a case name must have 1 to 100 characters"))
    if any(is_hidden(c) for c in name):
        raise CaseError(N_("a case name may not hold control or format characters"))
    return name


def add(vault: Vault, case: str, submission_ids: list[str], actor: str | None = None) -> None:
    case = _check_name(case)
    with vault.transaction() as conn:
        if conn.execute("SELECT 1 FROM cases WHERE name = ?", (case,)).fetchone() is None:
            conn.execute("INSERT INTO cases (name, created_at) VALUES (?, ?)",
                         (case, custody.now()))
            custody.append(conn, "case created", f"case:{case}", {}, actor)
        for sid in submission_ids:
            row = conn.execute("SELECT status FROM submissions WHERE submission_id = ?",
                               (sid,)).fetchone()
            if row is None:
                raise CaseError(N_("no submission %(id)s in this vault"), id=sid)
            cur = conn.execute("INSERT OR IGNORE INTO case_submissions (case_name, submission_id)"
                               " VALUES (?, ?)", (case, sid))
            if cur.rowcount:
                custody.append(conn, "added to case", f"submission:{sid}", {"case": case}, actor)
            if row["status"] in ("new", "in review", "verified"):
                triage.update(conn, sid, status="in case file", actor=actor)


def names(conn: sqlite3.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT name FROM cases ORDER BY name")]


def members(conn: sqlite3.Connection, case: str) -> list[str]:
    return [r[0] for r in conn.execute(
        "SELECT submission_id FROM case_submissions WHERE case_name = ? ORDER BY submission_id",
        (case,))]


class _Package:
    """The case package being written: every file made under the open package
    folder, never through a link, never over anything; on failure exactly
    what was made is removed again."""

    def __init__(self, out: Path):
        self.made = Made()
        self.root = Folder.open(out, made=self.made)
        self.folders: dict[tuple[str, ...], Folder] = {(): self.root}
        self.sums: dict[str, str] = {}

    def folder(self, parts: tuple[str, ...]) -> Folder:
        if parts not in self.folders:
            self.folders[parts] = self.folder(parts[:-1]).sub(parts[-1], exclusive=True)
        return self.folders[parts]

    def write(self, parts: tuple[str, ...], data: bytes, *, listed: bool = True) -> str:
        fd = self.folder(parts[:-1]).create(parts[-1])
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            os.fchmod(f.fileno(), READ_ONLY)
        digest = hashlib.sha256(data).hexdigest()
        if listed:
            self.sums["/".join(parts)] = digest
        return digest

    def copy(self, parts: tuple[str, ...], src_fd: int, expected: str) -> None:
        sha = hashlib.sha256()
        fd = self.folder(parts[:-1]).create(parts[-1])
        with os.fdopen(fd, "wb") as out, os.fdopen(src_fd, "rb") as src:
            while block := src.read(1024 * 1024):
                sha.update(block)
                out.write(block)
            os.fchmod(out.fileno(), READ_ONLY)
        if sha.hexdigest() != expected:
            raise CaseError(N_("item %(id)s in the vault no longer matches its recorded "
                               "SHA-256; the vault was altered, not exporting"),
                            id=parts[-1][:8])
        self.sums["/".join(parts)] = expected

    def close(self) -> None:
        for folder in reversed(list(self.folders.values())):
            folder.close()


def _item_parts(sid: str, it: dict, used: set[tuple[str, ...]]) -> tuple[str, ...]:
    item_id = valid_id(it["item_id"])
    if it["kind"] == "testimony":
        parts = ("submissions", sid, "testimony.txt")
        if parts in used:
            parts = ("submissions", sid, f"testimony-{item_id}.txt")
    else:
        sub = "originals" if it["kind"] == "original" else "files"
        name = safe_output_name(it["original_name"], f"file-{item_id[:8]}")
        parts = ("submissions", sid, sub, f"{item_id[:8]}-{name}")
        if parts in used:
            parts = ("submissions", sid, sub, f"{item_id}-{name}")
    used.add(parts)
    return parts


def _json(doc: object) -> bytes:
    return (json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n").encode()


Progress = Callable[[int, int], None]


def export(vault: Vault, case: str, out: Path, actor: str | None = None,
           progress: Progress | None = None) -> int:
    """Writes the case package into `out` (new or empty). Returns the number of
    files. `progress(items copied, items in all)` is told after each item."""
    conn = vault.conn
    custody.require(conn)  # the export's entry is signed: refused before anything is written
    case = _check_name(case)
    try:
        sids = [valid_id(s) for s in members(conn, case)]
    except KeyError as exc:
        raise CaseError(N_("the vault holds a submission id that is not valid; not "
                           "exporting (the vault was tampered with)")) from exc
    if not sids:
        raise CaseError(N_("the case %(case)s has no submissions (add some with case-add)"),
                        case=repr(case))
    if out.is_dir() and not out.is_symlink() and any(out.iterdir()):
        raise CaseError(N_("%(folder)s is not empty; choose a new folder"),
                        folder=str(out))  # before touching it
    package = _Package(out)
    try:
        if package.root.listing():
            raise CaseError(N_("%(folder)s is not empty; choose a new folder"), folder=str(out))
        _fill(vault, package, case, sids, out, actor, progress)
    except BaseException:
        package.made.undo()
        package.close()
        raise
    package.close()
    return len(package.sums)


def _fill(vault: Vault, package: _Package, case: str, sids: list[str], out: Path,
          actor: str | None, progress: Progress | None) -> None:
    conn = vault.conn
    total = conn.execute("SELECT COUNT(*) FROM items i JOIN case_submissions c ON"
                         " c.submission_id = i.submission_id WHERE c.case_name = ?",
                         (case,)).fetchone()[0]
    described, subjects, used, copied = [], {f"case:{case}"}, set(), 0
    for sid in sids:
        sub = triage.submission(conn, sid)
        assert sub is not None
        subjects.add(f"submission:{sid}")
        items = []
        for it in sub["items"]:
            subjects.add(f"item:{it['item_id']}")
            try:
                parts = _item_parts(sid, it, used)
            except KeyError as exc:
                raise CaseError(N_("the vault holds an item id that is not valid; not "
                                   "exporting (the vault was tampered with)")) from exc
            package.copy(parts, vault.open_item(it["item_id"]), it["sha256_kept"])
            copied += 1
            if progress is not None:
                progress(copied, total)
            meta = it["metadata"]
            items.append({"item_id": it["item_id"], "kind": it["kind"],
                          "path": "/".join(parts), "original_name": it["original_name"],
                          "detected_type": it["detected_type"], "size": it["size"],
                          "sha256_received": it["sha256_received"],
                          "sha256_kept": it["sha256_kept"],
                          "sanitized": bool(it["sanitized"]),
                          "sanitizer": meta.get("sanitizer"),
                          "removed": meta.get("removed", []), "flags": it["flags"]})
        package.write(("submissions", sid, "choices.json"), _json(sub["choices"]))
        package.write(("submissions", sid, "metadata.json"),
                      _json([i["metadata"] for i in sub["items"]]))
        described.append({"submission_id": sid, "witness_id": sub["witness_id"],
                          "received_day": sub["received_day"], "status": sub["status"],
                          "tags": sub["tags"], "choices": sub["choices"], "items": items})
    at = custody.now()
    package.write(("case.json",), _json({"format": "intake-case/1", "case": case,
                                         "exported_at": at, "submissions": described}))
    content = hashlib.sha256("".join(f"{h}  {p}\n" for p, h in sorted(package.sums.items()))
                             .encode()).hexdigest()
    with vault.transaction() as c:
        custody.append(c, "export case", f"case:{case}",
                       {"submissions": sids, "files": len(package.sums),
                        "folder": out.name, "content_sha256": content}, actor)
    head = custody.head(conn)
    entries = custody.entries_for(conn, subjects)
    package.write(("custody.jsonl",), "".join(
        json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n" for e in entries).encode())
    package.write(("custody-head.json",), _json(head))
    package.write(("README.txt",), README.format(
        case=case, at=at, head=head["hash"], seq=head["seq"], key=head["verify_key"],
        actor=actor or custody.default_actor()).encode())
    package.write(("SHA256SUMS",), "".join(f"{h}  {p}\n" for p, h in
                                           sorted(package.sums.items())).encode(), listed=False)
