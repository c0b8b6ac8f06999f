"""`make bench`, capacity: the figures behind docs/operations.md's capacity model.

What one app server carries, measured through the real HTTP path on loopback
(`intake serve` with one worker on its production settings):

- text submissions: a few clients at once send short testimonies; the rate per
  CPU-second of the worker is the rate per core, on SQLite and (when it runs on
  127.0.0.1:5432) PostgreSQL;
- files: uploads of random bytes (a type no cleaner opens, sent with "keep my
  files exactly as they are" ticked, so sealed as they arrive and queued: the
  cheapest path; cleaning costs are in RESULTS-sanitize.md): MB/s
  per core;
- disk: store and database bytes per thousand text submissions, and what an
  envelope adds to a file;
- Tor: the same text submissions and one upload through one onion service on
  the private Tor network of the tests (tests/deploy/private_tor.py), each
  submission on fresh circuits as a new witness's would be: the rate and the
  CPU the service's tor spends (`--no-tor` skips it).

Writes its own section of bench/RESULTS.md, between markers, after what run.py
wrote there.

    python bench/capacity.py [--texts 300] [--clients 4] [--files 6] [--file-size 32M]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import re
import secrets
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from nacl import pwhash
from run import load_average, machine
from servers import Server, cpu_seconds
from upload import Part, codename_in, get_form, post_multipart

from intake.format import teamkeys
from intake.server.config import parse_size

BENCH = Path(__file__).resolve().parent
# The private Tor network, and the tests' helpers it takes its ports from.
sys.path[:0] = [str(BENCH.parent / "tests" / "deploy"), str(BENCH.parent / "tests")]

RESULTS = BENCH / "RESULTS.md"
BEGIN, END = "<!-- capacity.py: begin -->", "<!-- capacity.py: end -->"
VENV_BIN = Path(sys.executable).parent
PG_ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=test"
MB = 1_000_000
TESTIMONY_CHARS = 1500  # about a page of text
TOR_TEXTS = 30
TOR_CLIENTS = 3
TOR_FILE = 16 * 1024 * 1024


@dataclass(frozen=True)
class Rate:
    what: str
    count: int
    wall: float  # seconds for all of them, clients at once
    cpu: float  # the worker's CPU seconds over the same span
    size: int = 0  # bytes per submission (files)


@dataclass(frozen=True)
class Disk:
    database: str
    store_per_1000: int  # bytes
    database_per_1000: int


def testimony() -> str:
    words = []
    while sum(len(w) + 1 for w in words) < TESTIMONY_CHARS:
        words.append(secrets.token_hex(3))
    return " ".join(words)[:TESTIMONY_CHARS]


def make_keys(root: Path) -> Path:
    keys = root / "server-keys"
    keys.mkdir()
    cheap = teamkeys.KdfCost(pwhash.argon2id.OPSLIMIT_MIN, pwhash.argon2id.MEMLIMIT_MIN)
    pub, _ = teamkeys.generate("bench", root / "workstation", b"bench, not secret", cheap)
    pub.replace(keys / pub.name)
    return keys


class Database:
    """SQLite in the data folder, or a fresh PostgreSQL database dropped after."""

    def __init__(self, kind: str):
        self.kind, self.name, self.url = kind, "", ""
        if kind == "postgresql":
            import psycopg

            self.name = "intake_bench_" + secrets.token_hex(6)
            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {self.name}")
            self.url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{self.name}"

    def size(self, data: Path) -> int:
        if self.kind == "sqlite":
            # What the write-ahead log holds goes into the file first (the log
            # only grows until a checkpoint, and would count twice).
            db = data / "intake.db"
            with contextlib.closing(sqlite3.connect(db)) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return db.stat().st_size
        import psycopg

        with psycopg.connect(PG_ADMIN) as conn:
            return conn.execute("SELECT pg_database_size(%s)", (self.name,)).fetchone()[0]

    def drop(self) -> None:
        if self.kind == "postgresql":
            import psycopg

            with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {self.name} WITH (FORCE)")


def postgresql_runs() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN, connect_timeout=3):
            return True
    except Exception:  # noqa: BLE001 (any failure means: measure SQLite only)
        return False


def start_server(root: Path, keys: Path, db: Database, name: str) -> tuple[Server, Path]:
    data = root / f"data-{name}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    env.update(TMPDIR=str(root), INTAKE_DATA_DIR=str(data), INTAKE_KEYS_DIR=str(keys))
    if db.url:
        env["INTAKE_DATABASE_URL"] = db.url
    server = Server([str(VENV_BIN / "intake"), "serve", "--host", "127.0.0.1",
                     "--workers", "1"], env, root / f"server-{name}.log")
    server.wait_ready()
    return server, data


def submit_text(port: int) -> None:
    token, cookie = get_form(port)
    reply = post_multipart(port, "/en/submit", [Part("csrf_token", token),
                                             Part("testimony", testimony())], cookie)
    if reply.status != 200 or not codename_in(reply.body):
        raise RuntimeError(f"no receipt: HTTP {reply.status}")


def at_once(clients: int, count: int, job) -> float:
    """Runs job() `count` times from `clients` threads; the wall time."""
    left = iter(range(count))
    lock, errors = threading.Lock(), []

    def client() -> None:
        while True:
            with lock:
                if next(left, None) is None:
                    return
            try:
                job()
            except Exception as exc:  # noqa: BLE001 (reported below)
                errors.append(exc)
                return

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise RuntimeError(f"{len(errors)} client(s) failed: {errors[0]}")
    return time.perf_counter() - started


def store_bytes(data: Path) -> int:
    return sum(p.stat().st_size for p in (data / "store").glob("*.env"))


def measure_texts(root: Path, keys: Path, kind: str, count: int,
                  clients: int) -> tuple[Rate, Disk]:
    db = Database(kind)
    try:
        server, data = start_server(root, keys, db, kind)
        try:
            submit_text(server.port)  # the worker's first request loads what it needs
            worker = server.worker_pid()
            store_before, db_before = store_bytes(data), db.size(data)
            cpu = cpu_seconds(worker)
            wall = at_once(clients, count, lambda: submit_text(server.port))
            cpu = cpu_seconds(worker) - cpu
            disk = Disk(kind, (store_bytes(data) - store_before) * 1000 // count,
                        (db.size(data) - db_before) * 1000 // count)
        finally:
            server.stop()
    finally:
        db.drop()
    return Rate(f"text ({TESTIMONY_CHARS} characters), {kind}", count, wall, cpu), disk


def measure_files(root: Path, keys: Path, count: int, size: int) -> tuple[Rate, int]:
    """Uploads one after the other; returns the rate and the bytes an envelope
    adds to its file."""
    payload = root / "upload.bin"
    payload.write_bytes(os.urandom(size))
    server, data = start_server(root, keys, Database("sqlite"), "files")
    try:
        submit_text(server.port)
        worker = server.worker_pid()
        cpu, wall = cpu_seconds(worker), 0.0
        for _ in range(count):
            token, cookie = get_form(server.port)
            reply = post_multipart(server.port, "/en/submit", [
                # No cleaner opens random bytes: without "keep my files as they
                # are" the file would be held for the receipt's question, not queued.
                Part("csrf_token", token), Part("keep_original", "y"),
                Part("files", path=payload, filename="upload.bin")],
                cookie)
            if reply.status != 200 or not codename_in(reply.body):
                raise RuntimeError(f"no receipt for a file: HTTP {reply.status}")
            wall += reply.seconds
        cpu = cpu_seconds(worker) - cpu
        envelopes = sorted(p.stat().st_size for p in (data / "store").glob("*.env"))
        overhead = max(envelopes) - size
    finally:
        server.stop()
    return Rate(f"file of {size // 2**20} MiB, random bytes", count, wall, cpu, size), overhead


# -- Tor ---------------------------------------------------------------------

def measure_tor(root: Path, keys: Path) -> tuple[Rate, Rate, float]:
    """Through one onion service on the private Tor network: text submissions,
    each from a new witness (fresh circuits), and one upload. The CPU is the
    service's tor's; also returns how long the network took to come up."""
    import requests
    from private_tor import PrivateTorNetwork

    started = time.monotonic()
    server, _ = start_server(root, keys, Database("sqlite"), "tor")
    network = PrivateTorNetwork(root / "tor")
    try:
        onions = root / "tor-onions"
        onions.mkdir(mode=0o700)
        network.configure(f"HiddenServiceDir {onions}/witness\nHiddenServiceVersion 3\n"
                          f"HiddenServicePort 80 127.0.0.1:{server.port}\n")
        network.start()
        network.wait_for_log(network.client, r"Bootstrapped 100%", 300)
        network.wait_for_log(network.service, r"Bootstrapped 100%", 300)
        onion = (onions / "witness" / "hostname").read_text().strip()
        csrf = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')

        def session() -> requests.Session:
            s = requests.Session()
            s.proxies["http"] = (f"socks5h://{secrets.token_hex(8)}:x@127.0.0.1:"
                                 f"{network.socks_port}")
            return s

        def through_tor(files=None) -> None:
            with session() as s:
                form = s.get(f"http://{onion}/", timeout=120)
                token = csrf.search(form.text).group(1)
                reply = s.post(f"http://{onion}/submit", timeout=600, files=files,
                               data={"csrf_token": token, "testimony": testimony()})
            if reply.status_code != 200 or 'id="codename"' not in reply.text:
                raise RuntimeError(f"no receipt through Tor: HTTP {reply.status_code}")

        deadline = time.monotonic() + 300
        while True:  # until the descriptor is out and the service answers
            try:
                through_tor()
                break
            except (requests.RequestException, AttributeError):
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        ready = time.monotonic() - started
        tor_pid = network.service.process.pid
        cpu = cpu_seconds(tor_pid)
        retried: list[BaseException] = []

        def through_tor_again() -> None:
            # A fresh circuit in a private network now and then fails to build
            # (the proxy's "general failure"): that client tries a new one.
            for attempt in range(3):
                try:
                    return through_tor()
                except requests.ConnectionError as exc:
                    if attempt == 2:
                        raise
                    retried.append(exc)

        wall = at_once(TOR_CLIENTS, TOR_TEXTS, through_tor_again)
        if retried:
            print(f"{len(retried)} circuit(s) failed to build and were tried again: "
                  f"{retried[0]}", flush=True)
        texts = Rate("text, each on new circuits", TOR_TEXTS, wall, cpu_seconds(tor_pid) - cpu)
        cpu, began = cpu_seconds(tor_pid), time.perf_counter()
        through_tor(files={"files": ("upload.bin", os.urandom(TOR_FILE))})
        upload = Rate(f"file of {TOR_FILE // 2**20} MiB, one circuit", 1,
                      time.perf_counter() - began, cpu_seconds(tor_pid) - cpu, TOR_FILE)
    finally:
        network.stop()
        server.stop()
    return texts, upload, ready


# -- the report --------------------------------------------------------------

def rate_rows(rates: list[Rate], cpu_of: str) -> str:
    lines = [f"| what | submissions | wall seconds | per second, wall | {cpu_of} CPU "
             "seconds | per CPU-second | MB/s per core |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rates:
        per_core = f"{r.count * r.size / MB / r.cpu:.0f}" if r.size else ""
        lines.append(f"| {r.what} | {r.count} | {r.wall:.1f} | {r.count / r.wall:.1f} | "
                     f"{r.cpu:.1f} | {r.count / r.cpu:.1f} | {per_core} |")
    return "\n".join(lines)


def tor_table(texts: Rate, upload: Rate) -> str:
    return "\n".join([
        "| through one onion service | submissions | wall seconds | per second, wall "
        "| the service's tor, CPU ms each | MB/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
        f"| {texts.what} | {texts.count} | {texts.wall:.1f} | "
        f"{texts.count / texts.wall:.1f} | {1000 * texts.cpu / texts.count:.0f} | |",
        f"| {upload.what} | 1 | {upload.wall:.1f} | | {1000 * upload.cpu:.0f} | "
        f"{upload.size / MB / upload.wall:.1f} |"])


def report(rates: list[Rate], disks: list[Disk], overhead: int,
           tor: tuple[Rate, Rate, float] | None, args, loads: tuple[str, str]) -> str:
    disk_rows = "\n".join(f"| {d.database} | {d.store_per_1000 / MB:.1f} | "
                          f"{d.database_per_1000 / MB:.1f} |" for d in disks)
    tor_part = "Tor: skipped (`--no-tor`)."
    if tor is not None:
        texts, upload, ready = tor
        tor_part = f"""Through one onion service on the private Tor network (3 authorities, 2
relays, the service's tor and a client, all on this machine; up and answering
after {ready:.0f} s), {TOR_CLIENTS} witnesses at once, each submission on
circuits of its own; the CPU is the service's tor's:

