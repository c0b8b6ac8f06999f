"""The shipped units under a real systemd, as an operator installs them.

A Debian system is booted with systemd-nspawn on a copy-on-write view of this
machine (an overlay whose changes live in memory and vanish with the test),
deploy/install.sh runs in it as root would run it, and the services are then
used: the witness form takes a photo with GPS through the shipped unit, whose
system call filter, namespaces and file system rules the cleaners must live
with; the timers' services run; the staff app answers. The container shares
this machine's network (install.sh fetches the locked packages), so the apps
listen on free ports through drop-ins; everything else the container would
start from this machine's own units (databases, brokers) is masked.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from deploy_support import REPO
from PIL import Image
from support import CSRF, FAST_KDF, PASSPHRASE, children_of, free_port

from intake.format import teamkeys

BOOT_TIMEOUT = 120
INSTALL_TIMEOUT = 900
SRC = "/src/intake"  # where the checkout is seen inside the container
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Units this machine enables that have nothing to do with Intake.
KEEP = re.compile(r"^(systemd-|dbus|getty|console-|tor[.@]|e2scrub|fstrim|logrotate|man-db"
                  r"|apt-daily|dpkg-db)")


class Container:
    """A booted container; `run` is a command inside it, as root, in its init's
    folder (/), with a clean environment."""

    def __init__(self, root: Path, log: Path):
        self._log = open(log, "ab")  # noqa: SIM115 (closed in stop)
        self.nspawn = subprocess.Popen(
            ["systemd-nspawn", "--quiet", "--directory", str(root), "--boot",
             "--link-journal=no", "--register=no", "--keep-unit", "--console=passive",
             # nspawn's own system call filter (systemd 252) predates Landlock:
             # without these, no process the container's systemd starts has it.
             "--system-call-filter=landlock_create_ruleset landlock_add_rule "
             "landlock_restrict_self",
             f"--bind-ro={REPO}:{SRC}"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
            start_new_session=True)
        try:
            self.pid = self._init_pid()
            self._wait_booted()
        except BaseException:
            self.stop()
            raise

    def _wait_booted(self) -> None:
        deadline = time.monotonic() + BOOT_TIMEOUT
        state = None
        while time.monotonic() < deadline:
            # Fails until systemd's bus is up; then waits for the boot to end.
            state = self.run("systemctl", "is-system-running", "--wait",
                             timeout=BOOT_TIMEOUT)
            if state.stdout.strip() in {"running", "degraded"}:
                return
            time.sleep(0.2)
        raise RuntimeError(f"the container did not finish booting: {state}")

    def _init_pid(self) -> int:
        deadline = time.monotonic() + BOOT_TIMEOUT
        while time.monotonic() < deadline:
            if self.nspawn.poll() is not None:
                raise RuntimeError(f"systemd-nspawn exited with {self.nspawn.returncode}")
            for pid in children_of(self.nspawn.pid):
                # Entered only once its namespaces are its own.
                if (Path(f"/proc/{pid}/comm").read_text().strip() == "systemd"
                        and os.readlink(f"/proc/{pid}/ns/mnt")
                        != os.readlink("/proc/self/ns/mnt")):
                    return pid
            time.sleep(0.1)
        raise RuntimeError(f"systemd did not start in the container in {BOOT_TIMEOUT} s")

    def run(self, *argv: str, timeout: float = 120, check: bool = False
            ) -> subprocess.CompletedProcess:
        done = subprocess.run(
            ["nsenter", "--target", str(self.pid), "--all", "--wd",
             "env", "-i", f"PATH={PATH}", "HOME=/root", "LANG=C.UTF-8", *argv],
            capture_output=True, text=True, timeout=timeout, check=False)
        if check and done.returncode:
            raise AssertionError(f"{argv} exited with {done.returncode}:\n"
                                 f"{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
        return done

    def stop(self) -> None:
        try:
            if self.nspawn.poll() is None and hasattr(self, "pid"):
                self.run("systemctl", "poweroff", "--no-block", timeout=30)
                self.nspawn.wait(timeout=90)
        except (subprocess.TimeoutExpired, OSError):
            pass
        finally:
            if self.nspawn.poll() is None:
                # Killing its init ends every process in the container.
                if hasattr(self, "pid"):
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(self.pid, signal.SIGKILL)
                self.nspawn.kill()
                self.nspawn.wait(timeout=30)
            self._log.close()


def _mask_foreign_units(root: Path) -> None:
    etc = root / "etc/systemd/system"
    for wanted in etc.glob("*.wants/*"):
        if not KEEP.match(wanted.name):
            mask = etc / wanted.name
            if mask.is_symlink() or mask.exists():
                mask.unlink()
            mask.symlink_to("/dev/null")


def _drop_in(root: Path, unit: str, text: str) -> None:
    folder = root / "etc/systemd/system" / f"{unit}.d"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "test.conf").write_text(text)


@contextlib.contextmanager
def _overlay(base: Path):
    """This machine's root seen through an overlay whose changes stay in memory."""
    upper, root = base / "upper", base / "root"
    upper.mkdir()
    root.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0755", "intake-test", str(upper)],
                   check=True)
    try:
        (upper / "data").mkdir()
        (upper / "work").mkdir()
        subprocess.run(["mount", "-t", "overlay", "intake-test", "-o",
                        f"lowerdir=/,upperdir={upper}/data,workdir={upper}/work", str(root)],
                       check=True)
        try:
            yield root
        finally:
            subprocess.run(["umount", "--lazy", str(root)], check=False)
    finally:
        subprocess.run(["umount", "--lazy", str(upper)], check=False)


