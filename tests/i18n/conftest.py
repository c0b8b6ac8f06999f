"""Fixtures for the language and accessibility tests: the catalog script and the witness pages."""

from __future__ import annotations

import importlib.util
import io
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import CSRF, codename_of, csrf_token, submit  # tests/support.py

ROOT = Path(__file__).resolve().parents[2]
LANGS = ("uk", "ru", "be", "en")


@pytest.fixture(scope="session")
def translations():
    """scripts/translations.py, loaded as a module (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("translations_script",
                                                  ROOT / "scripts" / "translations.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass
class Page:
    name: str
    method: str
    status: int
    html: str


def login(client, code: str, lang: str = "en"):
    return client.post(f"/{lang}/login", data={
        "csrf_token": csrf_token(client, f"/{lang}/login"), "codename": code})


def _page(name, method, response) -> Page:
    return Page(name, method, response.status_code, response.get_data(as_text=True))


def _then(client, name, response) -> Page:
    """The page a form's redirect leads to."""
    assert response.status_code == 303, (name, response.status_code)
    return _page(name, "GET", client.get(response.headers["Location"]))


def witness_pages(client, lang: str) -> list[Page]:
    """Every page a witness can meet, in the language of its address."""
    base = f"/{lang}"
    pages = [_page("form", "GET", client.get(f"{base}/"))]
    receipt = submit(client, "testimony", [(b"what I saw\n", "note.txt")], lang=lang)
    pages.append(_page("receipt", "GET", receipt))
    code = codename_of(receipt.get_data(as_text=True))
    check = re.search(r'action="([^"]+/check)"', receipt.get_data(as_text=True)).group(1)
    token = csrf_token(client, f"{base}/")
    pages.append(_then(client, "receipt after a typo", client.post(
        check, data={"csrf_token": token, "codename": "not my codename"})))
    pages.append(_then(client, "receipt confirmed", client.post(
        check, data={"csrf_token": token, "codename": code})))
    pages.append(_page("receipt gone", "GET", client.get(f"{base}/receipt/{'0' * 32}")))
    pages.append(_page("empty submission", "POST", submit(client, "", lang=lang)))
    pages.append(_page("not found", "GET", client.get(f"{base}/no-such-page")))
    pages.append(_page("not allowed", "GET", client.get(f"{base}/submit")))
    pages.append(_page("login", "GET", client.get(f"{base}/login")))
    pages.append(_then(client, "login failed", login(client, "wrong words", lang)))
    assert login(client, code, lang).status_code == 303
    account = _page("account", "GET", client.get(f"{base}/account"))
    pages.append(account)
    token = CSRF.search(account.html).group(1)
    pages.append(_then(client, "follow-up received", client.post(
        f"{base}/account/add", data={"csrf_token": token, "testimony": "more",
                                     "files": [(io.BytesIO(b"more\n"), "more.txt")]},
        content_type="multipart/form-data")))
    pages.append(_then(client, "logged out", client.post(f"{base}/logout",
                                                         data={"csrf_token": token})))
    return pages
