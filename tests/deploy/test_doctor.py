"""`intake doctor` passes on a good setup and names each planted problem."""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from intake.cli import main
from intake.server import resumable
from intake.server.config import load_config
from intake.server.doctor import (
    OK,
    PROBLEM,
    WARNING,
    check_clock,
    check_keys,
    check_permissions,
    check_pool,
    check_sandbox,
    check_store,
    check_swap,
    check_upload_pool,
    run_checks,
)
from intake.server.models import Submission, Witness
from intake.server.resumable import Partials
from intake.server.service import prepare

NO_SWAP = "Filename\tType\tSize\tUsed\tPriority\n"


@pytest.fixture
def good(tmp_path, config):
    """A server as its systemd unit leaves it (UMask=0077): keys, data folder,
    store, database, and the pools install.sh's first tidy pass makes."""
    old = os.umask(0o077)
    try:
        intake = prepare(config)
        intake.store.fill_pool()
        Partials(config.data_dir / resumable.FOLDER, 1, config.max_upload).fill_pool()
    finally:
        os.umask(old)
    intake.close()
    swaps = tmp_path / "swaps"
    swaps.write_text(NO_SWAP)
    return config, swaps


def problems(findings):
    return [f for f in findings if f.level == PROBLEM]


def test_a_good_setup_passes(good):
    config, swaps = good
    findings = run_checks(config, min_free=1, proc_swaps=swaps)
    assert problems(findings) == []
    assert {f.check for f in findings if f.level == OK} >= {
        "keys", "permissions", "store", "pool", "upload pool", "space", "clock", "swap",
        "sandbox"}
    (sandbox,) = [f for f in findings if f.check == "sandbox"]
    assert "cannot open network sockets, read the keys or the database" in sandbox.message


WEAKER = {"seccomp": True, "landlock": 0, "namespaces": False, "inet_socket": False,
          "inet6_socket": False, "connect": False, "write": False, "read": {"/k": False}}


def test_a_sandbox_weaker_than_designed_is_reported(good, tmp_path):
    config, _ = good
    findings = check_sandbox(config, WEAKER, unit=tmp_path / "none.service")
    assert [f.level for f in findings] == ["warning", "warning"]
    assert "no Landlock" in findings[0].message and "no user namespaces" in findings[1].message
    unit = tmp_path / "intake-witness.service"
    unit.write_text("[Service]\nRestrictNamespaces=yes\n")
    assert "refuses every namespace" in check_sandbox(config, WEAKER, unit=unit)[-1].message


def test_cleaners_left_at_the_servers_priority_are_reported(good, tmp_path):
    config, _ = good
    full = {**WEAKER, "landlock": 7, "namespaces": True}
    assert [f.level for f in check_sandbox(config, {**full, "niceness": 10},
                                           unit=tmp_path / "none.service")] == ["ok"]
    (finding,) = check_sandbox(config, {**full, "niceness": 0}, unit=tmp_path / "none.service")
    assert finding.level == "warning" and "cannot lower their priority" in finding.message
    assert "setpriority and ioprio_set" in finding.fix


def test_a_sandbox_that_leaks_is_a_problem(good, tmp_path):
    config, _ = good
    leaky = {**WEAKER, "seccomp": False, "inet_socket": True, "read": {"/keys": True}}
    findings = problems(check_sandbox(config, leaky, unit=tmp_path / "none.service"))
    assert "no seccomp filter" in findings[0].message
    assert findings[1].message == "a cleaner child could: inet_socket, read /keys"


def cli_env(config) -> dict[str, str]:
    return {"INTAKE_DATA_DIR": str(config.data_dir), "INTAKE_KEYS_DIR": str(config.keys_dir),
            "INTAKE_CONFIG": ""}


def test_cli_exit_code_follows_problems(good):
    config, _ = good
    runner = CliRunner()
    result = runner.invoke(main, ["doctor", "--min-free", "1M"], env=cli_env(config))
    swap_on = len(Path("/proc/swaps").read_text().splitlines()) > 1
    if not swap_on:
        assert result.exit_code == 0, result.output
        assert "0 problem(s)" in result.output
    (config.keys_dir / "team.key").write_text("{}")
    result = runner.invoke(main, ["doctor", "--min-free", "1M"], env=cli_env(config))
    assert result.exit_code == 1
    assert "private key found in the keys folder" in result.output
    assert "fix:" in result.output


def test_sandbox_only_checks_the_sandbox_alone(good):
    """What the witness unit runs before it starts: a private key in the keys
    folder is another check's problem, not this one's."""
    config, _ = good
    (config.keys_dir / "team.key").write_text("{}")
    result = CliRunner().invoke(main, ["doctor", "--sandbox-only"], env=cli_env(config))
    checks = {line.split()[1] for line in result.output.splitlines()
              if line.split() and line.split()[0] in {"OK", "WARNING", "PROBLEM"}}
    assert checks == {"sandbox"}, result.output
    assert result.exit_code == 0 and "0 problem(s)" in result.output


def test_private_key_in_the_keys_folder(config, team_key):
    shutil.copy(team_key.key_file, config.keys_dir / "backup.json")
    [finding] = problems(check_keys(config))
    assert "private key found" in finding.message and "backup.json" in finding.message


