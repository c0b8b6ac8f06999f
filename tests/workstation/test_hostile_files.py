"""Hostile files, parsed where the key is not: decompression bombs, EPS, polyglots,
deeply nested and bomb-sized office files, PDFs with scripts. The limits hold,
the desk still serves (every file listed, the ones that broke a limit marked),
and the process that parsed them held no key, could not write, had no network.

Made with real tools: Pillow, zipfile, pikepdf. Small limits are passed to the
sandbox where a test needs a limit to bite quickly."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import struct
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest
from forge import Forge
from PIL import Image

from intake.workstation import images
from intake.workstation.children import child_env
from intake.workstation.sandbox import Limits, Sandbox

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
W = b'<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'


def png(size, mode="RGB", color=(200, 30, 40)) -> bytes:
    out = io.BytesIO()
    Image.new(mode, size, color if mode != "1" else 0).save(out, format="PNG")
    return out.getvalue()


def noise_png(edge: int) -> bytes:
    out = io.BytesIO()
    Image.effect_noise((edge, edge), 100).convert("RGB").save(out, format="PNG")
    return out.getvalue()


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (320, 240), (10, 120, 200)).save(out, format="JPEG")
    return out.getvalue()


def eps() -> bytes:
    """An EPS file (what made Ghostscript run on the workstation), saved by Pillow."""
    out = io.BytesIO()
    Image.new("RGB", (64, 64), (0, 0, 0)).save(out, format="EPS")
    return out.getvalue()


def docx(xml: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", xml)
    return out.getvalue()


def pdf_with_script(words: str) -> bytes:
    import pikepdf

    pdf = pikepdf.new()
    font = pdf.make_indirect(pikepdf.Dictionary(Type=pikepdf.Name.Font,
                                                Subtype=pikepdf.Name.Type1,
                                                BaseFont=pikepdf.Name.Helvetica))
    page = pikepdf.Page(pikepdf.Dictionary(
        Type=pikepdf.Name.Page, MediaBox=[0, 0, 595, 842],
        Resources=pikepdf.Dictionary(Font=pikepdf.Dictionary(F1=font)),
        Contents=pdf.make_stream(f"BT /F1 18 Tf 72 720 Td ({words}) Tj ET".encode())))
    pdf.pages.append(page)
    pdf.Root.OpenAction = pdf.make_indirect(pikepdf.Dictionary(
        S=pikepdf.Name.JavaScript, JS=pikepdf.String("app.launchURL('http://x.invalid/');")))
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def run(sandbox: Sandbox, job: str, arg: str, data: bytes):
    fd = os.memfd_create("hostile")
    try:
        os.write(fd, data)
        return sandbox.run(job, arg, fd, len(data))
    finally:
        os.close(fd)


@pytest.fixture(scope="module")
def sandbox() -> Sandbox:
    box = Sandbox()
    assert box.available, box.why_not
    return box


# -- the limits hold ----------------------------------------------------------------------

def test_a_decompression_bomb_is_refused_by_its_pixel_count(sandbox):
    bomb = png((12000, 8000), mode="1")  # 96 megapixels in a few KiB
    assert len(bomb) < 100_000
    outcome = run(sandbox, "image", "PNG", bomb)
    assert (outcome.ok, outcome.reason, outcome.limit) == (False, "pixels", True)


def test_a_phones_48_and_200_megapixel_jpegs_get_a_preview(sandbox):
    """Decoded at a quarter of their size, under the cap that refuses a PNG
    of 96: the cap counts the pixels decoded, not the pixels declared."""
    for size in ((8000, 6000), (16320, 12240)):
        out = io.BytesIO()
        Image.new("L", size, 90).save(out, format="JPEG", quality=50)
        outcome = run(sandbox, "image", "JPEG", out.getvalue())
        assert outcome.ok, (size, outcome.reason)
        assert max(outcome.width, outcome.height) == 1600
        assert abs(outcome.width / outcome.height - size[0] / size[1]) < 0.01


def test_a_jpeg_past_its_own_cap_is_refused_before_decoding(sandbox):
    """A JPEG that says it is 400 megapixels (its frame header rewritten):
    refused for its pixels, not decoded and found broken."""
    data = bytearray(jpeg())
    at = data.index(b"\xff\xc0")  # baseline frame header: length, precision, height, width
    data[at + 5:at + 9] = struct.pack(">HH", 20000, 20000)
    outcome = run(sandbox, "image", "JPEG", bytes(data))
    assert (outcome.ok, outcome.reason, outcome.limit) == (False, "pixels", True)


def heavy_docx(parts: int) -> bytes:
    """XML that costs seconds of CPU per part (30 MB of it, under the part cap)
    for about 80 KB each: what took an import 3.5 minutes."""
    xml = W + b"<w:p><w:r><w:t>x</w:t></w:r></w:p>" * 800_000 + b"</w:body></w:document>"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", xml)
        for n in range(1, parts):
            z.writestr(f"word/header{n}.xml", xml)
    return out.getvalue()


@pytest.mark.parametrize(("limits", "job", "make", "reason"), [
    (Limits(memory=256 * 1024 * 1024), ("image", "PNG"), lambda: png((6300, 6300)), "memory"),
    # Many seconds of work on any machine, a deadline of one.
    (Limits(wall_seconds=1, cpu_seconds=120), ("office", DOCX), lambda: heavy_docx(4),
     "time"),
    (Limits(max_output=1024 * 1024), ("image", "PNG"), lambda: noise_png(1600), "output"),
    (Limits(max_input=1024), ("image", "PNG"), lambda: png((64, 64)) + b"\0" * 2048, "size"),
], ids=["memory", "deadline", "output", "input"])
def test_each_limit_holds(limits, job, make, reason):
    outcome = run(Sandbox(limits), *job, make())
    assert (outcome.ok, outcome.reason, outcome.limit) == (False, reason, True)


def test_cpu_time_is_limited(sandbox):
    heavy = heavy_docx(4)  # many seconds of work on any machine, one allowed
    assert len(heavy) < 500_000
    outcome = run(Sandbox(Limits(cpu_seconds=1)), "office", DOCX, heavy)
    assert (outcome.ok, outcome.reason) == (False, "cpu")


@pytest.mark.parametrize(("xml", "reason"), [
    (W + b"<a>" * 100_000 + b"</a>" * 100_000 + b"</w:body></w:document>", "nested"),
    (W + b" " * (200 * 1024 * 1024) + b"</w:body></w:document>", "part-too-large"),
    (b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
     b'<w:document xmlns:w="x"><w:t>&b;</w:t></w:document>', "broken"),
], ids=["nested", "zip-bomb", "entities"])
def test_hostile_office_files(sandbox, xml, reason):
    outcome = run(sandbox, "office", DOCX, docx(xml))
    assert (outcome.ok, outcome.reason) == (False, reason)


def test_a_pdf_with_a_script_gives_its_words_and_runs_nothing(sandbox):
    outcome = run(sandbox, "pdf", "-", pdf_with_script("Deportation order"))
    assert outcome.ok and "Deportation order" in outcome.text
    assert "launchURL" not in outcome.text


def test_pillow_decodes_only_the_detected_type_and_never_eps(sandbox):
    assert "EPS" not in images.FORMATS.values() and "PS" not in images.FORMATS.values()
    # An EPS file claimed to be a JPEG (a seized server may claim anything).
    assert (run(sandbox, "image", "JPEG", eps()).reason, "broken") == ("broken", "broken")
    assert run(sandbox, "image", "EPS", eps()).reason == "broken"
    # A JPEG claimed to be a PNG: only the PNG decoder is tried.
    assert run(sandbox, "image", "PNG", jpeg()).reason == "broken"
    assert run(sandbox, "image", "JPEG", jpeg()).ok


def test_an_avif_photo_gets_a_preview_and_an_avif_claimed_to_be_a_png_does_not(sandbox):
    out = io.BytesIO()
    Image.new("RGB", (640, 480), (10, 120, 200)).save(out, format="AVIF")
    assert images.pillow_format("image/avif") == "AVIF"
    outcome = run(sandbox, "image", "AVIF", out.getvalue())
    assert outcome.ok and (outcome.width, outcome.height) == (640, 480)
    assert outcome.png.startswith(b"\x89PNG")
    assert run(sandbox, "image", "PNG", out.getvalue()).reason == "broken"


def test_a_polyglot_gives_a_fresh_png_and_nothing_of_its_other_half(sandbox):
    payload = b"<html><script>alert(1)</script></html>PK\x03\x04 zip"
    outcome = run(sandbox, "image", "PNG", png((320, 240)) + payload)
    assert outcome.ok and outcome.png.startswith(b"\x89PNG")
    assert b"script" not in outcome.png and (outcome.width, outcome.height) == (320, 240)


def test_without_user_namespaces_nothing_is_parsed():
    box = Sandbox(unshare="/nonexistent/unshare")
    assert not box.available and "not" in box.why_not
    outcome = run(box, "image", "PNG", png((10, 10)))
    assert (outcome.ok, outcome.reason) == (False, "isolation")


# -- the parser held no key, could not write, had no network ----------------------------

def test_the_parser_never_held_the_key(sandbox, desk):
    key = bytes(desk.private_key)  # this process holds the team key, as `vault import` does
    heavy = heavy_docx(1)  # seconds of work: time to look at the child
    result = {}
    worker = threading.Thread(target=lambda: result.update(o=run(sandbox, "office", DOCX, heavy)))
    worker.start()
    try:
        pid = _confined_child(os.getpid())
        status = Path(f"/proc/{pid}/status").read_text()
        environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        found = _memory_holds(pid, key)
        fds = _open_files(pid)
        namespaces = {ns: os.readlink(f"/proc/{pid}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}")
                      for ns in ("mnt", "net", "user")}
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    finally:
        worker.join()
    assert result["o"].ok
    assert found is False
    assert re.search(r"CapEff:\s+0+\n", status) and re.search(r"NoNewPrivs:\s+1\n", status)
    assert sorted(k.split(b"=")[0].decode() for k in environ if k) == sorted(child_env())
    # Its pipes, and at most a module file the interpreter is reading: nothing of ours.
    assert {fds[n][:5] for n in ("0", "1")} == {"pipe:"}, fds
    assert not [t for t in fds.values() if str(desk.root) in t or "socket:" in t
                or str(desk.team.key_file.parent) in t], fds
    assert namespaces == {"mnt": True, "net": True, "user": True}
    assert cmdline[1:5] == [b"-s", b"-B", b"-m", b"intake.workstation.parse_child"]


def _open_files(pid: int) -> dict[str, str]:
    """What each of the process's file descriptors points to (one it closes
    meanwhile, a module file it was reading, is left out)."""
    found = {}
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(FileNotFoundError):
            found[fd] = os.readlink(f"/proc/{pid}/fd/{fd}")
    return found


def _confined_child(parent: int, seconds: float = 30) -> int:
    """The parse child of `parent` (under unshare), once it has confined itself."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            if b"intake.workstation.parse_child" in cmd and f"PPid:\t{parent}\n" in status \
                    and "NoNewPrivs:\t1" in status:
                return int(pid)
        time.sleep(0.01)
    raise AssertionError("no confined parse child appeared")


