"""`intake doctor`: checks a server's setup and says what to fix.

Each check returns findings; a problem makes the command exit non-zero, a
warning does not. The checks only read, except one probe file written to,
renamed in and removed from the store to prove it gives what the server
relies on (store_probe.py).
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import click
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError

from intake.format.teamkeys import KeyFileError, format_fingerprint, load_key_folder
from intake.server.config import Config, ConfigError, load_config, parse_size
from intake.server.store_probe import probe_store

OK, WARNING, PROBLEM = "ok", "warning", "problem"


@dataclass(frozen=True)
class Finding:
    level: str
    check: str
    message: str
    fix: str = ""


def _ok(check: str, message: str) -> Finding:
    return Finding(OK, check, message)


# -- keys ---------------------------------------------------------------------

def check_keys(config: Config) -> list[Finding]:
    try:
        recipients = load_key_folder(config.keys_dir)
    except KeyFileError as exc:
        return [Finding(PROBLEM, "keys", str(exc),
                        f"put the team's public keys (NAME.pub) in {config.keys_dir} and "
                        "nothing else")]
    findings = [_ok("keys", f"{len(recipients)} public key(s) in {config.keys_dir}: "
                    + ", ".join(format_fingerprint(r.public_key) for r in recipients))]
    if os.geteuid() != 0 and os.access(config.keys_dir, os.W_OK):
        findings.append(Finding(
            WARNING, "keys", f"the service user can change the keys folder {config.keys_dir}",
            f"make it owned by root: chown -R root:root {config.keys_dir}; "
            f"chmod 755 {config.keys_dir}"))
    return findings


# -- store --------------------------------------------------------------------

def check_store(config: Config, min_free: int, fs=os) -> list[Finding]:
    """The store exists, gives what the server relies on (`fs`: see
    store_probe.py) and has room."""
    store = config.store_dir
    if not store.is_dir():
        where = config.data_dir if config.data_dir.is_dir() else None
        return [Finding(PROBLEM, "store", f"the store folder {store} does not exist",
                        "start the service once (it makes the folder)" if where else
                        f"make the data folder: install -d -m 0700 -o intake {config.data_dir}")]
    results = probe_store(store, fs)
    if [r.guarantee for r in results] == ["create"]:
        return [Finding(PROBLEM, "store", results[0].detail,
                        f"give the service user the data folder: chown -R intake:intake "
                        f"{config.data_dir}")]
    failed = [r for r in results if not r.ok]
    findings = [Finding(PROBLEM, "store", f"{store}: {r.guarantee}: {r.detail}",
                        "keep the store on a filesystem that gives what the server relies "
                        "on: a local one, or NFS v4 mounted hard (docs/operations.md, "
                        "'The shared store')") for r in failed]
    if not failed:
        findings.append(_ok("store", f"{store} is writable and gives what the server "
                            "relies on: " + ", ".join(r.guarantee for r in results)))
    free = shutil.disk_usage(store).free
    if free < min_free:
        findings.append(Finding(
            PROBLEM, "space", f"{store} has {free // 2**20} MiB free, less than "
            f"{min_free // 2**20} MiB", "free space or grow the filesystem: an upload "
            "needs room for its envelope, and for its cleaned copy's"))
    else:
        findings.append(_ok("space", f"{store}: {free // 2**30} GiB free"))
    return findings


def check_pool(config: Config) -> list[Finding]:
    """The pool of empty files every envelope is born from (intake.server.tidy):
    without it, or nearly spent, new envelopes carry their time of birth."""
    from intake.server.store import POOL_LOW, POOL_SIZE, Store

    if not config.store_dir.is_dir():
        return []  # said by the store check
    store = Store(config.store_dir)
    left = store.pool_count()
    if left is None:
        return [Finding(PROBLEM, "pool", f"the envelope pool {store.pool} is missing: "
                        "envelopes are born with the time they arrived",
                        "run intake retention tidy (and check that intake-tidy.timer runs "
                        "it every hour)")]
    if left < POOL_LOW:
        return [Finding(WARNING, "pool", f"the envelope pool holds {left} of {POOL_SIZE} "
                        "files", "intake retention tidy refills it, and each worker tops it "
                        "up every few minutes; if it keeps running low, the service is "
                        "receiving more than usual (see the day's count above)")]
    return [_ok("pool", f"the envelope pool holds {left} of {POOL_SIZE} files")]


def check_upload_pool(config: Config) -> list[Finding]:
    """The pool of folders every file sent ahead in pieces takes (intake.
    server.resumable): empty, uploads are refused; missing, born now."""
    from intake.server import resumable
    from intake.server.resumable import POOL_LOW, POOL_SIZE, Partials

    partials = Partials(config.data_dir / resumable.FOLDER, config.partial_upload_days,
                        config.max_upload)
    left = partials.pool_count()
    if left is None:
        return [Finding(PROBLEM, "upload pool", f"the upload folder pool {partials.pool} is "
                        "missing: files sent ahead in pieces are born with the time they "
                        "arrived", "run intake retention tidy (and check that "
                        "intake-tidy.timer runs it every hour)")]
    if left < POOL_LOW:
        return [Finding(WARNING, "upload pool", f"the upload folder pool holds {left} of "
                        f"{POOL_SIZE} folders", "intake retention tidy refills it, and each "
                        "worker tops it up every few minutes; while it is empty, files sent "
                        "ahead in pieces are refused")]
    return [_ok("upload pool", f"the upload folder pool holds {left} of {POOL_SIZE} folders")]


def check_store_consistency(config: Config, on_day: dt.date | None = None) -> list[Finding]:
    """Files without rows, rows without files, and unfinished uploads left behind."""
    from intake.server.db import Database
    from intake.server.models import Item
    from intake.server.reconcile import find
    from intake.server.store import Store

    if not config.store_dir.is_dir() or not _has_database(config):
        return []
    db = Database(config.effective_database_url)
    try:
        found = find(db, Store(config.store_dir), on_day or dt.datetime.now(dt.UTC).date())
        with db.sessions() as s:
            marked = s.scalar(select(func.count()).select_from(Item)
                              .where(Item.state == "missing"))
    except SQLAlchemyError as exc:
        return [Finding(PROBLEM, "database", f"cannot read the database: {type(exc).__name__}",
                        "check database_url and that the database is running")]
    finally:
        db.dispose()
    findings = []
    lost = found.missing + (marked or 0)
    if lost:
        findings.append(Finding(
            PROBLEM, "store", f"{lost} waiting item(s) have no envelope file: they are lost "
            "and cannot be exported", "restore the store from a backup if there is one; "
            "exports skip them, and `intake retention run` marks them missing"))
    if found.orphans:
        findings.append(Finding(
            WARNING, "store", f"{found.orphans} envelope file(s) without a row, from "
            "attempts that failed after writing them", "intake retention run deletes them"))
    if found.leftovers:
        findings.append(Finding(
            WARNING, "store", f"{found.leftovers} unfinished upload(s) idle for over an hour",
            "intake store tidy (or retention) deletes them"))
    return findings or [_ok("store", "every envelope has its row and every row its file")]


def check_quota(config: Config) -> list[Finding]:
    """Today's use against the daily quota, and free space against the reserve."""
    from intake.server.db import Database
    from intake.server.quota import usage

    if not config.store_dir.is_dir() or not _has_database(config):
        return []
    db = Database(config.effective_database_url)
    try:
        use = usage(db, config.store_dir)
    except SQLAlchemyError:
        return []  # said by the store check
    finally:
        db.dispose()
    said = (f"today {use.submissions} of {config.daily_submissions} submissions, "
            f"{use.stored_bytes // 2**20} of {config.daily_upload_bytes // 2**20} MiB "
            f"of files; {use.free_bytes // 2**20} MiB free, "
            f"{config.disk_reserve // 2**20} MiB kept in reserve")
    if use.free_bytes < config.disk_reserve:
        return [Finding(PROBLEM, "quota", said + ": nothing more is accepted",
                        "free space, or export and run retention")]
    if use.submissions >= config.daily_submissions or \
            use.stored_bytes >= config.daily_upload_bytes:
        return [Finding(WARNING, "quota", said + ": the day's quota is reached (a flood?)",
                        "raise daily_submissions or daily_upload_bytes if this is real "
                        "traffic; it resets at midnight UTC")]
    return [_ok("quota", said)]