def test_missing_keys(config):
    for pub in config.keys_dir.iterdir():
        pub.unlink()
    [finding] = problems(check_keys(config))
    assert "no public key" in finding.message
    shutil.rmtree(config.keys_dir)
    [finding] = problems(check_keys(config))
    assert "does not exist" in finding.message


def test_unreadable_key(config):
    (config.keys_dir / "team.pub").write_text("not json")
    [finding] = problems(check_keys(config))
    assert "team.pub" in finding.message


def test_world_readable_file(good):
    config, _ = good
    leaked = config.store_dir / "leaked.env"
    leaked.write_bytes(b"x")
    leaked.chmod(0o644)
    [finding] = problems(check_permissions(config))
    assert str(leaked) in finding.message
    assert "chmod -R go-rwx" in finding.fix


def test_data_folder_not_0700(good):
    config, _ = good
    config.data_dir.chmod(0o755)
    messages = [f.message for f in problems(check_permissions(config))]
    assert any("mode 0755, not 0700" in m for m in messages)


def test_missing_data_folder(tmp_path, team_key):
    config = load_config({}, data_dir=tmp_path / "nowhere", keys_dir=team_key.keys_dir)
    assert problems(check_permissions(config))
    assert problems(check_store(config, 1))


def test_the_envelope_pool_missing_or_low_is_never_ok(good):
    """Without the pool, envelopes are born with the time they arrived."""
    from intake.server.store import POOL_LOW, Store

    config, _ = good
    store = Store(config.store_dir)
    (ok,) = check_pool(config)
    assert ok.level == OK and "1024 of 1024" in ok.message
    for name in sorted(os.listdir(store.pool))[: 1024 - POOL_LOW + 1]:
        os.unlink(store.pool / name)
    (low,) = check_pool(config)
    assert low.level == WARNING and f"{POOL_LOW - 1} of 1024" in low.message
    shutil.rmtree(store.pool)
    (missing,) = check_pool(config)
    assert missing.level == PROBLEM and "missing" in missing.message
    assert "intake retention tidy" in missing.fix


def test_the_upload_folder_pool_missing_or_low_is_never_ok(good):
    """Without it, files sent ahead in pieces are born with the time they arrived."""
    from intake.server.resumable import POOL_LOW, POOL_SIZE

    config, _ = good
    pool = config.data_dir / resumable.FOLDER / resumable.POOL_DIR
    (ok,) = check_upload_pool(config)
    assert ok.level == OK and f"{POOL_SIZE} of {POOL_SIZE}" in ok.message
    for name in sorted(os.listdir(pool))[: POOL_SIZE - POOL_LOW + 1]:
        shutil.rmtree(pool / name)
    (low,) = check_upload_pool(config)
    assert low.level == WARNING and f"{POOL_LOW - 1} of {POOL_SIZE}" in low.message
    shutil.rmtree(pool)
    (missing,) = check_upload_pool(config)
    assert missing.level == PROBLEM and "missing" in missing.message


def test_store_not_writable(good):
    config, _ = good
    if os.geteuid() == 0:
        # root writes anywhere; a read-only bind is what a mistake looks like here
        config.store_dir.rename(config.data_dir / "store-moved")
        config.store_dir.write_text("not a folder")
    else:
        config.store_dir.chmod(0o500)
    assert problems(check_store(config, 1))


def test_not_enough_room(good):
    config, _ = good
    found = problems(check_store(config, min_free=2**62))
    assert found and all("MiB free, less than" in f.message for f in found)


def test_clock_went_back(good):
    config, _ = good
    intake = prepare(config)
    tomorrow = dt.date(2031, 5, 2)
    with intake.db.sessions() as s:
        s.add(Witness(id="a" * 32, lookup_hash="b" * 64, reply_public_key=b"k" * 32,
                      created_day=tomorrow, last_active_day=tomorrow))
        s.flush()
        s.add(Submission(id="c" * 32, witness_id="a" * 32, received_day=tomorrow))
        s.commit()
    intake.close()
    assert problems(check_clock(config, today=dt.date(2031, 5, 2))) == []
    [finding] = problems(check_clock(config, today=dt.date(2031, 5, 1)))
    assert "the clock went back" in finding.message
    assert problems(check_clock(config, today=dt.date(1999, 1, 1)))


def test_swap(tmp_path):
    swaps, sys_block = tmp_path / "swaps", tmp_path / "block"
    swaps.write_text(NO_SWAP + "/dev/sda3 partition 1000 0 -2\n"
                     "/dev/dm-1 partition 1000 0 -3\n/dev/zram0 partition 1000 0 100\n")
    (sys_block / "dm-1" / "dm").mkdir(parents=True)
    (sys_block / "dm-1" / "dm" / "uuid").write_text("CRYPT-PLAIN-swap\n")
    [finding] = problems(check_swap(swaps, sys_block))
    assert finding.message == "unencrypted swap /dev/sda3 is on"
    swaps.write_text(NO_SWAP + "/dev/dm-1 partition 1000 0 -3\n")
    assert problems(check_swap(swaps, sys_block)) == []