{tor_table(texts, upload)}

CPU time is counted in the kernel's ticks (10 ms), so a few ms each is a
rough figure; the wall rates are bounded by building circuits and by one
circuit's flow control, on a machine that also runs the relays and the
client."""
    return f"""{BEGIN}
# Capacity

Measured on {dt.date.today().isoformat()} with `make bench` (`bench/capacity.py`).

Machine: {machine()}. Load average (1, 5, 15 min) before: {loads[0]}; after: {loads[1]}.

One `intake serve` worker (16 threads) on 127.0.0.1 on its production settings
(a new codename's two values derived by keyed BLAKE2b); {args.clients} clients at
once for texts, files one after another. "Per CPU-second" is submissions per
second of the worker's own CPU time, that is per core given to workers; the
wall rate is what this machine did with its {os.cpu_count()} cores shared by
the client, the worker and the database.

{rate_rows(rates, "worker")}

Disk per thousand text submissions ({TESTIMONY_CHARS} characters each):

| database | store (MB) | database (MB) |
| --- | ---: | ---: |
{disk_rows}

An envelope adds {overhead} bytes to a file of {args.file_size // 2**20} MiB
(17 bytes per 64 KiB chunk, the header and the sealed metadata); a file that
is cleaned is kept twice when the witness keeps the original.

{tor_part}
{END}
"""


def write_section(path: Path, section: str) -> None:
    """Replaces this script's section of RESULTS.md, or appends it."""
    text = path.read_text() if path.exists() else ""
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section.rstrip("\n") + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section
    path.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=300, help="text submissions per database")
    parser.add_argument("--clients", type=int, default=4, help="clients at once for texts")
    parser.add_argument("--files", type=int, default=6, help="file submissions")
    parser.add_argument("--file-size", type=parse_size, default=parse_size("32M"))
    parser.add_argument("--no-tor", dest="tor", action="store_false",
                        help="skip the measurement through the private Tor network")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    loads = [load_average()]
    kinds = ["sqlite"] + (["postgresql"] if postgresql_runs() else [])
    rates, disks = [], []
    with tempfile.TemporaryDirectory(prefix="intake-capacity-") as tmp:
        root = Path(tmp)
        keys = make_keys(root)
        for kind in kinds:
            rate, disk = measure_texts(root, keys, kind, args.texts, args.clients)
            print(f"{rate.what}: {rate.count / rate.cpu:.1f} per CPU-second, "
                  f"{rate.count / rate.wall:.1f}/s wall", flush=True)
            rates.append(rate)
            disks.append(disk)
        rate, overhead = measure_files(root, keys, args.files, args.file_size)
        print(f"{rate.what}: {rate.count * rate.size / MB / rate.cpu:.0f} MB/s per core",
              flush=True)
        rates.append(rate)
        tor = measure_tor(root, keys) if args.tor else None
    loads.append(load_average())
    section = report(rates, disks, overhead, tor, args, (loads[0], loads[1]))
    print("\n" + section)
    write_section(args.results, section)
    print(f"written to {args.results}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except subprocess.CalledProcessError as exc:
        sys.exit(f"{exc.cmd[0]} failed: {exc.stderr}")
