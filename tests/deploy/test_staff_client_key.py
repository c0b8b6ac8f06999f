"""deploy/staff-client-key.py writes the two files Tor's client authorization reads."""

from __future__ import annotations

import base64
import stat
import subprocess
import sys

from deploy_support import DEPLOY
from nacl.public import PrivateKey

ONION = "4wiqtxwtgwrgumfgjl2bqfcwhylj7lxflomromd5xgmuiwyp2s4ypkid"


def make(out, *extra):
    return subprocess.run([sys.executable, str(DEPLOY / "staff-client-key.py"), "alice",
                           "--onion", f"{ONION}.onion", "--out", str(out), *extra],
                          capture_output=True, text=True, timeout=60)


def b32decode(text: str) -> bytes:
    return base64.b32decode(text + "=" * (-len(text) % 8))


def test_the_pair_matches_and_is_in_tors_format(tmp_path):
    assert make(tmp_path).returncode == 0
    public = (tmp_path / "alice.auth").read_text().strip().split(":")
    private = (tmp_path / "alice.auth_private").read_text().strip().split(":")
    assert public[:2] == ["descriptor", "x25519"] and len(public[2]) == 52
    assert private[:3] == [ONION, "descriptor", "x25519"] and len(private[3]) == 52
    key = PrivateKey(b32decode(private[3]))
    assert bytes(key.public_key) == b32decode(public[2])
    assert stat.S_IMODE((tmp_path / "alice.auth_private").stat().st_mode) == 0o600


def test_refuses_to_overwrite_and_bad_input(tmp_path):
    assert make(tmp_path).returncode == 0
    again = make(tmp_path)
    assert again.returncode != 0 and "not overwriting" in again.stderr
    bad = subprocess.run([sys.executable, str(DEPLOY / "staff-client-key.py"), "bob",
                          "--onion", "example.onion", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "v3 onion address" in bad.stderr
