"""What every `intake` command shares, on either machine: how it fails, how it
asks for a passphrase, and the settings a caller may pass in (tests pass a
cheap key-derivation cost here instead of patching a global)."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import click

from intake.format.teamkeys import MODERATE, KdfCost


@dataclass(frozen=True)
class Settings:
    """Given to the command group as its `obj`; `intake` itself uses the defaults."""

    key_kdf: KdfCost = MODERATE  # the Argon2id cost of the key files keygen writes


def settings() -> Settings:
    ctx = click.get_current_context()
    return ctx.find_object(Settings) or Settings()


def fail(message: str) -> NoReturn:
    click.echo(f"intake: {message}", err=True)
    sys.exit(2)


def read_passphrase(passphrase_file: Path | None, *, confirm: bool = False) -> bytes:
    """The whole passphrase file, without its final line break; else a prompt."""
    if passphrase_file is not None:
        try:
            text = passphrase_file.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"cannot read the passphrase file: {exc}")
        return text.rstrip("\r\n").encode()
    return click.prompt("Passphrase", hide_input=True,
                        confirmation_prompt=confirm).encode()
