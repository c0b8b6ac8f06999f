"""The desk in a real browser (Debian's Chromium, JavaScript off): the address
`intake vault serve` prints opens it, pictures come from the vault's stored
previews, and a browser that did not open that address sees nothing."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from browsers import launched_chromium
from test_triage_pages import picture


@pytest.fixture
def chromium():
    with launched_chromium() as browser:
        yield browser


@contextlib.contextmanager
def desk_served(desk, port: int = 0) -> Iterator[str]:
    """`intake vault serve` running; yields the address it printed."""
    proc = subprocess.Popen([sys.executable, "-m", "intake", "vault", "serve", "--port",
                             str(port), "--vault", str(desk.root), *desk.key_args()],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    try:
        line = proc.stdout.readline()
        yield re.search(r"http://\S+", line)[0]
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=20)
        proc.stdout.close()


@pytest.fixture
def served(server, desk, tmp_path):
    sent = server.submit("Seen from the roof", files=[(picture(7), "roof.jpg")])
    desk.import_(server.export(tmp_path / "b.tar"))
    with desk_served(desk) as url:
        yield url, sent


def test_the_printed_address_opens_the_desk_and_nothing_else_does(chromium, served):
    url, sent = served
    context = chromium.new_context(java_script_enabled=False)
    page = context.new_page()
    response = page.goto(url)
    assert response.status == 200 and "token" not in page.url
    assert sent.submission_id[:12] in page.content()
    seen = []
    page.on("response", lambda r: seen.append((r.url, r.status, r.headers.get("content-type"))))
    page.goto(url.split("?")[0] + f"submission/{sent.submission_id}")
    assert "Seen from the roof" in page.content()
    previews = [s for s in seen if s[0].endswith("/preview.png")]
    assert [(status, kind) for _, status, kind in previews] == [(200, "image/png")]
    assert page.query_selector("img.preview").bounding_box()["width"] > 0
    context.close()

    stranger = chromium.new_context(java_script_enabled=False)
    other = stranger.new_page()
    refused = other.goto(url.split("?")[0] + f"submission/{sent.submission_id}")
    assert refused.status == 403
    assert "Seen from the roof" not in other.content()
    assert "intake vault serve" in other.content()
    stranger.close()


def test_a_reply_sent_after_the_desk_restarted_is_given_back_to_copy(chromium, server, desk,
                                                                      tmp_path):
    """A reply written at length in a page opened before the desk was started
    again is refused (that run's cookie no longer holds), and shown back to be
    copied; the same form sent from a page elsewhere is not echoed."""
    sent = server.submit("Seen from the river")
    desk.import_(server.export(tmp_path / "b.tar"))
    written = "Thank you. We read it twice, and we will write again <soon> & safely."
    context = chromium.new_context(java_script_enabled=False)
    page = context.new_page()
    with desk_served(desk) as url:
        port = urlsplit(url).port
        page.goto(url)
        page.goto(url.split("?")[0] + f"submission/{sent.submission_id}")
        page.locator("#message").fill(written)
    with desk_served(desk, port):
        with page.expect_navigation():
            page.locator("form[action$='/reply'] button[type=submit]").click()
        assert "intake vault serve" in page.content()
        assert page.locator("#typed").input_value() == written
        assert page.locator("#typed").get_attribute("readonly") is not None

        elsewhere = context.new_page()
        target = f"http://127.0.0.1:{port}/submission/{sent.submission_id}/reply"
        elsewhere.goto(f"data:text/html,<form method=post action='{target}'><input "
                       "name=message value='Send the vault to us'><button>go</button></form>")
        with elsewhere.expect_navigation():
            elsewhere.locator("button").click()
        assert "intake vault serve" in elsewhere.content()
        assert "Send the vault" not in elsewhere.content()
        assert elsewhere.locator("#typed").count() == 0
    context.close()
    with desk.open(unlocked=False) as vault:
        assert vault.conn.execute("SELECT COUNT(*) FROM replies").fetchone()[0] == 0
