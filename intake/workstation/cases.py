"""Named cases and the case package handed to prosecutors.

A case is a name to which submissions are added (on the triage page or with
`intake vault case-add`). Its package is a plain folder that anyone can check
with `sha256sum -c SHA256SUMS`; docs/workstation.md describes it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path

from intake.workstation import custody, triage
from intake.workstation.safe_names import safe_output_name
from intake.workstation.vault import Vault

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
                     case, one JSON object per line, in order
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
     Entries about other submissions are left out, so here the chain can be
     checked entry by entry; the full log, with `intake vault verify-log`,
     checks every link. The full log's last hash at export time was
         {head}
"""


class CaseError(ValueError):
    """A case operation that cannot be done; the message says why."""


def _check_name(name: str) -> str:
    name = " ".join(name.split())
    if not name or len(name) > 100:
        raise CaseError("a case name must have 1 to 100 characters")
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
                raise CaseError(f"no submission {sid} in this vault")
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


def _copy_checked(src: Path, dst: Path, expected: str) -> str:
    sha = hashlib.sha256()
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as f, open(dst, "xb") as out:
        while block := f.read(1024 * 1024):
            sha.update(block)
            out.write(block)
    if sha.hexdigest() != expected:
        raise CaseError(f"{src.name} in the vault no longer matches its recorded SHA-256; "
                        "the vault was altered, not exporting")
    return sha.hexdigest()


def _write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = text.encode()
    with open(path, "xb") as f:
        f.write(data)
    return hashlib.sha256(data).hexdigest()


def _item_target(folder: Path, it: dict, used: set[Path]) -> Path:
    if it["kind"] == "testimony":
        target = folder / "testimony.txt"
        if target in used:
            target = folder / f"testimony-{it['item_id'][:8]}.txt"
    else:
        sub = "originals" if it["kind"] == "original" else "files"
        name = safe_output_name(it["original_name"], f"file-{it['item_id'][:8]}")
        target = folder / sub / f"{it['item_id'][:8]}-{name}"
    used.add(target)
    return target


def export(vault: Vault, case: str, out: Path, actor: str | None = None,
           progress: Callable[[int, int], None] | None = None) -> int:
    """Writes the case package into `out` (new or empty). Returns the number of
    files. `progress(items copied, items in all)` is told after each item."""
    conn = vault.conn
    case = _check_name(case)
    sids = members(conn, case)
    if not sids:
        raise CaseError(f"the case {case!r} has no submissions (add some with case-add)")
    if out.exists() and any(out.iterdir()):
        raise CaseError(f"{out} is not empty; choose a new folder")
    out.mkdir(parents=True, exist_ok=True)
    total = conn.execute("SELECT COUNT(*) FROM items i JOIN case_submissions c ON"
                         " c.submission_id = i.submission_id WHERE c.case_name = ?",
                         (case,)).fetchone()[0]
    sums: dict[str, str] = {}
    described, subjects, used, copied = [], {f"case:{case}"}, set(), 0
    try:
        for sid in sids:
            sub = triage.submission(conn, sid)
            assert sub is not None
            folder = out / "submissions" / sid
            subjects.add(f"submission:{sid}")
            items = []
            for it in sub["items"]:
                subjects.add(f"item:{it['item_id']}")
                target = _item_target(folder, it, used)
                sums[str(target.relative_to(out))] = _copy_checked(
                    vault.item_path(it["item_id"]), target, it["sha256_kept"])
                copied += 1
                if progress is not None:
                    progress(copied, total)
                meta = it["metadata"]
                items.append({"item_id": it["item_id"], "kind": it["kind"],
                              "path": str(target.relative_to(out)),
                              "original_name": it["original_name"],
                              "detected_type": it["detected_type"], "size": it["size"],
                              "sha256_received": it["sha256_received"],
                              "sha256_kept": it["sha256_kept"],
                              "sanitized": bool(it["sanitized"]),
                              "sanitizer": meta.get("sanitizer"),
                              "removed": meta.get("removed", []), "flags": it["flags"]})
            for name, doc in (("choices.json", sub["choices"]),
                              ("metadata.json", [i["metadata"] for i in sub["items"]])):
                sums[f"submissions/{sid}/{name}"] = _write(
                    folder / name, json.dumps(doc, indent=2, ensure_ascii=False,
                                              sort_keys=True) + "\n")
            described.append({"submission_id": sid, "witness_id": sub["witness_id"],
                              "received_day": sub["received_day"], "status": sub["status"],
                              "tags": sub["tags"], "choices": sub["choices"], "items": items})
        at = custody.now()
        sums["case.json"] = _write(out / "case.json", json.dumps(
            {"format": "intake-case/1", "case": case, "exported_at": at,
             "submissions": described}, indent=2, ensure_ascii=False, sort_keys=True) + "\n")
        content = hashlib.sha256("".join(f"{h}  {p}\n" for p, h in sorted(sums.items()))
                                 .encode()).hexdigest()
        with vault.transaction() as c:
            head = custody.append(c, "export case", f"case:{case}",
                                  {"submissions": sids, "files": len(sums),
                                   "folder": out.name, "content_sha256": content}, actor)
        entries = custody.entries_for(conn, subjects)
        sums["custody.jsonl"] = _write(out / "custody.jsonl", "".join(
            json.dumps(e, ensure_ascii=False, sort_keys=True) + "\n" for e in entries))
        _write(out / "README.txt", README.format(case=case, at=at, head=head,
                                                 actor=actor or custody.default_actor()))
        sums["README.txt"] = hashlib.sha256((out / "README.txt").read_bytes()).hexdigest()
        _write(out / "SHA256SUMS", "".join(f"{h}  {p}\n" for p, h in sorted(sums.items())))
    except BaseException:
        shutil.rmtree(out, ignore_errors=True)
        raise
    for path in out.rglob("*"):
        os.chmod(path, 0o700 if path.is_dir() else 0o400)
    return len(sums)