def _memory_holds(pid: int, needle: bytes) -> bool:
    """Whether any readable mapping of process `pid` holds `needle`."""
    seen_any = False
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", 0) as mem:
        for line in maps:
            span, perms = line.split()[:2]
            if "r" not in perms:
                continue
            start, end = (int(x, 16) for x in span.split("-"))
            try:
                mem.seek(start)
                data = mem.read(end - start)
            except (OSError, ValueError, OverflowError):
                continue
            seen_any = True
            if needle in data:
                return True
    assert seen_any, "nothing of the child's memory could be read"
    return False


PROBE = r"""
import json, os, socket, sys
from intake.workstation.parse_child import _isolate, confine
limits = json.loads(sys.argv[2])
confine(limits, True)
seen = {}
try:
    open(os.path.join(sys.argv[1], "planted"), "w")
    seen["write"] = "written"
except OSError as exc:
    seen["write"] = exc.strerror
try:
    socket.create_connection(("127.0.0.1", 9), timeout=2)
    seen["network"] = "connected"
except OSError as exc:
    seen["network"] = exc.strerror
try:
    _isolate()  # would need capabilities it gave up: cannot be undone either
    seen["again"] = "done"
except Exception as exc:
    seen["again"] = type(exc).__name__
print(json.dumps(seen))
"""


