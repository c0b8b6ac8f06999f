"""`python -m intake.server.sanitize.probe PATH...`: enters the sandbox
exactly as a cleaner child does (intake.server.sanitize.child.enter_sandbox),
then tries what a cleaner taken over by a hostile file would: open network
sockets, read each PATH (the keys folder, the database), write a file. It
prints what it was given and what it could do, as JSON. `intake doctor` and
the tests run it; it reads no upload.
"""

from __future__ import annotations

import json
import os
import socket
import sys

from intake.server.sanitize import child
from intake.server.sanitize.limits import Limits


def _try(action) -> bool:
    try:
        action()
    except OSError:
        return False
    return True


def _read(path: str) -> None:
    if os.path.isdir(path):
        os.listdir(path)
    else:
        with open(path, "rb") as f:
            f.read(1)


def _write() -> None:
    path = f"/tmp/.intake-probe-{os.getpid()}"  # noqa: S108 - must fail: nothing is writable
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    os.unlink(path)


def _socket(family: int) -> None:
    socket.socket(family, socket.SOCK_STREAM).close()


def _connect() -> None:
    with socket.create_connection(("127.0.0.1", 9), timeout=2):
        pass


def main(paths: list[str]) -> int:
    niceness = os.getpriority(os.PRIO_PROCESS, 0)  # as the runner's prefix left it
    confinement = child.enter_sandbox(Limits(), 0)
    report = {
        "niceness": niceness,
        "seccomp": confinement.seccomp,
        "landlock": confinement.landlock,
        "inet_socket": _try(lambda: _socket(socket.AF_INET)),
        "inet6_socket": _try(lambda: _socket(socket.AF_INET6)),
        "connect": _try(_connect),
        "read": {path: _try(lambda p=path: _read(p)) for path in paths},
        "write": _try(_write),
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
