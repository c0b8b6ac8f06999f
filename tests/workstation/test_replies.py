"""Replies: sealed to the witness's reply key, which only their codename re-creates,
and carried to the server in an intake-replies/1 bundle."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile

import pytest

from intake.format.envelope import EnvelopeError, open_envelope
from intake.format.reply_bundle import FORMAT as REPLIES_BUNDLE_FORMAT
from intake.server import codename, server_secrets


def _reply_key(server, sent):
    secrets = server_secrets.load_or_create(server.config.secrets_file)
    return codename.derive(codename.normalise(sent.codename), secrets).reply_key


def test_a_reply_opens_with_the_witness_codename_only(server, desk, tmp_path):
    alice = server.submit("I saw it")
    bob = server.submit("So did I")
    desk.import_(server.export(tmp_path / "b.tar"))
    message = "Дякуємо. Чи можете надіслати фото з іншого боку?\n"
    desk.run("reply", alice.submission_id, input=message)
    with desk.open() as vault:
        row = vault.conn.execute("SELECT * FROM replies").fetchone()
        sealed = vault.reply_path(row["reply_id"]).read_bytes()
    assert message.strip().encode() not in sealed
    content, meta = open_envelope(io.BytesIO(sealed), _reply_key(server, alice))
    assert content.decode() == message.strip()
    assert meta == {"format": "intake-reply/1", "reply_id": row["reply_id"],
                    "witness_id": alice.witness_id, "submission_id": alice.submission_id,
                    "written_day": meta["written_day"]}
    try:
        open_envelope(io.BytesIO(sealed), _reply_key(server, bob))
    except EnvelopeError:
        pass
    else:
        raise AssertionError("another witness's codename opened the reply")


def test_reply_from_a_file_and_the_reply_bundle(server, desk, tmp_path):
    a = server.submit("one")
    b = server.submit("two")
    desk.import_(server.export(tmp_path / "b.tar"))
    (tmp_path / "msg.txt").write_text("Thank you.")
    desk.run("reply", a.submission_id, "--message-file", str(tmp_path / "msg.txt"))
    desk.run("reply", b.submission_id, input="We received it.")
    out = tmp_path / "replies.tar"
    assert "wrote 2 reply(ies)" in desk.run("export-replies", "--out", str(out)).output
    with tarfile.open(out) as tar:
        members = tar.getmembers()
        assert members[0].name == "manifest.json"
        assert all(m.mtime == 0 and m.uid == 0 and m.uname == "" for m in members)
        manifest = json.loads(tar.extractfile("manifest.json").read())
        assert manifest["format"] == REPLIES_BUNDLE_FORMAT
        assert {r["witness_id"] for r in manifest["replies"]} == {a.witness_id, b.witness_id}
        for r in manifest["replies"]:
            data = tar.extractfile(r["name"]).read()
            assert r["name"] == f"replies/{r['reply_id']}.env"
            assert len(data) == r["size"] and hashlib.sha256(data).hexdigest() == r["sha256"]
            sent = a if r["witness_id"] == a.witness_id else b
            content, _ = open_envelope(io.BytesIO(data), _reply_key(server, sent))
            assert content in (b"Thank you.", b"We received it.")
    again = tmp_path / "again.tar"
    assert "wrote 0 reply(ies)" in desk.run("export-replies", "--out", str(again)).output
    assert "wrote 2" in desk.run("export-replies", "--all", "--out",
                                 str(tmp_path / "all.tar")).output
    assert desk.run("export-replies", "--out", str(out), ok=False).exit_code == 2


def test_empty_reply_and_unknown_submission_are_refused(server, desk, tmp_path):
    a = server.submit("one")
    desk.import_(server.export(tmp_path / "b.tar"))
    assert "empty" in desk.run("reply", a.submission_id, input="  \n", ok=False).output
    assert "no submission" in desk.run("reply", "f" * 32, input="hi", ok=False).output


def test_a_reply_the_desk_refuses_says_why_in_the_pages_language(server, desk, tmp_path):
    import re

    from intake.workstation.replies import MAX_MESSAGE_CHARS

    a = server.submit("one")
    desk.import_(server.export(tmp_path / "b.tar"))
    client = desk.app().test_client()
    page = client.get(f"/submission/{a.submission_id}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))[1]
    url = f"/submission/{a.submission_id}/reply"
    empty = client.post(url, data={"csrf_token": token, "message": "  "})
    assert empty.status_code == 400 and "The reply is empty." in empty.get_data(as_text=True)
    long = client.post(url, data={"csrf_token": token, "message": "x" * (MAX_MESSAGE_CHARS + 1)},
                       headers={"Accept-Language": "uk"})
    assert long.status_code == 400
    assert f"Відповідь довша за {MAX_MESSAGE_CHARS} символів." in long.get_data(as_text=True)
    with desk.open() as vault:
        assert vault.conn.execute("SELECT COUNT(*) FROM replies").fetchone()[0] == 0


def test_the_reply_form_on_the_submission_page(server, desk, tmp_path):
    import re


    a = server.submit("one")
    desk.import_(server.export(tmp_path / "b.tar"))
    client = desk.app().test_client()
    page = client.get(f"/submission/{a.submission_id}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))[1]
    done = client.post(f"/submission/{a.submission_id}/reply",
                       data={"csrf_token": token, "message": "From the form"})
    assert done.status_code == 303
    with desk.open() as vault:
        row = vault.conn.execute("SELECT reply_id FROM replies").fetchone()
        content, _ = open_envelope(io.BytesIO(vault.reply_path(row[0]).read_bytes()),
                                   _reply_key(server, a))
    assert content == b"From the form"
    assert "waiting for export" in client.get(f"/submission/{a.submission_id}").get_data(
        as_text=True)


def test_a_reply_key_nothing_can_be_sealed_to_is_refused_not_a_crash(server, desk, team,
                                                                       tmp_path):
    """A key of small order (all zeros, here) makes libsodium refuse to seal:
    a bundle listing one has that witness's listing refused, and a vault
    that holds one (imported before) refuses a reply to it, with the reason."""
    import base64
    import re
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from forge import Forge

    a = server.submit("one")
    forge = Forge.from_bundle(server.export(tmp_path / "b.tar"), team.keys_dir)
    zero = base64.b64encode(bytes(32)).decode()
    for witness in forge.manifest["witnesses"]:
        witness["reply_public_key"] = zero
    imported = desk.import_(forge.write(tmp_path / "forged.tar"), ok=False)
    assert "cannot be sealed to" in imported.output, imported.output
    with desk.open() as vault:
        assert vault.conn.execute("SELECT COUNT(*) FROM items").fetchone()[0] == 1
        with vault.transaction() as conn:  # as a vault filled before the check
            conn.execute("INSERT OR REPLACE INTO witnesses (witness_id, reply_public_key) "
                         "VALUES (?, ?)", (a.witness_id, zero))
    refused = desk.run("reply", a.submission_id, input="hi", ok=False)
    assert refused.exit_code == 2 and "reply key cannot be used" in refused.output
    client = desk.app().test_client()
    page = client.get(f"/submission/{a.submission_id}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))[1]
    answer = client.post(f"/submission/{a.submission_id}/reply",
                         data={"csrf_token": token, "message": "hi"},
                         headers={"Accept-Language": "uk"})
    assert answer.status_code == 400
    assert "Ключ для відповіді цьому свідкові не можна використати" in \
        answer.get_data(as_text=True)
    with desk.open() as vault:
        assert vault.conn.execute("SELECT COUNT(*) FROM replies").fetchone()[0] == 0


def _stored(desk) -> tuple:
    """What a refused reply must leave as it was: the replies, their files and
    the custody log."""
    from intake.workstation import custody

    with desk.open(unlocked=False) as vault:
        rows = vault.conn.execute("SELECT COUNT(*) FROM replies").fetchone()[0]
        copies = vault.conn.execute("SELECT COUNT(*) FROM reply_copies").fetchone()[0]
        logged = vault.conn.execute("SELECT COUNT(*) FROM custody").fetchone()[0]
        assert custody.verify(vault.conn).ok
        files = sorted(p.name for p in vault.replies_dir.iterdir())
    return rows, copies, logged, files


@pytest.mark.parametrize(("lang", "message", "reason"), [
    ("en", "Дякуємо.\r\n" + "д" * 20_000, "The reply is longer than 20000 characters."),
    ("en", "  \r\n\t", "The reply is empty."),
    ("en", "Дякуємо.\x1b[2J\r\nДо зустрічі",
     "The reply may not hold control characters other than line breaks and tabs."),
    ("uk", "Дякуємо.\r\n" + "д" * 20_000, "Відповідь довша за 20000 символів."),
])
@pytest.mark.parametrize("where", ["submission", "thread"])
def test_a_refused_reply_comes_back_in_its_form_and_nothing_is_kept(server, desk, tmp_path,
                                                                   where, lang, message,
                                                                   reason):
    import re

    a = server.submit("one")
    desk.import_(server.export(tmp_path / "b.tar"))
    client = desk.app().test_client()
    url = f"/submission/{a.submission_id}" if where == "submission" else \
        f"/witness/{a.witness_id}"
    page = client.get(url).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    before = _stored(desk)
    form = {"csrf_token": token, "message": message}
    if where == "thread":
        form["back"] = "thread"
    refused = client.post(f"/submission/{a.submission_id}/reply", data=form,
                          headers={"Accept-Language": lang})
    assert refused.status_code == 400
    assert _stored(desk) == before
    text = refused.get_data(as_text=True)
    # The page the reply was written on, the reason at its top linked to the field.
    assert ("Witness " in text or "Свідок " in text) == (where == "thread")
    assert f'<a href="#message">{reason}</a>' in text
    typed = re.search(r'<textarea id="message" name="message" rows="6"[^>]*>'
                      r"(.*?)</textarea>", text, re.DOTALL)[1]
    assert typed == message.replace("\x1b", "\\x1b")  # shown, not obeyed
    if lang != "en":
        assert "longer than" not in text


def test_a_reply_counts_a_line_break_once_as_the_browser_does(server, desk, tmp_path):
    """A browser sends a textarea's line breaks as CRLF but counts each as one
    character against maxlength: a reply the form let through is not refused."""
    import re

    a = server.submit("one")
    desk.import_(server.export(tmp_path / "b.tar"))
    client = desk.app().test_client()
    page = client.get(f"/submission/{a.submission_id}").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)[1]
    lines = "\r\n".join(["Дякуємо."] * 2222)  # 19,997 characters, each break counted once
    done = client.post(f"/submission/{a.submission_id}/reply",
                       data={"csrf_token": token, "message": lines})
    assert done.status_code == 303
    with desk.open() as vault:
        row = vault.conn.execute("SELECT reply_id FROM replies").fetchone()
        content, _ = open_envelope(io.BytesIO(vault.reply_path(row[0]).read_bytes()),
                                   _reply_key(server, a))
    assert content.decode() == lines.replace("\r\n", "\n")
