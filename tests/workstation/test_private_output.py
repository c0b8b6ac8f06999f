"""Private output: what decrypt writes, the vault and the case packages are
0700/0600 (packages' files read-only, 0400) whatever the umask and whatever
modes folders already had; untouched originals live apart from the cleaned
copies and say what they are. The commands run as real processes with a
umask of 000."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

from test_originals import keep_original


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "intake", *args], capture_output=True,
                          text=True, umask=0, timeout=120, cwd=cwd)
    assert done.returncode == 0, done.stdout + done.stderr
    return done


def modes(root) -> dict[str, int]:
    return {str(p.relative_to(root)): stat.S_IMODE(p.lstat().st_mode)
            for p in [root, *root.rglob("*")]}


def test_decrypt_output_is_private_whatever_the_umask(server, team, tmp_path):
    sent = server.submit("with an original", files=[(b"GPS 50.45N\n", "scan.txt")])
    keep_original(server, sent, b"GPS 50.45N\n", "scan.txt")
    bundle = server.export(tmp_path / "b.tar")
    out = tmp_path / "out"
    out.mkdir(mode=0o777)
    os.chmod(out, 0o777)
    done = run("decrypt", str(bundle), "--key", str(team.key_file), "--passphrase-file",
               str(team.passphrase_file), "--out", str(out))
    seen = modes(out)
    assert {m for p, m in seen.items() if (out / p).is_dir()} == {0o700}, seen
    assert {m for p, m in seen.items() if (out / p).is_file()} == {0o600}, seen
    # The untouched original lives apart from the cleaned copy, and says so.
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    assert sorted(p.name for p in (folder / "files").iterdir()) == ["scan.txt"]
    assert sorted(p.name for p in (folder / "originals").iterdir()) == ["README.txt",
                                                                         "scan.txt"]
    assert "Untouched originals" in (folder / "originals" / "README.txt").read_text()
    assert "untouched original of" in done.stdout


def test_vault_and_case_packages_are_private_whatever_was_there(server, team, desk, tmp_path):
    sent = server.submit("to the vault", files=[(b"file\n", "f.txt")])
    bundle = server.export(tmp_path / "b.tar")
    vault = desk.root
    (vault / "items").mkdir(parents=True, mode=0o777)
    for path in (vault, vault / "items"):
        os.chmod(path, 0o755 if path == vault else 0o777)
    (vault / "vault.db").touch(mode=0o644)
    os.chmod(vault / "vault.db", 0o644)
    keys = ["--key", str(team.key_file), "--passphrase-file", str(team.passphrase_file)]
    run("vault", "import", str(bundle), "--vault", str(vault), *keys)
    run("vault", "case-add", "c", sent.submission_id, "--vault", str(vault), *keys)
    package = tmp_path / "package"
    package.mkdir(mode=0o777)
    os.chmod(package, 0o777)
    run("vault", "export-case", "c", "--out", str(package), "--vault", str(vault), *keys)
    seen = modes(vault)
    assert {m for p, m in seen.items() if (vault / p).is_dir()} == {0o700}, seen
    assert {m for p, m in seen.items() if (vault / p).is_file()} == {0o600}, seen
    # SQLite's own files, made by SQLite while the vault is open, are private too.
    probe = ("import os, stat, sys; from intake.workstation.vault import Vault; "
             "v = Vault(sys.argv[1]); print(sorted(oct(stat.S_IMODE(os.stat(p).st_mode)) "
             "for p in v.root.glob('vault.db*'))); v.close()")
    done = subprocess.run([sys.executable, "-c", probe, str(vault)], capture_output=True,
                          text=True, umask=0, timeout=60)
    assert done.stdout.strip() == "['0o600', '0o600', '0o600']", done.stdout + done.stderr
    seen = modes(package)
    assert {m for p, m in seen.items() if (package / p).is_dir()} == {0o700}, seen
    assert {m for p, m in seen.items() if (package / p).is_file()} == {0o400}, seen


def test_a_relative_vault_folder_works_everywhere(server, team, tmp_path):
    """A relative --vault used to give the desk a 500 after the custody entry
    was written: the vault's folder is made absolute once, where it is opened."""
    server.submit("relative", files=[(b"blob\x00", "b.bin")])
    bundle = server.export(tmp_path / "b.tar")
    keys = ["--key", str(team.key_file), "--passphrase-file", str(team.passphrase_file)]
    run("vault", "import", str(bundle), "--vault", "rel-vault", *keys, cwd=tmp_path)
    from vault_helpers import Desk

    desk = Desk(tmp_path / "rel-vault", team)
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        from intake.workstation.desk import create_vault_app
        from intake.workstation.vault import Vault

        with Vault(desk.root) as v:
            v.unlock(desk.private_key)
            signer = v.signer
        client = create_vault_app("rel-vault", signer=signer).test_client()
    finally:
        os.chdir(cwd)
    import re

    page = client.get("/").get_data(as_text=True)
    sid = re.search(r'/submission/([0-9a-f]{32})', page)[1]
    page = client.get(f"/submission/{sid}").get_data(as_text=True)
    item_id = re.search(r'/item/([0-9a-f]+)/download', page)[1]
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    got = client.post(f"/item/{item_id}/download", data={"csrf_token": token})
    assert got.status_code == 200 and got.get_data() == b"blob\x00"
    got.close()


def test_missing_parents_of_output_folders_are_private_whatever_the_umask(server, team,
                                                                          tmp_path):
    """os.makedirs gave the parents it made 0777 less the umask: under umask
    000, `--out np1/a/out` left np1 and np1/a open to every local user."""
    sent = server.submit("deep folders", files=[(b"file\n", "f.txt")])
    bundle = server.export(tmp_path / "b.tar")
    work = tmp_path / "work"
    work.mkdir()
    os.chmod(work, 0o755)  # a parent that was there already is left as it is
    keys = ["--key", str(team.key_file), "--passphrase-file", str(team.passphrase_file)]
    run("decrypt", str(bundle), *keys, "--out", "np1/a/out", cwd=work)
    run("vault", "import", str(bundle), "--vault", "np2/a/vault", *keys, cwd=work)
    run("vault", "case-add", "c", sent.submission_id, "--vault", "np2/a/vault", *keys,
        cwd=work)
    run("vault", "export-case", "c", "--out", "newdir/sub/pkg", "--vault", "np2/a/vault",
        *keys, cwd=work)
    for made in ("np1", "np1/a", "np1/a/out", "np2", "np2/a", "np2/a/vault", "newdir",
                 "newdir/sub", "newdir/sub/pkg"):
        assert stat.S_IMODE((work / made).lstat().st_mode) == 0o700, made
    assert stat.S_IMODE(work.stat().st_mode) == 0o755


def test_folder_open_makes_parents_private_and_leaves_existing_ones(tmp_path):
    from intake.workstation.folders import Folder

    old = tmp_path / "old"
    old.mkdir()
    os.chmod(old, 0o751)
    previous = os.umask(0)
    try:
        with Folder.open(old / "x" / "y" / "leaf"):
            pass
    finally:
        os.umask(previous)
    assert modes(old) == {".": 0o751, "x": 0o700, "x/y": 0o700, "x/y/leaf": 0o700}
