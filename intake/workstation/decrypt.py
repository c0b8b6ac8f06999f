"""The air-gapped side: verify a bundle and decrypt it into a folder per submission.

    OUT/<day>_<submission id>/testimony.txt
    OUT/<day>_<submission id>/files/<safe name>
    OUT/<day>_<submission id>/metadata.json   one record per item, as sealed

A damaged item is reported by its envelope's name and skipped; the rest goes on.
"""

from __future__ import annotations

import hashlib
import json
import os
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from nacl.public import PrivateKey

from intake.format.bundle import BundleReader, Entry
from intake.format.envelope import EnvelopeError, EnvelopeReader
from intake.workstation.safe_names import safe_output_name


@dataclass
class ItemResult:
    name: str
    ok: bool
    message: str = ""
    metadata: dict | None = None
    path: Path | None = None


@dataclass
class Report:
    results: list[ItemResult] = field(default_factory=list)

    @property
    def damaged(self) -> list[ItemResult]:
        return [r for r in self.results if not r.ok]

    @property
    def decrypted(self) -> list[ItemResult]:
        return [r for r in self.results if r.ok]


class _Hashing:
    def __init__(self, inp: BinaryIO):
        self._inp, self.sha = inp, hashlib.sha256()

    def read(self, n: int = -1) -> bytes:
        data = self._inp.read(n)
        self.sha.update(data)
        return data


def _unique(path: Path) -> Path:
    if not path.exists():
        return path
    stem, suffix = path.stem, path.suffix
    n = 2
    while (candidate := path.with_name(f"{stem} ({n}){suffix}")).exists():
        n += 1
    return candidate


def _decrypt_one(entry: Entry, member: BinaryIO, key: PrivateKey, out: Path) -> ItemResult:
    folder = out / f"{entry.received_day}_{entry.submission_id}"
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".partial-{entry.item_id}"
    hashing = _Hashing(member)
    try:
        reader = EnvelopeReader(hashing, key)  # type: ignore[arg-type]
        with open(tmp, "wb") as f:
            for piece in reader.content():
                f.write(piece)
        if hashing.sha.hexdigest() != entry.sha256:
            raise EnvelopeError("damaged: its SHA-256 does not match the manifest")
        meta = reader.metadata or {}
        if meta.get("item_id") != entry.item_id:
            raise EnvelopeError("tampered: the envelope was moved from another item")
    except EnvelopeError as exc:
        tmp.unlink(missing_ok=True)
        return ItemResult(entry.name, False, str(exc))
    except (OSError, EOFError, tarfile.TarError) as exc:
        tmp.unlink(missing_ok=True)
        return ItemResult(entry.name, False, f"truncated: the bundle ends inside it ({exc})")
    if meta.get("kind") == "testimony":
        target = _unique(folder / "testimony.txt")
    else:
        (folder / "files").mkdir(exist_ok=True)
        fallback = f"file-{entry.item_id[:8]}"
        target = _unique(folder / "files" / safe_output_name(meta.get("original_name", ""),
                                                             fallback))
    os.replace(tmp, target)
    meta = {**meta, "saved_as": str(target.relative_to(folder))}
    _append_metadata(folder / "metadata.json", meta)
    return ItemResult(entry.name, True, metadata=meta, path=target)


def _append_metadata(path: Path, record: dict) -> None:
    records = json.loads(path.read_text()) if path.exists() else []
    records.append(record)
    path.write_text(json.dumps(records, indent=2, ensure_ascii=False, sort_keys=True) + "\n")


def decrypt_bundle(bundle_path: Path, key: PrivateKey, out: Path) -> Report:
    report = Report()
    out.mkdir(parents=True, exist_ok=True)
    with BundleReader(bundle_path) as reader:
        for name, entry, member, problem in reader.envelopes():
            if problem:
                report.results.append(ItemResult(name, False, problem))
            else:
                report.results.append(_decrypt_one(entry, member, key, out))
    return report
