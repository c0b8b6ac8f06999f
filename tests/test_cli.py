"""The `intake` command: keygen, serve's refusals, queue export and decrypt."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from support import FAST_KDF, PASSPHRASE, free_port, make_config, submit

from intake.cli import main
from intake.console import Settings
from intake.format import teamkeys


def run(args: list[str], env: dict[str, str] | None = None, timeout: float = 60,
        cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`python -m intake ARGS` in a real process, with only the INTAKE_* given."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    return subprocess.run([sys.executable, "-m", "intake", *args], env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=timeout, cwd=cwd)


def cli(args: list[str], env: dict[str, str] | None = None, input: str | None = None):
    clean = {k: None for k in os.environ if k.startswith("INTAKE_")}
    return CliRunner().invoke(main, args, env={**clean, **(env or {})}, input=input,
                              catch_exceptions=False, obj=Settings(key_kdf=FAST_KDF))


@pytest.fixture
def passphrase_file(tmp_path) -> Path:
    path = tmp_path / "passphrase.txt"
    path.write_bytes(PASSPHRASE + b"\n")
    return path


def server_env(tmp_path: Path, keys_dir: Path) -> dict[str, str]:
    return {"INTAKE_DATA_DIR": str(tmp_path / "data"), "INTAKE_KEYS_DIR": str(keys_dir),
            "INTAKE_KDF_OPSLIMIT": "1", "INTAKE_KDF_MEMLIMIT": "8192"}


# -- keygen -------------------------------------------------------------------------------

def test_keygen_writes_a_key_pair(tmp_path, passphrase_file):
    out = tmp_path / "workstation"
    r = cli(["keygen", "--name", "team", "--out", str(out), "--passphrase-file",
             str(passphrase_file)])
    assert r.exit_code == 0, r.output
    pub, key = out / "team.pub", out / "team.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert json.loads(pub.read_text())["format"] == "intake-public-key"
    assert "sealed_private_key" in json.loads(key.read_text())
    assert "private_key" not in pub.read_text().replace("intake-public-key", "")
    recipient = teamkeys.load_public_key(pub)
    private = teamkeys.load_private_key(key, PASSPHRASE)  # the newline is not part of it
    assert bytes(private.public_key) == bytes(recipient.public_key)
    assert teamkeys.format_fingerprint(recipient.public_key) in r.output
    # The server accepts the public key alone.
    keys = tmp_path / "keys"
    keys.mkdir()
    pub.rename(keys / "team.pub")
    assert len(teamkeys.load_key_folder(keys)) == 1


def test_keygen_uses_argon2id(tmp_path, passphrase_file):
    cli(["keygen", "--name", "team", "--out", str(tmp_path), "--passphrase-file",
         str(passphrase_file)])
    kdf = json.loads((tmp_path / "team.key").read_text())["kdf"]
    assert kdf["algorithm"].startswith("argon2id")
    with pytest.raises(teamkeys.KeyFileError, match="wrong passphrase"):
        teamkeys.load_private_key(tmp_path / "team.key", b"not the passphrase at all")


def test_keygen_from_a_prompt(tmp_path):
    pw = PASSPHRASE.decode()
    r = cli(["keygen", "--name", "team", "--out", str(tmp_path)], input=f"{pw}\n{pw}\n")
    assert r.exit_code == 0, r.output
    assert pw not in r.output
    teamkeys.load_private_key(tmp_path / "team.key", PASSPHRASE)


def test_keygen_refuses_to_overwrite(tmp_path, passphrase_file):
    args = ["keygen", "--name", "team", "--out", str(tmp_path), "--passphrase-file",
            str(passphrase_file)]
    assert cli(args).exit_code == 0
    before = (tmp_path / "team.key").read_bytes(), (tmp_path / "team.pub").read_bytes()
    r = cli(args)
    assert r.exit_code != 0
    assert "exists already" in r.output
    after = (tmp_path / "team.key").read_bytes(), (tmp_path / "team.pub").read_bytes()
    assert after == before


def test_keygen_is_private_whatever_the_umask(tmp_path, passphrase_file):
    """Under umask 000 the --out folder was 0777 and NAME.pub 0666: another
    local user could swap the public key before it was carried to the server."""
    existing = tmp_path / "existing"
    existing.mkdir()
    os.chmod(existing, 0o750)
    previous = os.umask(0)
    try:
        for out in (tmp_path / "new" / "keys", existing):
            r = cli(["keygen", "--name", "team", "--out", str(out), "--passphrase-file",
                     str(passphrase_file)])
            assert r.exit_code == 0, r.output
    finally:
        os.umask(previous)

    def mode(path: Path) -> int:
        return stat.S_IMODE(path.lstat().st_mode)

    assert mode(tmp_path / "new") == mode(tmp_path / "new" / "keys") == 0o700
    assert mode(existing) == 0o750  # an existing folder is left as it is
    for out in (tmp_path / "new" / "keys", existing):
        assert mode(out / "team.key") == 0o600
        assert mode(out / "team.pub") == 0o644


@pytest.mark.parametrize("planted", ["team.pub", "team.key"])
def test_keygen_never_writes_through_a_link(tmp_path, passphrase_file, planted):
    """A broken link in --out used to be followed: Path.exists() missed it and
    the public key was written wherever it pointed."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = tmp_path / "kg"
    out.mkdir()
    (out / planted).symlink_to(elsewhere / "planted")
    r = cli(["keygen", "--name", "team", "--out", str(out), "--passphrase-file",
             str(passphrase_file)])
    assert r.exit_code != 0
    assert r.output.count("\n") == 1 and "exists already" in r.output, r.output
    assert list(elsewhere.iterdir()) == []
    assert sorted(p.name for p in out.iterdir()) == [planted]
    assert (out / planted).is_symlink()


