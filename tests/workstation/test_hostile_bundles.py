"""A bundle from a seized server, against `intake decrypt`, `vault import`, the desk
and `export-case`: traversal and absolute paths in every field, links planted in
the output folder and the vault, colliding and forged ids, oversize and
malformed fields. Each hostile item is refused by itself and named with the
reason; the genuine items still come through; nothing outside the output
folder or the vault is created, changed or removed."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import sys
import tarfile

import pytest
from click.testing import CliRunner
from forge import Forge, Member, new_id, plant_home, tree

from intake.cli import main

ESC = "\x1b"
RLO = "\u202e"


@pytest.fixture
def genuine(server, tmp_path):
    """Two genuine submissions, exported by the real server."""
    a = server.submit("Колона техніки біля мосту.", files=[(b"photo bytes\n", "bridge.txt")])
    b = server.submit("Second testimony", files=[(b"second file\n", "notes.txt")])
    return server.export(tmp_path / "genuine.tar"), a, b


def _hostile(genuine, team, tmp_path) -> tuple[Forge, dict[str, str]]:
    """The genuine bundle, with hostile items added. Returns the forge and, for
    each hostile listing's label fragment, a piece of the reason expected."""
    bundle, a, b = genuine
    home = tmp_path / "home"
    forge = Forge.from_bundle(bundle, team.keys_dir)
    expected: dict[str, str] = {}

    def listing(fragment: str, reason: str, **entry) -> None:
        listed = forge.add(b"hostile\n", entry=entry)
        expected[fragment or listed["name"]] = reason

    # Traversal and absolute paths in every field of a listing.
    listing("", "item_id is not 32", item_id="../../home/.bashrc")
    listing("", "item_id is not 32", item_id=str(home / ".bashrc"))
    listing("", "submission_id is not 32", submission_id="../../../home")
    listing("", "witness_id is not 32", witness_id=str(home))
    listing("", "received_day is not a day", received_day="../../home")
    listing("", "kind is not one of", kind="../.vim/plugin/evil.vim")
    listing("", "name is not envelopes/<item_id>.env", name="../../home/.bashrc")
    listing("", "unknown field", path=str(home / ".bashrc"))
    # Oversize and malformed values.
    listing("", "size is not a whole number", size=-1)
    listing("", "size is not a whole number", size=1.5)
    listing("", "size is not a whole number", size="12")
    listing("", "size is not a whole number", size=10 ** 19)
    listing("", "sha256 is not 64", sha256="Z" * 64)
    listing("", "sha256 is not 64", sha256="A" * 64)
    listing("", "item_id is not 32", item_id="a" * 100_000)
    # Escape sequences, bidi overrides and NUL in ids.
    listing("", "item_id is not 32", item_id=f"{ESC}]0;owned{ESC}\\{ESC}[2J" + "0" * 20)
    listing("", "submission_id is not 32", submission_id=f"{RLO}fdp.exe" + "0" * 24)
    listing("", "item_id is not 32", item_id="\0" + "0" * 31)
    # A genuine item (b's file) listed twice: neither listing is taken.
    twice = dict(next(i for i in forge.items
                      if i["kind"] == "file" and i["submission_id"] == b.submission_id))
    forge.items.append(dict(twice))
    expected[twice["name"]] = "listed more than once"
    # A submission the manifest gives two witnesses.
    sid = new_id()
    forge.add(b"one\n", submission_id=sid)
    forge.add(b"two\n", submission_id=sid)
    expected[f"submission {sid}"] = "more than one witness or day"
    # Sealed metadata disagreeing with the listing (the sealed value is the truth).
    for field, value in (("submission_id", a.submission_id), ("witness_id", a.witness_id),
                         ("received_day", "2001-01-01"), ("kind", "testimony")):
        listed = forge.add(b"moved\n")
        forged = forge.metadata(listed["item_id"], listed["submission_id"],
                                listed["witness_id"], listed["received_day"], b"moved\n")
        data = forge.seal(b"moved\n", **{**forged, field: value})
        forge.members[-1] = Member(listed["name"], data)
        listed["sha256"], listed["size"] = hashlib.sha256(data).hexdigest(), len(data)
        expected[listed["name"]] = f"tampered: its sealed {field} differs"
    # Sealed metadata nested past the reader's recursion limit (sealed here
    # with the writer's limit raised for it).
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)
    try:
        listed = forge.add(b"deep\n", choices={"keep_original": False,
                                               "x": json.loads("[" * 3000 + "]" * 3000)})
    finally:
        sys.setrecursionlimit(limit)
    expected[listed["name"]] = "damaged: the metadata is nested too deeply"
    # An envelope copied over another item's name (its sealed id says otherwise).
    moved = forge.add(b"elsewhere\n")
    forge.members[-1].data = next(m.data for m in forge.members
                                  if m.name == forge.genuine("testimony")["name"])
    moved["sha256"] = hashlib.sha256(forge.members[-1].data).hexdigest()
    expected[moved["name"]] = "moved from another item"
    # Malformed sealed metadata, with a consistent listing.
    for what, meta in (("original_name", {"original_name": "x" * 5000}),
                       ("flags", {"flags": "not a list"}),
                       ("detected_type", {"detected_type": f"text/{ESC}[31m"}),
                       ("original_of", {"original_of": "../../home"})):
        listed = forge.add(b"odd\n", **meta)
        expected[listed["name"]] = f"malformed ({what})"
    # A forged envelope placed first under a genuine item's name: it fails,
    # the genuine one after it is still taken.
    target = forge.genuine("testimony")
    forged_first = forge.seal(b"forged\n", **forge.metadata(
        target["item_id"], target["submission_id"], target["witness_id"],
        target["received_day"], b"forged\n", kind="testimony"))
    forge.members.insert(0, Member(target["name"], forged_first))
    expected[f"{target['name']}: damaged: its SHA-256"] = ""
    # Members the manifest does not list, or that are not files.
    forge.members.append(Member("../../home/.bashrc", b"export EVIL=1\n"))
    forge.members.append(Member(str(home / ".vim/plugin/evil.vim"), b"evil\n"))
    forge.members.append(Member(f"envelopes/{new_id()}.env", type=tarfile.SYMTYPE,
                                linkname=str(home / ".bashrc")))
    expected["../../home/.bashrc"] = "not in the manifest"
    expected["evil.vim"] = "not in the manifest"
    expected["not a regular file"] = ""
    forge.members.append(Member(f"envelopes/{ESC}[2J{RLO}.env", b"x"))
    expected["envelopes/\\x1b[2J\\u202e.env"] = "not in the manifest"
    # Well-formed items whose names and notes are hostile: taken, shown safely.
    for name in ("../../.bashrc", str(home / ".vim/plugin/evil.vim"), "..", ".",
                 f"{ESC}[2J{ESC}]0;x{ESC}\\photo{RLO}gpj.exe", "a\0b\nc.txt", "-rf"):
        forge.add(b"named\n", original_name=name)
    # Half a surrogate pair: valid JSON (an escape), but no text UTF-8 can hold.
    listed = forge.add(b"half\n", original_name="half\ud800pair.txt")
    expected[listed["name"]] = "damaged: the metadata holds text that is not Unicode"
    forge.add(b"flagged\n", original_name="flagged.txt",
              flags=[f"{ESC}[31mnot sanitized{ESC}[0m", f"{RLO}txt.exe"])
    return forge, expected


