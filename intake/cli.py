"""The `intake` command: a thin layer over explicit objects."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from intake import __version__
from intake.config import ConfigError, load_config
from intake.teamkeys import KeyFileError


def _fail(message: str) -> None:
    click.echo(f"intake: {message}", err=True)
    sys.exit(2)


def _passphrase(passphrase_file: Path | None, confirm: bool) -> bytes:
    if passphrase_file is not None:
        try:
            text = passphrase_file.read_text()
        except OSError as exc:
            _fail(f"cannot read the passphrase file: {exc}")
        return text.rstrip("\r\n").encode()
    return click.prompt("Passphrase", hide_input=True,
                        confirmation_prompt=confirm).encode()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="intake")
def main() -> None:
    """Intake: secure testimony intake, encrypted on arrival, read offline.

    Server side: serve, queue export. Air-gapped side: keygen, decrypt.
    Settings come from INTAKE_* variables or the file named by INTAKE_CONFIG
    (see docs/configuration.md).
    """


def _config(**overrides):
    try:
        return load_config(**overrides)
    except ConfigError as exc:
        _fail(str(exc))


def _prepared(config):
    from intake.web.app import prepare

    os.umask(0o077)  # the database and secrets the server creates are its own alone
    try:
        return prepare(config)
    except KeyFileError as exc:
        _fail(f"refusing to start: {exc}")
    except OSError as exc:
        _fail(f"refusing to start: {exc}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=int, help="Port to listen on.")
@click.option("--workers", default=2, show_default=True, type=int,
              help="Worker processes (each runs 16 threads).")
def serve(host: str, port: int, workers: int) -> None:
    """Run the witness service under gunicorn."""
    config = _config()
    intake = _prepared(config)  # refuse early, before gunicorn forks
    intake.db.dispose()
    from intake.server import GunicornServer
    from intake.web import create_app

    click.echo(f"Intake is listening on http://{host}:{port}/ "
               f"(data: {config.data_dir}, keys: {config.keys_dir})")
    GunicornServer(lambda: create_app(config), f"{host}:{port}", workers=workers).run()


@main.command()
@click.option("--name", required=True, help="Key name, e.g. the team's name.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Folder to write NAME.pub and NAME.key into.")
@click.option("--passphrase-file", type=click.Path(path_type=Path),
              help="Read the passphrase from this file instead of a prompt.")
def keygen(name: str, out_dir: Path, passphrase_file: Path | None) -> None:
    """Create a team key pair: NAME.pub for the server, NAME.key for the workstation."""
    from intake import teamkeys

    passphrase = _passphrase(passphrase_file, confirm=True)
    try:
        pub, key = teamkeys.generate(name, out_dir, passphrase)
    except KeyFileError as exc:
        _fail(str(exc))
    recipient = teamkeys.load_public_key(pub)
    click.echo(f"public key:  {pub}  (copy it to the server's keys folder)")
    click.echo(f"private key: {key}  (keep it on the air-gapped workstation only)")
    click.echo(f"fingerprint: {teamkeys.format_fingerprint(recipient.public_key)}")


@main.group()
def queue() -> None:
    """The server's queue of waiting envelopes."""


