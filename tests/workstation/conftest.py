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


@pytest.fixture(scope="session")
def caseload(tmp_path_factory):
    """A vault of 10,000 submissions in four languages (caseload.py), made once
    per test session; tests that use it only read it, or add to it."""
    from caseload import generate

    return generate(tmp_path_factory.mktemp("caseload"), 10_000)
