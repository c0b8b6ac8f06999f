"""End to end through a real, private Tor network on 127.0.0.1.

Directory authorities, relays, the server's tor running the shipped torrc (both
onion services, proof of work on) and a client tor, all started here in temp
folders and all stopped after, even on failure. A witness submits a testimony
and a file to the witness onion address through the client's SOCKS port; the
envelopes must arrive in the store and decrypt to what was sent. A slow
client beside the witness (a stalled head and a stalled body, through Tor)
must not hold the witness up, and is dropped by the server. The staff
onion service must refuse a client without a key and admit one with a key made
by deploy/staff-client-key.py.

Run by `make test-tor` (minutes, not seconds: excluded from `make test`).
"""

from __future__ import annotations

import hashlib
import http.server
import re
import secrets
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest
import requests
from deploy_support import DEPLOY, LAUNCHERS, render_torrc
from private_tor import PrivateTorNetwork
from support import free_port

from intake.format.envelope import open_envelope

pytestmark = pytest.mark.tor

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
# Tor's extended SOCKS errors (SocksPort ... ExtendedErrors), torspec socks-extensions.
MISSING_CLIENT_AUTH, WRONG_CLIENT_AUTH = 0xF4, 0xF5
NETWORK_DEADLINE = 300  # seconds for the whole network to carry data to the onion


def socks5_connect_reply(socks_port: int, host: str, port: int) -> int:
    """Asks tor's SOCKS port to connect; returns the reply code (0 is success;
    see MISSING_CLIENT_AUTH)."""
    with socket.create_connection(("127.0.0.1", socks_port), timeout=60) as s:
        s.sendall(b"\x05\x01\x00")
        assert s.recv(2) == b"\x05\x00"
        name = host.encode()
        s.sendall(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + struct.pack(">H", port))
        reply = s.recv(10)
        return reply[1] if len(reply) >= 2 else -1


def socks_stream(socks_port: int, host: str, port: int) -> socket.socket:
    """A connection to host:port through tor's SOCKS port, ready for HTTP."""
    s = socket.create_connection(("127.0.0.1", socks_port), timeout=120)
    try:
        s.sendall(b"\x05\x01\x00")
        assert s.recv(2) == b"\x05\x00"
        name = host.encode()
        s.sendall(b"\x05\x01\x00\x03" + bytes([len(name)]) + name + struct.pack(">H", port))
        reply = s.recv(10)
        assert len(reply) >= 2 and reply[1] == 0, reply
    except BaseException:
        s.close()  # tor refused (the service is not reachable yet): retried by the caller
        raise
    return s