def test_keygen_refuses_a_short_passphrase(tmp_path):
    short = tmp_path / "short.txt"
    short.write_text("hunter2\n")
    r = cli(["keygen", "--name", "team", "--out", str(tmp_path / "k"), "--passphrase-file",
             str(short)])
    assert r.exit_code != 0 and "at least 12 characters" in r.output
    assert not (tmp_path / "k" / "team.key").exists()


# -- serve refuses a keys folder it cannot trust -------------------------------------------

def _empty(keys: Path, team_key) -> None:
    keys.mkdir()


def _missing(keys: Path, team_key) -> None:
    pass


def _not_json(keys: Path, team_key) -> None:
    keys.mkdir()
    (keys / "team.pub").write_text("-----BEGIN PGP PUBLIC KEY BLOCK-----\nnot ours\n")


def _private_key_beside(keys: Path, team_key) -> None:
    keys.mkdir()
    (keys / "team.pub").write_bytes((team_key.keys_dir / "team.pub").read_bytes())
    (keys / "team.key").write_bytes(team_key.key_file.read_bytes())


def _private_key_renamed(keys: Path, team_key) -> None:
    keys.mkdir()
    (keys / "team.pub").write_bytes(team_key.key_file.read_bytes())


def _a_file_not_a_folder(keys: Path, team_key) -> None:
    keys.write_bytes((team_key.keys_dir / "team.pub").read_bytes())


@pytest.mark.parametrize(("prepare", "says"), [
    (_missing, "does not exist"),
    (_empty, "no public key"),
    (_not_json, "not an Intake key file"),
    (_private_key_beside, "private key found"),
    (_private_key_renamed, "private key found"),
    (_a_file_not_a_folder, "is a file, not a folder"),
], ids=["missing", "empty", "unreadable-pub", "private-key", "private-key-as-pub",
        "file-not-folder"])
