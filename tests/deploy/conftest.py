"""Fixtures for the deployment tests (helpers live in deploy_support.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from deploy_support import DEPLOY


@pytest.fixture
def deploy_dir() -> Path:
    return DEPLOY