def closed_within(sock: socket.socket, seconds: float) -> bool:
    """Whether the far end closes the connection within `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.settimeout(max(0.1, deadline - time.monotonic()))
        try:
            if not sock.recv(65536):
                return True
        except TimeoutError:
            return False
        except OSError:
            return True
    return False


def until(what: str, attempt, deadline: float):
    """Retries `attempt` until it returns something true, within the deadline."""
    last = None
    while time.monotonic() < deadline:
        try:
            result = attempt()
            if result:
                return result
        except (requests.RequestException, OSError) as exc:
            last = exc
        time.sleep(1)
    raise TimeoutError(f"{what}: not done in time (last error: {last})")


class StaffStub(http.server.BaseHTTPRequestHandler):
    """Stands in for the staff app behind its onion service."""

    def do_GET(self):
        body = b"staff app"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def network(tmp_path):
    net = PrivateTorNetwork(tmp_path / "tor")
    try:
        yield net
    finally:
        net.stop()
        assert net.running() == []


def test_submit_through_a_private_tor_network(network, tmp_path, team_key, capsys):
    timings = {}
    start = time.monotonic()
    app = LAUNCHERS["gunicorn-shipped-config"](tmp_path / "app", team_key.keys_dir)
    staff = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), StaffStub)
    threading.Thread(target=staff.serve_forever, daemon=True).start()
    try:
        app.start()
        service_data = tmp_path / "tor" / "service-onions"
        torrc = render_torrc(service_data, app.port, staff.server_address[1])
        network.configure(torrc)
        service_data.mkdir(mode=0o700)

        # The service's tor alone first: it makes both onion keys at once, so the
        # staff member's key can be made for the staff address (as in the docs).
        network.start_node(network.service)
        deadline = time.monotonic() + NETWORK_DEADLINE
        hostnames = {name: service_data / name / "hostname"
                     for name in ("intake-witness", "intake-staff")}
        until("onion keys", lambda: all(p.exists() and p.read_text().strip()
                                        for p in hostnames.values()), deadline)
        witness_onion = hostnames["intake-witness"].read_text().strip()
        staff_onion = hostnames["intake-staff"].read_text().strip()
        network.stop_node(network.service)
        keys = tmp_path / "staff-keys"
        subprocess.run([sys.executable, str(DEPLOY / "staff-client-key.py"), "alice",
                        "--onion", staff_onion, "--out", str(keys)], check=True,
                       capture_output=True, timeout=60)
        authorized = service_data / "intake-staff" / "authorized_clients"
        authorized.mkdir(mode=0o700, exist_ok=True)
        (authorized / "alice.auth").write_text((keys / "alice.auth").read_text())

        network.start()
        timings["client bootstrapped"] = network.wait_for_log(
            network.client, r"Bootstrapped 100%", NETWORK_DEADLINE)

        proxies = {"http": f"socks5h://127.0.0.1:{network.socks_port}"}
        witness = requests.Session()
        witness.proxies.update(proxies)
        witness.headers["User-Agent"] = "Mozilla/5.0 (Windows NT 10.0; rv:128.0) Gecko/20100101"
        form = until("the witness onion answers",
                     lambda: witness.get(f"http://{witness_onion}/", timeout=60), deadline)
        timings["witness onion reachable"] = time.monotonic() - start
        assert form.status_code == 200
        token = CSRF.search(form.text).group(1)

        content = secrets.token_bytes(256 * 1024)
        testimony = "Seen from the window: three trucks, no markings."
        sent_at = time.monotonic()
        receipt = witness.post(f"http://{witness_onion}/submit", timeout=120, data={
            "csrf_token": token, "testimony": testimony, "keep_original": "y"},
            files={"files": ("evidence.bin", content, "application/octet-stream")})
        timings["submission (256 KiB) took"] = time.monotonic() - sent_at
        assert receipt.status_code == 200, receipt.text[:500]
        assert 'id="codename"' in receipt.text

        envelopes = sorted((tmp_path / "app" / "data" / "store").glob("*.env"))
        assert len(envelopes) == 2
        opened = {}
        for path in envelopes:
            with open(path, "rb") as f:
                plain, meta = open_envelope(f, team_key.private_key)
            opened[meta["kind"]] = (plain, meta)
        assert opened["testimony"][0] == testimony.encode()
        assert opened["file"][0] == content
        assert opened["file"][1]["sha256_received"] == hashlib.sha256(content).hexdigest()

        # A slow client beside a normal one: a stalled head and a stalled body,
        # through Tor, while a second witness submits; the slow ones hold no
        # thread, and the server drops them (head_timeout, rate_window).
        stalled_head = socks_stream(network.socks_port, witness_onion, 80)
        stalled_head.sendall(b"POST /submit HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        stalled_body = socks_stream(network.socks_port, witness_onion, 80)
        stalled_body.sendall(b"POST /submit HTTP/1.1\r\nHost: x\r\nContent-Type: "
                             b"multipart/form-data; boundary=b\r\nContent-Length: 900000"
                             b"\r\n\r\n--b\r\n" + secrets.token_bytes(4000))
        try:
            other = requests.Session()
            other.proxies.update(proxies)
            page = other.get(f"http://{witness_onion}/", timeout=60)
            sent_at = time.monotonic()
            second = other.post(f"http://{witness_onion}/submit", timeout=120, data={
                "csrf_token": CSRF.search(page.text).group(1), "testimony": "beside a slow one"},
                files={"files": ("more.bin", secrets.token_bytes(64 * 1024))})
            timings["submission beside slow clients took"] = time.monotonic() - sent_at
            assert second.status_code == 200 and 'id="codename"' in second.text
            waited = time.monotonic()
            assert closed_within(stalled_head, 60), "the stalled head was not dropped"
            assert closed_within(stalled_body, 60), "the stalled body was not dropped"
            timings["slow clients dropped after"] = time.monotonic() - waited
        finally:
            stalled_head.close()
            stalled_body.close()

        # Staff onion: refused without the client key ...
        code = _staff_refusal(network.socks_port, staff_onion, deadline)
        assert code == MISSING_CLIENT_AUTH, hex(code)
        # ... and admitted with it (the file the staff member keeps).
        network.stop_node(network.client)
        (network.client.dir / "onion_auth" / "alice.auth_private").write_text(
            (keys / "alice.auth_private").read_text())
        network.client.log.write_text("")
        network.start_node(network.client)
        network.wait_for_log(network.client, r"Bootstrapped 100%", NETWORK_DEADLINE)
        staff_page = until("the staff onion admits the key holder",
                           lambda: requests.get(f"http://{staff_onion}/", proxies=proxies,
                                                timeout=60), deadline)
        assert staff_page.text == "staff app"
        timings["total"] = time.monotonic() - start
    finally:
        network.stop()
        app.stop()
        staff.shutdown()
        staff.server_close()
    with capsys.disabled():
        print("\nprivate Tor network timings (s): "
              + ", ".join(f"{k}: {v:.1f}" for k, v in timings.items()))


def _staff_refusal(socks_port: int, onion: str, deadline: float) -> int:
    """The SOCKS reply for the staff onion once tor has its descriptor: other
    codes (descriptor not found yet, a general failure) mean "still looking"."""
    seen = set()
    while time.monotonic() < deadline:
        code = socks5_connect_reply(socks_port, onion, 80)
        if code in (0x00, MISSING_CLIENT_AUTH, WRONG_CLIENT_AUTH):
            return code
        seen.add(hex(code))
        time.sleep(1)
    raise TimeoutError(f"the staff onion gave no definite answer (saw {sorted(seen)})")
