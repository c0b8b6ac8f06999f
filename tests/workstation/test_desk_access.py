"""Whom the desk answers, in process: the run's token once, its cookie after, and
only under the names of the address it is bound to."""

from __future__ import annotations

import re

import pytest

from intake.pages.headers import HEADERS
from intake.workstation.desk_access import COOKIE, Access


@pytest.fixture
def guarded(server, desk, tmp_path):
    sent = server.submit("guarded testimony")
    desk.import_(server.export(tmp_path / "b.tar"))
    access = Access.fresh("127.0.0.1", 8090)
    app = desk.app(access=access)
    return app, access, sent


def test_the_token_is_exchanged_for_a_cookie_once_opened(guarded):
    app, access, sent = guarded
    client = app.test_client()
    base = "http://127.0.0.1:8090"
    assert client.get(f"{base}/submission/{sent.submission_id}").status_code == 403
    opened = client.get(f"{base}/submission/{sent.submission_id}?token={access.token}&x=1")
    assert opened.status_code == 303
    assert opened.headers["Location"] == f"/submission/{sent.submission_id}?x=1"
    assert access.token not in opened.headers["Set-Cookie"]
    assert f"{COOKIE}={access.session}" in opened.headers["Set-Cookie"]
    page = client.get(f"{base}/submission/{sent.submission_id}")
    assert page.status_code == 200 and "guarded testimony" in page.get_data(as_text=True)
    for name, value in HEADERS.items():
        assert opened.headers[name] == value and page.headers[name] == value


def test_without_the_cookie_nothing_is_shown_or_changed(guarded, desk):
    app, access, sent = guarded
    opened = app.test_client()
    opened.get(f"http://127.0.0.1:8090/?token={access.token}")
    page = opened.get(f"http://127.0.0.1:8090/submission/{sent.submission_id}")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))[1]
    stranger = app.test_client()  # another local user's browser, without the cookie
    url = f"http://127.0.0.1:8090/submission/{sent.submission_id}/triage"
    data = {"csrf_token": token, "status": "spam"}
    assert stranger.post(url, data=data).status_code == 403
    # The token itself opens nothing but a GET.
    assert stranger.post(f"{url}?token={access.token}", data=data).status_code == 403
    stranger.set_cookie(COOKIE, "x" + access.session[1:], domain="127.0.0.1")
    assert stranger.post(url, data=data).status_code == 403
    assert "guarded testimony" not in stranger.get(
        f"http://127.0.0.1:8090/submission/{sent.submission_id}").get_data(as_text=True)
    with desk.open(unlocked=False) as vault:
        assert vault.conn.execute("SELECT status FROM submissions").fetchone()[0] == "new"


@pytest.mark.parametrize(("bound", "host", "allowed"), [
    ("127.0.0.1", "127.0.0.1:8090", True),
    ("127.0.0.1", "localhost:8090", True),
    ("127.0.0.1", "attacker.example:8090", False),
    ("127.0.0.1", "127.0.0.1:8091", False),
    ("127.0.0.1", "[::1]:8090", False),
    ("::1", "[::1]:8090", True),
    ("::1", "localhost:8090", True),
    ("::1", "127.0.0.1:8090", False),
    ("127.0.0.5", "127.0.0.5:8090", True),
    ("127.0.0.5", "localhost:8090", False),
])
def test_only_the_bound_names_are_answered(bound, host, allowed):
    assert (host in Access.fresh(bound, 8090).hosts) is allowed


def test_each_run_has_fresh_secrets():
    a, b = Access.fresh("127.0.0.1", 8090), Access.fresh("127.0.0.1", 8090)
    assert len({a.token, a.session, b.token, b.session}) == 4
    assert len(a.token) >= 40 and a.url("127.0.0.1", 8090).endswith(f"/?token={a.token}")
    assert Access.fresh("::1", 8090).url("::1", 8090).startswith("http://[::1]:8090/")


def test_a_request_without_a_host_header_is_refused(guarded):
    """HTTP/1.0 needs no Host header; without one, the name a request was
    meant for is unknown, and it is refused like a wrong one (a page
    elsewhere could otherwise reach the desk through a proxy that drops it)."""
    from werkzeug.test import EnvironBuilder, run_wsgi_app

    app, access, sent = guarded
    environ = EnvironBuilder(path="/", base_url="http://127.0.0.1:8090",
                             query_string={"token": access.token}).get_environ()
    del environ["HTTP_HOST"]
    environ["SERVER_PROTOCOL"] = "HTTP/1.0"
    _body, status, headers = run_wsgi_app(app, environ, buffered=True)
    assert status.startswith("421")
    assert "Set-Cookie" not in headers