def _check_reported(output: str, expected: dict[str, str]) -> None:
    lines = output.splitlines()
    for fragment, reason in expected.items():
        hits = [ln for ln in lines if fragment in ln and reason in ln]
        assert hits, f"{fragment!r} / {reason!r} not reported"
    assert ESC not in output and RLO not in output and "\0" not in output
    assert not [ln for ln in lines if "Traceback" in ln]


def _modes(root) -> set[tuple[str, int]]:
    return {("dir" if p.is_dir() else "file", stat.S_IMODE(p.lstat().st_mode))
            for p in [root, *root.rglob("*")]}


def test_decrypt_refuses_each_hostile_item_and_keeps_the_genuine(genuine, team, tmp_path):
    bundle, a, b = genuine
    plant_home(tmp_path)
    forge, expected = _hostile(genuine, team, tmp_path)
    hostile = forge.write(tmp_path / "hostile.tar")
    out = tmp_path / "out"
    before = tree(tmp_path, {out})
    result = CliRunner().invoke(main, ["decrypt", str(hostile), "--key", str(team.key_file),
                                       "--passphrase-file", str(team.passphrase_file),
                                       "--out", str(out)])
    assert result.exit_code == 1, result.output
    _check_reported(result.output, expected)
    assert "flagged.txt  [text/plain; \\x1b[31mnot sanitized\\x1b[0m; \\u202etxt.exe]" \
        in result.output
    assert tree(tmp_path, {out}) == before
    # The genuine items are all there, the forged testimony placed first is not.
    texts = {p.read_text() for p in out.glob("*/testimony.txt")}
    assert {"Колона техніки біля мосту.", "Second testimony"} <= texts
    assert "forged\n" not in texts
    folder_a = next(out.glob(f"*_{a.submission_id}"))
    assert (folder_a / "testimony.txt").read_text() == "Колона техніки біля мосту."
    assert (folder_a / "files" / "bridge.txt").read_bytes() == b"photo bytes\n"
    # Hostile names became plain names inside their own folder.
    for path in out.rglob("*"):
        assert path.resolve().is_relative_to(out.resolve()) and not path.is_symlink()
        assert not set(path.name) & {ESC, RLO, "\0", "\n"}
    assert not list(out.rglob(".partial-*"))
    assert _modes(out) == {("dir", 0o700), ("file", 0o600)}


