"""The bundle: what staff carry from the server to the workstation. Specified
in docs/bundle.md.

A plain POSIX tar (readable with `tar`), manifest first:

    manifest.json          format, the day, and per envelope its name, ids,
                           kind, size and SHA-256; per witness an opaque id and
                           the reply public key
    envelopes/<id>.env     the envelopes, byte for byte as stored

Member times and owners are zeroed: a bundle says nothing of when it was made
beyond the day in its manifest.

Nothing in a bundle is authenticated but the envelopes themselves, so the
reader trusts nothing else: the manifest is checked field by field against a
strict schema before anything uses it, an entry that fails is refused by
itself (the others stay), and a member is offered to the caller only under a
name the checked manifest lists.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import os
import re
import stat
import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from nacl.exceptions import CryptoError
from nacl.public import PublicKey, SealedBox

from intake.format import untrusted_json

BUNDLE_FORMAT = "intake-bundle/1"
MANIFEST = "manifest.json"
BLOCK = tarfile.BLOCKSIZE
KINDS = ("testimony", "file", "original")
MAX_MANIFEST_BYTES = 64 * 1024 * 1024
MAX_ITEMS = 1_000_000
MAX_ENVELOPE_BYTES = 1 << 40  # 1 TiB: far above any upload limit
ITEM_FIELDS = frozenset({"item_id", "kind", "name", "received_day", "sha256", "size",
                         "submission_id", "witness_id"})
WITNESS_FIELDS = frozenset({"witness_id", "reply_public_key"})
TOP_FIELDS = frozenset({"format", "day", "items", "witnesses"})
_ID = re.compile(r"[0-9a-f]{32}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ENVELOPE_NAME = re.compile(r"envelopes/([0-9a-f]{32})\.env")
REGULAR = (tarfile.REGTYPE, tarfile.AREGTYPE)  # b"0" and b"\0"


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


# -- reading: the manifest ----------------------------------------------------------------

class _Invalid:
    """Stands in for a JSON value no field may hold (NaN, Infinity, a huge
    number, an object with a repeated key), so that the entry holding it is
    refused by itself while the others are read."""

    def __init__(self, why: str):
        self.why = why


def _object(pairs: list[tuple[str, object]]) -> dict | _Invalid:
    keys = [k for k, _ in pairs]
    if len(set(keys)) != len(keys):
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        return _Invalid(f"the key {repeated[0]!r} appears twice")
    return dict(pairs)


def _number(text: str) -> int | _Invalid:
    return int(text) if len(text) <= 20 else _Invalid("a number with too many digits")


def _parse(raw: bytes) -> object:
    try:
        return untrusted_json.loads(
            raw.decode("utf-8"), object_pairs_hook=_object, parse_int=_number,
            parse_constant=lambda name: _Invalid(f"{name} is not a number"))
    except UnicodeDecodeError as exc:
        raise BundleError("the bundle's manifest is damaged (not UTF-8)") from exc
    except untrusted_json.TooDeep as exc:
        raise BundleError("the bundle's manifest is damaged (nested too deeply)") from exc
    except ValueError as exc:
        raise BundleError("the bundle's manifest is damaged (not JSON)") from exc


class _Refused(Exception):
    pass


def _id(doc: dict, key: str) -> str:
    value = doc.get(key)
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise _Refused(f"its {key} is not 32 lowercase hex digits")
    return value


def check_day(value: object) -> str | None:
    """`value` when it is a UTC day written YYYY-MM-DD, else None."""
    if not isinstance(value, str) or not _DAY.fullmatch(value):
        return None
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return None
    return value


def check_id(value: object) -> str | None:
    """`value` when it is an opaque id (32 lowercase hex digits), else None."""
    return value if isinstance(value, str) and _ID.fullmatch(value) else None


def check_sha256(value: object) -> str | None:
    return value if isinstance(value, str) and _SHA256.fullmatch(value) else None


def _fields(doc: object, allowed: frozenset[str]) -> dict:
    if isinstance(doc, _Invalid):
        raise _Refused(f"malformed: {doc.why}")
    if not isinstance(doc, dict):
        raise _Refused("not a JSON object")
    unknown = sorted(set(doc) - allowed)
    if unknown:
        raise _Refused(f"unknown field {unknown[0][:40]!r}")
    missing = sorted(allowed - set(doc))
    if missing:
        raise _Refused(f"the field {missing[0]!r} is missing")
    for key, value in doc.items():
        if isinstance(value, _Invalid):
            raise _Refused(f"its {key} is malformed: {value.why}")
    return doc


def _entry(doc: object) -> Entry:
    doc = _fields(doc, ITEM_FIELDS)
    item_id = _id(doc, "item_id")
    submission_id, witness_id = _id(doc, "submission_id"), _id(doc, "witness_id")
    if doc["kind"] not in KINDS:
        raise _Refused("its kind is not one of " + ", ".join(KINDS))
    size = doc["size"]
    if type(size) is not int or not 0 <= size <= MAX_ENVELOPE_BYTES:
        raise _Refused("its size is not a whole number of bytes")
    if check_sha256(doc["sha256"]) is None:
        raise _Refused("its sha256 is not 64 lowercase hex digits")
    if check_day(doc["received_day"]) is None:
        raise _Refused("its received_day is not a day (YYYY-MM-DD)")
    entry = Entry(item_id, submission_id, witness_id, doc["kind"], size, doc["sha256"],
                  doc["received_day"])
    if doc["name"] != entry.name:
        raise _Refused("its name is not envelopes/<item_id>.env")
    return entry


def _witness(doc: object) -> tuple[str, str]:
    doc = _fields(doc, WITNESS_FIELDS)
    witness_id, key = _id(doc, "witness_id"), doc["reply_public_key"]
    try:
        raw = base64.b64decode(key, validate=True) if isinstance(key, str) else b""
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32 or base64.b64encode(raw).decode() != key:
        raise _Refused("its reply_public_key is not 32 bytes in base64")
    if not usable_public_key(raw):
        raise _Refused("its reply_public_key cannot be sealed to (a point of small order)")
    return witness_id, key


def usable_public_key(raw: bytes) -> bool:
    """Whether anything can be sealed to the X25519 key `raw`: a point of
    small order (all zeros, one, and the few others) gives a shared secret
    of zeros, which libsodium refuses. One trial seal asks it."""
    try:
        SealedBox(PublicKey(raw)).encrypt(b"")
    except CryptoError:
        return False
    return True


@dataclass(frozen=True)
class Refusal:
    """A manifest entry refused by itself: `label` says which (its position,
    and its member's name when that name was well formed)."""

    label: str
    reason: str
    name: str = ""


@dataclass
class Manifest:
    day: str
    entries: dict[str, Entry]  # member name -> entry, for every entry that passed
    witnesses: dict[str, str]  # witness id -> reply public key (base64)
    refused: list[Refusal] = field(default_factory=list)
    refused_witnesses: list[Refusal] = field(default_factory=list)

    @property
    def refused_names(self) -> set[str]:
        return {r.name for r in self.refused if r.name}


def _listed_name(doc: object) -> str:
    name = doc.get("name") if isinstance(doc, dict) else None
    return name if isinstance(name, str) and _ENVELOPE_NAME.fullmatch(name) else ""


def _checked_items(docs: list) -> tuple[list[Entry], list[Refusal]]:
    entries: list[tuple[int, Entry]] = []
    refused: list[Refusal] = []
    listed: dict[str, int] = {}
    for n, doc in enumerate(docs, 1):
        name = _listed_name(doc)
        listed[name] = listed.get(name, 0) + 1
        label = f"manifest item {n}" + (f" ({name})" if name else "")
        try:
            entries.append((n, _entry(doc)))
        except _Refused as exc:
            refused.append(Refusal(label, f"refused: {exc}", name))
    # An item listed twice, or a submission given two witnesses or two days: the
    # manifest cannot say which is true, so none of them is taken.
    shape: dict[str, set[tuple[str, str]]] = {}
    for _n, e in entries:
        shape.setdefault(e.submission_id, set()).add((e.witness_id, e.received_day))
    kept = []
    for n, e in entries:
        label = f"manifest item {n} ({e.name})"
        if listed[e.name] > 1:
            refused.append(Refusal(label, f"refused: item {e.item_id} is listed more than "
                                   "once in the manifest", e.name))
        elif len(shape[e.submission_id]) > 1:
            refused.append(Refusal(label, f"refused: the manifest gives submission "
                                   f"{e.submission_id} more than one witness or day", e.name))
        else:
            kept.append(e)
    return kept, refused


def _checked_witnesses(docs: list) -> tuple[dict[str, str], list[Refusal]]:
    found: list[tuple[int, str, str]] = []
    refused: list[Refusal] = []
    for n, doc in enumerate(docs, 1):
        try:
            found.append((n, *_witness(doc)))
        except _Refused as exc:
            refused.append(Refusal(f"manifest witness {n}", f"refused: {exc}"))
    counts: dict[str, int] = {}
    for _n, w, _key in found:
        counts[w] = counts.get(w, 0) + 1
    keys = {}
    for n, w, key in found:
        if counts[w] > 1:
            refused.append(Refusal(f"manifest witness {n}",
                                   f"refused: witness {w} is listed more than once"))
        else:
            keys[w] = key
    return keys, refused


def read_manifest(raw: bytes) -> Manifest:
    """The checked manifest. Raises BundleError only when the manifest as a
    whole cannot be read; a bad entry is refused by itself (Manifest.refused)."""
    if len(raw) > MAX_MANIFEST_BYTES:
        raise BundleError("the bundle's manifest is damaged (too large)")
    doc = _parse(raw)
    try:
        doc = _fields(doc, TOP_FIELDS)
    except _Refused as exc:
        if isinstance(doc, dict) and doc.get("format") not in (BUNDLE_FORMAT, None):
            raise BundleError("not an Intake bundle (unknown manifest format)") from exc
        raise BundleError(f"the bundle's manifest is damaged ({exc})") from exc
    if doc["format"] != BUNDLE_FORMAT:
        raise BundleError("not an Intake bundle (unknown manifest format)")
    if check_day(doc["day"]) is None:
        raise BundleError("the bundle's manifest is damaged (its day is not YYYY-MM-DD)")
    items, witnesses = doc["items"], doc["witnesses"]
    if not isinstance(items, list) or not isinstance(witnesses, list):
        raise BundleError("the bundle's manifest is damaged (items or witnesses is not a list)")
    if len(items) > MAX_ITEMS or len(witnesses) > MAX_ITEMS:
        raise BundleError("the bundle's manifest is damaged (too many entries)")
    entries, refused = _checked_items(items)
    keys, refused_witnesses = _checked_witnesses(witnesses)
    return Manifest(doc["day"], {e.name: e for e in entries}, keys, refused,
                    refused_witnesses)


# -- reading: the members -----------------------------------------------------------------

SECOND_COPY = "a second copy of an item already taken: skipped"


@dataclass
class Candidate:
    """A member the caller may open: `entry` is the manifest's entry for it.
    Or, with `problem` set, one it may not, with the reason. The caller calls
    accept() once it has kept the item; until then a later member of the same
    name still gets its turn. Whether an earlier member of its name was
    kept is asked when `problem` is read, not when the member is found: a
    caller may look ahead (intake.workstation.ahead) as long as it reads a
    member's `problem` only once it has decided on every earlier member of
    that name."""

    name: str
    entry: Entry | None = None
    refusal: str = ""
    offset: int = 0  # where the member's bytes start in the bundle file
    size: int = 0
    _accepted: dict[str, Candidate] | None = field(default=None, repr=False, compare=False)

    @property
    def problem(self) -> str:
        if self.refusal:
            return self.refusal
        if self._accepted is not None and self._accepted.get(self.name, self) is not self:
            return SECOND_COPY
        return ""

    def accept(self) -> None:
        assert self._accepted is not None and self.entry is not None
        self._accepted.setdefault(self.name, self)


@dataclass(frozen=True)
class _Member:
    name: str
    type: bytes
    offset: int  # of its data
    size: int


def _octal(field: bytes) -> int | None:
    if field[:1] == b"\x80":  # GNU base-256, for sizes of 8 GiB and more
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text or any(c not in b"01234567" for c in text):
        return None
    return int(text, 8)


def _parse_header(block: bytes, offset: int) -> _Member | None:
    """One ustar header, checked (magic and checksum); None if it is not one."""
    if block[257:262] != b"ustar":
        return None
    stored = _octal(block[148:156])
    if stored is None or stored != sum(block[:148]) + 8 * 32 + sum(block[156:]):
        return None
    size = _octal(block[124:136])
    if size is None:
        return None
    name = block[:100].split(b"\0", 1)[0]
    prefix = block[345:500].split(b"\0", 1)[0]
    if prefix:
        name = prefix + b"/" + name
    return _Member(name.decode("utf-8", errors="replace"), block[156:157], offset + BLOCK,
                   size)


class BundleReader:
    """Opens a bundle file: .manifest, then envelopes() in the order written.

    The tar is read here, header by header, with nothing held but the header
    at hand: only ustar regular files are members this format has; anything
    else is skipped by its size. Member bytes are read with `pread` on `.fd`,
    at Candidate.offset."""

    def __init__(self, path):
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise BundleError(f"not a readable bundle ({exc.strerror})") from exc
        try:
            info = os.fstat(self.fd)
            if not stat.S_ISREG(info.st_mode):
                raise BundleError("not a readable bundle (not a regular file)")
            self._file_size = info.st_size
            first = next(self._members(), None)
            if first is None:
                raise BundleError("not a readable bundle (not a tar file)")
            if first.name != MANIFEST or first.type not in REGULAR:
                raise BundleError("not an Intake bundle (no manifest at the start)")
            if first.size > MAX_MANIFEST_BYTES:
                raise BundleError("the bundle's manifest is damaged (too large)")
            raw = os.pread(self.fd, first.size, first.offset)
            if len(raw) != first.size:
                raise BundleError("the bundle is damaged at its start (the manifest is cut)")
            self.manifest_sha256 = hashlib.sha256(raw).hexdigest()
            self.manifest = read_manifest(raw)
        except OSError as exc:
            os.close(self.fd)
            raise BundleError(f"the bundle cannot be read ({exc.strerror})") from exc
        except BaseException:
            os.close(self.fd)
            raise
        self._after_manifest = first.offset + _padded(first.size)

    def total_size(self) -> int:
        return sum(e.size for e in self.manifest.entries.values())

    def _members(self, offset: int = 0) -> Iterator[_Member]:
        """Each member's header, until the end marker, the end of the file, or
        a block that is not a header (everything not yet seen is then missing).
        A member said to be larger than what is left of the file is the last:
        the bundle ends inside it (its size may be any number a header can
        hold, 2**88 included)."""
        while True:
            block = os.pread(self.fd, BLOCK, offset)
            if len(block) < BLOCK:
                return
            member = _parse_header(block, offset)
            if member is None:
                return
            yield member
            if self.cut(member):
                return
            offset = member.offset + _padded(member.size)

    def cut(self, member: _Member) -> bool:
        """Whether the bundle ends inside `member`."""
        return member.offset + member.size > self._file_size

    def envelopes(self) -> Iterator[Candidate]:
        """A Candidate for each member; then one for each listed entry no
        member was offered for ("missing from the bundle")."""
        entries = self.manifest.entries
        accepted: dict[str, Candidate] = {}
        tried: set[str] = set()
        refused = self.manifest.refused_names
        for info in self._members(self._after_manifest):
            name = info.name
            if name in refused:
                continue  # reported with the manifest's refusals
            if info.type not in REGULAR:
                yield Candidate(name, refusal="not a regular file: skipped")
            elif name in entries and self.cut(info):
                tried.add(name)
                yield Candidate(name, refusal="truncated: the bundle ends inside it")
            elif name in entries:
                # A second copy of a name: `problem` says so if the first was kept.
                tried.add(name)
                yield Candidate(name, entries[name], "", info.offset, info.size, accepted)
            else:
                yield Candidate(name, refusal="not in the manifest: skipped")
        for name in entries:
            if name not in tried:
                yield Candidate(name, refusal="missing from the bundle")

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> BundleReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK
