"""The desk in a real browser (Debian's Chromium, JavaScript off): the address
`intake vault serve` prints opens it, pictures come from the vault's stored
previews, and a browser that did not open that address sees nothing."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys

import pytest
from browsers import launched_chromium
from test_triage_pages import picture


@pytest.fixture
def chromium():
    with launched_chromium() as browser:
        yield browser


@pytest.fixture
def served(server, desk, tmp_path):
    sent = server.submit("Seen from the roof", files=[(picture(7), "roof.jpg")])
    desk.import_(server.export(tmp_path / "b.tar"))
    proc = subprocess.Popen([sys.executable, "-m", "intake", "vault", "serve", "--port", "0",
                             "--vault", str(desk.root), *desk.key_args()],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    try:
        line = proc.stdout.readline()
        yield re.search(r"http://\S+", line)[0], sent
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=20)
        proc.stdout.close()


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
