"""deploy/install.sh --dry-run: prints every step and changes nothing."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
from pathlib import Path

from deploy_support import DEPLOY

# Every command install.sh uses to change the system. In the dry run each is
# replaced by a shim that records the call, so any real call is caught.
MUTATORS = ["apt-get", "adduser", "useradd", "install", "chmod", "chown", "cp", "mv", "rm",
            "tar", "python3", "systemctl", "tor", "runuser", "mkdir", "ln", "env"]

WATCHED = ["/etc/intake", "/opt/intake", "/var/lib/intake", "/etc/tor/torrc",
           "/etc/tor/torrc.debian", "/etc/systemd/journald@intake.conf",
           *(f"/etc/systemd/system/{u.name}" for u in (DEPLOY / "systemd").iterdir())]


def snapshot() -> dict[str, str]:
    state = {}
    for name in WATCHED:
        path = Path(name)
        if path.is_file():
            state[name] = hashlib.sha256(path.read_bytes()).hexdigest()
        else:
            state[name] = "dir" if path.is_dir() else "absent"
    state["user"] = str(subprocess.run(["id", "-u", "intake"], capture_output=True).returncode)
    return state


def shims(tmp_path: Path) -> tuple[Path, Path]:
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls.log"
    bin_dir.mkdir()
    for name in MUTATORS:
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\necho "{name} $*" >> {calls}\nexit 97\n')
        shim.chmod(stat.S_IRWXU)
    return bin_dir, calls


def test_dry_run_prints_each_step_and_changes_nothing(tmp_path):
    bin_dir, calls = shims(tmp_path)
    before = snapshot()
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    result = subprocess.run(["bash", str(DEPLOY / "install.sh"), "--dry-run"], env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert not calls.exists(), calls.read_text()
    assert snapshot() == before
    out = result.stdout
    for step in ["Install tor and the system packages from Debian",
                 "Make the system user intake", "Make the data folder /var/lib/intake (0700",
                 "Copy the project to /opt/intake/src and install it in a virtualenv, "
                 "from the hashed lock",
                 "Install the systemd units",
                 "Install the torrc", "Start the services", "Onion addresses"]:
        assert f"== {step}" in out, step
    for command in ["+ env DEBIAN_FRONTEND=noninteractive apt-get install -y",
                    "+ install -d -m 0700 -o intake -g intake /var/lib/intake",
                    "+ /usr/bin/python3 -m venv /opt/intake/venv",
                    "+ /opt/intake/venv/bin/pip install -q --require-hashes -r "
                    "/opt/intake/src/requirements/server.txt",
                    "+ /opt/intake/venv/bin/pip install -q --no-deps --no-build-isolation "
                    "/opt/intake/src",
                    "+ chown -R root:root /opt/intake",
                    "+ chmod -R go-w /opt/intake",
                    "+ install -m 0644 " + str(DEPLOY / "torrc") + " /etc/tor/torrc",
                    "+ systemctl enable intake-retention.timer",
                    "+ systemctl restart tor.service"]:
        assert command in out, command
    assert " tor " in out.split("apt-get install", 1)[1].split("\n", 1)[0] + " "
    # pip never installs anything the lock does not pin and hash.
    pip_lines = [line for line in out.splitlines() if "/bin/pip " in line]
    assert len(pip_lines) == 2 and "--upgrade" not in out
    assert pip_lines[0].count("--require-hashes") == 1 and "--no-deps" in pip_lines[1]
    for line in (DEPLOY / "packages-server.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            assert line.strip() in out


def test_shims_catch_a_change(tmp_path):
    # The harness above notices a mutating command (never the real script run
    # without --dry-run: that would change this machine).
    bin_dir, calls = shims(tmp_path)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    subprocess.run(["bash", "-c", "install -d -m 0700 /var/lib/intake || true"], env=env,
                   timeout=30)
    assert calls.read_text() == "install -d -m 0700 /var/lib/intake\n"


def test_unknown_option_is_refused():
    result = subprocess.run(["bash", str(DEPLOY / "install.sh"), "--frobnicate"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert "unknown option" in result.stderr
