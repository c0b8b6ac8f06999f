"""Helpers for the workstation's tests: a real intake server (the Flask app and
its test client) that takes submissions and exports bundles, and a desk that
runs the real `intake vault` commands."""

from __future__ import annotations

import io
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from click.testing import CliRunner
from nacl import pwhash
from sqlalchemy import select

from intake.cli import main
from intake.format import teamkeys
from intake.server.config import Config, load_config
from intake.server.queue import export

PASSPHRASE = "vault test passphrase"
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
CODENAME = re.compile(r'<p class="codename" id="codename">(.*?)</p>', re.S)


@dataclass
class Team:
    name: str
    key_file: Path
    keys_dir: Path
    passphrase_file: Path


def make_team(root: Path, name: str) -> Team:
    workstation = root / f"{name}-workstation"
    cheap = teamkeys.KdfCost(pwhash.argon2id.OPSLIMIT_MIN, pwhash.argon2id.MEMLIMIT_MIN)
    pub, key = teamkeys.generate(name, workstation, PASSPHRASE.encode(), cheap)
    keys_dir = root / f"{name}-server-keys"
    keys_dir.mkdir()
    pub.rename(keys_dir / pub.name)
    passfile = workstation / "passphrase"
    passfile.write_text(PASSPHRASE + "\n")
    return Team(name, key, keys_dir, passfile)


@dataclass
class Sent:
    submission_id: str
    witness_id: str
    codename: str


@dataclass
class Server:
    """The intake server, driven through its own pages."""

    config: Config
    app: object
    client: object
    sent: list[Sent] = field(default_factory=list)

    @property
    def intake(self):
        return self.app.extensions["intake"]

    def submit(self, testimony: str = "", files: list[tuple[bytes, str]] | None = None) -> Sent:
        from intake.server.models import Submission

        form = self.client.get("/en/")
        token = CSRF.search(form.get_data(as_text=True)).group(1)
        # Made-up files no cleaner handles: kept only when the witness asks.
        data = {"csrf_token": token, "testimony": testimony, "keep_original": "y",
                "files": [(io.BytesIO(content), name) for content, name in (files or [])]}
        page = self.client.post("/en/submit", data=data, content_type="multipart/form-data",
                                follow_redirects=True)
        assert page.status_code == 200, page.get_data(as_text=True)
        words = re.findall(r"<span>([a-z-]+)</span>",
                           CODENAME.search(page.get_data(as_text=True)).group(1))
        known = {s.submission_id for s in self.sent}
        with self.intake.db.sessions() as s:
            rows = [r for r in s.scalars(select(Submission)) if r.id not in known]
        assert len(rows) == 1
        sent = Sent(rows[0].id, rows[0].witness_id, " ".join(words))
        self.sent.append(sent)
        return sent

    def submit_again(self, witness_id: str, testimony: str) -> str:
        """A returning witness (the server's own receive path, as its pages call it)."""
        from intake.server.receive import receive

        receipt = receive(self.intake, testimony, [], keep_originals=False,
                          witness_id=witness_id)
        self.sent.append(Sent(receipt.submission_id, witness_id, ""))
        return receipt.submission_id

    def export(self, out: Path) -> Path:
        export(self.intake, out)
        return out

    def close(self) -> None:
        self.intake.close()


def make_server(root: Path, team: Team) -> Server:
    from intake.server.witness import create_app

    config = load_config({}, data_dir=root / f"{team.name}-server-data", keys_dir=team.keys_dir,
                         kdf_opslimit=1, kdf_memlimit=8192)
    app = create_app(config)
    return Server(config, app, app.test_client())


# The commands that write to the custody log, and so need the team key.
SIGNING = {"import", "reply", "export-replies", "case-add", "export-case", "delete"}


@dataclass
class Desk:
    """The workstation: `intake vault ...` through Click's runner."""

    root: Path
    team: Team

    def key_args(self, key: Path | None = None) -> list[str]:
        return ["--key", str(key or self.team.key_file),
                "--passphrase-file", str(self.team.passphrase_file)]

    def run(self, *args: str, input: str | None = None, ok: bool = True, key: bool = True):
        extra = self.key_args() if key and args[0] in SIGNING and "--key" not in args else []
        result = CliRunner().invoke(main, ["vault", *args, "--vault", str(self.root), *extra],
                                    input=input, catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    def import_(self, bundle: Path, key: Path | None = None, ok: bool = True):
        return self.run("import", str(bundle), *self.key_args(key), ok=ok)

    @property
    def private_key(self):
        return teamkeys.load_private_key(self.team.key_file, PASSPHRASE.encode())

    def open(self, unlocked: bool = True):
        """The vault, with its custody key open (as a command given --key has it)."""
        from intake.workstation.vault import Vault

        vault = Vault(self.root)
        if unlocked:
            vault.unlock(self.private_key)
        return vault

    def app(self, actor: str = "tester", unlocked: bool = True, access=None,
            exports_dir: Path | None = None):
        """The desk's Flask app, as `intake vault serve --key` makes it (the
        custody key open, the key file there to re-read replies); as `serve`
        without --key makes it when not `unlocked`."""
        from intake.workstation.desk import create_vault_app

        signer = None
        if unlocked:
            with self.open() as vault:
                signer = vault.signer
        return create_vault_app(self.root, actor=actor, signer=signer, access=access,
                                key_file=self.team.key_file if unlocked else None,
                                exports_dir=exports_dir)


def member_offsets(bundle: Path) -> dict[str, tuple[int, int]]:
    """Where each member's bytes sit in the bundle file: name -> (offset, size)."""
    with tarfile.open(bundle) as tar:
        return {m.name: (m.offset_data, m.size) for m in tar.getmembers()}
