"""Fixtures for the workstation's tests (helpers in vault_helpers.py)."""

from __future__ import annotations

import pytest
from vault_helpers import Desk, Team, make_server, make_team


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
