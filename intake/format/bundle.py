"""The bundle: what staff carry from the server to the workstation.

A plain POSIX tar (readable with `tar`), manifest first:

    manifest.json          format, the day, and per envelope its name, ids,
                           kind, size and SHA-256; per witness an opaque id and
                           the reply public key
    envelopes/<id>.env     the envelopes, byte for byte as stored

Member times and owners are zeroed: a bundle says nothing of when it was made
beyond the day in its manifest.
"""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

BUNDLE_FORMAT = "intake-bundle/1"
MANIFEST = "manifest.json"
BLOCK = tarfile.BLOCKSIZE


class BundleError(Exception):
    """The bundle as a whole cannot be read."""


@dataclass(frozen=True)
class Entry:
    item_id: str
    submission_id: str
    witness_id: str
    kind: str
    size: int
    sha256: str
    received_day: str

    @property
    def name(self) -> str:
        return f"envelopes/{self.item_id}.env"


def _header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = size, 0, 0o600
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info.tobuf(format=tarfile.USTAR_FORMAT)


def member(name: str, size: int, body: Iterable[bytes]) -> Iterator[bytes]:
    yield _header(name, size)
    sent = 0
    for piece in body:
        sent += len(piece)
        yield piece
    if sent != size:
        raise BundleError(f"{name} changed size while being bundled")
    if size % BLOCK:
        yield b"\0" * (BLOCK - size % BLOCK)


def _read_chunks(f: BinaryIO, size: int = 1024 * 1024) -> Iterator[bytes]:
    while piece := f.read(size):
        yield piece


def manifest_bytes(day: str, entries: list[Entry], witnesses: dict[str, str]) -> bytes:
    manifest = {
        "format": BUNDLE_FORMAT, "day": day,
        "items": [{**e.__dict__, "name": e.name} for e in entries],
        "witnesses": [{"witness_id": w, "reply_public_key": pk}
                      for w, pk in sorted(witnesses.items())],
    }
    return json.dumps(manifest, indent=1, sort_keys=True).encode()


def iter_bundle(day: str, entries: list[Entry], witnesses: dict[str, str],
                open_item) -> Iterator[bytes]:
    """The bundle as a stream of bytes, never whole in memory: the staff
    download and `intake queue export` both use it."""
    data = manifest_bytes(day, entries, witnesses)
    yield from member(MANIFEST, len(data), [data])
    for e in entries:
        with open_item(e.item_id) as f:
            yield from member(e.name, e.size, _read_chunks(f))
    yield b"\0" * (2 * BLOCK)


def write(out: BinaryIO, day: str, entries: list[Entry], witnesses: dict[str, str],
          open_item) -> None:
    for piece in iter_bundle(day, entries, witnesses, open_item):
        out.write(piece)


@dataclass
class Manifest:
    day: str
    entries: dict[str, Entry]
    witnesses: dict[str, str]


def read_manifest(raw: bytes) -> Manifest:
    try:
        doc = json.loads(raw)
        if doc.get("format") != BUNDLE_FORMAT:
            raise BundleError("not an Intake bundle (unknown manifest format)")
        entries = {}
        for it in doc["items"]:
            e = Entry(it["item_id"], it["submission_id"], it["witness_id"], it["kind"],
                      int(it["size"]), it["sha256"], it["received_day"])
            entries[e.name] = e
        witnesses = {w["witness_id"]: w["reply_public_key"] for w in doc.get("witnesses", [])}
        return Manifest(doc["day"], entries, witnesses)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BundleError("the bundle's manifest is damaged") from exc


class BundleReader:
    """Opens a bundle file: .manifest, then members() in the order written."""

    def __init__(self, path):
        try:
            self._tar = tarfile.open(path, mode="r:")  # noqa: SIM115 (closed in close())
        except (OSError, tarfile.TarError) as exc:
            raise BundleError(f"not a readable bundle ({exc})") from exc
        try:
            first = self._tar.next()
            if first is None or first.name != MANIFEST:
                raise BundleError("not an Intake bundle (no manifest at the start)")
            self.manifest = read_manifest(self._tar.extractfile(first).read())
        except (tarfile.TarError, OSError) as exc:
            self._tar.close()
            raise BundleError("the bundle is damaged at its start") from exc
        except BundleError:
            self._tar.close()
            raise

    def members(self) -> Iterator[tuple[str, BinaryIO | None]]:
        """(name, file) for each member; (None, None) where the tar itself breaks."""
        while True:
            try:
                info = self._tar.next()
            except (tarfile.TarError, OSError):
                yield "", None
                return
            if info is None:
                return
            yield info.name, (self._tar.extractfile(info) if info.isfile() else None)

    def envelopes(self) -> Iterator[tuple[str, Entry | None, BinaryIO | None, str]]:
        """(name, manifest entry, member, "") for each envelope the manifest lists;
        (name, None, None, problem) for a stray member or one the bundle lacks."""
        expected = dict(self.manifest.entries)
        for name, member in self.members():
            if member is None:
                if name == "":
                    break  # the tar itself is broken from here on
                continue
            entry = expected.pop(name, None)
            if entry is None:
                yield name or "?", None, None, "not in the manifest: skipped"
            else:
                yield name, entry, member, ""
        for name in expected:
            yield name, None, None, "missing from the bundle"

    def close(self) -> None:
        self._tar.close()

    def __enter__(self) -> BundleReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
