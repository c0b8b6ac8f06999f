"""Property tests (Hypothesis) over what reads bundle bytes: the manifest parser,
the tar reader, the sealed-metadata check and the envelope reader (the format's
and the workstation's streaming one). Whatever the bytes, they never crash
(only their own refusal), never hang (a deadline per example) and never write
(an audit hook watches every file the code under test opens or changes)."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sys
import tarfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nacl.public import PrivateKey, SealedBox

from intake.format import bundle, envelope
from intake.format.envelope import EnvelopeError, EnvelopeReader, Recipient
from intake.workstation import sealed
from intake.workstation.unseal import unseal

KEY = PrivateKey.generate()
PROPERTY = settings(max_examples=150, deadline=10_000, database=None,  # a hang fails
                    suppress_health_check=[HealthCheck.too_slow])

# -- never write: an audit hook, active only around the code under test (in every
# thread: the streaming reader works in three) ----------------------------------------------

class _Watch:
    on = False
    writes: list = []


_watching = _Watch()
_WRITE_EVENTS = {"os.mkdir", "os.rename", "os.replace", "os.remove", "os.rmdir", "os.link",
                 "os.symlink", "os.truncate", "os.chmod", "os.chown", "shutil.rmtree",
                 "shutil.move", "shutil.copyfile", "os.utime"}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


def _hook(event: str, args: tuple) -> None:
    if not getattr(_watching, "on", False):
        return
    if event in _WRITE_EVENTS:
        _watching.writes.append((event, args))
    elif event == "open":
        path, mode, flags = (tuple(args) + (None, None))[:3]
        if (isinstance(mode, str) and set(mode) & set("wax+")) or \
                (isinstance(flags, int) and flags & _WRITE_FLAGS):
            _watching.writes.append((event, args))


sys.addaudithook(_hook)


@contextlib.contextmanager
def no_writes():
    _watching.on, _watching.writes = True, []
    try:
        yield
    finally:
        _watching.on = False
    assert _watching.writes == [], _watching.writes


# -- the manifest -----------------------------------------------------------------------------

def hexes(n: int):
    return st.text("0123456789abcdef", min_size=n, max_size=n)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(
        st.text(max_size=12), children, max_size=4),
    max_leaves=12)


@st.composite
def listings(draw):
    """A manifest entry that is valid, or valid but for some fields."""
    item_id = draw(hexes(32))
    entry = {"item_id": item_id, "kind": draw(st.sampled_from(bundle.KINDS)),
             "name": f"envelopes/{item_id}.env", "received_day": "2026-03-01",
             "sha256": draw(hexes(64)), "size": draw(st.integers(0, 10**9)),
             "submission_id": draw(hexes(32)), "witness_id": draw(hexes(32))}
    for field in draw(st.lists(st.sampled_from(sorted(entry) + ["extra"]), max_size=3)):
        entry[field] = draw(json_values | st.text(max_size=80))
    return entry


@st.composite
def manifests(draw) -> bytes:
    doc = {"format": bundle.BUNDLE_FORMAT, "day": "2026-03-02",
           "items": draw(st.lists(listings(), max_size=8)),
           "witnesses": draw(st.lists(st.fixed_dictionaries(
               {"witness_id": hexes(32), "reply_public_key": st.binary(min_size=32,
                                                                       max_size=32).map(
                   lambda b: __import__("base64").b64encode(b).decode())}), max_size=3))}
    if draw(st.booleans()):
        doc[draw(st.sampled_from(sorted(doc)))] = draw(json_values)
    raw = json.dumps(doc).encode()
    if draw(st.booleans()):  # a few bytes changed anywhere
        pos = draw(st.integers(0, max(len(raw) - 1, 0)))
        raw = raw[:pos] + draw(st.binary(max_size=4)) + raw[pos + 1:]
    return raw


def _check_accepted(manifest: bundle.Manifest) -> None:
    for name, entry in manifest.entries.items():
        assert name == f"envelopes/{entry.item_id}.env"
        assert bundle.check_id(entry.item_id) and bundle.check_id(entry.submission_id)
        assert bundle.check_id(entry.witness_id) and bundle.check_sha256(entry.sha256)
        assert entry.kind in bundle.KINDS and type(entry.size) is int and entry.size >= 0
        assert bundle.check_day(entry.received_day)


@PROPERTY
@given(st.binary(max_size=2000) | manifests())
def test_the_manifest_parser_refuses_or_gives_only_checked_entries(raw):
    with no_writes():
        try:
            manifest = bundle.read_manifest(raw)
        except bundle.BundleError:
            return
    _check_accepted(manifest)
    assert not set(manifest.entries) & manifest.refused_names


@PROPERTY
@given(st.lists(st.tuples(hexes(32), hexes(32), hexes(32), st.sampled_from(bundle.KINDS),
                          st.integers(0, 2**40), hexes(64)), max_size=6, unique_by=lambda t: t[0]))
def test_a_manifest_the_server_writes_reads_back_whole(rows):
    by_sub: dict[str, tuple[str, str]] = {}
    entries = []
    for item_id, sub, wit, kind, size, sha in rows:
        wit = by_sub.setdefault(sub, (wit, "2026-03-01"))[0]  # one witness per submission
        entries.append(bundle.Entry(item_id, sub, wit, kind, size, sha, "2026-03-01"))
    raw = bundle.manifest_bytes("2026-03-02", entries, {})
    manifest = bundle.read_manifest(raw)
    assert list(manifest.entries.values()) == entries and manifest.refused == []


# -- the tar ----------------------------------------------------------------------------------

@st.composite
def tars(draw) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for _ in range(draw(st.integers(0, 4))):
            info = tarfile.TarInfo(draw(st.sampled_from(
                ["manifest.json", "envelopes/" + "a" * 32 + ".env", "../x", "/abs", "a" * 99])))
            info.type = draw(st.sampled_from([tarfile.REGTYPE, tarfile.SYMTYPE, tarfile.DIRTYPE,
                                              tarfile.LNKTYPE, tarfile.FIFOTYPE]))
            data = draw(st.binary(max_size=300)) if info.type == tarfile.REGTYPE else b""
            info.size, info.linkname = len(data), "/etc/passwd"
            tar.addfile(info, io.BytesIO(data))
    raw = out.getvalue()
    for _ in range(draw(st.integers(0, 3))):
        if raw:
            pos = draw(st.integers(0, len(raw) - 1))
            raw = raw[:pos] + bytes([draw(st.integers(0, 255))]) + raw[pos + 1:]
    return raw[:draw(st.integers(0, len(raw)))] if draw(st.booleans()) else raw


@PROPERTY
@given(tars())
def test_the_bundle_reader_refuses_or_offers_only_listed_members(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("tar") / "b.tar"
    path.write_bytes(raw)
    with no_writes():
        try:
            reader = bundle.BundleReader(path)
        except bundle.BundleError:
            return
        with reader:
            for cand in reader.envelopes():
                assert cand.problem or cand.entry is not None and \
                    cand.name == cand.entry.name


# -- the sealed metadata ----------------------------------------------------------------------

ENTRY = bundle.Entry("a" * 32, "b" * 32, "c" * 32, "file", 10, "d" * 64, "2026-03-01")


@PROPERTY
@given(st.dictionaries(st.sampled_from(
    ["format", "kind", "item_id", "submission_id", "witness_id", "received_day", "choices",
     "original_name", "detected_type", "size", "sha256_received", "sha256_kept", "sanitized",
     "flags", "removed", "original_of", "sanitizer", "other"]), json_values, max_size=18))
def test_the_sealed_metadata_check_refuses_or_gives_checked_values(meta):
    valid = {"format": "intake-item/1", "kind": "file", "item_id": "a" * 32,
             "submission_id": "b" * 32, "witness_id": "c" * 32, "received_day": "2026-03-01",
             "detected_type": "text/plain", "size": 1, "sha256_received": "e" * 64,
             "sha256_kept": "e" * 64}
    for candidate in (meta, {**valid, **meta}):
        with no_writes():
            try:
                item = sealed.check(candidate, ENTRY)
            except sealed.Refused:
                continue
        assert (item.item_id, item.submission_id, item.kind) == ("a" * 32, "b" * 32, "file")
        assert bundle.check_sha256(item.sha256_kept) and isinstance(item.original_name, str)
        assert all(isinstance(f, str) for f in item.flags)


# -- the envelope -----------------------------------------------------------------------------

def _sealed(content: bytes) -> bytes:
    out = io.BytesIO()
    envelope.seal(out, [Recipient(KEY.public_key)], [content], {"item_id": "a" * 32})
    return out.getvalue()


@st.composite
def envelopes(draw) -> tuple[bytes, bytes]:
    """(content, envelope bytes, what was done to it): whole, or cut, extended,
    changed or replaced by junk."""
    content = draw(st.binary(max_size=3 * envelope.CHUNK) | st.sampled_from(
        [b"", b"x" * envelope.CHUNK, b"y" * (envelope.CHUNK - 4 - 20)]))
    raw = _sealed(content)
    how = draw(st.sampled_from(["whole", "cut", "flip", "append", "insert", "junk"]))
    if how == "cut":
        raw = raw[:draw(st.integers(0, len(raw) - 1))]
    elif how == "flip":
        pos = draw(st.integers(0, len(raw) - 1))
        raw = raw[:pos] + bytes([raw[pos] ^ draw(st.integers(1, 255))]) + raw[pos + 1:]
    elif how == "append":
        raw += draw(st.binary(min_size=1, max_size=100))
    elif how == "insert":
        pos = draw(st.integers(0, len(raw)))
        raw = raw[:pos] + draw(st.binary(min_size=1, max_size=40)) + raw[pos:]
    elif how == "junk":
        raw = draw(st.binary(max_size=400))
    return content, raw, how


@PROPERTY
@given(envelopes())
def test_the_envelope_reader_opens_whole_envelopes_and_refuses_the_rest(case):
    content, raw, how = case
    with no_writes():
        try:
            reader = EnvelopeReader(io.BytesIO(raw), KEY)
            got = b"".join(reader.content())
        except EnvelopeError:
            assert how != "whole"
            return
    assert how == "whole"
    assert got == content and reader.metadata == {"item_id": "a" * 32}


@PROPERTY
@given(envelopes(), st.binary(max_size=64), st.sampled_from([0, 2 * 1024 * 1024]),
       st.booleans(), st.booleans())
def test_the_streaming_reader_refuses_without_writing_but_to_its_output(case, before, small,
                                                                        hash_content, alone):
    """unseal() reads the member from inside a larger file and writes only to the
    file it is given (a memfd here: no path at all), with its threads (small=0)
    or without them, with both hashes (three threads) or the envelope's only
    (two, as `intake decrypt` runs it), or in one thread, as beside another
    envelope (alone=False)."""
    content, raw, how = case
    src, dst = os.memfd_create("bundle"), os.memfd_create("out")
    try:
        os.write(src, before + raw + b"trailing member bytes")
        with no_writes():
            try:
                opened = unseal(src, len(before), len(raw), KEY, dst, small=small,
                                hash_content=hash_content, alone=alone)
            except EnvelopeError:
                assert how != "whole"
                return
        assert how == "whole"
        assert os.pread(dst, len(content) + 1, 0) == content
        assert opened.content_sha256 == (hashlib.sha256(content).hexdigest() if hash_content
                                         else "")
        assert opened.envelope_sha256 == hashlib.sha256(raw).hexdigest()
    finally:
        os.close(src)
        os.close(dst)


def test_an_empty_final_chunk_after_a_full_one_is_valid():
    """docs/bundle.md: an encoder never writes one, a decoder accepts it."""
    from intake.format import secretstream as ss

    meta = json.dumps({"item_id": "a" * 32}).encode()
    plain = b"c" * (envelope.CHUNK - len(meta) - 4) + meta + len(meta).to_bytes(4, "big")
    assert len(plain) == envelope.CHUNK
    file_key = ss.new_key()
    pusher = ss.Pusher(file_key)
    # The header as docs/envelope.md lays it out: magic, version, count, stanza.
    header = (envelope.MAGIC + bytes([1, 1]) + envelope.fingerprint(KEY.public_key)
              + SealedBox(KEY.public_key).encrypt(file_key) + pusher.header)
    raw = header + pusher.push(plain, ad=header) + pusher.push(b"", final=True)
    content = b"".join(EnvelopeReader(io.BytesIO(raw), KEY).content())
    assert content == b"c" * (envelope.CHUNK - len(meta) - 4)
    src, dst = os.memfd_create("bundle"), os.memfd_create("out")
    try:
        os.write(src, raw)
        assert unseal(src, 0, len(raw), KEY, dst, small=0).content_size == len(content)
    finally:
        os.close(src)
        os.close(dst)


def test_the_audit_hook_sees_a_write(tmp_path):
    """The `never write` checks can fail."""
    with pytest.raises(AssertionError), no_writes():
        (tmp_path / "x").write_text("x")


def test_a_large_item_is_written_whole_while_the_page_cache_is_let_go_of(tmp_path):
    """Past KEEP_BEHIND + LET_GO the writer advises the kernel to drop what it
    wrote; the file on disk is still the whole content, hashed as written."""
    from intake.workstation import unseal as unseal_module

    size = unseal_module.KEEP_BEHIND + 3 * unseal_module.LET_GO + 12345
    content = os.urandom(size)
    sealed_file = tmp_path / "item.env"
    with open(sealed_file, "wb") as f:
        envelope.seal(f, [Recipient(KEY.public_key)], [content], {"item_id": "a" * 32})
    out = tmp_path / "item.out"
    src = os.open(sealed_file, os.O_RDONLY)
    dst = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        opened = unseal(src, 0, os.fstat(src).st_size, KEY, dst)
    finally:
        os.close(src)
        os.close(dst)
    assert opened.content_size == size
    assert opened.content_sha256 == hashlib.sha256(content).hexdigest()
    assert out.read_bytes() == content
