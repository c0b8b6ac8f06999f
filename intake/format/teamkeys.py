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

from intake.format import untrusted_json
from intake.format.envelope import Recipient, fingerprint
from intake.private_folders import open_folder

PUBLIC_FORMAT = "intake-public-key"
PRIVATE_FORMAT = "intake-private-key"
KDF_ALGORITHM = "argon2id13"  # libsodium's crypto_pwhash_ALG_ARGON2ID13


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
        "kdf": {"algorithm": KDF_ALGORITHM, "opslimit": cost.opslimit,
                "memlimit": cost.memlimit, "salt": b64(salt)},
        "sealed_private_key": b64(bytes(sealed)),
    }, indent=2) + "\n"


# NAME.key holds the sealed private key: owner only. NAME.pub is public by design
# and is carried to the server, where the service user (not the one who made it)
# must read it: 0644, readable by anyone, writable by its owner alone. Both
# modes are set through the open file, whatever the umask.
KEY_FILE_MODE = 0o600
PUB_FILE_MODE = 0o644
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def _taken(folder_fd: int, name: str) -> bool:
    try:
        os.stat(name, dir_fd=folder_fd, follow_symlinks=False)  # a link, even broken
    except FileNotFoundError:
        return False
    return True


def _write_new(folder_fd: int, name: str, text: str, mode: int) -> os.stat_result:
    """Makes `name` in the open folder: never over anything, never through a
    link (O_EXCL | O_NOFOLLOW), `mode` whatever the umask. A file this call
    made but could not write whole is removed again. Returns what it made."""
    fd = os.open(name, _NEW_FILE, mode, dir_fd=folder_fd)
    made = os.fstat(fd)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            os.fchmod(f.fileno(), mode)
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        _remove_made(folder_fd, name, made)
        raise
    return made


def _remove_made(folder_fd: int, name: str, made: os.stat_result) -> bool:
    """Removes `name` if it is still the file this run made; True if it did."""
    try:
        st = os.stat(name, dir_fd=folder_fd, follow_symlinks=False)
        if (st.st_dev, st.st_ino) != (made.st_dev, made.st_ino):
            return False
        os.unlink(name, dir_fd=folder_fd)
    except OSError:
        return False
    return True


def generate(name: str, out_dir: Path, passphrase: bytes,
             cost: KdfCost) -> tuple[Path, Path]:
    """Writes NAME.key (0600) and NAME.pub (0644) into `out_dir`, made 0700 with
    any missing parent if missing (an existing one is left as it is). Refuses
    a name already taken in it, a link included, and never writes through a
    link: nothing is written outside `out_dir`. Both files or neither."""
    if not name or any(c in name for c in "/\\\0") or name.startswith("."):
        raise KeyFileError("a key name must be a plain word, without slashes")
    if len(passphrase) < 12:
        raise KeyFileError("the passphrase must have at least 12 characters")
    pub_name, key_name = f"{name}.pub", f"{name}.key"
    pub_path, key_path = out_dir / pub_name, out_dir / key_name
    try:
        folder, _ = open_folder(out_dir)
    except OSError as exc:
        raise KeyFileError(f"cannot use the folder {out_dir} ({exc.strerror or exc})") from exc
    try:
        for path in (pub_path, key_path):
            if _taken(folder, path.name):
                raise KeyFileError(f"{path} exists already; not overwriting a key")
        key = PrivateKey.generate()
        try:
            key_made = _write_new(folder, key_name,
                                  private_key_document(name, key, passphrase, cost),
                                  KEY_FILE_MODE)
        except FileExistsError as exc:
            raise KeyFileError(f"{key_path} exists already; not overwriting a key") from exc
        except OSError as exc:
            raise KeyFileError(f"cannot write {key_path} ({exc.strerror or exc})") from exc
        try:
            _write_new(folder, pub_name, public_key_document(name, key.public_key),
                       PUB_FILE_MODE)
        except OSError as exc:
            why = "exists already" if isinstance(exc, FileExistsError) else \
                f"cannot be written ({exc.strerror or exc})"
            if _remove_made(folder, key_name, key_made):
                raise KeyFileError(f"{pub_path} {why}; {key_path} removed again, "
                                   "no key pair made") from exc
            raise KeyFileError(f"{pub_path} {why}; {key_path} was written but could not "
                               "be removed: delete it, it has no public half") from exc
        except BaseException:
            _remove_made(folder, key_name, key_made)
            raise
    finally:
        os.close(folder)
    return pub_path, key_path


