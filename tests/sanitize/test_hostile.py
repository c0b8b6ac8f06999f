"""Malformed and hostile uploads end as flagged originals, within the limits:
never a crash of the worker, never a lost file."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from support import MemorySpool


@pytest.mark.parametrize(("make", "reason"), [
    ("truncated_jpeg", "truncated JPEG"),
    ("broken_xref_pdf", "malformed PDF"),
    ("huge_png", "image too large"),
    ("zip_bomb_docx", "zip bomb"),
])
def test_hostile_input_is_refused_with_a_reason(corpus, sanitized, make, reason):
    original = getattr(corpus, make)()
    started = time.monotonic()
    result, out = sanitized(original)
    assert time.monotonic() - started < 30
    assert not result.ok and out is None and result.spool is None
    assert reason in result.reason
    assert result.flags == [f"not sanitized: {result.reason}"]


def test_zip_bomb_that_lies_about_its_size_is_caught(corpus, sanitized, tmp_path):
    """Declared sizes can lie; the bytes read are counted too."""
    import zipfile

    path = corpus.docx("liar.docx")
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as z:
        info = z.getinfo("word/document.xml")
    # Shrink the declared size in the central directory: reading stops there
    # and the CRC no longer matches.
    entry = data.find(b"word/document.xml", data.find(b"PK\x01\x02"))
    start = data.rfind(b"PK\x01\x02", 0, entry)
    data[start + 24:start + 28] = (10).to_bytes(4, "little")
    assert info.file_size > 10
    liar = tmp_path / "liar.docx"
    liar.write_bytes(bytes(data))
    result, _ = sanitized(liar)
    assert not result.ok and "malformed" in result.reason


def test_wall_time_limit_kills_the_child(corpus, sanitized):
    """An MKV goes through ffprobe and ffmpeg: starting them alone takes
    longer than this limit."""
    started = time.monotonic()
    result, _ = sanitized(corpus.mkv(), wall_seconds=0.01)
    assert time.monotonic() - started < 10
    assert not result.ok and result.reason == "time limit reached"


def test_memory_limit_ends_in_a_flag_not_a_crash(sanitized, tmp_path):
    """A TIFF is decoded to be cleaned: 4000x4000 RGB needs 48 MB more than
    the child has when it starts, which a 48 MiB address space cannot give."""
    from PIL import Image

    path = tmp_path / "big.tiff"
    picture = Image.linear_gradient("L").resize((4000, 4000)).convert("RGB")
    picture.save(path, compression="tiff_deflate")
    result, _ = sanitized(path, memory=48 * 1024 * 1024)
    assert not result.ok
    assert "memory" in result.reason or "crashed" in result.reason or "malformed" in result.reason


def test_pixel_limit_is_checked_before_decoding(corpus, sanitized):
    result, _ = sanitized(corpus.tiff(), max_pixels=100)
    assert not result.ok and result.reason == "image too large"


@pytest.mark.parametrize("make", ["jpeg", "png", "webp", "gif", "heic"])
def test_pictures_copied_as_coded_have_their_own_pixel_limit(corpus, sanitized, make):
    """The JPEG, PNG, WebP, GIF and HEIF rewrites decode nothing, so the
    limit on decoding does not refuse them: a phone's 200-megapixel photo
    (past the 150 million a decoded picture may have) is cleaned, not
    dropped as a bomb. Their own, higher limit still refuses a bomb."""
    original = getattr(corpus, make)()
    result, _ = sanitized(original, max_pixels=100)
    assert result.ok, result.reason
    result, _ = sanitized(original, max_pixels_copied=100)
    assert not result.ok and result.hostile and result.reason == "image too large"


def test_child_limits_forbid_writing_files(tmp_path):
    """The same limits the child sets on itself: a file write fails, the
    process is not killed, and memory beyond the limit is refused."""
    target = tmp_path / "leak.bin"
    code = (
        "import sys\n"
        "from intake.server.sanitize.limits import Limits, apply\n"
        "apply(Limits(memory=256 * 1024 * 1024), 0)\n"
        "try:\n"
        f"    open({str(target)!r}, 'wb', buffering=0).write(b'plaintext')\n"
        "    print('wrote')\n"
        "except OSError as exc:\n"
        "    print('refused', exc.errno)\n"
        "try:\n"
        "    b = bytearray(512 * 1024 * 1024)\n"
        "    print('allocated')\n"
        "except MemoryError:\n"
        "    print('no memory')\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)
    assert run.stdout.split("\n")[:2] == ["refused 27", "no memory"]  # EFBIG
    assert not target.exists() or target.stat().st_size == 0


def test_a_cleaner_child_cannot_call_out_read_the_keys_and_database_or_write(app):
    """Started as the server starts its cleaners, the child tries what a parser
    taken over by a hostile file would: it opens no network socket, cannot
    read the server's keys folder, data folder or database, and writes no file."""
    from intake.server.sanitize import runner

    intake = app.extensions["intake"]
    db = intake.config.data_dir / "intake.db"
    secrets = intake.config.secrets_file
    assert db.exists() and secrets.exists() and any(intake.config.keys_dir.iterdir())
    report = runner.probe_sandbox([intake.config.keys_dir.resolve(), db.resolve(),
                                   secrets.resolve(), intake.config.store_dir.resolve()])
    assert report["seccomp"] is True and report["landlock"] > 0
    assert report["inet_socket"] is False and report["inet6_socket"] is False
    assert report["connect"] is False and report["write"] is False
    assert set(report["read"].values()) == {False}


