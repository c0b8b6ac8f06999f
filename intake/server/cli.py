"""The server's commands: serve, queue export, staff."""

from __future__ import annotations

import os
from pathlib import Path

import click

from intake.console import fail, read_passphrase
from intake.format.teamkeys import KeyFileError
from intake.server.config import ConfigError, load_config


def _config(**overrides):
    try:
        return load_config(**overrides)
    except ConfigError as exc:
        fail(str(exc))


def _prepared(config):
    from intake.server.service import prepare

    os.umask(0o077)  # the database and secrets the server creates are its own alone
    try:
        return prepare(config)
    except KeyFileError as exc:
        fail(f"refusing to start: {exc}")
    except OSError as exc:
        fail(f"refusing to start: {exc}")


def check_from_environment() -> None:
    """What _prepared_apart runs in its child."""
    _prepared(_config()).close()


def _prepared_apart() -> None:
    """Checks keys and folders and migrates the database in a child process
    (the same settings, from the same environment): what that loads (Alembic,
    a few MB) stays out of the server process, whose memory every worker it
    forks starts with."""
    import subprocess
    import sys

    code = subprocess.call([sys.executable, "-c", "from intake.server.cli import "
                            "check_from_environment as c; c()"])
    if code != 0:
        raise SystemExit(code)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.option("--workers", default=2, show_default=True, type=int,
              help="Worker processes (each runs 16 threads).")
def serve(host: str, port: int, workers: int) -> None:
    """Run the witness service under gunicorn."""
    config = _config()
    _prepared_apart()  # refuse early, before gunicorn forks
    from intake.server.gunicorn import GunicornServer
    from intake.server.witness import create_app

    click.echo(f"Intake is listening on http://{host}:{port}/ "
               f"(data: {config.data_dir}, keys: {config.keys_dir})")
    GunicornServer(lambda: create_app(config), f"{host}:{port}", workers=workers).run()


@click.group()
def queue() -> None:
    """The server's queue of waiting envelopes."""


@queue.command("export")
@click.option("--out", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Bundle file to write.")
@click.option("--all", "include_exported", is_flag=True,
              help="Also include envelopes exported before.")
def queue_export(out: Path, include_exported: bool) -> None:
    """Write the waiting envelopes as one bundle file with a manifest."""
    from intake.server.queue import export

    intake = _prepared(_config())
    if out.exists():
        fail(f"{out} exists already; choose another name")
    try:
        n = export(intake, out, include_exported)
    except OSError as exc:
        fail(f"cannot write the bundle: {exc}")
    click.echo(f"wrote {n} envelope(s) to {out}")


@click.group()
def staff() -> None:
    """Staff accounts and the staff app (server side)."""


@staff.command("add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="May read the staff audit log.")
@click.option("--password-file", type=click.Path(path_type=Path),
              help="Read the password from this file instead of a prompt.")
def staff_add(name: str, admin: bool, password_file: Path | None) -> None:
    """Create a staff account: a password (Argon2id) and a TOTP secret."""
    from intake.server.staff.accounts import AccountError, add, suggest_password

    config = _config()
    intake = _prepared(config)
    if password_file is not None:
        password = read_passphrase(password_file).decode()
    else:
        suggestion = suggest_password()
        click.echo(f"Suggested password (seven random words): {suggestion}")
        password = click.prompt("Password (Enter to take the suggestion)", default=suggestion,
                                hide_input=True, show_default=False)
    try:
        account = add(intake.db, name, password, config.kdf_opslimit, config.kdf_memlimit,
                      admin=admin)
    except AccountError as exc:
        fail(str(exc))
    click.echo(f"staff account {name} created{' (admin)' if admin else ''}")
    click.echo(f"TOTP secret: {account.totp_secret}")
    click.echo(f"Authenticator URI: {account.provisioning_uri()}")
    click.echo("Enter the secret in the staff member's authenticator app now; "
               "it is not shown again.")


@staff.command("remove")
@click.argument("name")
def staff_remove(name: str) -> None:
    """Delete a staff account (its audit entries stay)."""
    from intake.server.staff.accounts import AccountError, remove

    intake = _prepared(_config())
    try:
        remove(intake.db, name)
    except AccountError as exc:
        fail(str(exc))
    finally:
        intake.close()
    click.echo(f"staff account {name} removed")


@staff.command("unlock")
@click.argument("name")
def staff_unlock(name: str) -> None:
    """Unlock a staff account locked after wrong codes."""
    from intake.server.staff.accounts import AccountError, unlock

    intake = _prepared(_config())
    try:
        was_locked = unlock(intake.db, name)
    except AccountError as exc:
        fail(str(exc))
    finally:
        intake.close()
    click.echo(f"staff account {name} " + ("unlocked" if was_locked else "was not locked"))


@staff.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=None, type=int,
              help="Port to listen on (default: the staff_port setting, 8081).")
def staff_serve(host: str, port: int | None) -> None:
    """Run the staff app under gunicorn (behind its own onion service)."""
    config = _config()
    _prepared_apart()
    from intake.server.gunicorn import GunicornServer
    from intake.server.staff import create_staff_app

    port = port or config.staff_port
    click.echo(f"Intake staff app is listening on http://{host}:{port}/")
    GunicornServer(lambda: create_staff_app(config), f"{host}:{port}", workers=1).run()
