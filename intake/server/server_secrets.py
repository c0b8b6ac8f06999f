"""Server-side secrets made on first start: the key that signs forms and the
two secret salts from which codenames are stretched. Kept in the data folder
(mode 0600) so every worker and every restart agrees on them."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from nacl import pwhash

from intake.format.teamkeys import b64, unb64
from intake.server.store import coarsen_mtime


@dataclass(frozen=True)
class ServerSecrets:
    form_key: bytes
    lookup_salt: bytes
    reply_salt: bytes


def _fresh() -> dict[str, str]:
    return {"form_key": b64(os.urandom(32)),
            "lookup_salt": b64(os.urandom(pwhash.argon2id.SALTBYTES)),
            "reply_salt": b64(os.urandom(pwhash.argon2id.SALTBYTES))}


def _write(path: Path, text: str, take: Callable[[Path], bool] | None = None) -> None:
    """Writes under a temporary name (a pool file when `take` gives one, so its
    birth time is a pass's), sets its times to the day, then renames it into
    place, if nothing is there yet (create) or over the old one (rewrite)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.new")
    if not (take and take(tmp)):
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600))
    try:
        with open(tmp, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        coarsen_mtime(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def rewrite(path: Path, take: Callable[[Path], bool]) -> None:
    """The same secrets in a file born now (from the pool): see intake.server.tidy."""
    _write(path, path.read_text(), take)


def load_or_create(path: Path) -> ServerSecrets:
    if not path.exists():
        fresh = path.with_name(f".{path.name}.{os.getpid()}.first")
        with open(os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
            json.dump(_fresh(), f)
            f.flush()
            os.fsync(f.fileno())
        coarsen_mtime(fresh)
        try:
            os.link(fresh, path)  # the first server to start wins; the others read its
        except FileExistsError:
            pass
        finally:
            fresh.unlink()
    doc = json.loads(path.read_text())
    return ServerSecrets(unb64(doc["form_key"]), unb64(doc["lookup_salt"]),
                         unb64(doc["reply_salt"]))