def test_the_zygote_children_run_under_seccomp_before_they_read(sandbox):
    """The real cleaner, forked by the zygote: its seccomp filter is on (it
    waits for an upload that does not come)."""
    from intake.server.sanitize.limits import Limits

    child = sandbox.spawn(["1000", *Limits().to_argv()])
    try:
        deadline = time.monotonic() + 10
        status: dict[str, str] = {}
        while time.monotonic() < deadline and status.get("Seccomp") != "2":
            with open(f"/proc/{child.pid}/status") as f:
                status = dict(line.rstrip("\n").split(":\t", 1) for line in f if ":\t" in line)
            time.sleep(0.02)
        assert status["Seccomp"] == "2" and status["NoNewPrivs"] == "1"
    finally:
        child.kill()
        child.stdin.close()
        child.stdout.close()


def test_cpu_limit_ends_in_a_flag(corpus, sanitized):
    """A zero CPU budget is spent before the first byte is read."""
    result, _ = sanitized(corpus.pdf(), cpu_seconds=0)
    assert not result.ok and result.reason in ("CPU time limit reached",
                                               "cleaner killed (CPU or memory limit)")


BILLION_LAUGHS = (b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa">'
                  b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">'
                  b'<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">]>'
                  b'<svg xmlns="http://www.w3.org/2000/svg"><text>&c;</text></svg>')
EXTERNAL_ENTITY = (b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                   b'<svg xmlns="http://www.w3.org/2000/svg"><text>&x;</text></svg>')


@pytest.mark.parametrize("svg", [BILLION_LAUGHS, EXTERNAL_ENTITY], ids=["laughs", "external"])
def test_svg_with_entities_is_refused(tmp_path, sanitized, svg):
    path = tmp_path / "drawing.svg"
    path.write_bytes(svg)
    result, out = sanitized(path)
    assert not result.ok and out is None
    assert result.reason == "unsafe or malformed XML"


def test_docx_with_an_entity_in_a_part_is_refused(corpus, sanitized, tmp_path):
    import zipfile

    source = corpus.docx("entity.docx")
    path = tmp_path / "entity.docx"
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(path, "w") as new:
        for info in old.infolist():
            body = old.read(info)
            if info.filename == "word/document.xml":
                body = body.replace(b"?>", b'?><!DOCTYPE w:document [<!ENTITY e "x">]>', 1)
            new.writestr(info, body)
    result, _ = sanitized(path)
    assert not result.ok and result.reason == "unsafe or malformed XML"


def test_several_threads_sanitize_at_once(corpus, sandbox):
    """The web workers run threads: each call has its own child and pipes."""
    from concurrent.futures import ThreadPoolExecutor

    from intake.server.sanitize import sanitize

    files = [corpus.jpeg("t1.jpg"), corpus.png(), corpus.pdf(), corpus.mp4("t4.mp4")] * 2

    def one(path):
        result = sanitize(MemorySpool(path.read_bytes()), MemorySpool, sandbox=sandbox)
        try:
            return result.ok, result.family
        finally:
            result.close()

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = list(pool.map(one, files))
    assert outcomes == [(True, f) for f in ("jpeg", "png", "pdf", "mp4")] * 2


def test_an_upload_that_cannot_be_read_back_fails_the_request(corpus):
    """A read error on the server's side is not a verdict on the file: it is
    not kept 'as received' (its envelope may be damaged), the request fails."""
    from intake.server.sanitize import sanitize

    data = corpus.jpeg().read_bytes()

    class Unreadable:
        head = data[:65536]
        size = len(data)

        def chunks(self):
            yield data[:1000]
            raise OSError(5, "Input/output error")

    with pytest.raises(OSError, match="Input/output"):
        sanitize(Unreadable(), MemorySpool)


def test_a_cleaner_answer_nested_too_deeply_is_nonsense_not_a_crash():
    """A cleaner taken over by its file may answer anything: a header of JSON
    nested past the parser's depth is refused like any other nonsense."""
    import os
    import struct
    import types

    from intake.server.sanitize import runner
    from intake.server.sanitize.protocol import MAGIC

    head = b"[" * 5000 + b"]" * 5000
    r, w = os.pipe()
    os.write(w, MAGIC + struct.pack(">I", len(head)) + head)
    os.close(w)
    with os.fdopen(r, "rb") as out:
        reader = runner._Reader(types.SimpleNamespace(stdout=out), time.monotonic() + 10)
        try:
            with pytest.raises(runner._Stop, match="nonsense"):
                runner._read_header(reader)
        finally:
            reader.close()