def test_vault_import_the_desk_and_export_case_keep_the_genuine(genuine, team, desk, tmp_path):
    bundle, a, b = genuine
    plant_home(tmp_path)
    forge, expected = _hostile(genuine, team, tmp_path)
    hostile = forge.write(tmp_path / "hostile.tar")
    vault = desk.root
    before = tree(tmp_path, {vault})
    result = desk.import_(hostile, ok=False)
    assert result.exit_code == 1
    _check_reported(result.output, expected)
    with desk.open() as v:
        subs = {r[0] for r in v.conn.execute("SELECT submission_id FROM submissions")}
        texts = {v.item_path(r[0]).read_text() for r in v.conn.execute(
            "SELECT item_id FROM items WHERE kind = 'testimony'")}
        names = [r[0] for r in v.conn.execute("SELECT original_name FROM items")]
        # Nothing was attached to or moved from a genuine submission.
        per_sub = {s: n for s, n in v.conn.execute(
            "SELECT submission_id, COUNT(*) FROM items GROUP BY submission_id")}
    assert {a.submission_id, b.submission_id} <= subs
    assert per_sub[a.submission_id] == 2 and per_sub[b.submission_id] == 1  # b's file: twice
    assert texts == {"Колона техніки біля мосту.", "Second testimony"}
    assert f"{ESC}[2J{ESC}]0;x{ESC}\\photo{RLO}gpj.exe" in names  # kept as sealed, as data
    assert _modes(vault) == {("dir", 0o700), ("file", 0o600)}

    # The desk shows the genuine pages whole, and hostile names only visibly.
    client = desk.app().test_client()
    for sent in (a, b):
        page = client.get(f"/submission/{sent.submission_id}")
        assert page.status_code == 200
    listing = client.get("/").get_data(as_text=True)
    assert ESC not in listing and RLO not in listing
    shown = ""
    for sid in subs - {a.submission_id, b.submission_id}:
        page = client.get(f"/submission/{sid}")
        assert page.status_code == 200
        text = page.get_data(as_text=True)
        assert ESC not in text and RLO not in text and "\0" not in text
        shown += text
    assert "\\x1b[2J\\x1b]0;x\\x1b\\photo\\u202egpj.exe" in shown  # visible, not obeyed
    assert "\\x1b[31mnot sanitized\\x1b[0m" in shown
    for path in ("/submission/..%2F..%2Fhome", "/item/..%2F..%2Fhome%2F.bashrc/preview.png",
                 f"/submission/{ESC}"):
        assert client.get(path).status_code == 404

    # The case package of the genuine submissions.
    desk.run("case-add", "genuine", a.submission_id, b.submission_id)
    package = tmp_path / "package"
    desk.run("export-case", "genuine", "--out", str(package))
    assert (package / "submissions" / a.submission_id / "testimony.txt").read_text() == \
        "Колона техніки біля мосту."
    assert _modes(package) == {("dir", 0o700), ("file", 0o400)}
    assert tree(tmp_path, {vault, package}) == before