def test_the_confined_parser_can_write_nowhere_and_reach_nothing(sandbox, desk):
    from dataclasses import asdict

    desk.open().close()
    cmd = [*sandbox.command("image", "PNG")[:2], sys.executable, "-c", PROBE,
           str(desk.root / "items"), json.dumps(asdict(sandbox.limits))]
    done = subprocess.run(cmd, capture_output=True, text=True, env=child_env(), timeout=60)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen["write"] == "Read-only file system"
    assert seen["network"] == "Network is unreachable"
    assert seen["again"] == "IsolationFailed"
    assert not (desk.root / "items" / "planted").exists()


# -- at import, and on the desk ------------------------------------------------------------

def test_hostile_files_are_imported_listed_and_marked(server, team, desk, tmp_path):
    """A seized server may claim any type for any bytes: the desk parses each
    file as the type claimed, in the sandbox, once; every file is listed."""
    sent = server.submit("cover note")
    forge = Forge.from_bundle(server.export(tmp_path / "one.tar"), team.keys_dir)
    sid, wid = sent.submission_id, sent.witness_id
    files = {
        "bomb.png": (png((12000, 8000), mode="1"), "image/png"),
        "eps.jpg": (eps(), "image/jpeg"),
        "poly.png": (png((320, 240)) + b"<script>alert(1)</script>", "image/png"),
        "nested.docx": (docx(W + b"<a>" * 100_000 + b"</a>" * 100_000), DOCX),
        "bomb.docx": (docx(W + b" " * (64 * 1024 * 1024)), DOCX),
        "script.pdf": (pdf_with_script("Evacuation list"), "application/pdf"),
        "drawing.svg": (b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)">'
                        b'<script>alert(2)</script></svg>', "image/svg+xml"),
    }
    # A later bundle cannot add to a submission in the vault, so these come as a new one.
    for name, (data, detected) in files.items():
        forge.add(data, submission_id=sid[:-1] + ("0" if sid[-1] != "0" else "1"),
                  witness_id=wid, original_name=name, detected_type=detected)
    bundle = forge.write(tmp_path / "hostile.tar")
    result = desk.import_(bundle)
    assert "8 new" in result.output
    limits = dict(re.findall(r"LIMIT    item ([0-9a-f]+): broke the safe reader's (\S+) limit",
                             result.output))
    assert sorted(limits.values()) == ["nested", "part-too-large", "pixels"]
    client = desk.app().test_client()
    other = forge.items[-1]["submission_id"]
    page = client.get(f"/submission/{other}")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    for name in files:
        assert name in text
    assert text.count("broke a limit of the safe reader") == 3
    assert "An SVG drawing is never shown here" in text
    assert "<script>alert" not in text and "onload=" not in text
    previews = re.findall(r'/item/([0-9a-f]+)/preview\.png', text)
    assert len(previews) == 1  # the polyglot's picture, re-encoded
    shown = client.get(f"/item/{previews[0]}/preview.png")
    assert shown.status_code == 200 and b"script" not in shown.get_data()
    with desk.open() as v:
        from intake.workstation import triage

        found = [r.submission_id for r in triage.list_submissions(
            v.conn, triage.Filters(query="Evacuation")).rows]
    assert found == [other]


