"""Shared fixtures: a team key, a config in a temp folder, the app and its client."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from nacl.public import PrivateKey
from support import FAST_KDF, PASSPHRASE, make_config  # noqa: F401  (re-exported)

from intake.format import teamkeys
from intake.server.config import Config

ROOT = Path(__file__).resolve().parents[1]
# What running Python and the tools leave in a checkout by design.
CACHES = {"__pycache__", ".pytest_cache", ".ruff_cache", ".hypothesis", ".import_linter_cache"}


def _checkout_state() -> set[str] | None:
    """Every changed, untracked or ignored path git sees in the checkout (the
    caches aside), or None outside a git checkout."""
    git = shutil.which("git")
    if git is None or not (ROOT / ".git").exists():
        return None
    out = subprocess.run([git, "status", "--porcelain=v1", "-z", "--untracked-files=all",
                          "--ignored=matching"], cwd=ROOT, capture_output=True, check=True)
    entries = out.stdout.decode(errors="replace").split("\0")
    return {e for e in entries if e and not CACHES & set(Path(e[3:]).parts)}


def pytest_sessionstart(session):
    session.config.stash[CHECKOUT] = _checkout_state()


def pytest_sessionfinish(session, exitstatus):
    """A test leaves no trace: the session fails when the checkout changed."""
    before = session.config.stash.get(CHECKOUT, None)
    after = _checkout_state()
    if before is None or after is None or before == after:
        return
    changed = sorted(after ^ before)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("The tests changed the checkout (they must write under a "
                            "temporary folder only):", red=True)
        for entry in changed[:20]:
            reporter.write_line(f"  {entry}")
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


CHECKOUT = pytest.StashKey[set[str] | None]()

PG_URL = os.environ.get("INTAKE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


@dataclass
class TeamKey:
    keys_dir: Path
    key_file: Path
    private_key: PrivateKey
    passphrase: bytes = PASSPHRASE


@pytest.fixture
def team_key(tmp_path) -> TeamKey:
    workstation = tmp_path / "workstation"
    pub, key = teamkeys.generate("team", workstation, PASSPHRASE, FAST_KDF)
    keys_dir = tmp_path / "keys"
    keys_dir.mkdir()
    pub.rename(keys_dir / "team.pub")
    return TeamKey(keys_dir, key, teamkeys.load_private_key(key, PASSPHRASE))


@pytest.fixture
def config(tmp_path, team_key) -> Config:
    return make_config(tmp_path, team_key.keys_dir)


@pytest.fixture
def app(config):
    from intake.server.witness import create_app

    app = create_app(config)
    yield app
    app.extensions["intake"].close()  # its zygote too, if an upload started one


@pytest.fixture
def client(app):
    return app.test_client()


def _pg_available() -> bool:
    try:
        import psycopg

        with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test",
                             connect_timeout=3):
            return True
    except Exception:
        return False


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """The same tests on SQLite and on PostgreSQL (a fresh database each)."""
    if request.param == "sqlite":
        yield ""
        return
    if not _pg_available():
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL on 127.0.0.1:5432 is down; under CI it must run")
        pytest.skip("PostgreSQL on 127.0.0.1:5432 is down")
    import psycopg

    name = "intake_test_" + secrets.token_hex(6)
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test",
                         autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = PG_URL.rsplit("/", 1)[0] + "/" + name
    yield url
    with psycopg.connect("host=127.0.0.1 port=5432 user=postgres dbname=test",
                         autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
