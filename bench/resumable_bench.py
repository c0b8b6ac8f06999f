"""Resumable uploads (tus, /uploads/) against the form's one-request upload.

One random file, sent to a fresh `intake serve` (one worker) over 127.0.0.1
in two ways: as the no-JavaScript form sends it (one multipart POST), and as
the page's script does (1 MiB PATCH pieces, then the form naming the upload).
For the pieces, the time to send them and the time of the form that joins
them (every piece read back and sealed for the team, then the submission's
usual work) are given apart. The worker's peak RSS (VmHWM) is read after
each; its CPU seconds over the same span. Results go to stdout as Markdown.

    .venv/bin/python bench/resumable_bench.py [--size-mib 256]
"""

from __future__ import annotations

import argparse
import base64
import http.client
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from nacl import pwhash  # noqa: E402
from run import VENV_BIN, clean_env, make_input  # noqa: E402
from servers import Server, cpu_seconds, status_kib  # noqa: E402
from upload import TIMEOUT, Part, codename_in, get_form, post_multipart  # noqa: E402

PIECE = 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}


def _ask(port: int, method: str, path: str, headers: dict, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        conn.request(method, path, body=body, headers=headers)
        resp = conn.getresponse()
        text = resp.read()
        return resp.status, resp, text
    finally:
        conn.close()


def pieces(port: int, cookie: str, token: str, path: Path) -> str:
    size = path.stat().st_size
    status, resp, _ = _ask(port, "POST", "/uploads/", {
        **TUS, "Cookie": cookie, "X-CSRFToken": token, "Upload-Length": str(size),
        "Upload-Metadata": "filename " + base64.b64encode(b"film.mp4").decode()})
    if status != 201:
        raise RuntimeError(f"creation answered {status}")
    url = resp.getheader("Location")
    with path.open("rb") as f:
        offset = 0
        while offset < size:
            data = f.read(PIECE)
            status, resp, _ = _ask(port, "PATCH", url, {
                **TUS, "Cookie": cookie, "Upload-Offset": str(offset),
                "Content-Type": "application/offset+octet-stream"}, data)
            if status != 204:
                raise RuntimeError(f"PATCH answered {status}")
            offset = int(resp.getheader("Upload-Offset"))
    return url.rsplit("/", 1)[1]


def team_keys(root: Path) -> Path:
    from intake.format import teamkeys

    keys = root / "server-keys"
    keys.mkdir()
    cheap = teamkeys.KdfCost(pwhash.argon2id.OPSLIMIT_MIN, pwhash.argon2id.MEMLIMIT_MIN)
    pub, _ = teamkeys.generate("bench", root / "workstation", b"bench, not secret", cheap)
    pub.replace(keys / pub.name)
    return keys


def measure(root: Path, keys: Path, path: Path, way: str) -> dict:
    data = root / "intake-data"
    env = {**clean_env(root), "INTAKE_DATA_DIR": str(data), "INTAKE_KEYS_DIR": str(keys)}
    server = Server([str(VENV_BIN / "intake"), "serve", "--host", "127.0.0.1",
                     "--workers", "1"], env, root / "intake-server.log")
    out: dict = {}
    try:
        server.wait_ready()
        token, cookie = get_form(server.port)
        worker = server.worker_pid()
        before, cpu = status_kib(worker, "VmHWM"), cpu_seconds(worker)
        fields = [Part("csrf_token", token), Part("keep_original", "y")]
        started = time.perf_counter()
        if way == "form":
            reply = post_multipart(server.port, "/en/submit",
                                   [*fields, Part("files", path=path, filename="film.mp4")],
                                   cookie)
        else:
            upload_id = pieces(server.port, cookie, token, path)
            out["pieces_s"] = time.perf_counter() - started
            reply = post_multipart(server.port, "/en/submit",
                                   [*fields, Part("upload", upload_id)], cookie)
            out["join_s"] = reply.seconds
        out["total_s"] = time.perf_counter() - started
        out["cpu_s"] = cpu_seconds(worker) - cpu
        out["rss_mb"] = status_kib(worker, "VmHWM") / 1024
        out["rss_before_mb"] = before / 1024
    finally:
        server.stop()
    if reply.status != 200 or len(codename_in(reply.body)) < 7:
        raise RuntimeError(f"no receipt ({reply.status}); log:\n{server.log_tail()}")
    shutil.rmtree(data)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    size = args.size_mib * PIECE
    with tempfile.TemporaryDirectory(prefix="intake-resumable-bench-") as tmp:
        keys = team_keys(Path(tmp))
        path = make_input(Path(tmp), size)
        rows = {way: [measure(Path(tmp), keys, path, way) for _ in range(args.runs)]
                for way in ("form", "pieces")}
    med = {way: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
           for way, runs in rows.items()}
    mb = size / 1e6
    print(f"# Resumable uploads: {args.size_mib} MiB, median of {args.runs}\n")
    print(f"Python {platform.python_version()}, {platform.machine()}; one worker.\n")
    print("| way | total s | MB/s | pieces s | joining form s | worker CPU s | peak RSS MB |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for way, m in med.items():
        print(f"| {way} | {m['total_s']:.2f} | {mb / m['total_s']:.0f} | "
              f"{m.get('pieces_s', 0):.2f} | {m.get('join_s', 0):.2f} | {m['cpu_s']:.2f} | "
              f"{m['rss_mb']:.0f} |")


if __name__ == "__main__":
    main()