def test_serve_refuses_keys_it_cannot_trust(tmp_path, team_key, prepare, says):
    keys = tmp_path / "server-keys"
    prepare(keys, team_key)
    port = free_port()
    # A server that did start would never return: the timeout would fail the test.
    r = run(["serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env=server_env(tmp_path, keys), timeout=30)
    assert r.returncode != 0
    assert "refusing to start" in r.stderr and says in r.stderr, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr and "listening" not in r.stdout
    with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        pass
    assert not (tmp_path / "data" / "store").exists() or \
        not any((tmp_path / "data" / "store").iterdir())


def test_queue_export_refuses_the_same_keys(tmp_path, team_key):
    keys = tmp_path / "server-keys"
    _private_key_beside(keys, team_key)
    r = cli(["queue", "export", "--out", str(tmp_path / "b.tar")],
            env=server_env(tmp_path, keys))
    assert r.exit_code != 0 and "private key found" in r.output
    assert not (tmp_path / "b.tar").exists()


def test_serve_refuses_a_bad_setting(tmp_path, team_key):
    env = {**server_env(tmp_path, team_key.keys_dir), "INTAKE_MAX_UPLOAD": "lots"}
    r = run(["serve", "--port", "1"], env=env, timeout=30)
    assert r.returncode != 0
    assert "INTAKE_MAX_UPLOAD" in r.stderr and "Traceback" not in r.stderr


# -- queue export, then decrypt, end to end ------------------------------------------------

@pytest.fixture
def waiting(tmp_path, team_key):
    """Two submissions waiting in the queue of a server configured by environment."""
    from intake.server.witness import create_app

    app = create_app(make_config(tmp_path, team_key.keys_dir))
    client = app.test_client()
    assert submit(client, "first testimony", [(b"attachment", "doc.txt")]).status_code == 200
    assert submit(client, "second testimony").status_code == 200
    app.extensions["intake"].close()
    return server_env(tmp_path, team_key.keys_dir)


def test_export_then_decrypt_end_to_end(tmp_path, team_key, waiting, passphrase_file):
    bundle = tmp_path / "carry" / "bundle.tar"
    bundle.parent.mkdir()
    r = run(["queue", "export", "--out", str(bundle)], env=waiting)
    assert r.returncode == 0, r.stderr
    assert "wrote 3 envelope(s)" in r.stdout
    with tarfile.open(bundle) as tar:
        assert len(tar.getnames()) == 4
    again = run(["queue", "export", "--out", str(bundle)], env=waiting)
    assert again.returncode != 0 and "exists already" in again.stderr

    out = tmp_path / "decrypted"
    # The workstation needs no server settings at all.
    r = run(["decrypt", str(bundle), "--key", str(team_key.key_file), "--out", str(out),
             "--passphrase-file", str(passphrase_file)])
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("\nok ") + r.stdout.startswith("ok ") == 3
    assert "3 decrypted, 0 damaged" in r.stdout
    texts = sorted(p.read_text() for p in out.glob("*/testimony.txt"))
    assert texts == ["first testimony", "second testimony"]
    assert [p.read_bytes() for p in out.glob("*/files/*")] == [b"attachment"]
    assert len(list(out.glob("*/metadata.json"))) == 2

    r = cli(["queue", "export", "--out", str(tmp_path / "empty.tar")], env=waiting)
    assert r.exit_code == 0 and "wrote 0 envelope(s)" in r.output
    r = cli(["queue", "export", "--all", "--out", str(tmp_path / "all.tar")], env=waiting)
    assert r.exit_code == 0 and "wrote 3 envelope(s)" in r.output


def test_decrypt_with_a_wrong_passphrase(tmp_path, team_key, waiting):
    bundle = tmp_path / "bundle.tar"
    assert cli(["queue", "export", "--out", str(bundle)], env=waiting).exit_code == 0
    wrong = tmp_path / "wrong.txt"
    wrong.write_text("this is not the passphrase\n")
    r = run(["decrypt", str(bundle), "--key", str(team_key.key_file), "--out",
             str(tmp_path / "out"), "--passphrase-file", str(wrong)])
    assert r.returncode != 0
    assert r.stdout == ""
    assert r.stderr.count("\n") == 1 and "wrong passphrase" in r.stderr, r.stderr
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_decrypt_with_a_damaged_key_file(tmp_path, team_key, waiting, passphrase_file):
    """The right passphrase and a key file whose cost was edited: said as a
    damaged key file, naming the field, not as a wrong passphrase."""
    bundle = tmp_path / "bundle.tar"
    assert cli(["queue", "export", "--out", str(bundle)], env=waiting).exit_code == 0
    doc = json.loads(team_key.key_file.read_text())
    doc["kdf"]["memlimit"] = 2 ** 45
    team_key.key_file.write_text(json.dumps(doc))
    r = run(["decrypt", str(bundle), "--key", str(team_key.key_file), "--out",
             str(tmp_path / "out"), "--passphrase-file", str(passphrase_file)])
    assert r.returncode != 0 and r.stdout == ""
    assert r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("intake: team.key: the key file is damaged: kdf.memlimit ("), \
        r.stderr
    assert "passphrase" not in r.stderr


def test_decrypt_reports_damage_and_exits_1(tmp_path, team_key, waiting, passphrase_file):
    bundle = tmp_path / "bundle.tar"
    assert cli(["queue", "export", "--out", str(bundle)], env=waiting).exit_code == 0
    with tarfile.open(bundle) as tar:
        victim = tar.getmembers()[1]
    data = bytearray(bundle.read_bytes())
    data[victim.offset_data + victim.size - 10] ^= 0xFF
    bundle.write_bytes(bytes(data))
    r = cli(["decrypt", str(bundle), "--key", str(team_key.key_file), "--out",
             str(tmp_path / "out"), "--passphrase-file", str(passphrase_file)])
    assert r.exit_code == 1
    damaged = [line for line in r.output.splitlines() if line.startswith("DAMAGED")]
    assert len(damaged) == 1 and victim.name in damaged[0]
    assert "2 decrypted, 1 damaged" in r.output


def test_decrypt_refuses_what_is_not_a_bundle(tmp_path, team_key, passphrase_file):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(os.urandom(4096))
    r = cli(["decrypt", str(junk), "--key", str(team_key.key_file), "--out",
             str(tmp_path / "out"), "--passphrase-file", str(passphrase_file)])
    assert r.exit_code != 0 and "junk.tar" in r.output
    assert "Traceback" not in r.output


# -- help ------------------------------------------------------------------------------------

def command_paths(command: click.Command, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [path]
    if isinstance(command, click.Group):
        for name, sub in command.commands.items():
            paths += command_paths(sub, (*path, name))
    return paths


@pytest.mark.parametrize("path", command_paths(main), ids=lambda p: " ".join(p) or "intake")
def test_help_works_for_every_command(path):
    r = cli([*path, "--help"])
    assert r.exit_code == 0, r.output
    assert r.output.startswith("Usage: ")
    assert " ".join(("main", *path)) in r.output or " ".join(path) in r.output


def test_help_through_the_installed_entry_point():
    r = run(["--help"])
    assert r.returncode == 0
    for name in ("serve", "keygen", "queue", "decrypt"):
        assert name in r.stdout
    version = run(["--version"])
    assert version.returncode == 0 and version.stdout.startswith("intake")
