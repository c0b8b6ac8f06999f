"""Fixtures for the language and accessibility tests: the catalog script and the witness pages."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import codename_of, csrf_token, submit  # tests/support.py

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


def login(client, code: str):
    return client.post("/login", data={"csrf_token": csrf_token(client, "/login"),
                                       "codename": code})


def _page(name, method, response) -> Page:
    return Page(name, method, response.status_code, response.get_data(as_text=True))


def witness_pages(client, lang: str) -> list[Page]:
    """Every page a witness can meet, fetched in the client's current language."""
    pages = [_page("form", "GET", client.get("/"))]
    receipt = submit(client, "testimony", [(b"what I saw\n", "note.txt")])
    pages.append(_page("receipt", "POST", receipt))
    pages.append(_page("empty submission", "POST", submit(client, "")))
    pages.append(_page("not found", "GET", client.get("/no-such-page")))
    pages.append(_page("not allowed", "GET", client.get("/submit")))
    code = codename_of(receipt.get_data(as_text=True))
    pages.append(_page("login", "GET", client.get("/login")))
    pages.append(_page("login failed", "POST", login(client, "wrong words")))
    assert login(client, code).status_code == 302
    # Logging in starts a new session; test_the_choice_survives_logging_in
    # covers whether the language survives it, here only the links matter.
    pages.append(_page("account", "GET", client.get(f"/account?lang={lang}")))
    token = csrf_token(client, "/login")
    pages.append(_page("logged out", "POST",
                       client.post("/logout", data={"csrf_token": token})))
    return pages
