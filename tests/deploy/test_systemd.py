"""The shipped systemd units: systemd accepts them and they are hardened."""

from __future__ import annotations

import configparser
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from deploy_support import DEPLOY

UNITS = sorted((DEPLOY / "systemd").iterdir())
SERVICES = [u for u in UNITS if u.suffix == ".service"]

REQUIRED = {
    "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
    "PrivateTmp": "yes", "PrivateDevices": "yes", "ReadWritePaths": "/var/lib/intake",
    "MemorySwapMax": "0", "LimitCORE": "0", "UMask": "0077", "CapabilityBoundingSet": "",
    "SystemCallArchitectures": "native",
    "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
    "ProtectControlGroups": "yes", "LockPersonality": "yes",
    "RestrictSUIDSGID": "yes", "MemoryDenyWriteExecute": "yes",
    "User": "intake", "LogNamespace": "intake",
}


def parse_unit(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file as sections of keys, each with every value it was given."""
    parser = configparser.ConfigParser(strict=False, interpolation=None,
                                       dict_type=_MultiDict, empty_lines_in_values=False)
    parser.optionxform = str
    parser.read_string(path.read_text())
    return {s: {k: v.split("\n") for k, v in parser[s].items()} for s in parser.sections()}


class _MultiDict(dict):
    """Keeps repeated keys (systemd allows them) by joining their values."""

    def __setitem__(self, key, value):
        if isinstance(value, list) and key in self:
            self[key].extend(value)
            return
        super().__setitem__(key, value)


def rendered_units(tmp_path: Path) -> list[Path]:
    """The units with the virtualenv of this test run in place of /opt/intake/venv."""
    venv = Path(sys.executable).parent.parent
    out = []
    for unit in UNITS:
        target = tmp_path / unit.name
        target.write_text(unit.read_text().replace("/opt/intake/venv", str(venv)))
        out.append(target)
    return out


@pytest.mark.parametrize("unit", SERVICES, ids=lambda p: p.name)
def test_service_is_hardened(unit):
    service = parse_unit(unit)["Service"]
    for key, value in REQUIRED.items():
        assert key in service, f"{unit.name}: {key} missing"
        assert value in service[key], f"{unit.name}: {key}={service[key]}"
    assert "@system-service" in service["SystemCallFilter"]
    families = " ".join(service["RestrictAddressFamilies"]).split()
    assert set(families) <= {"AF_INET", "AF_INET6", "AF_UNIX"}
    assert service["IPAddressDeny"] == ["any"]
    assert re.fullmatch(r"\d+[MG]", service["MemoryMax"][0])
    assert int(service["TasksMax"][0]) <= 512
    # Only the data folder is writable.
    assert service["ReadWritePaths"] == ["/var/lib/intake"]
    # Namespaces: none, but for the sanitizer's children (next test).
    expected = ["user net"] if unit.name == "intake-witness.service" else ["yes"]
    assert service["RestrictNamespaces"] == expected


def test_the_witness_unit_gives_the_sandbox_what_it_uses():
    """The sanitizer's children confine themselves with Landlock and seccomp and
    run in their own user namespace, the zygote in an empty network namespace
    (intake.server.sanitize.confine, .zygote): the unit must allow exactly that."""
    from intake.server.sanitize import confine

    service = parse_unit(DEPLOY / "systemd" / "intake-witness.service")["Service"]
    allowed = " ".join(service["SystemCallFilter"]).split()
    assert {"landlock_create_ruleset", "landlock_add_rule", "landlock_restrict_self",
            "seccomp"} <= set(allowed)
    # nice and ionice lower the cleaners' priority: both calls are in the
    # @resources the unit removes, so allowed again after it.
    assert allowed.index("setpriority") > allowed.index("~@privileged")
    assert allowed.index("ioprio_set") > allowed.index("~@privileged")
    assert service["RestrictNamespaces"] == ["user net"]
    assert service["NoNewPrivileges"] == ["yes"]  # Landlock without privileges needs it
    assert "unshare" in confine.DENIED  # children cannot make more once confined


@pytest.mark.parametrize("unit", [u for u in SERVICES
                                  if "retention" not in u.name and "tidy" not in u.name],
                         ids=lambda p: p.name)
def test_apps_listen_on_loopback_only(unit):
    service = parse_unit(unit)["Service"]
    binds = [v for v in service["Environment"] if v.startswith("INTAKE_BIND=")]
    assert binds in (["INTAKE_BIND=127.0.0.1:8080"], ["INTAKE_BIND=127.0.0.1:8081"])
    assert "gunicorn -c /etc/intake/gunicorn.conf.py" in service["ExecStart"][0]


def test_tidy_runs_hourly_on_the_hour():
    timer = parse_unit(DEPLOY / "systemd" / "intake-tidy.timer")["Timer"]
    assert timer["OnCalendar"] == ["hourly"] and "RandomizedDelaySec" not in timer
    service = parse_unit(DEPLOY / "systemd" / "intake-tidy.service")["Service"]
    assert service["ExecStart"] == ["/opt/intake/venv/bin/intake retention tidy"]
    assert service["Type"] == ["oneshot"]


def test_retention_runs_daily():
    timer = parse_unit(DEPLOY / "systemd" / "intake-retention.timer")["Timer"]
    assert timer["OnCalendar"] == ["daily"]
    service = parse_unit(DEPLOY / "systemd" / "intake-retention.service")["Service"]
    assert service["ExecStart"] == ["/opt/intake/venv/bin/intake retention run"]
    assert service["Type"] == ["oneshot"]


needs_systemd_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None,
                                           reason="systemd-analyze is not installed")


@needs_systemd_analyze
def test_systemd_analyze_verify(tmp_path):
    units = rendered_units(tmp_path)
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", *map(str, units)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr


@needs_systemd_analyze
def test_systemd_analyze_rejects_a_broken_unit(tmp_path):
    broken = tmp_path / "broken.service"
    broken.write_text("[Service]\nExecStart=relative/path\nProtectSystem=sideways\n")
    result = subprocess.run(["systemd-analyze", "verify", "--man=no", str(broken)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 or result.stderr.strip()


@needs_systemd_analyze
@pytest.mark.parametrize("unit", SERVICES, ids=lambda p: p.name)
def test_security_exposure_is_low(tmp_path, unit):
    # --offline scores the file itself, without a running systemd (it need not be PID 1).
    rendered = next(u for u in rendered_units(tmp_path) if u.name == unit.name)
    result = subprocess.run(["systemd-analyze", "security", "--offline=true", str(rendered)],
                            capture_output=True, text=True, timeout=60)
    score = re.search(r"Overall exposure level for \S+: (\d+\.\d+)", result.stdout)
    assert score, result.stdout + result.stderr
    assert float(score.group(1)) <= 1.5, result.stdout