def _prepare(base: Path, root: Path) -> tuple[int, int]:
    """Its own machine id (systemd refuses the host's), none of this
    machine's services, the apps on free ports, the team's public key."""
    (root / "etc/machine-id").unlink(missing_ok=True)
    _mask_foreign_units(root)
    witness, staff = free_port(), free_port()
    _drop_in(root, "intake-witness.service",
             f"[Service]\nEnvironment=INTAKE_BIND=127.0.0.1:{witness}\n")
    _drop_in(root, "intake-staff.service",
             f"[Service]\nEnvironment=INTAKE_BIND=127.0.0.1:{staff}\n")
    public, _ = teamkeys.generate("team", base, PASSPHRASE, FAST_KDF)
    keys = root / "etc/intake/keys"
    keys.mkdir(parents=True, exist_ok=True)
    shutil.copy(public, keys / public.name)
    return witness, staff


@dataclass
class Booted:
    container: Container
    install: subprocess.CompletedProcess
    witness: int
    staff: int


@pytest.fixture(scope="module")
def booted(tmp_path_factory):
    for tool in ("systemd-nspawn", "nsenter", "mount", "umount"):
        assert shutil.which(tool), f"{tool} is missing (tests/packages.txt: systemd-container)"
    assert os.geteuid() == 0, "booting a container needs root, as `make test` runs in CI"
    base = tmp_path_factory.mktemp("systemd")
    with _overlay(base) as root:
        witness, staff = _prepare(base, root)
        container = Container(root, base / "console.log")
        try:
            install = container.run("bash", f"{SRC}/deploy/install.sh",
                                    timeout=INSTALL_TIMEOUT)
            (base / "install.log").write_text(install.stdout + install.stderr)
            yield Booted(container, install, witness, staff)
        finally:
            container.stop()


def test_install_sh_installs_and_starts_everything_under_systemd(booted):
    install, container = booted.install, booted.container
    assert install.returncode == 0, install.stdout[-4000:] + install.stderr[-4000:]
    # Its closing `intake doctor` found nothing to fix (the clock is this
    # machine's business) and the sandbox as designed.
    assert "0 problem(s)" in install.stdout, install.stdout[-3000:]
    assert re.search(r"^OK +sandbox +cleaners run with seccomp", install.stdout, re.M)
    # ...and shows the unit's own check, made inside its restrictions.
    own = install.stdout.split("The witness unit's own check of its cleaners' sandbox")[1]
    assert re.search(r"^ +OK +sandbox +cleaners run with seccomp, Landlock", own, re.M), own
    assert "0 problem(s), 0 warning(s)" in own.split("== Onion addresses")[0], own
    for unit in ("intake-witness.service", "intake-staff.service",
                 "intake-retention.timer", "intake-tidy.timer", "tor.service"):
        assert container.run("systemctl", "is-active", unit).stdout.strip() == "active", unit
    # The services the timers start, started now.
    for unit in ("intake-tidy.service", "intake-retention.service"):
        container.run("systemctl", "start", unit, check=True)
        shown = container.run("systemctl", "show", unit, "-p", "Result",
                              "-p", "ExecMainStatus").stdout
        assert "Result=success" in shown and "ExecMainStatus=0" in shown, (unit, shown)
    staff = requests.get(f"http://127.0.0.1:{booted.staff}/", timeout=30,
                         allow_redirects=False)
    assert staff.status_code in {200, 302}, staff.status_code


