"""A witness's thread: submissions, follow-ups and replies in order on one page;
replies also sealed to the team, re-read with the team key, and logged."""

from __future__ import annotations

import hashlib
import io
import json
import re

from vault_helpers import PASSPHRASE

from intake.format import teamkeys
from intake.format.envelope import fingerprint, open_envelope
from intake.workstation import custody, replies

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def _token(page) -> str:
    return CSRF.search(page.get_data(as_text=True)).group(1)


def test_the_team_copy_holds_exactly_the_reply_and_is_logged(server, desk, team, tmp_path):
    sent = server.submit("first visit")
    desk.import_(server.export(tmp_path / "b.tar"))
    desk.run("reply", sent.submission_id, input="Дякуємо. Надішліть, будь ласка, фото.\n")
    key = teamkeys.load_private_key(team.key_file, PASSPHRASE.encode())
    with desk.open() as vault:
        row = vault.conn.execute("SELECT * FROM replies JOIN reply_copies USING (reply_id)"
                                 ).fetchone()
        copy = replies.copy_path(vault, row["reply_id"]).read_bytes()
        witness_copy = vault.reply_path(row["reply_id"]).read_bytes()
        entry = vault.conn.execute("SELECT detail FROM custody WHERE action = 'reply'"
                                   ).fetchone()
        assert replies.read_reply(vault, row["reply_id"], key) == \
            "Дякуємо. Надішліть, будь ласка, фото."
    content, meta = open_envelope(io.BytesIO(copy), key)
    assert content.decode() == "Дякуємо. Надішліть, будь ласка, фото."
    assert meta["format"] == "intake-reply-copy/1"
    assert meta["envelope_sha256"] == hashlib.sha256(witness_copy).hexdigest() == row["sha256"]
    assert "Надішліть".encode() not in copy
    detail = json.loads(entry["detail"])
    assert detail["team_copy_sha256"] == hashlib.sha256(copy).hexdigest()
    assert detail["sha256"] == row["sha256"]
    assert detail["team_keys"] == [fingerprint(key.public_key).hex()]


def test_a_changed_team_copy_is_refused(server, desk, team, tmp_path):
    sent = server.submit("one")
    desk.import_(server.export(tmp_path / "b.tar"))
    desk.run("reply", sent.submission_id, input="Thank you.")
    key = teamkeys.load_private_key(team.key_file, PASSPHRASE.encode())
    with desk.open() as vault:
        reply_id = vault.conn.execute("SELECT reply_id FROM replies").fetchone()[0]
        path = replies.copy_path(vault, reply_id)
        data = bytearray(path.read_bytes())
        data[-1] ^= 1
        path.chmod(0o600)
        path.write_bytes(bytes(data))
        try:
            replies.read_reply(vault, reply_id, key)
        except replies.ReplyError as exc:
            assert "changed on disk" in str(exc)
        else:
            raise AssertionError("a changed team copy was read")


def test_the_thread_page_shows_everything_in_order_and_reopens_replies(server, desk, team,
                                                                       tmp_path):
    first = server.submit("Перше свідчення: танки біля школи.")
    desk.import_(server.export(tmp_path / "b1.tar"))
    desk.run("reply", first.submission_id, input="Дякуємо, чи є фото?")
    again = server.submit_again(first.witness_id, "Друге: ось що я бачив потім.\x1b[31m")
    other = server.submit("someone else")
    desk.import_(server.export(tmp_path / "b2.tar"))
    client = desk.app(actor="tester").test_client()
    url = f"/witness/{first.witness_id}"
    page = client.get(url).get_data(as_text=True)
    order = [page.index(x) for x in ("Перше свідчення", "Reply from the team", "Друге: ось")]
    assert order == sorted(order)
    assert other.submission_id[:12] not in page
    assert "\\x1b[31m" in page and "\x1b" not in page  # shown, not sent to the reader
    assert "Дякуємо, чи є фото?" not in page  # sealed until the key opens it
    token = _token(client.get(url))
    wrong = client.post(url + "/read-replies", data={"csrf_token": token,
                                                      "passphrase": "not it at all"})
    assert wrong.status_code == 403 and "Дякуємо, чи є фото?" not in wrong.get_data(
        as_text=True)
    assert client.post(url + "/read-replies", data={"passphrase": PASSPHRASE}
                       ).status_code == 400  # no CSRF token
    opened = client.post(url + "/read-replies", data={"csrf_token": token,
                                                       "passphrase": PASSPHRASE})
    assert opened.status_code == 200
    assert "Дякуємо, чи є фото?" in opened.get_data(as_text=True)
    done = client.post(f"/submission/{again}/reply", data={
        "csrf_token": token, "message": "Отримали.", "back": "thread"})
    assert done.status_code == 303 and done.location.startswith(url)
    with desk.open() as vault:
        actions = [r[0] for r in vault.conn.execute(
            "SELECT action FROM custody WHERE subject = ?", (f"witness:{first.witness_id}",))]
        assert custody.verify(vault.conn).ok
    assert actions == ["read replies"]


def test_without_the_key_the_thread_says_how_to_reread(server, desk, tmp_path):
    """A desk started without --key offers no re-reading, and refuses it with the
    read-only page even when the passphrase is right: it has no key file to
    open, and no custody key to log the re-reading with."""
    sent = server.submit("one")
    desk.import_(server.export(tmp_path / "b.tar"))
    desk.run("reply", sent.submission_id, input="Thank you.")
    client = desk.app(unlocked=False).test_client()
    page = client.get(f"/witness/{sent.witness_id}").get_data(as_text=True)
    assert "--key NAME.key" in page and 'id="passphrase"' not in page
    token = _token(client.get(f"/witness/{sent.witness_id}"))
    refused = client.post(f"/witness/{sent.witness_id}/read-replies",
                          data={"csrf_token": token, "passphrase": PASSPHRASE})
    assert refused.status_code == 403 and "intake vault serve --key" in refused.get_data(
        as_text=True)
    assert "Thank you." not in refused.get_data(as_text=True)
    with desk.open(unlocked=False) as vault:
        assert vault.conn.execute("SELECT COUNT(*) FROM custody WHERE action = 'read replies'"
                                  ).fetchone()[0] == 0
