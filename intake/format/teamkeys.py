"""Team key pairs: public halves for the server, passphrase-sealed private halves
for the air-gapped workstation."""

from __future__ import annotations

import base64
import json
import os
from dataclasses import dataclass
from pathlib import Path

from nacl import pwhash, secret
from nacl.exceptions import CryptoError
from nacl.public import PrivateKey, PublicKey

from intake.format.envelope import Recipient, fingerprint

PUBLIC_FORMAT = "intake-public-key"
PRIVATE_FORMAT = "intake-private-key"


@dataclass(frozen=True)
class KdfCost:
    opslimit: int
    memlimit: int


# Argon2id "moderate": about a second and 256 MiB on a laptop, once per session.
# `intake keygen` uses it; whoever makes a key file says which cost it takes.
MODERATE = KdfCost(pwhash.argon2id.OPSLIMIT_MODERATE, pwhash.argon2id.MEMLIMIT_MODERATE)


class KeyFileError(Exception):
    """A key file is missing, malformed, or its passphrase is wrong."""


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text: str) -> bytes:
    return base64.b64decode(text, validate=True)


def format_fingerprint(public_key: PublicKey) -> str:
    h = fingerprint(public_key).hex()
    return ":".join(h[i:i + 4] for i in range(0, len(h), 4))


def _derive(passphrase: bytes, salt: bytes, cost: KdfCost) -> bytes:
    return pwhash.argon2id.kdf(secret.SecretBox.KEY_SIZE, passphrase, salt,
                               opslimit=cost.opslimit, memlimit=cost.memlimit)


def public_key_document(name: str, public_key: PublicKey) -> str:
    return json.dumps({"format": PUBLIC_FORMAT, "version": 1, "name": name,
                       "public_key": b64(bytes(public_key)),
                       "fingerprint": format_fingerprint(public_key)}, indent=2) + "\n"


def private_key_document(name: str, key: PrivateKey, passphrase: bytes, cost: KdfCost) -> str:
    salt = os.urandom(pwhash.argon2id.SALTBYTES)
    sealed = secret.SecretBox(_derive(passphrase, salt, cost)).encrypt(bytes(key))
    return json.dumps({
        "format": PRIVATE_FORMAT, "version": 1, "name": name,
        "public_key": b64(bytes(key.public_key)),
        "kdf": {"algorithm": "argon2id13", "opslimit": cost.opslimit,
                "memlimit": cost.memlimit, "salt": b64(salt)},
        "sealed_private_key": b64(bytes(sealed)),
    }, indent=2) + "\n"


def generate(name: str, out_dir: Path, passphrase: bytes,
             cost: KdfCost) -> tuple[Path, Path]:
    """Writes NAME.pub and NAME.key; refuses to overwrite either."""
    if not name or any(c in name for c in "/\\\0") or name.startswith("."):
        raise KeyFileError("a key name must be a plain word, without slashes")
    if len(passphrase) < 12:
        raise KeyFileError("the passphrase must have at least 12 characters")
    out_dir.mkdir(parents=True, exist_ok=True)
    pub_path, key_path = out_dir / f"{name}.pub", out_dir / f"{name}.key"
    for path in (pub_path, key_path):
        if path.exists():
            raise KeyFileError(f"{path} exists already; not overwriting a key")
    key = PrivateKey.generate()
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(private_key_document(name, key, passphrase, cost))
    pub_path.write_text(public_key_document(name, key.public_key))
    return pub_path, key_path


def _load_json(path: Path) -> dict:
    try:
        doc = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"{path.name}: cannot be read ({exc})") from exc
    except ValueError as exc:
        raise KeyFileError(f"{path.name}: not an Intake key file") from exc
    if not isinstance(doc, dict):
        raise KeyFileError(f"{path.name}: not an Intake key file")
    return doc


def load_public_key(path: Path) -> Recipient:
    doc = _load_json(path)
    if doc.get("format") != PUBLIC_FORMAT:
        raise KeyFileError(f"{path.name}: not an Intake public key")
    try:
        raw = unb64(doc["public_key"])
    except (KeyError, TypeError, ValueError) as exc:
        raise KeyFileError(f"{path.name}: the public key is malformed") from exc
    if len(raw) != 32:
        raise KeyFileError(f"{path.name}: the public key is malformed")
    return Recipient(PublicKey(raw))


def load_private_key(path: Path, passphrase: bytes) -> PrivateKey:
    doc = _load_json(path)
    if doc.get("format") != PRIVATE_FORMAT:
        raise KeyFileError(f"{path.name}: not an Intake private key")
    try:
        kdf = doc["kdf"]
        cost = KdfCost(int(kdf["opslimit"]), int(kdf["memlimit"]))
        salt, sealed = unb64(kdf["salt"]), unb64(doc["sealed_private_key"])
        public = unb64(doc["public_key"])
    except (KeyError, TypeError, ValueError) as exc:
        raise KeyFileError(f"{path.name}: the private key file is malformed") from exc
    try:
        raw = secret.SecretBox(_derive(passphrase, salt, cost)).decrypt(sealed)
    except CryptoError as exc:
        raise KeyFileError(f"{path.name}: wrong passphrase") from exc
    key = PrivateKey(raw)
    if bytes(key.public_key) != public:
        raise KeyFileError(f"{path.name}: the private key does not match its public key")
    return key


def looks_private(path: Path) -> bool:
    """True for anything in a keys folder that could be a private key."""
    if path.suffix == ".key":
        return True
    try:
        return PRIVATE_FORMAT in path.read_text(errors="replace")[:4096]
    except OSError:
        return False


def load_key_folder(folder: Path) -> list[Recipient]:
    """The public keys the server seals to. Refuses a folder it cannot trust."""
    if folder.exists() and not folder.is_dir():
        raise KeyFileError(f"the keys folder {folder} is a file, not a folder")
    if not folder.is_dir():
        raise KeyFileError(f"the keys folder {folder} does not exist")
    try:
        entries = sorted(p for p in folder.iterdir() if p.is_file())
    except OSError as exc:
        raise KeyFileError(f"the keys folder {folder} cannot be read ({exc})") from exc
    private = [p.name for p in entries if looks_private(p)]
    if private:
        raise KeyFileError(
            f"private key found in the keys folder {folder}: {', '.join(private)}. "
            "Private keys belong on the air-gapped workstation only; remove them "
            "from this server and rotate the key.")
    recipients = [load_public_key(p) for p in entries if p.suffix == ".pub"]
    if not recipients:
        raise KeyFileError(f"no public key (*.pub) in the keys folder {folder}; "
                           "make one with 'intake keygen' on the air-gapped workstation")
    return recipients