def test_a_child_inherits_nothing_but_the_bytecode_cache_its_parent_reads(monkeypatch):
    monkeypatch.setenv("INTAKE_PASSPHRASE", "not for children")
    monkeypatch.setenv("https_proxy", "http://127.0.0.1:9")
    monkeypatch.setattr(sys, "pycache_prefix", None)
    assert set(child_env()) == {"PATH", "LC_ALL", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE",
                                "PYTHONHASHSEED"}
    monkeypatch.setattr(sys, "pycache_prefix", "/var/cache/intake-bytecode")
    env = child_env()
    assert env["PYTHONPYCACHEPREFIX"] == "/var/cache/intake-bytecode"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert not {"INTAKE_PASSPHRASE", "https_proxy"} & set(env)


class _Lying(Sandbox):
    """A parsing child that answers a frame whose header is JSON nested past
    the parser's depth: what a child taken over by a file could send."""

    def command(self, job: str, arg: str) -> list[str]:
        script = ("import struct, sys; sys.stdin.buffer.read(); h = b'[' * 5000 + b']' * 5000; "
                  "sys.stdout.buffer.write(b'INTAKEP1' + struct.pack('>I', len(h)) + h + "
                  "struct.pack('>I', 0))")
        return [sys.executable, "-c", script]


def test_a_child_answering_json_nested_too_deeply_gets_broken_not_a_crash(sandbox):
    outcome = run(_Lying(), "image", "PNG", b"\x89PNG\r\n\x1a\n")
    assert (outcome.ok, outcome.reason) == (False, "broken")
