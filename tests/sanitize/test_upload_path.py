"""The whole path: HTTP form, encrypted spool, sandboxed cleaning, sealing,
queue export, bundle decryption. ExifTool finds nothing planted in what the
investigators decrypt, and the originals come along only when asked for."""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from intake.server.queue import export
from intake.workstation.decrypt import decrypt_bundle
from sanitize.sanitize_corpus import leftovers, planted_in_bytes

CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def post(client, files: list[Path], **fields):
    page = client.get("/en/")
    token = CSRF.search(page.get_data(as_text=True)).group(1)
    data = {"csrf_token": token, "testimony": "Files from the square.", **fields,
            "files": [(io.BytesIO(p.read_bytes()), p.name) for p in files]}
    return client.post("/en/submit", data=data, content_type="multipart/form-data",
                       follow_redirects=True)


def decrypted(app, team_key, tmp_path) -> tuple[Path, list[dict]]:
    intake = app.extensions["intake"]
    bundle = tmp_path / "bundle.tar"
    export(intake, bundle)
    out = tmp_path / "out"
    report = decrypt_bundle(bundle, team_key.private_key, out)
    assert not report.damaged
    (folder,) = [p for p in out.iterdir() if p.is_dir()]
    return folder, json.loads((folder / "metadata.json").read_text())


def test_form_says_which_files_are_cleaned_and_offers_the_original(client):
    from intake.server.sanitize import CLEANED_KINDS

    page = client.get("/en/").get_data(as_text=True)
    notice = page.split('id="cleaning"')[1].split("</p>")[0]
    assert [kind for kind in CLEANED_KINDS if kind not in notice] == []
    assert 'name="keep_original"' in page
    assert 'checked' not in page.split('name="keep_original"')[1].split(">")[0]


def test_uploads_are_cleaned_before_sealing(client, app, team_key, tmp_path, corpus):
    files = [corpus.jpeg("street.jpg"), corpus.docx("statement.docx"), corpus.mp4("tank.mp4")]
    note = tmp_path / "note.txt"
    note.write_text("plain words\n")
    page = post(client, [*files, note])
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert text.count("cleaned of hidden information") == 3
    assert "<strong><bdi>note.txt</bdi></strong>: we cannot clean this kind of file." in " ".join(
        text.split())
    folder, records = decrypted(app, team_key, tmp_path)
    by_name = {r.get("original_name"): r for r in records if r["kind"] == "file"}
    assert not [r for r in records if r["kind"] == "original"]
    for original in files:
        record = by_name[original.name]
        saved = folder / record["saved_as"]
        assert record["sanitized"] is True and record["flags"] == []
        assert record["sanitizer"].startswith("intake-sanitize/")
        assert record["sanitizer_version"].startswith("intake ")
        assert record["removed"] and not planted_in_bytes(json.dumps(record).encode())
        assert record["sha256_received"] == hashlib.sha256(original.read_bytes()).hexdigest()
        assert record["sha256_kept"] == hashlib.sha256(saved.read_bytes()).hexdigest()
        assert record["sha256_kept"] != record["sha256_received"]
        assert record["original_kept"] is False
        assert leftovers(saved) == [], original.name
    assert "note.txt" not in by_name  # held for the witness's word, not in the queue
    assert all(r["outcome"] == "cleaned" for r in by_name.values())


def test_keep_original_seals_the_untouched_original_linked(client, app, team_key, tmp_path,
                                                         corpus):
    photo = corpus.jpeg("evidence.jpg")
    assert post(client, [photo], keep_original="y").status_code == 200
    folder, records = decrypted(app, team_key, tmp_path)
    (clean,) = [r for r in records if r["kind"] == "file"]
    (original,) = [r for r in records if r["kind"] == "original"]
    assert clean["original_kept"] is True and clean["choices"] == {"keep_original": True}
    assert original["original_of"] == clean["item_id"]
    assert (folder / original["saved_as"]).read_bytes() == photo.read_bytes()
    assert original["sha256_kept"] == original["sha256_received"] == clean["sha256_received"]
    assert original["sanitized"] is False
    assert leftovers(folder / clean["saved_as"]) == []
    assert leftovers(folder / original["saved_as"])  # the evidence is all there


