"""The air-gapped workstation's commands: keygen, decrypt, vault ...

Every name or text that came with a bundle is printed through
safe_text.for_terminal: shown, never obeyed by the terminal.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import sys
from pathlib import Path

import click

from intake.console import fail, read_passphrase, settings
from intake.format import untrusted_json
from intake.workstation.safe_text import for_terminal as shown
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
        return f"untouched original of {str(meta.get('original_of', '?'))[:8]}, as received"
    if not meta.get("sanitized"):
        return "; ".join(meta.get("flags", [])) or "as received"
    removed = meta.get("removed", [])
    shown_removed = ", ".join(removed[:6]) + (f" and {len(removed) - 6} more"
                                              if len(removed) > 6 else "")
    state = f"sanitized, removed: {shown_removed}" if removed else "sanitized, nothing to remove"
    return state + ("; original kept" if meta.get("original_kept") else "")


def unlock_team_key(key_path: Path, passphrase_file: Path | None):
    """The team's private key, opened once for this run (the passphrase asked
    once); a clear one-line refusal otherwise."""
    from intake.format import teamkeys
    from intake.workstation.unlock import load_private_key

    try:
        return load_private_key(key_path, read_passphrase(passphrase_file))
    except teamkeys.KeyFileError as exc:
        fail(shown(exc))


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
    from intake.format.bundle import BundleError
    from intake.workstation.decrypt import decrypt_bundle
    from intake.workstation.folders import FolderError
    from intake.workstation.unseal import WrongKey

    key = unlock_team_key(key_path, passphrase_file)
    try:
        report = decrypt_bundle(bundle_path, key, out, key_path.name)
    except BundleError as exc:
        fail(f"{shown(bundle_path.name)}: {shown(exc)}")
    except WrongKey as exc:
        fail(shown(exc))
    except FolderError as exc:
        fail(shown(exc))
    for r in report.results:
        if r.ok:
            meta = r.metadata or {}
            state = shown(_file_state(meta))
            click.echo(f"ok       {shown(r.name)} -> {shown(r.path)}  "
                       f"[{shown(meta.get('detected_type'))}; {state}]")
        elif r.skipped:
            click.echo(f"SKIPPED  {shown(r.name)}: {shown(r.message)}")
        else:
            click.echo(f"DAMAGED  {shown(r.name)}: {shown(r.message)}")
    skipped = f", {len(report.skipped)} skipped" if report.skipped else ""
    click.echo(f"{len(report.decrypted)} decrypted, {len(report.damaged)} damaged{skipped}, "
               f"into {shown(out)}")
    if report.damaged or report.skipped:
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
            fail(f"cannot open the vault: {shown(exc)}")
        try:
            return command(vault=vault, **kwargs)
        finally:
            vault.close()

    return wrapper


def _key_options(required: bool, purpose: str):
    def decorate(command):
        command = click.option("--passphrase-file", type=click.Path(path_type=Path),
                               help="Read the passphrase from this file instead of a "
                               "prompt.")(command)
        return click.option("--key", "key_path", required=required,
                            type=click.Path(path_type=Path, exists=True, dir_okay=False),
                            help=f"The team's private key file (NAME.key): {purpose}.")(command)
    return decorate


def with_custody_key(required: bool = True,
                     purpose: str = "it signs this command's custody log entries",
                     sign: bool = True, keep_team_key: bool = True):
    """Adds --key and --passphrase-file; opens the team key once and with it
    (when `sign`) the vault's custody key, for signing this run's log entries.
    Passes the team key as `team_key` (None when not required and not given),
    unless `keep_team_key` is False: then the command gets only the custody
    key (vault.signer), and the team key is not kept for the rest of the run."""

    def decorate(command):
        @_key_options(required, purpose)
        @functools.wraps(command)
        def wrapper(vault: Vault, key_path: Path | None, passphrase_file: Path | None,
                    **kwargs):
            from intake.workstation import custody

            team_key = None
            if key_path is not None:
                team_key = unlock_team_key(key_path, passphrase_file)
                try:
                    if sign:
                        vault.unlock(team_key)
                except custody.CustodyKeyError as exc:
                    fail(f"{shown(key_path.name)}: {shown(exc)}")
            if not keep_team_key:
                del team_key  # no reference kept while the command runs
                return command(vault=vault, key_path=key_path, **kwargs)
            return command(vault=vault, team_key=team_key, key_path=key_path, **kwargs)

        return wrapper

    return decorate


@click.group()
def vault() -> None:
    """The air-gapped workstation: import bundles, triage, reply, export cases."""


@vault.command("import")
@click.argument("bundle_path", metavar="BUNDLE",
                type=click.Path(path_type=Path, exists=True, dir_okay=False))
@with_vault
@with_custody_key(purpose="it opens the bundle and signs the custody log")
def import_(vault: Vault, team_key, key_path: Path, bundle_path: Path) -> None:
    """Verify a bundle, decrypt it into the vault and index it."""
    from intake.format.bundle import BundleError, BundleReader
    from intake.workstation.importer import ImportRefused, import_bundle
    from intake.workstation.sandbox import Sandbox

    try:
        with BundleReader(bundle_path) as reader:
            total = reader.total_size()
    except BundleError as exc:
        fail(f"{shown(bundle_path.name)}: {shown(exc)}")
    done = [0]

    def show(_item) -> str:
        return f"{_human(done[0])} of {_human(total)}"

    with click.progressbar(length=max(total, 1), label=f"Importing {shown(bundle_path.name)}",
                           item_show_func=show, file=sys.stderr) as bar:
        def progress(n: int) -> None:
            done[0] += n
            bar.update(n)

        try:
            summary = import_bundle(vault, bundle_path, team_key, key_path.name, progress,
                                    Sandbox())
        except (ImportRefused, BundleError) as exc:
            click.echo("", err=True)
            fail(shown(exc))
    for name, reason in summary.damaged:
        click.echo(f"DAMAGED  {shown(name)}: {shown(reason)}")
    for item_id, limit in summary.limits:
        click.echo(f"LIMIT    item {item_id}: broke the safe reader's {limit} limit; "
                   "kept without a preview")
    for note in summary.notes:
        click.echo(f"note: {shown(note)}")
    click.echo(f"{len(summary.new)} new ({_human(summary.bytes_new)}), "
               f"{len(summary.duplicates)} duplicates (already in the vault), "
               f"{len(summary.damaged)} damaged; vault: {shown(vault.root)}")
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
@click.option("--exports", "exports_dir", type=click.Path(path_type=Path, file_okay=False),
              help="Folder for exports started from the desk (default: VAULT/exports).")
@with_vault
@with_custody_key(required=False, keep_team_key=False,
                  purpose="with it the desk signs its changes with the custody key and can "
                  "re-read replies (the passphrase asked again on the page); without it the "
                  "desk shows the vault but changes nothing")
def serve(vault: Vault, key_path: Path | None, host: str, port: int,
          exports_dir: Path | None) -> None:
    """Serve the triage pages on this machine only, to the browser that opens
    the address it prints."""
    try:
        host = check_loopback(host)
    except click.BadParameter as exc:
        fail(exc.message)
    import logging

    from intake.workstation import desk_access
    from intake.workstation.desk import create_vault_app
    from intake.workstation.folders import Folder, FolderError

    try:  # a folder that cannot take exports is refused now, not at the first export
        Folder.open(exports_dir or vault.root / "exports").close()
    except FolderError as exc:
        fail(shown(exc))
    # The request log would print submission ids and the token to the terminal.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    try:
        server = desk_access.bind(host, port)
    except OSError as exc:
        fail(f"cannot listen on {host}:{port}: {exc.strerror or exc}")
    access = desk_access.Access.fresh(host, server.server_port)
    server.app = create_vault_app(vault.root, access=access, signer=vault.signer,
                                  key_file=key_path, exports_dir=exports_dir)
    mode = "" if vault.signer is not None else " Read-only: started without --key."
    click.echo(f"Triage desk for {shown(vault.root)}: open {access.url(host, server.server_port)}"
               f" in a browser on this computer. Ctrl-C stops.{mode}")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@vault.command("verify-log")
@click.option("--against", "exports", multiple=True,
              type=click.Path(path_type=Path, exists=True, file_okay=False),
              help="A case package exported earlier: check that the log still holds its "
              "head unchanged (may be given more than once).")
@with_vault
@with_custody_key(required=False, purpose="also check that the custody key is the team's",
                  sign=False)
def verify_log(vault: Vault, team_key, key_path: Path | None, exports: tuple[Path, ...]) -> None:
    """Check the custody log's chain and signatures; name the first broken entry."""

    from intake.workstation import custody

    try:
        verdict = custody.verify(vault.conn, team_key)
    except custody.WrongTeamKey as exc:  # refused as every command refuses it
        fail(f"{shown(key_path.name)}: {shown(exc)}")
    if not verdict.ok:
        if verdict.broken_seq is None:
            click.echo(f"BROKEN: {shown(verdict.reason)}")
        else:
            click.echo(f"BROKEN at entry {verdict.broken_seq}: {shown(verdict.reason)} "
                       f"({verdict.entries} entries before it are intact)")
        sys.exit(1)
    failed = False
    for export in exports:
        try:
            carried = custody.read_head(
                untrusted_json.loads((export / "custody-head.json").read_text()))
        except (OSError, ValueError) as exc:  # MalformedHead, UnicodeDecodeError too
            click.echo(f"REWRITTEN? {shown(export)}: its custody-head.json cannot be read "
                       f"({shown(exc)})")
            failed = True
            continue
        problem = custody.check_head(vault.conn, carried)
        if problem:
            click.echo(f"REWRITTEN since {shown(export)} was exported: {shown(problem)}")
            failed = True
        else:
            click.echo(f"agrees with {shown(export)} (entry {shown(carried.seq)})")
    unsigned = f" ({verdict.unsigned} from before signing)" if verdict.unsigned else ""
    checked = "; the custody key is the team's" if team_key is not None else ""
    click.echo(f"custody log intact: {verdict.entries} entries{unsigned}, signed by custody key "
               f"{verdict.key_id}{checked}, last hash {verdict.head}")
    if failed:
        sys.exit(1)


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
@with_custody_key()
def reply(vault: Vault, team_key, key_path: Path, submission_id: str,
          message_file: Path | None) -> None:
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
@with_custody_key()
def export_replies_cmd(vault: Vault, team_key, key_path: Path, out: Path,
                       include_exported: bool) -> None:
    """Write the queued replies as one bundle for the server."""
    from intake.workstation.replies import ReplyError, export_replies

    if os.path.lexists(out):
        fail(f"{shown(out)} exists already; choose another name")
    try:
        n = export_replies(vault, out, include_exported)
    except (ReplyError, OSError) as exc:
        fail(f"cannot write the reply bundle: {shown(exc)}")
    click.echo(f"wrote {n} reply(ies) to {shown(out)}")