def _photo_with_gps(path: Path) -> None:
    Image.new("RGB", (64, 48), (200, 10, 10)).save(path)
    subprocess.run(["exiftool", "-q", "-overwrite_original", "-GPSLatitude=50.45",
                    "-GPSLatitudeRef=N", "-GPSLongitude=30.52", "-GPSLongitudeRef=E",
                    "-SerialNumber=SN-0001", str(path)], check=True)
    tags = subprocess.run(["exiftool", "-s", "-GPSLatitude", "-SerialNumber", str(path)],
                          capture_output=True, text=True, check=True).stdout
    assert "GPSLatitude" in tags and "SN-0001" in tags


def test_the_witness_unit_cleans_a_photo_in_its_sandbox(booted, tmp_path):
    install, container = booted.install, booted.container
    assert install.returncode == 0, install.stdout[-4000:]
    photo = tmp_path / "photo.jpg"
    _photo_with_gps(photo)
    base = f"http://127.0.0.1:{booted.witness}"
    with requests.Session() as browser:
        form = browser.get(f"{base}/en/", timeout=30)
        token = CSRF.search(form.text).group(1)
        with open(photo, "rb") as f:
            answer = browser.post(f"{base}/en/submit", timeout=120, data={
                "csrf_token": token, "testimony": "A testimony."},
                files={"files": ("photo.jpg", f, "image/jpeg")})
    assert answer.status_code == 200
    text = re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", answer.text))
    assert "photo.jpg : cleaned of hidden information" in text, text[text.find("Your files"):]

    # The unit checked its cleaners' sandbox before it started, inside its own
    # restrictions (ExecStartPre), and the journal says it is as designed.
    journal = container.run("journalctl", "--namespace=intake", "--no-pager", "-o", "cat",
                            "-u", "intake-witness.service").stdout
    assert re.search(r"^OK +sandbox +cleaners run with seccomp", journal, re.M), journal[-3000:]
    assert "0 problem(s), 0 warning(s)" in journal

    # The cleaners' zygote, as the shipped unit left it: the service's user,
    # no new privileges, a seccomp filter, its own user and (empty) network
    # namespaces, and the priority below the form's.
    zygotes = container.run("pgrep", "-f", "intake.server.sanitize.zygote").stdout.split()
    assert zygotes, "no cleaner zygote is running under the witness service"
    service_pid = container.run("systemctl", "show", "intake-witness.service", "-p",
                                "MainPID", "--value").stdout.strip()
    service_user = container.run("id", "-u", "intake").stdout.strip()
    for pid in zygotes:
        status = container.run("cat", f"/proc/{pid}/status").stdout
        assert re.search(rf"^Uid:\s+{service_user}\s", status, re.M), status
        assert re.search(r"^NoNewPrivs:\s+1$", status, re.M)
        assert re.search(r"^Seccomp:\s+2$", status, re.M)
        ours = container.run("readlink", f"/proc/{pid}/ns/net", f"/proc/{pid}/ns/user").stdout
        its = container.run("readlink", f"/proc/{service_pid}/ns/net",
                            f"/proc/{service_pid}/ns/user").stdout
        assert set(ours.split()).isdisjoint(its.split()), (ours, its)
        nice = container.run("ps", "-o", "ni=", "-p", pid).stdout.strip()
        assert nice == "10", nice
