"""Shared fixtures: a team key, a config in a temp folder, the app and its client."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import pytest
from nacl.public import PrivateKey
from support import FAST_KDF, PASSPHRASE, make_config  # noqa: F401  (re-exported)

from intake.format import teamkeys
from intake.server.config import Config

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