@queue.command("export")
@click.option("--out", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Bundle file to write.")
@click.option("--all", "include_exported", is_flag=True,
              help="Also include envelopes exported before.")
def queue_export(out: Path, include_exported: bool) -> None:
    """Write the waiting envelopes as one bundle file with a manifest."""
    from intake.queue import export

    intake = _prepared(_config())
    if out.exists():
        _fail(f"{out} exists already; choose another name")
    try:
        n = export(intake, out, include_exported)
    except OSError as exc:
        _fail(f"cannot write the bundle: {exc}")
    click.echo(f"wrote {n} envelope(s) to {out}")


@main.group()
def staff() -> None:
    """Staff accounts and the staff app (server side)."""


@staff.command("add")
@click.argument("name")
@click.option("--admin", is_flag=True, help="May read the staff audit log.")
@click.option("--password-file", type=click.Path(path_type=Path),
              help="Read the password from this file instead of a prompt.")
def staff_add(name: str, admin: bool, password_file: Path | None) -> None:
    """Create a staff account: a password (Argon2id) and a TOTP secret."""
    from intake.staff.accounts import AccountError, add, suggest_password

    config = _config()
    intake = _prepared(config)
    if password_file is not None:
        password = _passphrase(password_file, confirm=False).decode()
    else:
        suggestion = suggest_password()
        click.echo(f"Suggested password (seven random words): {suggestion}")
        password = click.prompt("Password (Enter to take the suggestion)", default=suggestion,
                                hide_input=True, show_default=False)
    try:
        account = add(intake.db, name, password, config.kdf_opslimit, config.kdf_memlimit,
                      admin=admin)
    except AccountError as exc:
        _fail(str(exc))
    click.echo(f"staff account {name} created{' (admin)' if admin else ''}")
    click.echo(f"TOTP secret: {account.totp_secret}")
    click.echo(f"Authenticator URI: {account.provisioning_uri()}")
    click.echo("Enter the secret in the staff member's authenticator app now; "
               "it is not shown again.")


@staff.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=None, type=int,
              help="Port to listen on (default: the staff_port setting, 8081).")
def staff_serve(host: str, port: int | None) -> None:
    """Run the staff app under gunicorn (behind its own onion service)."""
    config = _config()
    _prepared(config).db.dispose()
    from intake.server import GunicornServer
    from intake.staff import create_staff_app

    port = port or config.staff_port
    click.echo(f"Intake staff app is listening on http://{host}:{port}/")
    GunicornServer(lambda: create_staff_app(config), f"{host}:{port}", workers=1).run()


def _file_state(meta: dict) -> str:
    """One line per file: sanitized (what was removed), original kept, or why not."""
    if meta.get("kind") == "original":
        return f"original of {str(meta.get('original_of', '?'))[:8]}, as received"
    if not meta.get("sanitized"):
        return "; ".join(meta.get("flags", [])) or "as received"
    removed = meta.get("removed", [])
    shown = ", ".join(removed[:6]) + (f" and {len(removed) - 6} more" if len(removed) > 6 else "")
    state = f"sanitized, removed: {shown}" if removed else "sanitized, nothing to remove"
    return state + ("; original kept" if meta.get("original_kept") else "")


@main.command()
@click.argument("bundle_path", metavar="BUNDLE", type=click.Path(path_type=Path, exists=True,
                                                                  dir_okay=False))
@click.option("--key", "key_path", required=True,
              type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="The team's private key file (NAME.key).")
@click.option("--out", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Folder to decrypt into, one sub-folder per submission.")
@click.option("--passphrase-file", type=click.Path(path_type=Path),
              help="Read the passphrase from this file instead of a prompt.")
def decrypt(bundle_path: Path, key_path: Path, out: Path, passphrase_file: Path | None) -> None:
    """Verify a bundle and decrypt it (air-gapped workstation)."""
    from intake import teamkeys
    from intake.bundle import BundleError
    from intake.decrypt import decrypt_bundle

    try:
        key = teamkeys.load_private_key(key_path, _passphrase(passphrase_file, confirm=False))
    except KeyFileError as exc:
        _fail(str(exc))
    try:
        report = decrypt_bundle(bundle_path, key, out)
    except BundleError as exc:
        _fail(f"{bundle_path.name}: {exc}")
    for r in report.results:
        if r.ok:
            meta = r.metadata or {}
            state = _file_state(meta)
            click.echo(f"ok       {r.name} -> {r.path}  [{meta.get('detected_type')}; {state}]")
        else:
            click.echo(f"DAMAGED  {r.name}: {r.message}")
    click.echo(f"{len(report.decrypted)} decrypted, {len(report.damaged)} damaged, into {out}")
    if report.damaged:
        sys.exit(1)


# Commands that live beside their subject.
from intake.doctor import doctor  # noqa: E402
from intake.retention import retention  # noqa: E402
from intake.vault.cli import vault  # noqa: E402

main.add_command(vault)
main.add_command(doctor)
main.add_command(retention)
