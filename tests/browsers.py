"""Debian's Chromium, driven by Playwright, for every browser test."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync"]


def missing(what: str) -> None:
    """A tool the tests need is not here: under CI a failure, else a skip."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing; `make test` installs it")
    pytest.skip(f"{what} is missing; `make test` installs it")


@contextlib.contextmanager
def launched_chromium() -> Iterator:
    """A Chromium browser, closed on the way out."""
    if not CHROMIUM.exists():
        missing("Debian's chromium package")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing("Playwright for Python (the test extra in pyproject.toml)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM),
                                              args=CHROMIUM_ARGS, headless=True)
        try:
            yield chromium
        finally:
            chromium.close()
