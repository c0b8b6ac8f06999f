"""Explicit configuration: defaults, then a TOML file, then INTAKE_* variables.

Every field is documented in docs/configuration.md (a test keeps them in step).
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

GiB = 1024**3


class ConfigError(Exception):
    """The configuration cannot be used; the message says which setting and why."""


@dataclass(frozen=True)
class Config:
    data_dir: Path = Path("data")
    keys_dir: Path = Path("keys")
    database_url: str = ""  # empty: SQLite in data_dir
    max_upload: int = 2 * GiB
    max_testimony_chars: int = 200_000
    max_files: int = 50
    codename_words: int = 7
    # OWASP's Argon2id setting of m=19 MiB, t=2, for staff passwords (and witness
    # records made before codenames were hashed): a worker must stay under 100 MB.
    kdf_opslimit: int = 2
    kdf_memlimit: int = 19 * 1024 * 1024
    csrf_time_limit: int = 24 * 3600
    session_lifetime: int = 30 * 60
    login_attempts_per_codename: int = 5
    login_window: int = 10 * 60
    onion_hostname: str = ""  # set it to warn witnesses who arrive through a proxy
    staff_port: int = 8081
    # The front (intake.server.front): a request's head must arrive within
    # head_timeout seconds; a body must bring min_upload_rate bytes a second
    # over each rate_window seconds, else the connection is cut.
    head_timeout: int = 20
    min_upload_rate: int = 1024
    rate_window: int = 30
    # Bounded work (intake.server.budget, intake.server.quota).
    clean_cpu_seconds: int = 300
    clean_bytes: int = GiB
    daily_submissions: int = 20_000
    daily_upload_bytes: int = 50 * GiB
    disk_reserve: int = GiB
    # Resumable uploads (intake.server.resumable): one not added to for this
    # many whole days is removed by `intake retention tidy`.
    partial_upload_days: int = 1

    @property
    def store_dir(self) -> Path:
        return self.data_dir / "store"

    @property
    def secrets_file(self) -> Path:
        return self.data_dir / "server-secrets.json"

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'intake.db').resolve()}"


SIZES = {"max_upload", "clean_bytes", "daily_upload_bytes", "disk_reserve"}
_SIZE = re.compile(r"^\s*(\d+)\s*([KMGT]?)i?B?\s*$", re.IGNORECASE)


def parse_size(text: str | int) -> int:
    """'2G', '500M', '1048576' -> bytes (binary units)."""
    if isinstance(text, int):
        return text
    m = _SIZE.match(str(text))
    if not m:
        raise ValueError(f"not a size: {text!r} (use bytes, or a number with K, M, G or T)")
    return int(m.group(1)) * 1024 ** "_KMGT".index(m.group(2).upper() or "_")


def _coerce(field: dataclasses.Field, value: object) -> object:
    kind = field.type
    if kind == "Path":
        return Path(str(value)).expanduser()
    if field.name in SIZES:
        return parse_size(value)  # type: ignore[arg-type]
    if kind == "int":
        return int(value)  # type: ignore[call-overload]
    return str(value)


def env_name(field_name: str) -> str:
    return "INTAKE_" + field_name.upper()


def load_config(env: Mapping[str, str] | None = None, file: Path | None = None,
                **overrides: object) -> Config:
    """Defaults < config file (INTAKE_CONFIG or `file`) < environment < overrides."""
    env = os.environ if env is None else env
    raw: dict[str, object] = {}
    path = file or (Path(env["INTAKE_CONFIG"]) if env.get("INTAKE_CONFIG") else None)
    fields = {f.name: f for f in dataclasses.fields(Config)}
    if path is not None:
        try:
            raw.update(tomllib.loads(path.read_text()))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"cannot read the config file {path}: {exc}") from exc
        unknown = sorted(set(raw) - set(fields))
        if unknown:
            raise ConfigError(f"unknown setting in {path}: {', '.join(unknown)}")
    for name in fields:
        if env_name(name) in env:
            raw[name] = env[env_name(name)]
    raw.update({k: v for k, v in overrides.items() if v is not None})
    values = {}
    for name, value in raw.items():
        if name not in fields:
            raise ConfigError(f"unknown setting: {name}")
        try:
            values[name] = _coerce(fields[name], value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"setting {name} ({env_name(name)}): {exc}") from exc
    config = Config(**values)
    if config.max_upload <= 0:
        raise ConfigError("setting max_upload (INTAKE_MAX_UPLOAD) must be positive")
    if config.codename_words < 7:
        raise ConfigError("setting codename_words must be at least 7 (about 90 bits)")
    return config
