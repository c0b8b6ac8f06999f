"""The shipped torrc: tor accepts it, and it opens nothing to the network."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from deploy_support import DEPLOY, render_torrc

from intake.server.doctor import PROBLEM, check_torrc, check_torrc_text, torrc_lines


@pytest.fixture
def rendered(tmp_path):
    path = tmp_path / "torrc"
    path.write_text(render_torrc(tmp_path / "tor"))
    return path


def verify(torrc, tmp_path) -> subprocess.CompletedProcess:
    empty = tmp_path / "defaults"
    empty.write_text("")
    return subprocess.run(["tor", "--defaults-torrc", str(empty), "-f", str(torrc),
                           "--verify-config", "--DataDirectory", str(tmp_path / "tordata")],
                          capture_output=True, text=True, timeout=60)


def test_tor_verifies_the_shipped_torrc(rendered, tmp_path):
    result = verify(rendered, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Configuration was valid" in result.stdout


def test_tor_rejects_a_broken_torrc(tmp_path):
    # The same check fails loudly on a mistake, so the test above means something.
    broken = tmp_path / "torrc"
    broken.write_text(render_torrc(tmp_path / "tor") + "HiddenServicePort not-a-port\n")
    assert verify(broken, tmp_path).returncode != 0


def test_shipped_torrc_says_what_the_issue_asks():
    lines = torrc_lines((DEPLOY / "torrc").read_text())
    assert ("safelogging", "1") in lines
    services = [v for k, v in lines if k == "hiddenservicedir"]
    assert services == ["/var/lib/tor/intake-witness/", "/var/lib/tor/intake-staff/"]
    assert [v for k, v in lines if k == "hiddenserviceversion"] == ["3", "3"]
    assert [v for k, v in lines if k == "hiddenservicepowdefensesenabled"] == ["1", "1"]
    assert [v for k, v in lines if k == "hiddenserviceport"] == [
        "80 127.0.0.1:8080", "80 127.0.0.1:8081"]
    listeners = {k: v for k, v in lines if k.endswith("port") and k != "hiddenserviceport"}
    assert listeners == {"socksport": "0", "controlport": "0", "orport": "0", "dirport": "0"}


def test_doctor_accepts_the_shipped_torrc(rendered, tmp_path):
    # Tor insists on 0700 for an onion service's folder.
    (tmp_path / "tor").mkdir(mode=0o700)
    (tmp_path / "tor" / "intake-staff").mkdir(mode=0o700)
    (tmp_path / "tor" / "intake-staff" / "authorized_clients").mkdir(mode=0o700)
    (tmp_path / "tor" / "intake-staff" / "authorized_clients" / "alice.auth").write_text(
        "descriptor:x25519:" + "A" * 52 + "\n")
    findings = check_torrc(rendered)
    assert [f for f in findings if f.level == PROBLEM] == [], findings


@pytest.mark.parametrize("line", ["SocksPort 9050", "ORPort 0.0.0.0:9001",
                                  "ControlPort 192.0.2.1:9051", "DirPort auto"])
def test_doctor_finds_a_listener_on_the_network(line):
    text = render_torrc(Path("/nonexistent")) + line + "\n"
    problems = [f for f in check_torrc_text(text) if f.level == PROBLEM]
    assert any("may listen on a network interface" in f.message for f in problems), problems


def test_doctor_finds_an_open_staff_service_and_unsafe_logging(tmp_path):
    text = render_torrc(tmp_path / "tor").replace("SafeLogging 1", "SafeLogging 0")
    messages = [f.message for f in check_torrc_text(text) if f.level == PROBLEM]
    assert "SafeLogging 1 is not set" in messages
    assert any("anyone with its address can reach it" in m for m in messages)