def _load_json(path: Path) -> dict:
    try:
        doc = untrusted_json.loads(path.read_text())
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


# What a key file's fields may hold (intake keygen writes nothing else):
# libsodium's own bounds for the cost, exact sizes for the binary values.
_OPSLIMIT = (pwhash.argon2id.OPSLIMIT_MIN, pwhash.argon2id.OPSLIMIT_MAX)
_MEMLIMIT = (pwhash.argon2id.MEMLIMIT_MIN, pwhash.argon2id.MEMLIMIT_MAX)
_SEALED_BYTES = secret.SecretBox.NONCE_SIZE + secret.SecretBox.MACBYTES + 32  # 72


class _Damaged(Exception):
    def __init__(self, field: str, why: str):
        super().__init__(f"{field} ({why})")


def _integer(value: object, field: str, bounds: tuple[int, int]) -> int:
    low, high = bounds
    if type(value) is not int or not low <= value <= high:  # neither a bool nor a float
        raise _Damaged(field, f"not an integer from {low} to {high}")
    return value


def _binary(value: object, field: str, size: int) -> bytes:
    """Standard base64 with padding, exactly as b64() writes it, of `size` bytes."""
    try:
        raw = unb64(value) if isinstance(value, str) else None
    except ValueError:
        raw = None
    if raw is None or b64(raw) != value or len(raw) != size:
        raise _Damaged(field, f"not the base64 of {size} bytes")
    return raw


def _private_fields(doc: dict) -> tuple[KdfCost, bytes, bytes, bytes]:
    """The cost, salt, sealed key and public key of a private key document,
    each checked against what keygen writes; _Damaged names the first that is not."""
    if doc.get("version") != 1 or type(doc.get("version")) is not int:
        raise _Damaged("version", "not 1")
    kdf = doc.get("kdf")
    if not isinstance(kdf, dict):
        raise _Damaged("kdf", "missing or not an object")
    if kdf.get("algorithm") != KDF_ALGORITHM:
        raise _Damaged("kdf.algorithm", f"not {KDF_ALGORITHM}")
    cost = KdfCost(_integer(kdf.get("opslimit"), "kdf.opslimit", _OPSLIMIT),
                   _integer(kdf.get("memlimit"), "kdf.memlimit", _MEMLIMIT))
    salt = _binary(kdf.get("salt"), "kdf.salt", pwhash.argon2id.SALTBYTES)
    sealed = _binary(doc.get("sealed_private_key"), "sealed_private_key", _SEALED_BYTES)
    public = _binary(doc.get("public_key"), "public_key", 32)
    return cost, salt, sealed, public


def load_private_key(path: Path, passphrase: bytes) -> PrivateKey:
    """The private key in `path`. KeyFileError, one line: not a private key
    file; "the key file is damaged: FIELD (...)" when a field is not what
    keygen writes; "wrong passphrase" only when a well-formed file does not
    open; or the key derivation failing at the file's cost."""
    doc = _load_json(path)
    if doc.get("format") != PRIVATE_FORMAT:
        raise KeyFileError(f"{path.name}: not an Intake private key")
    try:
        cost, salt, sealed, public = _private_fields(doc)
    except _Damaged as exc:
        raise KeyFileError(f"{path.name}: the key file is damaged: {exc}") from exc
    try:
        wrapping = _derive(passphrase, salt, cost)
    except (CryptoError, MemoryError) as exc:  # in bounds, but more than this machine gives
        raise KeyFileError(f"{path.name}: the key could not be opened: Argon2id failed at "
                           f"the key file's cost (memlimit {cost.memlimit} bytes, opslimit "
                           f"{cost.opslimit})") from exc
    try:
        raw = secret.SecretBox(wrapping).decrypt(sealed)
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