def test_decrypt_command_shows_what_was_cleaned(client, app, team_key, tmp_path, corpus):
    from intake.cli import main

    assert post(client, [corpus.png(), corpus.bmp()], keep_original="y").status_code == 200
    bundle = tmp_path / "bundle.tar"
    export(app.extensions["intake"], bundle)
    passphrase = tmp_path / "passphrase"
    passphrase.write_bytes(team_key.passphrase)
    result = CliRunner().invoke(main, ["decrypt", str(bundle), "--key", str(team_key.key_file),
                                       "--out", str(tmp_path / "out"), "--passphrase-file",
                                       str(passphrase)])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if "screen" in line]
    (cleaned,) = [line for line in lines if "sanitized" in line]
    (original,) = [line for line in lines if "original of" in line]
    assert "tEXt:Author" in cleaned and cleaned.endswith("original kept]")
    assert "as received" in original


ITEM = re.compile(r'name="item" value="([0-9a-f]{32})"')


def _gps_free(folder: Path, records: list[dict]) -> None:
    for record in records:
        saved = folder / record["saved_as"]
        assert not planted_in_bytes(saved.read_bytes()), record.get("original_name")


@pytest.mark.parametrize(("make", "limits", "offered"), [
    ("truncated_jpeg", {}, True),
    ("tiff", {"max_pixels": 100}, False),  # past the pixel limit: treated as a bomb
    ("jpeg", {"cpu_seconds": 0}, True),
])
def test_a_file_that_cannot_be_cleaned_is_not_stored_and_the_receipt_names_it(
        client, app, team_key, tmp_path, corpus, make, limits, offered):
    """"Keep the original" unticked: the file is not stored, with its GPS or at
    all; the receipt names it, says why in the witness's words and, unless it
    looks hostile, offers to send it as it is."""
    from intake.server.sanitize import Limits

    if limits:
        app.extensions["intake.sanitize_limits"] = Limits(**limits)
    photo = getattr(corpus, make)()
    assert leftovers(photo) or planted_in_bytes(photo.read_bytes())  # GPS and all, to begin with
    page = post(client, [photo])
    assert page.status_code == 200
    text = " ".join(page.get_data(as_text=True).split())
    assert f"<strong><bdi>{photo.name}</bdi></strong>:" in text
    assert "We have not stored it" in text
    assert bool(ITEM.search(text)) is offered
    assert ("Send it as it is" in text) is offered
    folder, records = decrypted(app, team_key, tmp_path)
    assert [r["kind"] for r in records] == ["testimony"]
    _gps_free(folder, records)


def test_a_file_too_large_to_clean_is_named_so_on_the_receipt(client, app, corpus):
    """Not "maybe damaged": the witness learns it was its size, and may
    send it as it is."""
    from intake.server.sanitize import Limits

    app.extensions["intake.sanitize_limits"] = Limits(media_memory=1024)
    page = post(client, [corpus.fragmented_mp4()])
    text = " ".join(page.get_data(as_text=True).split())
    assert "this file is too large for us to clean." in text
    assert "it may be damaged" not in text and "Send it as it is" in text


def _held(client, corpus) -> tuple[str, bytes]:
    photo = corpus.truncated_jpeg()
    page = post(client, [photo]).get_data(as_text=True)
    return ITEM.search(page).group(1), photo.read_bytes()


def _choose(client, item: str, choice: str):
    page = client.get("/en/")
    token = CSRF.search(page.get_data(as_text=True)).group(1)
    return client.post("/en/original", data={"csrf_token": token, "item": item,
                                             "choice": choice}, follow_redirects=True)