def _has_database(config: Config) -> bool:
    return bool(config.database_url) or (config.data_dir / "intake.db").exists()


# -- permissions --------------------------------------------------------------

def check_permissions(config: Config) -> list[Finding]:
    data = config.data_dir
    if not data.is_dir():
        return [Finding(PROBLEM, "permissions", f"the data folder {data} does not exist",
                        f"install -d -m 0700 -o intake -g intake {data}")]
    findings = []
    mode = stat.S_IMODE(data.stat().st_mode)
    if mode != 0o700:
        findings.append(Finding(PROBLEM, "permissions",
                                f"the data folder {data} has mode {mode:04o}, not 0700",
                                f"chmod 0700 {data}"))
    owner = data.stat().st_uid
    exposed, foreign = [], []
    for root, dirs, files in os.walk(data):
        for name in dirs + files:
            path = Path(root) / name
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode):
                continue
            if st.st_mode & 0o077:
                exposed.append(path)
            if st.st_uid != owner:
                foreign.append(path)
    if exposed:
        findings.append(Finding(
            PROBLEM, "permissions",
            f"{len(exposed)} file(s) in {data} open to group or others, e.g. {exposed[0]}",
            f"chmod -R go-rwx {data}; run the service with UMask=0077"))
    if foreign:
        findings.append(Finding(
            PROBLEM, "permissions",
            f"{len(foreign)} file(s) in {data} not owned by its owner, e.g. {foreign[0]}",
            f"chown -R --reference={data} {data}"))
    if not findings:
        findings.append(_ok("permissions", f"{data} is 0700 and nothing in it is shared"))
    return findings


