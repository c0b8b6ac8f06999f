"""Makes the envelope known-answer vectors in this folder. Run once; keep the output.

    python tests/vectors/make_vectors.py [--force]

Sealing is randomized (a fresh file key, ephemeral sealing keys, a random
stream header), so every run gives different bytes: the vectors are made once,
kept in the repository, and never regenerated unless the format changes.

Good vectors are written by intake.envelope itself. Broken ones are either cut
or flipped copies of good ones, or made by the small raw encoder below, which
can break the rules on purpose (a short chunk, a bad trailer, no header
binding) because it holds the file key.

The private keys are derived from fixed labels and printed into index.json:
they are test keys, for these vectors only.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import sys
from pathlib import Path

from nacl import bindings as b
from nacl.public import PrivateKey

from intake.format import envelope
from intake.format.envelope import CHUNK, MAGIC, Recipient

HERE = Path(__file__).resolve().parent
INDEX = HERE / "index.json"
ABYTES = b.crypto_secretstream_xchacha20poly1305_ABYTES
TAG_MESSAGE = b.crypto_secretstream_xchacha20poly1305_TAG_MESSAGE
TAG_FINAL = b.crypto_secretstream_xchacha20poly1305_TAG_FINAL


def fixed_key(label: str) -> PrivateKey:
    return PrivateKey(hashlib.sha256(b"intake envelope test vectors: " + label.encode()).digest())


KEYS = {name: fixed_key(name) for name in ("alice", "bob", "carol")}


def pattern(n: int) -> bytes:
    """Deterministic, incompressible-looking content of n bytes."""
    out = bytearray()
    counter = 0
    while len(out) < n:
        out += hashlib.sha256(counter.to_bytes(8, "big")).digest()
        counter += 1
    return bytes(out[:n])


def server_metadata(kind: str, item: int, content: bytes, **extra: object) -> dict:
    """Metadata shaped like what the server writes, with fixed ids."""
    sha = hashlib.sha256(content).hexdigest()
    meta = {"format": "intake-item/1", "kind": kind, "item_id": f"{item:032x}",
            "submission_id": "5" * 32, "witness_id": "a" * 32,
            "received_day": "2026-03-01", "choices": {"keep_original": False},
            "detected_type": "text/plain; charset=utf-8" if kind == "testimony"
            else "application/octet-stream",
            "size": len(content), "sha256_received": sha, "sha256_kept": sha,
            "sanitized": False, "sanitizer": None, "removed": [], "flags": []}
    if kind == "file":
        meta["original_name"] = f"file-{item}.bin"
        meta["flags"] = ["not sanitized: unsupported type"]
    meta.update(extra)
    return meta


def seal(content: bytes, metadata: dict, recipients: tuple[str, ...] = ("alice",)) -> bytes:
    out = io.BytesIO()
    envelope.seal(out, [Recipient(KEYS[r].public_key) for r in recipients], [content], metadata)
    return out.getvalue()


def meta_length(metadata: dict) -> int:
    return len(json.dumps(metadata, ensure_ascii=False, sort_keys=True).encode())


def raw_envelope(plain_chunks: list[tuple[bytes, int]], *, recipients=("alice",),
                 bind_header: bool = True) -> bytes:
    """An envelope with chunks and tags exactly as given, right or wrong."""
    file_key = b.crypto_secretstream_xchacha20poly1305_keygen()
    state = b.crypto_secretstream_xchacha20poly1305_state()
    stream_header = b.crypto_secretstream_xchacha20poly1305_init_push(state, file_key)
    header = MAGIC + bytes([1, len(recipients)])
    for r in recipients:
        pk = KEYS[r].public_key
        header += envelope.fingerprint(pk) + b.crypto_box_seal(file_key, bytes(pk))
    header += stream_header
    out = [header]
    for i, (plain, tag) in enumerate(plain_chunks):
        ad = header if (i == 0 and bind_header) else None
        out.append(b.crypto_secretstream_xchacha20poly1305_push(state, plain, ad, tag))
    return b"".join(out)


def trailer(metadata: bytes, length: int | None = None) -> bytes:
    return metadata + (len(metadata) if length is None else length).to_bytes(4, "big")


def header_length(count: int) -> int:
    return len(MAGIC) + 2 + count * envelope.STANZA_BYTES + 24


def flip(data: bytes, offset: int) -> bytes:
    return data[:offset] + bytes([data[offset] ^ 0x01]) + data[offset + 1:]


def chunk_spans(data: bytes, count: int) -> list[tuple[int, int]]:
    """(start, end) of each sealed chunk in an envelope with `count` stanzas."""
    spans, pos = [], header_length(count)
    while pos < len(data):
        end = min(pos + CHUNK + ABYTES, len(data))
        spans.append((pos, end))
        pos = end
    return spans


def good(name, content, metadata, keys=("alice",), note=""):
    data = seal(content, metadata, keys)
    return name, data, {"expect": "ok", "keys": list(keys), "content_size": len(content),
                        "content_sha256": hashlib.sha256(content).hexdigest(),
                        "metadata": metadata, "note": note}


def bad(name, data, error, note, key="alice"):
    return name, data, {"expect": "error", "keys": [key], "error": error, "note": note}


def make() -> list[tuple[str, bytes | None, dict]]:
    vectors = []

    small_text = "Я бачила колону техніки біля мосту о 6 ранку.\n".encode()
    ukr = {"original_name": "відео з мосту — 6:00 📷.mp4", "detected_type": "video/mp4",
           "removed": ["GPSLatitude", "GPSLongitude", "Make", "Model"],
           "sanitized": True, "sanitizer": "ffmpeg remux",
           "sha256_received": "0" * 64}
    three_chunk = pattern(2 * CHUNK + 1)

    vectors.append(good("empty", b"", server_metadata("testimony", 1, b""),
                        note="no content: one FINAL chunk holding only the metadata"))
    vectors.append(good("small", small_text, server_metadata("testimony", 2, small_text),
                        note="a short testimony in one FINAL chunk"))
    exact = pattern(CHUNK)
    vectors.append(good("exactly_one_chunk", exact, server_metadata("file", 3, exact),
                        note="65536 bytes: one full chunk of content, metadata in the FINAL"))
    vectors.append(good("two_chunks_plus_one", three_chunk,
                        server_metadata("file", 4, three_chunk),
                        note="131073 bytes: two full chunks, FINAL holds 1 byte + metadata"))
    straddle = pattern(CHUNK - 10)
    meta = server_metadata("file", 5, straddle)
    vectors.append(good("metadata_straddles", straddle, meta,
                        note="the metadata starts in a full chunk and ends in the FINAL"))
    full = b""
    for _ in range(3):  # the size field's digits depend on the size itself
        full = pattern(CHUNK - 4 - meta_length(server_metadata("file", 6, full)))
    meta = server_metadata("file", 6, full)
    assert len(full) + meta_length(meta) + 4 == CHUNK
    vectors.append(good("full_final_chunk", full, meta,
                        note="content + metadata + 4 is exactly 65536: one full FINAL chunk"))
    vectors.append(good("two_recipients", small_text,
                        server_metadata("testimony", 7, small_text), keys=("alice", "bob"),
                        note="sealed to two keys; each opens it alone"))
    photo = pattern(1000)
    vectors.append(good("unicode_metadata", photo,
                        server_metadata("file", 8, photo, **ukr),
                        note="non-ASCII metadata, written as UTF-8 (not \\u escapes)"))

    by_name = {n: d for n, d, _ in vectors}
    small = by_name["small"]
    big = by_name["two_chunks_plus_one"]
    pair = by_name["two_recipients"]
    h1 = header_length(1)
    big_spans = chunk_spans(big, 1)
    straddling = by_name["metadata_straddles"]
    straddle_spans = chunk_spans(straddling, 1)
    assert len(big_spans) == 3 and len(straddle_spans) == 2

    vectors += [
        bad("empty_file", b"", "not an Intake envelope", "zero bytes"),
        bad("wrong_magic", b"INTAKE\x00X" + small[8:], "not an Intake envelope",
            "the last magic byte changed"),
        bad("unknown_version", small[:8] + b"\x02" + small[9:],
            "unsupported envelope version", "version byte 2"),
        bad("zero_recipients", small[:9] + b"\x00" + small[10 + 96:],
            "damaged", "recipient count 0, stanza removed"),
        bad("cut_in_magic", small[:5], "not an Intake envelope", "only 5 bytes"),
        bad("cut_in_header", small[:60], "truncated", "cut inside the stanza"),
        bad("cut_in_stream_header", small[:h1 - 5], "truncated",
            "cut inside the stream header"),
        bad("header_only", small[:h1], "truncated", "a whole header and no chunk"),
        bad("cut_mid_chunk", big[:big_spans[1][0] + 1000], "damaged",
            "cut inside the second chunk: indistinguishable from damage"),
        bad("cut_mid_final_chunk", small[:-7], "damaged", "the FINAL chunk lost 7 bytes"),
        bad("final_chunk_removed", straddling[:straddle_spans[1][0]], "truncated",
            "ends cleanly after a full chunk tagged MESSAGE"),
        bad("chunks_swapped", big[:h1] + big[slice(*big_spans[1])] + big[slice(*big_spans[0])]
            + big[slice(*big_spans[2])], "damaged", "chunks 1 and 2 in the wrong order"),
        bad("bit_flip_fingerprint", flip(small, 10 + 3), "not sealed to this key",
            "one bit of the stanza's fingerprint"),
        bad("bit_flip_sealed_key", flip(small, 10 + 16 + 40), "not sealed to this key",
            "one bit of the sealed file key"),
        bad("bit_flip_payload", flip(small, h1 + 30), "damaged",
            "one bit inside the FINAL chunk's ciphertext"),
        bad("bit_flip_stream_header", flip(small, h1 - 3), "damaged",
            "one bit of the 24-byte stream header"),
        bad("appended_after_final", small + b"\x00", "damaged",
            "one zero byte after a short FINAL chunk: it joins the FINAL's frame"),
        bad("appended_after_full_final", by_name["full_final_chunk"] + b"\x00", "damaged",
            "one zero byte after a full FINAL chunk: a frame after the FINAL"),
        bad("wrong_key", None, "not sealed to this key",
            "the good vector 'small' opened with carol's key", key="carol"),
    ]
    vectors[-1][2]["file"] = "small.env"

    # Another envelope for the same key: its stanza opens, to the wrong file key.
    other = seal(small_text, server_metadata("testimony", 9, small_text))
    vectors.append(bad("stanza_from_other_envelope", small[:10] + other[10:10 + 96]
                       + small[10 + 96:], "damaged",
                       "alice's stanza replaced by alice's stanza of another envelope"))
    # Bob's stanza changed: alice still opens her stanza, but the header binding fails.
    vectors.append(bad("other_stanza_flipped_for_alice", flip(pair, 10 + 96 + 16 + 5),
                       "damaged", "bob's sealed key flipped; alice's first chunk fails"))
    vectors.append(bad("other_stanza_flipped_for_bob", None, "not sealed to this key",
                       "the same file opened by bob", key="bob"))
    vectors[-1][2]["file"] = "other_stanza_flipped_for_alice.env"
    vectors.append(bad("stanzas_reordered", pair[:10] + pair[106:202] + pair[10:106]
                       + pair[202:], "damaged", "the two stanzas swapped: the header changed"))

    # Made with the raw encoder: well sealed, but against the format's rules.
    meta = json.dumps(server_metadata("testimony", 10, b"")).encode()
    vectors += [
        bad("no_header_binding", raw_envelope([(trailer(meta), TAG_FINAL)], bind_header=False),
            "damaged", "the first chunk sealed without the header as additional data"),
        bad("short_non_final_chunk", raw_envelope([(b"x" * 100, TAG_MESSAGE),
                                                   (trailer(meta), TAG_FINAL)]),
            "damaged", "a 100-byte chunk tagged MESSAGE, then the FINAL"),
        bad("short_chunk_at_end", raw_envelope([(b"x" * 100, TAG_MESSAGE)]),
            "damaged", "the last chunk is 100 bytes and tagged MESSAGE"),
        bad("metadata_length_too_large", raw_envelope([(trailer(meta, len(meta) + 1),
                                                        TAG_FINAL)]),
            "damaged", "the trailer claims one byte more than there is"),
        bad("final_chunk_too_short", raw_envelope([(b"{}", TAG_FINAL)]), "damaged",
            "a FINAL chunk of 2 bytes has no room for the trailer"),
        bad("metadata_not_json", raw_envelope([(trailer(b"{not json"), TAG_FINAL)]),
            "damaged", "the metadata bytes are not JSON"),
        bad("metadata_not_utf8", raw_envelope([(trailer(b'{"a": "\xff"}'), TAG_FINAL)]),
            "damaged", "the metadata bytes are not UTF-8"),
        bad("metadata_not_object", raw_envelope([(trailer(b"[1, 2]"), TAG_FINAL)]),
            "damaged", "the metadata is a JSON array"),
    ]
    return vectors


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--force", action="store_true", help="replace existing vectors")
    args = parser.parse_args(argv)
    if INDEX.exists() and not args.force:
        print(f"{INDEX.name} exists; the vectors are made once (use --force to remake)")
        return 1
    for old in HERE.glob("*.env"):
        old.unlink()
    entries = []
    for name, data, info in make():
        if data is not None:
            info["file"] = f"{name}.env"
            (HERE / info["file"]).write_bytes(data)
        entries.append({"name": name, **info})
    index = {
        "format": "intake-envelope-vectors/1",
        "about": "Known-answer vectors for docs/envelope.md. The private keys below are "
                 "test keys, public on purpose; never use them for anything else.",
        "keys": {name: {"private_key": bytes(k).hex(), "public_key": bytes(k.public_key).hex(),
                        "fingerprint": envelope.fingerprint(k.public_key).hex()}
                 for name, k in KEYS.items()},
        "vectors": entries,
    }
    INDEX.write_text(json.dumps(index, indent=2, ensure_ascii=False) + "\n")
    print(f"wrote {len(entries)} vectors to {HERE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