def test_the_witness_can_send_a_file_that_could_not_be_cleaned_as_it_is(
        client, app, team_key, tmp_path, corpus):
    item, original = _held(client, corpus)
    pending = app.extensions["intake.pending"]
    assert [p.name.split(".")[0] for p in pending.folder.iterdir()] == [item]
    # Held, not queued: an export now carries only the testimony.
    answer = _choose(client, item, "send")
    assert answer.status_code == 200
    assert "was sent exactly as it is" in answer.get_data(as_text=True)
    assert list(pending.folder.iterdir()) == []
    folder, records = decrypted(app, team_key, tmp_path)
    (record,) = [r for r in records if r["kind"] == "file"]
    assert record["outcome"].startswith("kept as received: the witness confirmed")
    assert record["sanitized"] is False and record["flags"][0].startswith("not sanitized:")
    assert (folder / record["saved_as"]).read_bytes() == original
    # The same choice again (a double click): it says what the first did, and
    # nothing is sent twice.
    again = _choose(client, item, "send").get_data(as_text=True)
    assert "was already sent" in again and "no longer open" not in again
    assert "Nothing of it is kept" not in again
    assert _files_stored(app) == 1


def _files_stored(app) -> int:
    from intake.server.models import Item

    with app.extensions["intake"].db.sessions() as s:
        return s.query(Item).filter_by(kind="file").count()


@pytest.mark.parametrize(("lang", "said"), [
    ("uk", "уже надіслано"), ("ru", "уже отправлен"), ("be", "ужо адпраўлены"),
])
def test_send_as_is_twice_says_it_was_already_sent(client, corpus, lang, said):
    item, _ = _held(client, corpus)
    token = CSRF.search(client.get(f"/{lang}/").get_data(as_text=True)).group(1)
    answers = [client.post(f"/{lang}/original", data={"csrf_token": token, "item": item,
                                                       "choice": "send"},
                           follow_redirects=True).get_data(as_text=True)
               for _ in range(2)]
    assert said not in answers[0] and said in answers[1]
    # The drop button pressed after it cannot undo it, and does not pretend to.
    dropped = client.post(f"/{lang}/original", data={"csrf_token": token, "item": item,
                                                     "choice": "drop"},
                          follow_redirects=True).get_data(as_text=True)
    assert said in dropped


def test_send_as_is_twice_at_once_is_sent_once_and_both_say_so(client, app, corpus,
                                                                monkeypatch):
    """A double click whose two requests arrive together: both held the file
    in their session; one sends it, the other says it was already sent."""
    from concurrent.futures import ThreadPoolExecutor

    from intake.server.witness import submit as submit_module

    item, _ = _held(client, corpus)
    token = CSRF.search(client.get("/en/").get_data(as_text=True)).group(1)
    cookie = client.get_cookie("intake_session").value
    real, pressed = submit_module.confirm_held, threading.Barrier(2)

    def slow(*args, **kwargs):  # the first is still storing it when the second comes
        pressed.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(submit_module, "confirm_held", slow)

    def press(_):
        browser = app.test_client()
        browser.set_cookie("intake_session", cookie)
        answer = browser.post("/en/original", data={"csrf_token": token, "item": item,
                                                    "choice": "send"})
        return browser.get(answer.headers["Location"]).get_data(as_text=True)

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(press, range(2)))
    assert sorted("already sent" in a for a in answers) == [False, True]
    assert all("no longer open" not in a for a in answers)
    assert _files_stored(app) == 1


def test_the_witness_can_drop_it_and_another_browser_cannot_choose(
        app, team_key, tmp_path, corpus):
    witness, stranger = app.test_client(), app.test_client()
    item, _ = _held(witness, corpus)
    pending = app.extensions["intake.pending"]
    assert "no longer open" in _choose(stranger, item, "send").get_data(as_text=True)
    assert len(list(pending.folder.iterdir())) == 1  # the stranger changed nothing
    assert "was not sent" in _choose(witness, item, "drop").get_data(as_text=True)
    assert list(pending.folder.iterdir()) == []
    _, records = decrypted(app, team_key, tmp_path)
    assert [r["kind"] for r in records] == ["testimony"]


