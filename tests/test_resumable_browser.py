"""Resumable uploads in a real browser: Debian's Chromium with JavaScript ON,
under the pages' own strict CSP (not bypassed), against `intake serve`.

Between them a small TCP relay counts every byte the browser sends and, once,
cuts the connection in the middle of a piece, as a Tor circuit breaks. The
page's script must show its progress, ask the server what arrived, send only
the rest, and then send the form once; the file decrypts to the same bytes.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from browsers import launched_chromium
from live import LiveServer

from intake.format import envelope
from intake.server.resumable import POOL_DIR

PIECE = 1024 * 1024  # the script's piece size (templates/static/uploads.js)


class CuttingRelay:
    """127.0.0.1:port -> the server; counts the bytes going up, and cuts the
    connection carrying byte number `cut_after` (once)."""

    def __init__(self, target: int, cut_after: int | None):
        self.target, self.cut_after = target, cut_after
        self.up = 0
        self.cuts = 0
        self.requests: list[tuple[str, str, str | None]] = []
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._up, args=(client, server), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client), daemon=True).start()

    @staticmethod
    def _end(*socks: socket.socket) -> None:
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()

    def _forward(self, state: dict, data: bytes, server: socket.socket) -> bool:
        """Sends `data` up: each request's head with "Connection: close" added
        (one request a connection, so the browser never silently sends a broken
        request again on a reused one: the only resending is the script's), and
        notes its method, path and Upload-Offset. False once the cut is made."""
        while data:
            if state["body"]:
                piece = data[:state["body"]]
                state["body"] -= len(piece)
                data = data[len(piece):]
                if not self._send(piece, server):
                    return False
                continue
            state["buf"] += data
            if b"\r\n\r\n" not in state["buf"]:
                return True
            head, _, data = state["buf"].partition(b"\r\n\r\n")
            state["buf"] = b""
            lines = head.decode("latin-1").split("\r\n")
            fields = {k.strip().lower(): v.strip() for k, _, v in
                      (line.partition(":") for line in lines[1:])}
            method, path = lines[0].split()[:2]
            self.requests.append((method, path, fields.get("upload-offset")))
            state["body"] = int(fields.get("content-length", "0"))
            lines = [line for line in lines if not line.lower().startswith("connection:")]
            out = ("\r\n".join([*lines, "Connection: close"]) + "\r\n\r\n").encode("latin-1")
            if not self._send(out, server, counted=len(head) + 4):
                return False
        return True

    def _send(self, data: bytes, server: socket.socket, counted: int | None = None) -> bool:
        counted = len(data) if counted is None else counted
        with self._lock:
            if self.cut_after is not None and self.up + counted >= self.cut_after:
                data = data[:self.cut_after - self.up]
                self.up = self.cut_after
                self.cut_after = None
                self.cuts += 1
                server.sendall(data)
                return False  # the circuit is gone
            self.up += counted
        server.sendall(data)
        return True

    def _up(self, client: socket.socket, server: socket.socket) -> None:
        state = {"buf": b"", "body": 0}
        try:
            while data := client.recv(65536):
                if not self._forward(state, data, server):
                    break
        except OSError:
            pass
        self._end(client, server)

    def _down(self, server: socket.socket, client: socket.socket) -> None:
        try:
            while data := server.recv(65536):
                client.sendall(data)
        except OSError:
            pass
        self._end(client, server)


@pytest.fixture
def browser():
    with launched_chromium() as chromium:
        yield chromium


@pytest.fixture
def server(tmp_path, team_key):
    live = LiveServer(tmp_path, team_key.keys_dir)
    yield live
    live.stop()


def stored(server, private_key) -> tuple[list[bytes], int]:
    files, testimonies = [], 0
    for path in sorted((server.data_dir / "store").glob("*.env")):
        with path.open("rb") as f:
            content, meta = envelope.open_envelope(f, private_key)
        if meta["kind"] == "testimony":
            testimonies += 1
        else:
            files.append(content)
    return files, testimonies


def exported_and_decrypted(server, team_key, tmp_path: Path) -> list[bytes]:
    """`intake queue export`, then `intake decrypt`: the files that come out."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    env = {**base, "INTAKE_DATA_DIR": str(server.data_dir), "INTAKE_KEYS_DIR": str(
        team_key.keys_dir), "INTAKE_KDF_OPSLIMIT": "1", "INTAKE_KDF_MEMLIMIT": "8192"}
    bundle, out = tmp_path / "bundle.tar", tmp_path / "decrypted"
    done = subprocess.run([sys.executable, "-m", "intake", "queue", "export", "--out",
                           str(bundle)], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    passphrase = tmp_path / "passphrase.txt"
    passphrase.write_bytes(team_key.passphrase + b"\n")
    done = subprocess.run([sys.executable, "-m", "intake", "decrypt", str(bundle), "--key",
                           str(team_key.key_file), "--out", str(out), "--passphrase-file",
                           str(passphrase)], env=base, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "2 decrypted, 0 damaged" in done.stdout
    return [p.read_bytes() for p in out.glob("*/files/*")]


def run_form(browser, url: str, server, files: list[Path], seen: dict) -> object:
    """Opens the form with JavaScript on, sends the files; returns the page at
    its receipt. `seen` gets the pieces the server holds as the form goes."""
    context = browser.new_context(java_script_enabled=True, service_workers="block")
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)

    def at_submit(route):
        # The form names the uploads: what arrived is in the server's state now.
        for state in (server.data_dir / "uploads").glob("*/state.json"):
            seen[state.parent.name] = json.loads(state.read_text())["pieces"]
        seen["form_posts"] = seen.get("form_posts", 0) + 1
        route.continue_()

    page.route("**/submit", at_submit)
    page.goto(url + "/en/")
    page.locator("textarea[name=testimony]").fill("What I saw, with a film.")
    # The form has several file fields; the first takes them all.
    page.locator("input[type=file][name=files]").first.set_input_files([str(f) for f in files])
    page.locator("input[name=keep_original]").check()
    # The form is answered with a redirect to its receipt.
    with page.expect_navigation(url=url + "/en/receipt/*", timeout=120_000):
        page.locator("form[enctype='multipart/form-data'] button[type=submit]").click()
        # The progress shows while the pieces go.
        page.wait_for_function(
            "() => { const p = document.querySelector('.resumable progress');"
            " return p && !p.closest('.resumable').hidden && p.value > 0; }",
            timeout=60_000)
        seen["status"] = page.locator(".resumable .status").inner_text()
    assert not [e for e in errors if "Content Security Policy" in e], errors
    return page


def test_chunked_upload_survives_a_cut_and_sends_each_byte_once(browser, server, team_key,
                                                                  tmp_path):
    data = os.urandom(3 * PIECE + 54321)
    film = tmp_path / "film.mp4"
    film.write_bytes(data)
    # The cut falls half a MiB into the second piece.
    relay = CuttingRelay(server.port, cut_after=PIECE + PIECE // 2)
    seen: dict = {}
    try:
        page = run_form(browser, f"http://127.0.0.1:{relay.port}", server, [film], seen)
        words = page.locator("#codename span").all_inner_texts()
    finally:
        relay.close()
    assert len(words) >= 7
    assert relay.cuts == 1
    assert "%" in seen["status"] or "connection was lost" in seen["status"]
    files, testimonies = stored(server, team_key.private_key)
    assert files == [data] and testimonies == 1 and seen["form_posts"] == 1
    [pieces] = [v for k, v in seen.items() if len(k) == 32]
    # Received server-side: every byte once; the broken piece kept what arrived.
    assert sum(pieces) == len(data)
    assert any(0 < p < PIECE for p in pieces[:-1]), (pieces, relay.requests, relay.up)
    kept = sum(pieces[:[i for i, p in enumerate(pieces) if p < PIECE][0] + 1])
    # The script asked what arrived, and sent from there: no piece of ours
    # started again below what the server had. (Chromium itself may send a
    # broken request again at once, as it does on a reused connection; the
    # server refuses that one from its head, 423 or 409, and keeps nothing of it.)
    asked = [(m, o) for m, _p, o in relay.requests if m in ("PATCH", "HEAD")]
    first_head = [m for m, _o in asked].index("HEAD")
    after = [int(o) for m, o in asked[first_head:] if m == "PATCH"]
    assert after[0] == kept and all(o >= kept for o in after), (relay.requests, pieces)
    # Sent by the browser: the file once, and requests' heads besides (a piece
    # sent again from its start would add half a MiB).
    assert relay.up < len(data) + 64 * 1024, relay.up
    print(f"bytes sent up by the browser: {relay.up} for a file of {len(data)}; "
          f"pieces held by the server: {pieces}")
    # Joined, then removed; beside it only the pool of folders made ahead,
    # which a worker fills at its own times.
    assert [p.name for p in (server.data_dir / "uploads").iterdir()] in ([], [POOL_DIR])
    # As staff would: export the queue, decrypt the bundle on the workstation side.
    assert exported_and_decrypted(server, team_key, tmp_path) == [data]


def test_several_files_without_a_cut(browser, server, team_key, tmp_path):
    paths, contents = [], []
    for i, size in enumerate((10, PIECE + 1, 300_000)):
        content = os.urandom(size)
        path = tmp_path / f"file{i}.bin"
        path.write_bytes(content)
        paths.append(path)
        contents.append(content)
    seen: dict = {}
    page = run_form(browser, f"http://127.0.0.1:{server.port}", server, paths, seen)
    assert len(page.locator("#codename span").all_inner_texts()) >= 7
    files, testimonies = stored(server, team_key.private_key)
    assert sorted(files) == sorted(contents) and testimonies == 1


def test_a_refusal_is_shown_in_the_pages_language(browser, tmp_path, team_key):
    """The script asks in the page's language, so the server's refusal it
    shows (here: the file is over the limit) is in the witness's language."""
    from babel.support import Translations

    live = LiveServer(tmp_path, team_key.keys_dir, max_upload=1000)
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(5000))
    context = browser.new_context(java_script_enabled=True, service_workers="block",
                                  locale="en-US")
    try:
        page = context.new_page()
        page.goto(f"http://127.0.0.1:{live.port}/uk/")
        page.locator("textarea[name=testimony]").fill("Що я бачив.")
        page.locator("input[type=file][name=files]").first.set_input_files([str(big)])
        page.locator("form[enctype='multipart/form-data'] button[type=submit]").click()
        root = Path(__file__).resolve().parents[1]
        told = Translations.load(str(root / "translations"), ["uk"]).gettext(
            "This file is larger than this service accepts (%(size)s).").split("(")[0]
        assert told and told.isascii() is False
        page.wait_for_function(
            "t => document.querySelector('.resumable .status').innerText.includes(t)",
            arg=told.strip(), timeout=30_000)
    finally:
        context.close()
        live.stop()
