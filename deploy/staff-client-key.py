#!/usr/bin/env python3
"""Makes a client-authorization key pair for one staff member's Tor Browser.

    staff-client-key.py NAME --onion ADDRESS.onion --out FOLDER

Writes two files into FOLDER:
  NAME.auth          public half, for the server: copy it into
                     /var/lib/tor/intake-staff/authorized_clients/ and reload tor;
  NAME.auth_private  private half, for the staff member only: Tor Browser asks
                     for its key when the staff address is opened (or put the
                     file in a tor client's ClientOnionAuthDir).
Run it on a trusted machine, ideally the staff member's own; the server needs
only the public half. Needs PyNaCl (installed with Intake).
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import sys
from pathlib import Path

from nacl.public import PrivateKey

ONION = re.compile(r"^([a-z2-7]{56})(\.onion)?$")
NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=")


def write_new(path: Path, text: str, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("name", help="the staff member's key name (letters, digits, - and _)")
    parser.add_argument("--onion", required=True, help="the staff onion address")
    parser.add_argument("--out", required=True, type=Path, help="folder to write the files into")
    args = parser.parse_args(argv)
    onion = ONION.match(args.onion.strip().lower())
    if not onion:
        parser.error("--onion must be a v3 onion address (56 characters, then .onion)")
    if not NAME.match(args.name):
        parser.error("the name may hold only letters, digits, - and _")
    args.out.mkdir(parents=True, exist_ok=True, mode=0o700)
    public_path = args.out / f"{args.name}.auth"
    private_path = args.out / f"{args.name}.auth_private"
    for path in (public_path, private_path):
        if path.exists():
            parser.error(f"{path} exists already; not overwriting a key")
    key = PrivateKey.generate()
    write_new(private_path,
              f"{onion.group(1)}:descriptor:x25519:{b32(bytes(key))}\n", 0o600)
    write_new(public_path, f"descriptor:x25519:{b32(bytes(key.public_key))}\n", 0o644)
    print(f"server (public):        {public_path}")
    print(f"staff member (private): {private_path}")
    print(f"Tor Browser key:        {b32(bytes(key))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