def test_a_choice_not_made_in_time_keeps_nothing(client, app, team_key, tmp_path, corpus):
    pending = app.extensions["intake.pending"]
    pending.hold_seconds = 0  # expires at once; its timer removes the file
    item, _ = _held(client, corpus)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(pending.folder.iterdir()):
        time.sleep(0.01)
    assert list(pending.folder.iterdir()) == []
    assert "no longer open" in _choose(client, item, "send").get_data(as_text=True)
    _, records = decrypted(app, team_key, tmp_path)
    assert [r["kind"] for r in records] == ["testimony"]


def test_files_held_by_a_worker_that_is_gone_are_swept(client, app, corpus):
    """A worker killed before its timers ran leaves its held files behind: the
    next submission removes them (and the daily run, those of earlier days)."""
    pending = app.extensions["intake.pending"]
    item, _ = _held(client, corpus)
    (held,) = pending.folder.iterdir()
    gone = held.with_name(f"{item}.{_exited_pid()}.pending")
    held.rename(gone)
    post(client, [])
    assert not gone.exists()


def _exited_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_after_one_answer_the_other_files_are_asked_again(client, corpus, tmp_path):
    note = tmp_path / "note.txt"
    note.write_text("plain words\n")
    page = post(client, [corpus.truncated_jpeg(), note]).get_data(as_text=True)
    first, second = ITEM.findall(page)
    answer = _choose(client, first, "drop").get_data(as_text=True)
    assert "Still waiting for your choice" in answer
    assert ITEM.findall(answer) == [second] and "note.txt" in answer
    assert "was sent exactly" in _choose(client, second, "send").get_data(as_text=True)


def test_keeping_originals_keeps_a_file_that_could_not_be_cleaned(client, app, team_key,
                                                                   tmp_path, corpus):
    photo = corpus.truncated_jpeg()
    text = post(client, [photo], keep_original="y").get_data(as_text=True)
    assert "we kept it as you sent it" in text and not ITEM.search(text)
    folder, records = decrypted(app, team_key, tmp_path)
    (record,) = [r for r in records if r["kind"] == "file"]
    assert record["outcome"].startswith("kept as received: the witness asked on the form")
    assert (folder / record["saved_as"]).read_bytes() == photo.read_bytes()


def test_a_zip_bomb_is_not_forwarded_even_when_originals_are_kept(client, app, team_key,
                                                                  tmp_path, corpus):
    text = post(client, [corpus.zip_bomb_docx()], keep_original="y").get_data(as_text=True)
    assert "nothing of it is kept" in text
    _, records = decrypted(app, team_key, tmp_path)
    assert [r["kind"] for r in records] == ["testimony"]


def test_a_cameras_motion_jpeg_video_arrives_clean_in_every_container(client, app, team_key,
                                                                      tmp_path, corpus):
    """Every frame a photo with its GPS, serial number and author, in
    QuickTime (the box rewrite), Matroska and fragmented MP4 (ffmpeg's copy):
    through the form, "keep originals" unticked, what the investigators
    decrypt holds none of it."""
    files = [corpus.motion_jpeg("camera.mov"), corpus.motion_jpeg("camera.mkv"),
             corpus.motion_jpeg("camera-frag.mp4", "-movflags", "frag_keyframe+empty_moov")]
    assert all(planted_in_bytes(f.read_bytes()) for f in files)
    text = post(client, files).get_data(as_text=True)
    assert text.count("cleaned of hidden information") == 3
    folder, records = decrypted(app, team_key, tmp_path)
    by_name = {r.get("original_name"): r for r in records if r["kind"] == "file"}
    assert sorted(by_name) == sorted(f.name for f in files)
    for record in by_name.values():
        saved = (folder / record["saved_as"]).read_bytes()
        assert record["sanitized"] is True and record["outcome"] == "cleaned"
        assert planted_in_bytes(saved) == [], record["original_name"]
        assert saved.count(b"\xff\xd8\xff") >= 10  # the frames are there, cleaned