def test_links_planted_in_the_output_folder_lead_nowhere(genuine, team, tmp_path):
    bundle, a, b = genuine
    home = plant_home(tmp_path)
    out = tmp_path / "out"
    out.mkdir()
    with tarfile.open(bundle) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())
    day = manifest["day"]
    # Where the submissions' folders go, links to the home folder.
    (out / f"{day}_{a.submission_id}").symlink_to(home)
    (out / f"{day}_{b.submission_id}").symlink_to(home / ".vim" / "plugin")
    (out / "metadata.json").symlink_to(home / ".bashrc")
    before = tree(tmp_path, {out})
    result = CliRunner().invoke(main, ["decrypt", str(bundle), "--key", str(team.key_file),
                                       "--passphrase-file", str(team.passphrase_file),
                                       "--out", str(out)])
    assert result.exit_code == 1
    assert result.output.count("SKIPPED") == 4 and "0 decrypted" in result.output
    assert tree(tmp_path, {out}) == before
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [f"{day}_{a.submission_id}", f"{day}_{b.submission_id}", "metadata.json"])
    # The output folder itself a link: refused.
    (tmp_path / "linked").symlink_to(home)
    result = CliRunner().invoke(main, ["decrypt", str(bundle), "--key", str(team.key_file),
                                       "--passphrase-file", str(team.passphrase_file),
                                       "--out", str(tmp_path / "linked")])
    assert result.exit_code == 2 and "is not a folder" in result.output
    assert tree(tmp_path, {out}) == before | {"linked": tree(tmp_path, set())["linked"]}


def test_links_planted_in_the_vault_lead_nowhere(genuine, team, desk, tmp_path):
    bundle, a, b = genuine
    home = plant_home(tmp_path)
    with tarfile.open(bundle) as tar:
        ids = [m.name.split("/")[1].removesuffix(".env") for m in tar.getmembers()[1:]]
    desk.open().close()  # the vault's folders
    (desk.root / "items" / ids[0]).symlink_to(home / ".bashrc")
    (desk.root / "tmp" / f".partial-{ids[1]}").symlink_to(home / ".vim" / "plugin" / "x.vim")
    (desk.root / "tmp" / f".partial-{ids[2]}").write_text("left by an interrupted run")
    before = tree(tmp_path, {desk.root})
    desk.import_(bundle)
    assert tree(tmp_path, {desk.root}) == before
    with desk.open() as v:
        assert not v.item_path(ids[0]).is_symlink()
        assert v.conn.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 4
    # What was in the vault's tmp/ before is still there, untouched: only what
    # the run made is removed.
    assert sorted(p.name for p in (desk.root / "tmp").iterdir()) == sorted(
        [f".partial-{ids[1]}", f".partial-{ids[2]}"])
    # The vault's own folders or database as links: the vault is refused.
    for name, target in (("items", home), ("vault.db-wal", home / ".bashrc")):
        other = tmp_path / f"vault-{name}"
        other.mkdir()
        (other / name).symlink_to(target)
        result = CliRunner().invoke(main, ["vault", "verify-log", "--vault", str(other)])
        assert result.exit_code == 2 and "cannot open the vault" in result.output, name
    assert tree(tmp_path, {desk.root}) == {**before, **{
        k: v for k, v in tree(tmp_path, {desk.root}).items() if k.startswith("vault-")}}


