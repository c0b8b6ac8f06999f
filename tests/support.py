"""Helpers shared by the tests (fixtures are in conftest.py)."""

from __future__ import annotations

import io
import re
from pathlib import Path

from intake.config import Config, load_config

PASSPHRASE = b"correct horse battery staple"


def make_config(tmp_path: Path, keys_dir: Path, **overrides) -> Config:
    return load_config({}, data_dir=tmp_path / "data", keys_dir=keys_dir,
                       kdf_opslimit=1, kdf_memlimit=8192, **overrides)


CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_token(client, path: str = "/") -> str:
    page = client.get(path)
    assert page.status_code == 200
    return CSRF.search(page.get_data(as_text=True)).group(1)


def submit(client, testimony: str = "", files: list[tuple[bytes, str]] | None = None,
           token: str | None = None, **extra):
    data = {"csrf_token": token if token is not None else csrf_token(client),
            "testimony": testimony, **extra}
    data["files"] = [(io.BytesIO(content), name) for content, name in (files or [])]
    return client.post("/submit", data=data, content_type="multipart/form-data")


CODENAME = re.compile(r'<p class="codename" id="codename">(.*?)</p>', re.S)


def codename_of(page_text: str) -> str:
    return " ".join(re.findall(r"<span>([a-z-]+)</span>", CODENAME.search(page_text).group(1)))
