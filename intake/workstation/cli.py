"""The air-gapped workstation's commands: keygen, decrypt, vault ..."""

from __future__ import annotations

import functools
import ipaddress
import sys
from pathlib import Path

import click

from intake.console import fail, read_passphrase, settings
from intake.workstation.vault import Vault, default_vault_dir


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


@click.command()
@click.option("--name", required=True, help="Key name, e.g. the team's name.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="Folder to write NAME.pub and NAME.key into.")
@click.option("--passphrase-file", type=click.Path(path_type=Path),
              help="Read the passphrase from this file instead of a prompt.")
def keygen(name: str, out_dir: Path, passphrase_file: Path | None) -> None:
    """Create a team key pair: NAME.pub for the server, NAME.key for the workstation."""
    from intake.format import teamkeys

    passphrase = read_passphrase(passphrase_file, confirm=True)
    try:
        pub, key = teamkeys.generate(name, out_dir, passphrase, settings().key_kdf)
    except teamkeys.KeyFileError as exc:
        fail(str(exc))
    recipient = teamkeys.load_public_key(pub)
    click.echo(f"public key:  {pub}  (copy it to the server's keys folder)")
    click.echo(f"private key: {key}  (keep it on the air-gapped workstation only)")
    click.echo(f"fingerprint: {teamkeys.format_fingerprint(recipient.public_key)}")


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


@click.command()
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
    from intake.format import teamkeys
    from intake.format.bundle import BundleError
    from intake.workstation.decrypt import decrypt_bundle

    try:
        key = teamkeys.load_private_key(key_path, read_passphrase(passphrase_file))
    except teamkeys.KeyFileError as exc:
        fail(str(exc))
    try:
        report = decrypt_bundle(bundle_path, key, out)
    except BundleError as exc:
        fail(f"{bundle_path.name}: {exc}")
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


def with_vault(command):
    """Adds --vault DIR and passes an open Vault as `vault`."""

    @click.option("--vault", "vault_dir", type=click.Path(path_type=Path, file_okay=False),
                  default=None, help="The vault folder (default: intake-vault in the "
                  "user's data folder, $XDG_DATA_HOME or ~/.local/share).")
    @functools.wraps(command)
    def wrapper(vault_dir: Path | None, **kwargs):
        try:
            vault = Vault(vault_dir or default_vault_dir())
        except OSError as exc:
            fail(f"cannot open the vault: {exc}")
        try:
            return command(vault=vault, **kwargs)
        finally:
            vault.close()

    return wrapper


@click.group()
def vault() -> None:
    """The air-gapped workstation: import bundles, triage, reply, export cases."""


@vault.command("import")
@click.argument("bundle_path", metavar="BUNDLE",
                type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--key", "key_path", required=True,
              type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="The team's private key file (NAME.key).")
@click.option("--passphrase-file", type=click.Path(path_type=Path),
              help="Read the passphrase from this file instead of a prompt.")
@with_vault
def import_(vault: Vault, bundle_path: Path, key_path: Path,
            passphrase_file: Path | None) -> None:
    """Verify a bundle, decrypt it into the vault and index it."""
    from intake.format import teamkeys
    from intake.format.bundle import BundleError
    from intake.workstation.importer import ImportRefused, import_bundle, total_size

    try:
        key = teamkeys.load_private_key(key_path, read_passphrase(passphrase_file))
    except teamkeys.KeyFileError as exc:
        fail(str(exc))
    try:
        total = total_size(bundle_path)
    except BundleError as exc:
        fail(f"{bundle_path.name}: {exc}")
    done = [0]

    def show(_item) -> str:
        return f"{_human(done[0])} of {_human(total)}"

    with click.progressbar(length=max(total, 1), label=f"Importing {bundle_path.name}",
                           item_show_func=show, file=sys.stderr) as bar:
        def progress(n: int) -> None:
            done[0] += n
            bar.update(n)

        try:
            summary = import_bundle(vault, bundle_path, key, key_path.name, progress)
        except (ImportRefused, BundleError) as exc:
            click.echo("", err=True)
            fail(str(exc))
    for name, reason in summary.damaged:
        click.echo(f"DAMAGED  {name}: {reason}")
    click.echo(f"{len(summary.new)} new ({_human(summary.bytes_new)}), "
               f"{len(summary.duplicates)} duplicates (already in the vault), "
               f"{len(summary.damaged)} damaged; vault: {vault.root}")
    if summary.damaged:
        sys.exit(1)


def check_loopback(host: str) -> str:
    """The triage pages show decrypted testimony: never to anything but this machine."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        raise click.BadParameter(f"{host} is not an IP address; use 127.0.0.1") from None
    if not address.is_loopback:
        raise click.BadParameter(
            f"refusing {host}: the triage pages are served on this machine's loopback "
            "address only (127.0.0.1 or ::1)")
    return str(address)


@vault.command()
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Loopback address to listen on (127.0.0.1 or ::1; nothing else).")
@click.option("--port", default=8090, show_default=True, type=int, help="Port to listen on.")
@click.option("--key", "key_path", type=click.Path(path_type=Path, exists=True, dir_okay=False),
              help="The team's private key file (NAME.key), to re-read replies on the "
              "desk; its passphrase is asked on the page each time.")
@click.option("--exports", "exports_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Folder for exports started from the desk (default: VAULT/exports).")
@with_vault
def serve(vault: Vault, host: str, port: int, key_path: Path | None,
          exports_dir: Path | None) -> None:
    """Serve the triage pages on this machine only."""
    try:
        host = check_loopback(host)
    except click.BadParameter as exc:
        fail(exc.message)
    import logging

    from werkzeug.serving import make_server

    from intake.workstation.desk import create_vault_app

    # The request log would print submission ids to the terminal; it says nothing useful.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = create_vault_app(vault.root, key_file=key_path, exports_dir=exports_dir)
    server = make_server(host, port, app, threaded=True)
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"Triage pages on http://{shown}:{server.server_port}/ (vault: {vault.root}); "
               "Ctrl-C stops.")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@vault.command("verify-log")
@with_vault
def verify_log(vault: Vault) -> None:
    """Check the custody log's hash chain; name the first broken entry."""
    from intake.workstation import custody

    verdict = custody.verify(vault.conn)
    if not verdict.ok:
        click.echo(f"BROKEN at entry {verdict.broken_seq}: {verdict.reason} "
                   f"({verdict.entries} entries before it are intact)")
        sys.exit(1)
    click.echo(f"custody log intact: {verdict.entries} entries, last hash {verdict.head}")


def _message(message_file: Path | None) -> str:
    if message_file is not None:
        try:
            return message_file.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"cannot read the message file: {exc}")
    if sys.stdin.isatty():
        click.echo("Type the reply. End it with Ctrl-D on an empty line.", err=True)
    return sys.stdin.read()