@vault.command("case-add")
@click.argument("case")
@click.argument("submission_ids", metavar="SUBMISSION...", nargs=-1, required=True)
@with_vault
@with_custody_key()
def case_add(vault: Vault, team_key, key_path: Path, case: str,
             submission_ids: tuple[str, ...]) -> None:
    """Add submissions to the named case CASE (created if new)."""
    from intake.workstation import cases

    try:
        cases.add(vault, case, list(submission_ids))
    except (cases.CaseError, ValueError) as exc:
        fail(shown(exc))
    click.echo(f"case {shown(repr(case))}: {len(cases.members(vault.conn, case))} "
               "submission(s)")


@vault.command("export-case")
@click.argument("case")
@click.option("--out", required=True, type=click.Path(path_type=Path, file_okay=False),
              help="Folder to write the case package into (new or empty).")
@with_vault
@with_custody_key()
def export_case(vault: Vault, team_key, key_path: Path, case: str, out: Path) -> None:
    """Write the case package for CASE: files, testimonies, SHA256SUMS, custody log."""
    from intake.workstation import cases

    try:
        n = cases.export(vault, case, out)
    except cases.CaseError as exc:
        fail(shown(exc))
    except OSError as exc:
        fail(f"cannot write the case package: {shown(exc)}")
    click.echo(f"wrote {n} file(s) to {out}; check with: cd {out} && sha256sum -c SHA256SUMS")


@vault.command()
@click.argument("submission_id", metavar="SUBMISSION")
@click.option("--reason", required=True, help="Why; recorded in the custody log.")
@click.confirmation_option(prompt="Delete this submission's files from the vault?")
@with_vault
@with_custody_key()
def delete(vault: Vault, team_key, key_path: Path, submission_id: str, reason: str) -> None:
    """Delete a submission from the vault (the custody log keeps the record)."""
    from intake.workstation.deletion import delete_submission
    from intake.workstation.triage import TriageError

    try:
        n = delete_submission(vault, submission_id, reason)
    except TriageError as exc:
        fail(str(exc))
    click.echo(f"deleted submission {submission_id} ({n} item(s))")
