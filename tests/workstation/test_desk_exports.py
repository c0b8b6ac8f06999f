"""Exports started from the desk: a POST with its CSRF token runs the same code
as the commands, in a job whose page shows its progress, where the result
went and its SHA-256s."""

from __future__ import annotations

import hashlib
import re
import tarfile
import time
from pathlib import Path

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _token(client) -> str:
    return CSRF.search(client.get("/exports").get_data(as_text=True)).group(1)


def finished(client, location: str) -> str:
    """The job's page once the job is over (the triager reloads it the same way)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        page = client.get(location).get_data(as_text=True)
        if "Running:" not in page:
            return page
        time.sleep(0.05)  # the job runs in the desk's own thread; nothing to await on
    raise AssertionError("the export did not finish within 60 s")


def test_a_case_exported_from_the_desk(server, desk, tmp_path):
    a = server.submit("first", files=[(b"evidence bytes\n", "e.txt")])
    b = server.submit("second")
    desk.import_(server.export(tmp_path / "b.tar"))
    desk.run("case-add", "Kharkiv school", a.submission_id, b.submission_id)
    exports = tmp_path / "exports"
    client = desk.app(actor="tester", exports_dir=exports).test_client()
    assert client.post("/exports/case", data={"case": "Kharkiv school"}).status_code == 400
    assert not exports.exists()
    started = client.post("/exports/case", data={"csrf_token": _token(client),
                                                 "case": "Kharkiv school"})
    assert started.status_code == 303
    page = finished(client, started.location)
    assert "Done: 11 files written." in page, page  # 3 items and 8 files about them
    (folder,) = exports.iterdir()
    assert folder.name.startswith("case-Kharkiv school-")
    assert str(folder) in page
    sums = (folder / "SHA256SUMS").read_bytes()
    assert hashlib.sha256(sums).hexdigest() in page
    for line in sums.decode().splitlines():
        digest, name = line.split("  ", 1)
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest
    with desk.open() as vault:
        head = vault.conn.execute("SELECT hash FROM custody WHERE action = 'export case'"
                                  ).fetchone()[0]
    assert head in page
    assert "Kharkiv school" in client.get("/exports").get_data(as_text=True)
    # Twice within one second: a folder of its own each, both done.
    twice = [client.post("/exports/case", data={"csrf_token": _token(client),
                                                "case": "Kharkiv school"}) for _ in range(2)]
    for started in twice:
        assert "Done: 11 files written." in finished(client, started.location)
    assert len(list(exports.iterdir())) == 3


def test_a_reply_bundle_exported_from_the_desk(server, desk, tmp_path):
    a = server.submit("one")
    desk.import_(server.export(tmp_path / "b.tar"))
    desk.run("reply", a.submission_id, input="Thank you.")
    exports = tmp_path / "exports"
    client = desk.app(exports_dir=exports).test_client()
    assert "1 reply waiting for export." in client.get("/exports").get_data(as_text=True)
    started = client.post("/exports/replies", data={"csrf_token": _token(client)})
    page = finished(client, started.location)
    assert "Done: 1 reply in the bundle." in page
    (bundle,) = exports.iterdir()
    assert hashlib.sha256(bundle.read_bytes()).hexdigest() in page
    with tarfile.open(bundle) as tar:
        assert tar.getnames()[0] == "manifest.json" and len(tar.getnames()) == 2
    assert "0 replies waiting for export." in client.get("/exports").get_data(as_text=True)


def test_a_failed_export_says_why_and_leaves_nothing(server, desk, tmp_path):
    a = server.submit("one", files=[(b"bytes that will change\n", "x.txt")])
    desk.import_(server.export(tmp_path / "b.tar"))
    desk.run("case-add", "Altered", a.submission_id)
    with desk.open() as vault:
        item = vault.conn.execute("SELECT item_id FROM items WHERE kind = 'file'").fetchone()[0]
        path = Path(vault.item_path(item))
    path.chmod(0o600)
    path.write_bytes(b"changed after import\n")
    exports = tmp_path / "exports"
    client = desk.app(exports_dir=exports).test_client()
    started = client.post("/exports/case", data={"csrf_token": _token(client),
                                                 "case": "Altered"})
    page = finished(client, started.location)
    assert "The export failed and left nothing behind" in page
    assert "no longer matches its recorded SHA-256" in page
    # The reason is a sentence of its own, in the page's language like the rest.
    ukrainian = client.get(started.location, headers={"Accept-Language": "uk"})
    assert "у сховищі більше не збігається зі своїм записаним SHA-256" in ukrainian.get_data(
        as_text=True)
    assert list(exports.iterdir()) == []
    assert client.get("/exports/0123456789abcdef").status_code == 404


def test_an_exports_folder_that_is_a_link_is_refused_when_the_desk_starts(desk, tmp_path):
    """Refused at once, with the reason, rather than each export failing."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = tmp_path / "exports-link"
    link.symlink_to(elsewhere)
    import subprocess
    import sys

    desk.run("verify-log")  # the vault exists
    # In a process of its own: a desk that started would serve until stopped.
    result = subprocess.run([sys.executable, "-m", "intake", "vault", "serve", "--vault",
                             str(desk.root), "--port", "0", "--exports", str(link)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "exports-link" in result.stderr and "Triage desk" not in result.stdout
    assert list(elsewhere.iterdir()) == []
