"""What a seized or compromised server can hand the workstation: bundles made
by hand, with envelopes sealed to the team's public key (which the server
holds) carrying any content and any metadata, any manifest, any tar members.

Also a record of a folder tree, to show that nothing outside the output
folder or the vault was created, changed or removed."""

from __future__ import annotations

import hashlib
import io
import json
import os
import secrets
import stat
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

from intake.format import envelope, teamkeys


class _EscapingJson:
    loads = staticmethod(json.loads)

    @staticmethod
    def dumps(obj: object, **options) -> str:
        return json.dumps(obj, **{**options, "ensure_ascii": True})


def new_id() -> str:
    return secrets.token_hex(16)


@dataclass
class Member:
    name: str
    data: bytes = b""
    type: bytes = tarfile.REGTYPE
    linkname: str = ""


@dataclass
class Forge:
    """Reads a genuine bundle, then lets a test add to it or change it."""

    recipient: envelope.Recipient
    manifest: dict
    members: list[Member] = field(default_factory=list)

    @classmethod
    def from_bundle(cls, bundle: Path, keys_dir: Path) -> Forge:
        recipient = teamkeys.load_public_key(next(keys_dir.glob("*.pub")))
        with tarfile.open(bundle) as tar:
            manifest = json.loads(tar.extractfile("manifest.json").read())
            members = [Member(m.name, tar.extractfile(m).read()) for m in tar.getmembers()
                       if m.name != "manifest.json"]
        return cls(recipient, manifest, members)

    @property
    def items(self) -> list[dict]:
        return self.manifest["items"]

    def genuine(self, kind: str) -> dict:
        return next(i for i in self.items if i["kind"] == kind)

    def seal(self, content: bytes, **meta) -> bytes:
        """Sealed as the server seals, except that the metadata's JSON escapes
        every non-ASCII character (valid JSON any sealer may write), so that it
        can carry what UTF-8 cannot: a lone surrogate in a name."""
        out = io.BytesIO()
        writer = envelope.json
        envelope.json = _EscapingJson  # the envelope module's own name for json
        try:
            envelope.seal(out, [self.recipient], [content], meta)
        finally:
            envelope.json = writer
        return out.getvalue()

    def metadata(self, item_id: str, submission_id: str, witness_id: str, day: str,
                 content: bytes, kind: str = "file", **more) -> dict:
        sha = hashlib.sha256(content).hexdigest()
        meta = {"format": "intake-item/1", "kind": kind, "item_id": item_id,
                "submission_id": submission_id, "witness_id": witness_id,
                "received_day": day, "choices": {"keep_original": False},
                "original_name": "note.txt", "detected_type": "text/plain",
                "size": len(content), "sha256_received": sha, "sha256_kept": sha,
                "sanitized": False, "sanitizer": None, "sanitizer_version": None,
                "removed": [], "flags": [], "original_kept": False}
        meta.update(more)
        return meta

    def add(self, content: bytes, *, entry: dict | None = None, member: str | None = None,
            **meta_overrides) -> dict:
        """An item sealed with consistent metadata (changed by `meta_overrides`),
        listed in the manifest (`entry` changes the listing) and carried as a
        member (named `member`, by default the listed name)."""
        item_id = meta_overrides.pop("item_id", new_id())
        submission_id = meta_overrides.pop("submission_id", new_id())
        witness_id = meta_overrides.pop("witness_id", new_id())
        day = meta_overrides.pop("received_day", self.manifest["day"])
        kind = meta_overrides.pop("kind", "file")
        meta = self.metadata(item_id, submission_id, witness_id, day, content, kind,
                             **meta_overrides)
        data = self.seal(content, **meta)
        listed = {"item_id": item_id, "kind": kind, "name": f"envelopes/{item_id}.env",
                  "received_day": day, "sha256": hashlib.sha256(data).hexdigest(),
                  "size": len(data), "submission_id": submission_id, "witness_id": witness_id}
        listed.update(entry or {})
        self.items.append(listed)
        self.members.append(Member(member or listed["name"], data))
        return listed

    def write(self, path: Path, manifest_text: bytes | None = None) -> Path:
        raw = manifest_text if manifest_text is not None else \
            json.dumps(self.manifest, indent=1).encode()
        with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
            self._add(tar, Member("manifest.json", raw))
            for m in self.members:
                self._add(tar, m)
        return path

    @staticmethod
    def _add(tar: tarfile.TarFile, m: Member) -> None:
        info = tarfile.TarInfo(m.name)
        info.type, info.mode, info.linkname = m.type, 0o600, m.linkname
        info.size = len(m.data) if m.type in (tarfile.REGTYPE, tarfile.AREGTYPE) else 0
        tar.addfile(info, io.BytesIO(m.data) if info.size else None)


def tree(root: Path, skip: set[Path]) -> dict[str, tuple]:
    """Every entry under `root` but the `skip` folders: type, mode, size, times,
    content hash or link target. Equal before and after: nothing changed."""
    seen = {}
    for folder, dirs, files in os.walk(root, followlinks=False):
        here = Path(folder)
        dirs[:] = [d for d in dirs if here / d not in skip]
        for name in [*dirs, *files]:
            path = here / name
            if path in skip:
                continue
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                what = ("link", os.readlink(path))
            elif stat.S_ISREG(st.st_mode):
                what = ("file", hashlib.sha256(path.read_bytes()).hexdigest())
            else:
                what = ("dir",)
            seen[str(path.relative_to(root))] = (*what, st.st_mode, st.st_size, st.st_mtime_ns,
                                                 st.st_ino)
    return seen


def plant_home(root: Path) -> Path:
    """What an attacker aims at: a home folder with a shell profile and editor plugins."""
    home = root / "home"
    (home / ".vim" / "plugin").mkdir(parents=True)
    (home / ".bashrc").write_text("# the user's own profile\n")
    (home / ".vim" / "plugin" / "existing.vim").write_text('" the user\'s own plugin\n')
    return home
