"""Fixtures for the sanitizer tests: the corpus (see sanitize_corpus.py) and a
helper that runs one file through the sanitizer as the server does."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from support import MemorySpool

from sanitize.sanitize_corpus import Corpus

NEEDED = ("exiftool", "ffmpeg", "ffprobe", "pdftotext")


def pytest_collection_modifyitems(items):
    """Without the tools (tests/packages.txt) these tests skip on a developer's
    machine; under CI they run, and fail, so a missing install is noticed."""
    missing = [tool for tool in NEEDED if shutil.which(tool) is None]
    if missing and os.environ.get("CI") != "true":
        for item in items:
            if "tests/sanitize" in str(item.path):
                item.add_marker(pytest.mark.skip(reason=f"missing {', '.join(missing)}"))


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Corpus:
    return Corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="session")
def sandbox():
    """One warm sandbox for the session, as a web worker keeps one."""
    from intake.server.sanitize.runner import warm_sandbox

    handle = warm_sandbox()
    yield handle
    handle.stop()


@pytest.fixture
def sanitized(sandbox, tmp_path):
    """Runs a file through the sanitizer as the server does; returns the Result
    and, when cleaned, the cleaned bytes written out for ExifTool to read."""
    from intake.server.sanitize import sanitize

    results = []

    def go(path: Path, **limits):
        from intake.server.sanitize import Limits

        spool = MemorySpool(path.read_bytes())
        result = sanitize(spool, MemorySpool,
                          Limits(**limits).for_size(spool.size) if limits else None,
                          sandbox=sandbox)
        results.append((spool, result))
        out = None
        if result.ok:
            out = tmp_path / f"clean-{path.name}"
            out.write_bytes(b"".join(result.spool.chunks()))
            assert result.spool.sha256 != spool.sha256 or not result.removed
        return result, out

    yield go
    for spool, result in results:
        result.close()
        spool.close()
