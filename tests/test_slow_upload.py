"""A slow upload, as over Tor, outlives gunicorn's worker timeout: with threaded
workers that timeout is a heartbeat, not a limit on a request's length. And
while it trickles in, the same single worker still answers other witnesses:
with gunicorn's sync worker they would wait for the upload to end."""

from __future__ import annotations

import http.client
import os
import re
import subprocess
import sys
import textwrap
import time

from support import CSRF, free_port
from test_demo import wait_for

SERVER = textwrap.dedent("""
    from intake.server.config import load_config
    from intake.server.gunicorn import GunicornServer
    from intake.server.witness import create_app
    config = load_config(kdf_opslimit=1, kdf_memlimit=8192)
    GunicornServer(lambda: create_app(config), "127.0.0.1:%d", workers=1, timeout=2).run()
""")


def _get_form_seconds(port: int) -> float:
    started = time.monotonic()
    other = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        other.request("GET", "/en/")
        reply = other.getresponse()
        reply.read()
        assert reply.status == 200
    finally:
        other.close()
    return time.monotonic() - started


def test_an_upload_slower_than_the_worker_timeout_completes(config, tmp_path):
    port = free_port()
    env = {**os.environ, "INTAKE_DATA_DIR": str(config.data_dir),
           "INTAKE_KEYS_DIR": str(config.keys_dir)}
    log = (tmp_path / "server.log").open("w+")
    proc = subprocess.Popen([sys.executable, "-c", SERVER % port], env=env, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(port, proc)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/en/")
        page = conn.getresponse()
        cookie = page.getheader("Set-Cookie").split(";")[0]
        token = CSRF.search(page.read().decode()).group(1)
        boundary = "slowboundary"
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n"
                f"{token}\r\n--{boundary}\r\nContent-Disposition: form-data; "
                f"name=\"keep_original\"\r\n\r\ny\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; "
                f"filename=\"slow.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                ).encode()
        tail = f"\r\n--{boundary}--\r\n".encode()
        pieces = [os.urandom(4096) for _ in range(14)]
        body_len = len(head) + sum(map(len, pieces)) + len(tail)
        conn.putrequest("POST", "/en/submit")
        conn.putheader("Content-Type", f"multipart/form-data; boundary={boundary}")
        conn.putheader("Content-Length", str(body_len))
        conn.putheader("Cookie", cookie)
        conn.endheaders()
        started = time.monotonic()
        conn.send(head)
        waited = None
        for i, piece in enumerate(pieces):  # 14 pieces, half a second apart: 7 s, over 3x
            conn.send(piece)                # the timeout
            time.sleep(0.5)
            if i == 4:  # another witness opens the form while this upload trickles in
                waited = _get_form_seconds(port)
        assert waited is not None and waited < 2, waited
        conn.send(tail)
        sent = conn.getresponse()
        sent.read()
        assert time.monotonic() - started > 6
        assert sent.status == 303, sent.status  # then the receipt, at its own address
        conn.request("GET", sent.getheader("Location"), headers={"Cookie": cookie})
        reply = conn.getresponse()
        text = reply.read().decode()
        assert reply.status == 200, text
        assert re.search(r'class="codename"', text)
        conn.close()
        stored = list((config.data_dir / "store").glob("*.env"))
        assert len(stored) == 1 and stored[0].stat().st_size > 14 * 4096
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
        log.close()
