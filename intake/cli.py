"""The `intake` command: the server's commands and the workstation's, each
loaded only when used, so that each place's install runs its own commands
without the other's libraries."""

from __future__ import annotations

import importlib
import importlib.util

import click

from intake import __version__

# name -> (where it lives, which place it belongs to)
COMMANDS: dict[str, tuple[str, str]] = {
    "serve": ("intake.server.cli:serve", "server"),
    "queue": ("intake.server.cli:queue", "server"),
    "staff": ("intake.server.cli:staff", "server"),
    "doctor": ("intake.server.doctor:doctor", "server"),
    "retention": ("intake.server.retention:retention", "server"),
    "keygen": ("intake.workstation.cli:keygen", "workstation"),
    "decrypt": ("intake.workstation.cli:decrypt", "workstation"),
    "vault": ("intake.workstation.cli:vault", "workstation"),
}

# What each place's extra installs (pyproject.toml): its commands need them.
NEEDS: dict[str, tuple[str, ...]] = {
    "server": ("gunicorn", "sqlalchemy", "psycopg", "magic", "pikepdf", "lxml", "mutagen"),
    "workstation": ("snowballstemmer", "PIL", "pymorphy3", "lingua", "hunspell"),
}


class NotInstalled(click.Command):
    """A command of the other place, whose libraries this install lacks."""

    def __init__(self, name: str, place: str, missing: str):
        self.place, self.missing = place, missing
        super().__init__(name, help=f"(needs intake[{place}]: {missing} is not installed)",
                         context_settings={"ignore_unknown_options": True,
                                           "allow_extra_args": True})

    def invoke(self, ctx: click.Context) -> None:
        raise click.UsageError(
            f"'{self.name}' is a {self.place} command and this install lacks "
            f"{self.missing}; install intake[{self.place}] from its lock "
            "(see README.md)", ctx)


class Commands(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        where, place = COMMANDS[cmd_name]
        missing = [m for m in NEEDS[place] if importlib.util.find_spec(m) is None]
        if missing:
            return NotInstalled(cmd_name, place, missing[0])
        module, _, attr = where.partition(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="intake")
def main() -> None:
    """Intake: secure testimony intake, encrypted on arrival, read offline.

    Server: serve, queue export, staff, doctor, retention. Air-gapped
    workstation: keygen, decrypt, vault. Server settings come from INTAKE_*
    variables or the file named by INTAKE_CONFIG (see docs/configuration.md).
    """
