"""Server-side secrets made on first start: the key that signs forms and the
two secret salts from which codenames are stretched. Kept in the data folder
(mode 0600) so every worker and every restart agrees on them."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from nacl import pwhash

from intake.format.teamkeys import b64, unb64


@dataclass(frozen=True)
class ServerSecrets:
    form_key: bytes
    lookup_salt: bytes
    reply_salt: bytes


def _fresh() -> dict[str, str]:
    return {"form_key": b64(os.urandom(32)),
            "lookup_salt": b64(os.urandom(pwhash.argon2id.SALTBYTES)),
            "reply_salt": b64(os.urandom(pwhash.argon2id.SALTBYTES))}


def load_or_create(path: Path) -> ServerSecrets:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        pass
    else:
        with os.fdopen(fd, "w") as f:
            json.dump(_fresh(), f)
            f.flush()
            os.fsync(f.fileno())
    doc = json.loads(path.read_text())
    return ServerSecrets(unb64(doc["form_key"]), unb64(doc["lookup_salt"]),
                         unb64(doc["reply_salt"]))
