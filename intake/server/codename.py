"""Codenames: the witness's only credential, never stored.

From a codename the server stretches (Argon2id, two separate secret salts) a
lookup id, of which only a hash is kept, and the seed of an X25519 key pair to
which staff seal replies; only its public half is kept.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from functools import cache
from importlib import resources

from nacl import pwhash
from nacl.public import PrivateKey, PublicKey

from intake.server.server_secrets import ServerSecrets


@cache
def wordlist() -> tuple[str, ...]:
    text = resources.files("intake.server.wordlists").joinpath("eff_large.txt").read_text()
    words = tuple(w.strip() for w in text.split() if w.strip())
    assert len(set(words)) == 7776
    return words


def generate(words: int) -> str:
    """Seven words of 7,776 give 90.5 bits."""
    return " ".join(secrets.choice(wordlist()) for _ in range(words))


def normalize(codename: str) -> str:
    return " ".join(codename.lower().split())


@dataclass(frozen=True)
class Derived:
    lookup_hash: str
    reply_key: PrivateKey

    @property
    def reply_public_key(self) -> PublicKey:
        return self.reply_key.public_key


def derive(codename: str, server: ServerSecrets, opslimit: int, memlimit: int) -> Derived:
    secret = normalize(codename).encode()
    lookup = pwhash.argon2id.kdf(32, secret, server.lookup_salt,
                                 opslimit=opslimit, memlimit=memlimit)
    seed = pwhash.argon2id.kdf(32, secret, server.reply_salt,
                               opslimit=opslimit, memlimit=memlimit)
    return Derived(hashlib.sha256(lookup).hexdigest(), PrivateKey.from_seed(seed))