# -- tor ----------------------------------------------------------------------

_LOCAL = re.compile(r"^(0|127\.\d+\.\d+\.\d+:\d+|\[::1\]:\d+|localhost:\d+|unix:.*)$",
                    re.IGNORECASE)
_NOT_LISTENERS = {"hiddenserviceport", "httptunnelport"}


def torrc_lines(text: str) -> list[tuple[str, str]]:
    lines = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if line:
            key, _, value = line.partition(" ")
            lines.append((key.lower(), value.strip()))
    return lines


def check_torrc_text(text: str) -> list[Finding]:
    """What the file says, before tor is asked: no public listener, safe logging,
    the proof-of-work defence, a staff service with client keys."""
    findings = []
    lines = torrc_lines(text)
    for key, value in lines:
        if key.endswith("port") and key not in _NOT_LISTENERS:
            address = value.split()[0] if value else ""
            if not _LOCAL.match(address):
                findings.append(Finding(
                    PROBLEM, "tor", f"{key} {address} may listen on a network interface",
                    "set it to 0, or to a 127.0.0.1 address"))
    if ("safelogging", "1") not in lines:
        findings.append(Finding(PROBLEM, "tor", "SafeLogging 1 is not set",
                                "add 'SafeLogging 1' so Tor's log scrubs addresses"))
    services = [v for k, v in lines if k == "hiddenservicedir"]
    pow_on = sum(1 for k, v in lines if k == "hiddenservicepowdefensesenabled" and v == "1")
    if services and pow_on < len(services):
        findings.append(Finding(WARNING, "tor", "not every onion service has the "
                                "proof-of-work defence", "add "
                                "'HiddenServicePoWDefensesEnabled 1' after each "
                                "HiddenServiceDir"))
    for folder in services:
        if "staff" in Path(folder).name:
            findings += _check_client_auth(Path(folder))
    if not findings:
        findings.append(_ok("tor", "no public listener, SafeLogging 1, proof of work on"))
    return findings


def _check_client_auth(service_dir: Path) -> list[Finding]:
    clients = service_dir / "authorized_clients"
    try:
        keys = [p for p in clients.iterdir() if p.suffix == ".auth"]
    except FileNotFoundError:
        keys = []
    except PermissionError:
        return [Finding(WARNING, "tor", f"cannot read {clients} as this user",
                        "run 'intake doctor' as root to check the staff client keys")]
    if not keys:
        return [Finding(PROBLEM, "tor", f"the staff onion service has no client key in "
                        f"{clients}: anyone with its address can reach it",
                        "add a staff member's key (docs/operations.md, 'Staff access')")]
    return [_ok("tor", f"the staff onion service admits {len(keys)} client key(s)")]


def check_torrc(torrc: Path, defaults: Path | None = None, tor: str = "tor") -> list[Finding]:
    try:
        text = torrc.read_text()
    except OSError as exc:
        return [Finding(PROBLEM, "tor", f"cannot read {torrc}: {exc.strerror}", "")]
    findings = check_torrc_text(text)
    if shutil.which(tor) is None:
        return findings + [Finding(PROBLEM, "tor", "tor is not installed",
                                   "apt-get install tor")]
    command = [tor, "--verify-config", "-f", str(torrc)]
    # Without --defaults-torrc, tor would also read its system defaults file.
    command += ["--defaults-torrc", str(defaults) if defaults else os.devnull]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return findings + [Finding(PROBLEM, "tor", "tor --verify-config did not finish", "")]
    if result.returncode != 0:
        said = [ln for ln in (result.stdout + result.stderr).splitlines()
                if "[warn]" in ln or "[err]" in ln]
        return findings + [Finding(PROBLEM, "tor", f"tor rejects {torrc}: "
                                   + " / ".join(said[-3:] or ["(no message)"]),
                                   "fix the lines tor names, then run doctor again")]
    return findings + [_ok("tor", f"tor --verify-config accepts {torrc}")]


