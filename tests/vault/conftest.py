"""Fixtures for the workstation's tests (helpers in vault_helpers.py)."""

from __future__ import annotations

import pytest
from nacl import pwhash
from vault_helpers import Desk, Team, make_server, make_team

from intake import teamkeys


@pytest.fixture(autouse=True)
def cheap_team_kdf(monkeypatch):
    """Key files made in these tests use the cheapest Argon2id cost."""
    monkeypatch.setattr(teamkeys, "DEFAULT_KDF",
                        teamkeys.KdfCost(pwhash.argon2id.OPSLIMIT_MIN,
                                         pwhash.argon2id.MEMLIMIT_MIN))


@pytest.fixture
def team(tmp_path) -> Team:
    return make_team(tmp_path, "team")


@pytest.fixture
def server(tmp_path, team):
    srv = make_server(tmp_path, team)
    yield srv
    srv.close()


@pytest.fixture
def desk(tmp_path, team) -> Desk:
    return Desk(tmp_path / "vault", team)