def test_export_case_follows_no_forged_id_and_no_planted_link(genuine, team, desk, tmp_path):
    bundle, a, b = genuine
    home = plant_home(tmp_path)
    desk.import_(bundle)
    desk.run("case-add", "c", a.submission_id)
    out = tmp_path / "package"
    out.mkdir()
    (out / "submissions").symlink_to(home)
    before = tree(tmp_path, {desk.root})
    result = desk.run("export-case", "c", "--out", str(out), ok=False)
    assert result.exit_code == 2 and "is not empty" in result.output
    # Ids changed in the database itself: never a path.
    import sqlite3

    conn = sqlite3.connect(desk.root / "vault.db")
    with conn:
        conn.execute("UPDATE items SET item_id = '../../home/.bashrc' WHERE submission_id = ?"
                     " AND kind = 'file'", (a.submission_id,))
    conn.close()
    result = desk.run("export-case", "c", "--out", str(tmp_path / "fresh"), ok=False)
    assert result.exit_code == 2 and "not valid" in result.output
    assert not (tmp_path / "fresh").exists()
    assert tree(tmp_path, {desk.root}) == before


def test_export_replies_follows_no_planted_link(genuine, team, desk, tmp_path):
    """The reply bundle is made as the case package is: a partial file of the
    run's own and a final name given without replacing anything, under the
    folder's handle. Links planted under the names it used to write by path
    lead nowhere; a link at the final name is refused, not followed."""
    bundle, a, _b = genuine
    home = plant_home(tmp_path)
    desk.import_(bundle)
    desk.run("reply", a.submission_id, input="Thank you.")
    out_dir = tmp_path / "usb"
    out_dir.mkdir()
    out_dir.chmod(0o755)  # the user's own folder, whatever the umask
    (out_dir / ".replies.tar.partial").symlink_to(home / ".bashrc")
    (out_dir / "taken.tar").symlink_to(home / ".vim" / "plugin" / "evil.vim")
    before = tree(tmp_path, {desk.root})
    refused = desk.run("export-replies", "--out", str(out_dir / "taken.tar"), ok=False)
    assert refused.exit_code == 2 and "exists already" in refused.output
    assert tree(tmp_path, {desk.root}) == before
    desk.run("export-replies", "--out", str(out_dir / "replies.tar"))
    after = tree(tmp_path, {desk.root})
    made = {k: v for k, v in after.items() if k not in before}
    assert list(made) == ["usb/replies.tar"]
    assert stat.S_IMODE(made["usb/replies.tar"][2]) == 0o600
    assert {k: v for k, v in after.items() if k in before and k != "usb"} == \
        {k: v for k, v in before.items() if k != "usb"}
    assert stat.S_IMODE(after["usb"][1]) == 0o755  # the user's folder, left as it was
    with tarfile.open(out_dir / "replies.tar") as tar:
        assert tar.getnames()[0] == "manifest.json" and len(tar.getnames()) == 2


def test_a_later_bundle_cannot_attach_to_or_move_a_submission(genuine, team, desk, tmp_path):
    bundle, a, b = genuine
    desk.import_(bundle)
    forge = Forge.from_bundle(bundle, team.keys_dir)
    forge.manifest["items"], forge.members = [], []
    day = forge.manifest["day"]
    attached = forge.add(b"planted evidence\n", submission_id=a.submission_id,
                         witness_id=a.witness_id, received_day=day)
    moved = forge.add(b"planted\n", submission_id=b.submission_id, witness_id=new_id(),
                      received_day=day)
    result = desk.import_(forge.write(tmp_path / "later.tar"), ok=False)
    assert result.exit_code == 1
    assert re.search(rf"{attached['name']}: refused: submission {a.submission_id} is in the "
                     "vault already, and its bundle did not list this item", result.output)
    assert f"{moved['name']}: refused: submission {b.submission_id} is in the vault with " \
        "another witness or day" in result.output
    with desk.open() as v:
        assert v.conn.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 4


