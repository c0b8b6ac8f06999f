"""Opening the team's private key file, once per run, in a short-lived process.

Argon2id with the key file's cost ("moderate": 256 MiB) is run by a fresh
interpreter that reads the passphrase on a pipe, hands back the 32-byte
private key on a pipe and exits, giving its memory back at once. So the
process that then decrypts a bundle never grows by the key derivation's
memory, and its own peak stays that of streaming (bench/RESULTS-decrypt.md).

    python -m intake.workstation.unlock KEYFILE   < passphrase
    -> b"\\0" + private key, or b"\\1" + the reason (UTF-8)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from nacl.public import PrivateKey

from intake.format.teamkeys import KeyFileError
from intake.format.teamkeys import load_private_key as _load_here
from intake.workstation.children import child_env, protect_process

SECONDS = 600  # a very costly key file on a slow laptop still finishes


def load_private_key(path: Path, passphrase: bytes) -> PrivateKey:
    """The private key in `path`; KeyFileError (one line, safe to show) if the
    file is malformed or the passphrase wrong. This process is made
    non-dumpable first, since it will hold the key."""
    protect_process()
    try:
        done = subprocess.run([sys.executable, "-m", "intake.workstation.unlock",
                               str(Path(path).absolute())], input=passphrase,
                              capture_output=True, env=child_env(), cwd="/",
                              timeout=SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise KeyFileError(f"{Path(path).name}: the key could not be opened ({exc})") from exc
    out = done.stdout
    if done.returncode == 0 and len(out) == 33 and out[0] == 0:
        return PrivateKey(out[1:])
    if out[:1] == b"\1":
        raise KeyFileError(out[1:].decode(errors="replace"))
    raise KeyFileError(f"{Path(path).name}: the key could not be opened "
                       f"(exit status {done.returncode})")


def main(argv: list[str]) -> int:
    passphrase = sys.stdin.buffer.read()
    try:
        key = _load_here(Path(argv[0]), passphrase)
    except KeyFileError as exc:
        sys.stdout.buffer.write(b"\1" + str(exc).encode())
        return 1
    sys.stdout.buffer.write(b"\0" + bytes(key))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