# -- clock --------------------------------------------------------------------

def check_clock(config: Config, today: dt.date | None = None) -> list[Finding]:
    """Tor refuses a consensus from a clock hours off, and retention counts days:
    the clock must be roughly right and must not have gone back."""
    today = today or dt.datetime.now(dt.UTC).date()
    findings = []
    if not dt.date(2025, 1, 1) <= today <= dt.date(2100, 1, 1):
        findings.append(Finding(PROBLEM, "clock", f"the system date {today} is not plausible",
                                "set the clock and enable time sync (systemd-timesyncd)"))
    latest = _latest_day_in_database(config)
    if latest is not None and latest > today:
        findings.append(Finding(PROBLEM, "clock", f"the database holds the day {latest}, "
                                f"after today {today}: the clock went back",
                                "set the clock and enable time sync (systemd-timesyncd)"))
    synced = _ntp_synchronized()
    if synced is False:
        findings.append(Finding(WARNING, "clock", "the clock is not synchronized",
                                "timedatectl set-ntp true (Tor needs a clock within hours)"))
    if not findings:
        findings.append(_ok("clock", f"today is {today} (UTC)"
                            + ("" if synced else "; synchronization unknown")))
    return findings


def _latest_day_in_database(config: Config) -> dt.date | None:
    if not _has_database(config):
        return None
    from intake.server.db import Database
    from intake.server.models import Submission, Witness

    db = Database(config.effective_database_url)
    try:
        with db.sessions() as s:
            days = [s.scalar(select(func.max(Submission.received_day))),
                    s.scalar(select(func.max(Witness.last_active_day)))]
    except SQLAlchemyError:
        return None
    finally:
        db.dispose()
    days = [d for d in days if d is not None]
    return max(days) if days else None


def _ntp_synchronized() -> bool | None:
    if shutil.which("timedatectl") is None:
        return None
    try:
        out = subprocess.run(["timedatectl", "show", "-p", "NTPSynchronized", "--value"],
                             capture_output=True, text=True, timeout=10)
    except subprocess.TimeoutExpired:
        return None
    value = out.stdout.strip()
    return {"yes": True, "no": False}.get(value) if out.returncode == 0 else None


# -- swap ---------------------------------------------------------------------

def check_swap(proc_swaps: Path = Path("/proc/swaps"),
               sys_block: Path = Path("/sys/block")) -> list[Finding]:
    """Plaintext lives in memory while a request runs; swap could write it out."""
    try:
        rows = proc_swaps.read_text().splitlines()[1:]
    except OSError:
        return [Finding(WARNING, "swap", f"cannot read {proc_swaps}", "")]
    findings = []
    for row in rows:
        if not row.strip():
            continue
        device, kind = row.split()[0], row.split()[1]
        name = Path(device).name
        if name.startswith("zram"):
            continue  # compressed memory, never on disk
        uuid = sys_block / name / "dm" / "uuid"
        if kind == "partition" and uuid.exists() and uuid.read_text().startswith("CRYPT-"):
            continue
        if kind == "file":
            findings.append(Finding(WARNING, "swap", f"swap file {device} is on",
                                    "make sure its filesystem is encrypted, or turn it off "
                                    "(swapoff, and remove it from /etc/fstab)"))
        else:
            findings.append(Finding(PROBLEM, "swap", f"unencrypted swap {device} is on",
                                    "turn it off (swapoff, /etc/fstab) or encrypt it "
                                    "(crypttab with a random key)"))
    return findings or [_ok("swap", "no unencrypted swap")]


# -- sandbox ------------------------------------------------------------------

UNIT = Path("/etc/systemd/system/intake-witness.service")