@pytest.mark.parametrize(("manifest", "says"), [
    (b'{"format": "intake-bundle/1", "format": "intake-bundle/1", "day": "2026-01-01",'
     b' "items": [], "witnesses": []}', "appears twice"),
    (b'{"format": "intake-bundle/1", "day": NaN, "items": [], "witnesses": []}',
     "damaged"),
    (b'{"format": "intake-bundle/1", "day": "../../x", "items": [], "witnesses": []}',
     "day is not YYYY-MM-DD"),
    (b'{"format": "intake-bundle/1", "day": "2026-01-01", "items": {}, "witnesses": []}',
     "not a list"),
    (b'{"format": "intake-bundle/2", "day": "2026-01-01", "items": [], "witnesses": []}',
     "unknown manifest format"),
    (b"[" * 100_000 + b"]" * 100_000, "damaged"),
    (b"\xff\xfe not utf-8", "not UTF-8"),
    (b'{"format": "intake-bundle/1"}', "is missing"),
], ids=["duplicate-key", "nan", "traversal-day", "items-object", "format-2", "nested",
        "not-utf8", "missing"])
def test_a_manifest_broken_as_a_whole_refuses_the_bundle_and_writes_nothing(
        genuine, team, desk, tmp_path, manifest, says):
    bundle, *_ = genuine
    forge = Forge.from_bundle(bundle, team.keys_dir)
    broken = forge.write(tmp_path / "broken.tar", manifest_text=manifest)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["decrypt", str(broken), "--key", str(team.key_file),
                                       "--passphrase-file", str(team.passphrase_file),
                                       "--out", str(out)])
    assert result.exit_code == 2 and says in result.output, result.output
    assert not out.exists()
    result = desk.import_(broken, ok=False)
    assert result.exit_code == 2 and says in result.output
    with desk.open() as v:
        assert v.conn.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 0
    assert not os.listdir(desk.root / "items")


def _with_trailing_member(bundle, out, name: str, size_field: bytes):
    """`bundle` with one more member, `name`, whose header gives `size_field`
    (a GNU base-256 size no file can have), and no bytes after it."""
    with tarfile.open(bundle) as tar:
        last = tar.getmembers()[-1]
        end = last.offset_data + -(-last.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
    info = tarfile.TarInfo(name)
    header = bytearray(info.tobuf(format=tarfile.USTAR_FORMAT))
    header[124:136] = size_field
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    out.write_bytes(bundle.read_bytes()[:end] + bytes(header) + bytes(1024))
    return out


@pytest.mark.parametrize("listed", [False, True], ids=["unlisted", "a listed name"])
def test_a_member_larger_than_any_file_costs_only_itself(genuine, team, desk, tmp_path,
                                                         listed):
    """A tar header may give a size of up to 2**88 bytes; one that runs past
    the end of the bundle is the bundle's last member, refused by itself."""
    bundle, a, b = genuine
    name = "junk"
    if listed:
        with tarfile.open(bundle) as tar:
            name = next(m.name for m in tar.getmembers() if m.name.startswith("envelopes/"))
    huge = _with_trailing_member(bundle, tmp_path / "huge.tar", name,
                                 b"\x80" + (2 ** 80).to_bytes(11, "big"))
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["decrypt", str(huge), "--key", str(team.key_file),
                                       "--passphrase-file", str(team.passphrase_file),
                                       "--out", str(out)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    reason = "the bundle ends inside it" if listed else "not in the manifest"
    assert re.search(rf"{re.escape(name)}.*{reason}", result.output), result.output
    assert "4 decrypted" in result.output, result.output
    imported = desk.import_(huge, ok=False)
    assert imported.exception is None or isinstance(imported.exception, SystemExit)
    assert reason in imported.output, imported.output
    with desk.open() as v:
        assert v.conn.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 4