@vault.command()
@click.argument("submission_id", metavar="SUBMISSION")
@click.option("--message-file", type=click.Path(path_type=Path, dir_okay=False),
              help="Read the reply from this file (UTF-8) instead of standard input.")
@with_vault
def reply(vault: Vault, submission_id: str, message_file: Path | None) -> None:
    """Write a reply to the witness of SUBMISSION, sealed to their reply key."""
    from intake.workstation.replies import ReplyError, write_reply

    try:
        reply_id = write_reply(vault, submission_id, _message(message_file))
    except ReplyError as exc:
        fail(str(exc))
    click.echo(f"reply {reply_id} sealed and queued; carry it over with export-replies")


@vault.command("export-replies")
@click.option("--out", required=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Reply bundle file to write.")
@click.option("--all", "include_exported", is_flag=True,
              help="Also include replies exported before.")
@with_vault
def export_replies_cmd(vault: Vault, out: Path, include_exported: bool) -> None:
    """Write the queued replies as one bundle for the server."""
    from intake.workstation.replies import ReplyError, export_replies

    if out.exists():
        fail(f"{out} exists already; choose another name")
    try:
        n = export_replies(vault, out, include_exported)
    except (ReplyError, OSError) as exc:
        fail(f"cannot write the reply bundle: {exc}")
    click.echo(f"wrote {n} reply(ies) to {out}")


@vault.command("case-add")
@click.argument("case")
@click.argument("submission_ids", metavar="SUBMISSION...", nargs=-1, required=True)
@with_vault
def case_add(vault: Vault, case: str, submission_ids: tuple[str, ...]) -> None:
    """Add submissions to the named case CASE (created if new)."""
    from intake.workstation import cases

    try:
        cases.add(vault, case, list(submission_ids))
    except (cases.CaseError, ValueError) as exc:
        fail(str(exc))
    click.echo(f"case {case!r}: {len(cases.members(vault.conn, case))} submission(s)")


@vault.command("export-case")
@click.argument("case")
@click.option("--out", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Folder to write the case package into (new or empty).")
@with_vault
def export_case(vault: Vault, case: str, out: Path) -> None:
    """Write the case package for CASE: files, testimonies, SHA256SUMS, custody log."""
    from intake.workstation import cases

    try:
        n = cases.export(vault, case, out)
    except cases.CaseError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot write the case package: {exc}")
    click.echo(f"wrote {n} file(s) to {out}; check with: cd {out} && sha256sum -c SHA256SUMS")


@vault.command()
@click.argument("submission_id", metavar="SUBMISSION")
@click.option("--reason", required=True, help="Why; recorded in the custody log.")
@click.confirmation_option(prompt="Delete this submission's files from the vault?")
@with_vault
def delete(vault: Vault, submission_id: str, reason: str) -> None:
    """Delete a submission from the vault (the custody log keeps the record)."""
    from intake.workstation.deletion import delete_submission
    from intake.workstation.triage import TriageError

    try:
        n = delete_submission(vault, submission_id, reason)
    except TriageError as exc:
        fail(str(exc))
    click.echo(f"deleted submission {submission_id} ({n} item(s))")