def check_sandbox(config: Config, report: dict | None = None,
                  unit: Path = UNIT) -> list[Finding]:
    """A cleaner child, started as the server starts them, tries what a
    parser taken over by a hostile file would (docs/sanitizing.md)."""
    from intake.server.sanitize.runner import CLEANER_NICENESS, probe_sandbox

    if report is None:
        db = config.data_dir / "intake.db"
        report = probe_sandbox([p.resolve() for p in (config.keys_dir, config.data_dir,
                                                      db if db.exists() else config.store_dir)])
    if "error" in report:
        return [Finding(PROBLEM, "sandbox", report["error"],
                        "run `python -m intake.server.sanitize.probe` as the service user "
                        "to see why")]
    findings = []
    if not report.get("seccomp"):
        findings.append(Finding(PROBLEM, "sandbox", "no seccomp filter: every upload is "
                                "refused, since a cleaner could open network sockets",
                                "apt-get install libseccomp2"))
    if not report.get("landlock"):
        findings.append(Finding(WARNING, "sandbox", "no Landlock: a cleaner child sees the "
                                "whole filesystem its user can read (weaker than designed)",
                                "run a kernel with Landlock on (Linux 5.13 or later, "
                                "lsm=landlock,...)"))
    if not report.get("namespaces"):
        findings.append(Finding(WARNING, "sandbox", "no user namespaces: cleaner children "
                                "share the server's user and network namespace (weaker "
                                "than designed; seccomp still forbids network sockets)",
                                "allow unprivileged user namespaces "
                                "(sysctl kernel.unprivileged_userns_clone=1) and, in the "
                                "unit, RestrictNamespaces=user net"))
    if report.get("niceness", CLEANER_NICENESS) < CLEANER_NICENESS:
        findings.append(Finding(WARNING, "sandbox", "cleaners cannot lower their priority: "
                                "they run at the server's own, so a flood of uploads slows "
                                "the form (weaker than designed)",
                                "allow setpriority and ioprio_set in the unit's "
                                "SystemCallFilter (deploy/systemd/intake-witness.service)"))
    leaks = [k for k in ("inet_socket", "inet6_socket", "connect", "write") if report.get(k)]
    leaks += [f"read {p}" for p, ok in report.get("read", {}).items() if ok]
    if leaks:
        findings.append(Finding(PROBLEM, "sandbox", "a cleaner child could: " + ", ".join(leaks),
                                "see docs/sanitizing.md, The sandbox"))
    try:
        text = unit.read_text()
    except OSError:
        text = ""
    if re.search(r"^RestrictNamespaces=(yes|true)\s*$", text, re.MULTILINE):
        findings.append(Finding(WARNING, "sandbox", f"{unit} refuses every namespace, so "
                                "cleaner children cannot have their own",
                                "install the unit from deploy/systemd (RestrictNamespaces="
                                "user net)"))
    return findings or [_ok("sandbox", f"cleaners run with seccomp, Landlock (ABI "
                            f"{report['landlock']}) and their own namespaces; they cannot "
                            "open network sockets, read the keys or the database, or write")]


# -- the command --------------------------------------------------------------

def run_checks(config: Config, torrc: Path | None = None, tor_defaults: Path | None = None,
               min_free: int | None = None,
               proc_swaps: Path = Path("/proc/swaps")) -> list[Finding]:
    min_free = min_free if min_free is not None else 2 * config.max_upload
    findings = check_keys(config)
    findings += check_permissions(config)
    findings += check_store(config, min_free)
    findings += check_pool(config)
    findings += check_upload_pool(config)
    findings += check_store_consistency(config)
    findings += check_quota(config)
    findings += check_clock(config)
    findings += check_swap(proc_swaps)
    findings += check_sandbox(config)
    if torrc is not None:
        findings += check_torrc(torrc, tor_defaults)
    return findings


@click.command()
@click.option("--torrc", type=click.Path(path_type=Path, dir_okay=False),
              help="Also check this Tor configuration (tor --verify-config).")
@click.option("--tor-defaults", type=click.Path(path_type=Path, dir_okay=False),
              help="Tor's defaults file for the check, e.g. Debian's "
                   "/usr/share/tor/tor-service-defaults-torrc.")
@click.option("--min-free", help="Free space the store needs [default: twice max_upload].")
@click.option("--sandbox-only", is_flag=True,
              help="Check only the cleaners' sandbox. The witness unit runs this before "
                   "it starts, inside its own restrictions, so the journal shows what "
                   "the unit leaves the cleaners.")
def doctor(torrc: Path | None, tor_defaults: Path | None, min_free: str | None,
           sandbox_only: bool) -> None:
    """Check keys, store, permissions, clock, swap, the sandbox and Tor; say what to fix."""
    try:
        config = load_config()
        needed = parse_size(min_free) if min_free else None
    except (ConfigError, ValueError) as exc:
        raise click.ClickException(str(exc)) from exc
    if sandbox_only:
        findings = check_sandbox(config)
    else:
        findings = run_checks(config, torrc, tor_defaults, needed)
    for f in findings:
        click.echo(f"{f.level.upper():8} {f.check:12} {f.message}")
        if f.fix:
            click.echo(f"{'':8} {'':12} fix: {f.fix}")
    problems = sum(f.level == PROBLEM for f in findings)
    warnings = sum(f.level == WARNING for f in findings)
    click.echo(f"{problems} problem(s), {warnings} warning(s)")
    if problems:
        raise SystemExit(1)
