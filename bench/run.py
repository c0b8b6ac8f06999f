"""`make bench`: an upload through the real HTTP path, beside two baselines.

Uploads one random file (1 GiB by default) over loopback to Intake running
under gunicorn exactly as `intake serve` runs it, then to a plain Flask app
that saves the upload unencrypted under the same gunicorn settings, and
encrypts the same file from disk with `age`. Reports seconds, MB/s, CPU time and
the peak resident memory of the process doing the work, also for a smaller file
to show whether memory grows with size. Writes the table to bench/RESULTS.md.

    python bench/run.py [--size 1G] [--small-size 64M] [--repeat 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from nacl import pwhash
from servers import Server, cpu_seconds, status_kib
from slow_clients import App, FloodResult, SlowResult, flood, slow_clients
from upload import Part, codename_in, get_form, post_multipart

from intake.format import envelope, secretstream, teamkeys
from intake.server.config import parse_size

BENCH = Path(__file__).resolve().parent
VENV_BIN = Path(sys.executable).parent
RESULTS = BENCH / "RESULTS.md"
GOAL_SPEEDUP = 1.5
GOAL_PEAK_MB = 100
MB = 1_000_000
WRITE_BLOCK = 4 * 1024 * 1024

INTAKE = "Intake encrypted upload"
PLAIN = "plain Flask save"
AGE = "age from disk"
TOOLS = (INTAKE, PLAIN, AGE)


@dataclass(frozen=True)
class Measurement:
    tool: str
    size: int
    seconds: float  # the client's wall time
    cpu: float  # CPU seconds (user + system) of the process doing the work
    peak_kib: int
    before_kib: int | None  # the worker's peak before the upload (after GET /)


@dataclass(frozen=True)
class Workspace:
    root: Path
    keys_dir: Path
    age_identity: Path
    age_recipient: str


def human(size: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} B"


def make_input(directory: Path, size: int) -> Path:
    path = directory / f"input-{size}.bin"
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(WRITE_BLOCK, left)
            f.write(os.urandom(n))
            left -= n
    return path


def clean_env(tmp: Path) -> dict[str, str]:
    """The caller's environment without INTAKE_* settings; temp files go to tmp."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("INTAKE_")}
    env["TMPDIR"] = str(tmp)
    return env


def prepare(root: Path) -> Workspace:
    workstation, keys = root / "workstation", root / "server-keys"
    keys.mkdir()
    cheap = teamkeys.KdfCost(pwhash.argon2id.OPSLIMIT_MIN, pwhash.argon2id.MEMLIMIT_MIN)
    pub, _ = teamkeys.generate("bench", workstation, b"bench passphrase, not secret", cheap)
    pub.replace(keys / pub.name)  # the server's keys folder holds public keys only
    identity = root / "age-identity.txt"
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    recipient = subprocess.run(["age-keygen", "-y", str(identity)], check=True,
                               capture_output=True, text=True).stdout.strip()
    return Workspace(root, keys, identity, recipient)


def envelope_bounds(size: int) -> tuple[int, int]:
    """An envelope's size: header, content and metadata, 17 bytes per 64 KiB chunk."""
    header = len(envelope.MAGIC) + 2 + envelope.STANZA_BYTES + secretstream.HEADER_BYTES
    low = header + size + -(-size // envelope.CHUNK) * secretstream.ABYTES
    return low, low + envelope.MAX_METADATA + 4 + 2 * secretstream.ABYTES


def intake_submission(ws: Workspace, parts: list[Part],
                      max_upload: int) -> tuple[Measurement, list[int]]:
    """One submission to a fresh `intake serve`: what it cost, and its envelopes' sizes."""
    data = ws.root / "intake-data"
    env = {**clean_env(ws.root), "INTAKE_DATA_DIR": str(data),
           "INTAKE_KEYS_DIR": str(ws.keys_dir), "INTAKE_MAX_UPLOAD": str(max_upload)}
    server = Server([str(VENV_BIN / "intake"), "serve", "--host", "127.0.0.1",
                     "--workers", "1"], env, ws.root / "intake-server.log")
    try:
        server.wait_ready()
        token, cookie = get_form(server.port)
        worker = server.worker_pid()
        before, cpu = status_kib(worker, "VmHWM"), cpu_seconds(worker)
        reply = post_multipart(server.port, "/en/submit",
                               [Part("csrf_token", token), *parts], cookie)
        peak, cpu = status_kib(worker, "VmHWM"), cpu_seconds(worker) - cpu
    finally:
        server.stop()
    if reply.status != 200:
        raise RuntimeError(f"Intake answered {reply.status}; its log ends:\n"
                           f"{server.log_tail()}")
    if len(codename_in(reply.body)) < 7:
        raise RuntimeError("Intake's answer shows no codename")
    stored = sorted((data / "store").glob("*.env"))
    sizes = [p.stat().st_size for p in stored]
    shutil.rmtree(data)
    return Measurement(INTAKE, 0, reply.seconds, cpu, peak, before), sizes


def bench_intake(ws: Workspace, source: Path, size: int) -> Measurement:
    # Random bytes cannot be cleaned: kept as received (the witness ticks
    # "keep originals"), the envelope written as it arrived is the one stored.
    m, stored = intake_submission(ws, [Part("testimony", ""), Part("keep_original", "y"),
                                       Part("files", path=source, filename="bench.bin")],
                                  size + 64 * 1024**2)
    low, high = envelope_bounds(size)
    if len(stored) != 1 or not low <= stored[0] <= high:
        raise RuntimeError(f"expected one envelope of {low}..{high} bytes in the store, "
                           f"found sizes {stored}")
    return Measurement(INTAKE, size, m.seconds, m.cpu, m.peak_kib, m.before_kib)


def bench_intake_text_only(ws: Workspace) -> Measurement:
    """A submission with no file: what the worker needs apart from the upload."""
    m, stored = intake_submission(ws, [Part("testimony", "A short testimony.")], 1024**2)
    if len(stored) != 1:
        raise RuntimeError(f"expected one envelope for the testimony, found {len(stored)}")
    return m


def bench_plain(ws: Workspace, source: Path, size: int) -> Measurement:
    saved = ws.root / "plain-uploads"
    saved.mkdir()
    server = Server([sys.executable, str(BENCH / "plain_flask_app.py"),
                     "--upload-dir", str(saved)], clean_env(ws.root),
                    ws.root / "plain-server.log")
    try:
        server.wait_ready()
        worker = server.worker_pid()
        before, cpu = status_kib(worker, "VmHWM"), cpu_seconds(worker)
        reply = post_multipart(server.port, "/upload",
                               [Part("f", path=source, filename="bench.bin")])
        peak, cpu = status_kib(worker, "VmHWM"), cpu_seconds(worker) - cpu
    finally:
        server.stop()
    if reply.status != 200 or (saved / "upload.bin").stat().st_size != size:
        raise RuntimeError(f"the plain app answered {reply.status}; its log ends:\n"
                           f"{server.log_tail()}")
    shutil.rmtree(saved)
    return Measurement(PLAIN, size, reply.seconds, cpu, peak, before)


def bench_age(ws: Workspace, source: Path, size: int) -> Measurement:
    out = ws.root / "age-output.age"
    started = time.perf_counter()
    proc = subprocess.Popen(["age", "-r", ws.age_recipient, "-o", str(out), str(source)])
    try:
        # wait4 rather than wait: it hands back the child's own CPU time and peak
        # RSS (KiB on Linux).
        _, status, usage = os.wait4(proc.pid, 0)
    except BaseException:
        proc.kill()
        proc.wait()
        raise
    seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0 or out.stat().st_size < size:
        raise RuntimeError(f"age failed with {proc.returncode}")
    out.unlink()
    return Measurement(AGE, size, seconds, usage.ru_utime + usage.ru_stime,
                       usage.ru_maxrss, None)


RUNNERS = {INTAKE: bench_intake, PLAIN: bench_plain, AGE: bench_age}


def summarize(runs: list[Measurement], sizes: list[int]) -> list[Measurement]:
    """Per tool and size: median times and the highest peaks over the repeats."""
    rows = []
    for size in sizes:
        for tool in TOOLS:
            mine = [m for m in runs if m.tool == tool and m.size == size]
            befores = [m.before_kib for m in mine if m.before_kib is not None]
            rows.append(Measurement(tool, size, statistics.median(m.seconds for m in mine),
                                    statistics.median(m.cpu for m in mine),
                                    max(m.peak_kib for m in mine),
                                    max(befores) if befores else None))
    return rows


def mb(kib: int) -> str:
    return f"{kib * 1024 / MB:.0f}"


def table(rows: list[Measurement], repeat: int) -> str:
    median = "" if repeat == 1 else f" (median of {repeat})"
    lines = [f"| what | size | seconds{median} | MB/s | CPU seconds{median} | peak RSS (MB) "
             "| process measured | its peak before the upload (MB) |",
             "| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: |"]
    for m in rows:
        who = "age" if m.tool == AGE else "gunicorn worker"
        before = "" if m.before_kib is None else mb(m.before_kib)
        lines.append(f"| {m.tool} | {human(m.size)} | {m.seconds:.2f} | "
                     f"{m.size / MB / m.seconds:.0f} | {m.cpu:.2f} | {mb(m.peak_kib)} | "
                     f"{who} | {before} |")
    return "\n".join(lines)


def verdicts(rows: list[Measurement], size: int, text_only: Measurement) -> str:
    full = {m.tool: m for m in rows if m.size == size}
    speedup = full[PLAIN].seconds / full[INTAKE].seconds
    worst = max(m.peak_kib for m in rows if m.tool == INTAKE) * 1024 / MB
    met = {True: "met", False: "not met"}
    return "\n".join([
        f"- Intake vs plain Flask at {human(size)}: {speedup:.2f}x the throughput "
        f"(goal {GOAL_SPEEDUP}x: {met[speedup >= GOAL_SPEEDUP]}); CPU "
        f"{full[INTAKE].cpu:.2f} s vs {full[PLAIN].cpu:.2f} s.",
        f"- Intake worker's peak RSS: {worst:.0f} MB at most "
        f"(goal under {GOAL_PEAK_MB} MB: {met[worst < GOAL_PEAK_MB]}). The same worker "
        f"peaks at {mb(text_only.peak_kib)} MB on a text-only submission (no file), "
        f"from {mb(text_only.before_kib or 0)} MB before it.",
        f"- age from disk at {human(size)}: "
        f"{full[INTAKE].seconds / full[AGE].seconds:.1f}x as fast as Intake's upload.",
    ])


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.machine()


def machine() -> str:
    age = subprocess.run(["age", "--version"], capture_output=True, text=True).stdout.strip()
    versions = ", ".join(f"{p} {metadata.version(p)}"
                         for p in ("gunicorn", "Werkzeug", "Flask", "PyNaCl"))
    mem = Path("/proc/meminfo").read_text().split()[1]
    return (f"{os.cpu_count()} CPUs (nproc), {cpu_model()}, "
            f"{int(mem) // 1024**2} GiB RAM; Linux {platform.release()}; "
            f"Python {platform.python_version()}; {versions}; age {age}")


def intake_server(ws: Workspace, name: str, **settings: str) -> Server:
    data = ws.root / f"{name}-data"
    env = {**clean_env(ws.root), "INTAKE_DATA_DIR": str(data),
           "INTAKE_KEYS_DIR": str(ws.keys_dir),
           **{f"INTAKE_{k.upper()}": v for k, v in settings.items()}}
    server = Server([str(VENV_BIN / "intake"), "serve", "--host", "127.0.0.1",
                     "--workers", "1"], env, ws.root / f"{name}.log")
    server.wait_ready()
    return server


def bench_slow_clients(ws: Workspace, seconds: float) -> list[SlowResult]:
    results = []
    server = intake_server(ws, "slow-intake")
    try:
        results.append(slow_clients("Intake (event-driven front)", App(server.port, True),
                                    seconds))
    finally:
        server.stop()
    saved = ws.root / "slow-plain"
    saved.mkdir()
    plain = Server([sys.executable, str(BENCH / "plain_flask_app.py"), "--upload-dir",
                    str(saved)], clean_env(ws.root), ws.root / "slow-plain.log")
    try:
        plain.wait_ready()
        results.append(slow_clients("plain Flask on gunicorn gthread (16 threads)",
                                    App(plain.port, False), seconds))
    finally:
        plain.stop()
    for r in results:
        print(f"slow clients, {r.design}: receipts in {r.median:.2f} s median, "
              f"{r.worst:.2f} s worst, {r.failures} without one; 50 MB "
              f"{_each(r.alone)} s alone, {_each(r.loaded)} s under load", flush=True)
    return results


def bench_flood(ws: Workspace, seconds: float) -> FloodResult:
    server = intake_server(ws, "flood", daily_upload_bytes="64M")
    store = ws.root / "flood-data" / "store"
    try:
        result = flood(App(server.port, True),
                       lambda: sum(p.stat().st_size for p in store.glob("*.env")), seconds)
    finally:
        server.stop()
    print(f"flood: {result.sent} sent, {result.accepted} kept, {result.refused} refused, "
          f"{result.stored_mb:.0f} MB stored", flush=True)
    return result


def _seconds(x: float | None) -> str:
    return "none in time" if x is None or x != x else f"{x:.2f}"


def _each(times: list[float | None]) -> str:
    return ", ".join("none" if t is None else f"{t:.2f}" for t in times)


def slow_report(results: list[SlowResult], seconds: float) -> str:
    rows = ["| design | new witnesses | receipt, median (s) | receipt, worst (s) | "
            "without a receipt in 30 s | 50 MB alone, median (s) | 50 MB under the load, "
            "median (s) | each 50 MB upload alone; under the load (s) | "
            "slow connections dropped |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |"]
    for r in results:
        rows.append(f"| {r.design} | {len(r.receipts)} | {_seconds(r.median)} | "
                    f"{_seconds(r.worst)} | {r.failures} | {_seconds(r.alone_50mb)} | "
                    f"{_seconds(r.loaded_50mb)} | {_each(r.alone)}; {_each(r.loaded)} | "
                    f"{r.dropped} |")
    ours = results[0]
    ratio = (ours.loaded_50mb / ours.alone_50mb) if ours.loaded_50mb and ours.alone_50mb \
        else float("inf")
    verdict = (f"- Intake under the load: worst receipt {_seconds(ours.worst)} s (goal under "
               f"5 s: {'met' if ours.worst < 5 else 'not met'}); the 50 MB upload "
               f"{ratio:.2f}x its time alone, medians of three (goal at most 2x: "
               f"{'met' if ratio <= 2 else 'not met'}).")
    return f"""## Slow clients

For {seconds:.0f} s, one worker held by 100 connections that sent half a
request head and stalled, 30 that sent a head and 20 KB of a body and
stalled (each reopened as soon as it was dropped, so the numbers held), and
32 uploads going steadily at 50 KB/s (each client's first upload 1/32 to
32/32 of the 6 MB, so that they end at different moments rather than all
at once). Meanwhile a new witness opened the
form and sent a testimony with a 100 KB file every 5 s (ticking "keep
originals", so the file is stored as received); at the end, still
under the load, a 50 MB upload at full speed three times, against the same
upload alone three times before (medians). Same clients, same machine, same
run for both designs (bench/slow_clients.py).

{chr(10).join(rows)}

{verdict}
"""


def flood_report(result: FloodResult, seconds: float) -> str:
    worst = max(result.witness_receipts) if result.witness_receipts else float("nan")
    table = "\n".join([
        "| submissions sent | kept | refused (quota) | MB of envelopes stored | "
        "witness testimonies | witness receipt, worst (s) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
        f"| {result.sent} | {result.accepted} | {result.refused} | "
        f"{result.stored_mb:.0f} | {len(result.witness_receipts)} | {worst:.2f} |"])
    return f"""## Flood

For {seconds:.0f} s, 8 clients sent valid submissions with a 2 MB file each (to
be kept as received) as fast as they could, against a daily upload quota of 64 MiB
(`daily_upload_bytes`), while a witness sent a testimony every half second.

{table}

Past the quota, a submission with files is refused before its body is read;
testimony alone is still taken, so the witness kept getting receipts.
"""


def busy_note(loads: tuple[str, str]) -> str:
    """Says so when other work held the CPUs: then the upload rows, which
    need both cores for Intake's pipeline, are no measure of the code."""
    cpus = os.cpu_count() or 1
    worst = max(float(x.split()[0]) for x in loads)
    if worst <= cpus:
        return ""
    return (f"\nOther work shared the machine during this run (load average up to "
            f"{worst:.1f} on {cpus} CPUs): wall times and the throughput ratio are "
            "worse than on a quiet machine, Intake's most, as its upload is three "
            "streams of work that need both cores (bench/README.md).\n")


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def report(rows: list[Measurement], text_only: Measurement, args: argparse.Namespace,
           loads: tuple[str, str]) -> str:
    command = "make bench" + (f' BENCH_ARGS="{" ".join(sys.argv[1:])}"' if sys.argv[1:] else "")
    return f"""# Upload benchmark

Measured on {dt.date.today().isoformat()} with `{command}`.

Machine: {machine()}. Load average (1, 5, 15 min) before the run: {loads[0]};
after: {loads[1]}.

{table(rows, args.repeat)}

{verdicts(rows, args.size, text_only)}
{busy_note(loads)}
How it is measured: one random file, uploaded over 127.0.0.1 as a streamed
multipart POST with a known Content-Length (the client never holds the file in
memory). Seconds are the client's wall time from the first byte sent to the
last byte of the answer, so Intake's row includes sealing the envelope,
fsyncing it and committing the queue row. CPU seconds are the worker's (or
age's) user plus system time over the same span; they move less than wall time
when other work shares the machine. MB is 10^6 bytes. Each server is started
fresh for each measurement, and measured a second after its worker is up
(Intake's worker starts its cleaners' sandbox as it begins to serve, about
0.3 s of loading that a running server has behind it), with one gunicorn
worker on intake.server's settings: Intake on its event-driven front
(intake.server.front), the plain app on gunicorn's threaded worker
(gthread) and without Intake's own
start-up hook (post_fork), as a plain Flask app is deployed. Its peak RSS
is the worker's VmHWM after the upload, which covers everything it held
since it started. age's is its maximum RSS (wait4).

What each server does with the file: the plain Flask app saves with
`request.files['f'].save()`: Werkzeug's parser reads the body from gunicorn
in 64 KiB pieces and spools the file to a temporary file (past 500 KB), and
`save()` copies that to its place, so the file is written twice to the page
cache, in clear, and never fsynced; it keeps nothing else. Intake (the
witness ticks "keep originals", as a file that cannot be cleaned is
otherwise held for the receipt to ask) reads the body straight into the
connection's buffer in the worker's event loop and parses it there as it
arrives; the file's bytes are sealed in batches in a sealing thread while
the batch before is hashed (the bytes received and the envelope) in a
hashing thread (intake/server/front.py, intake/server/upload_spool.py). The
envelope is written once and fsynced before the answer; the cleaner's
sandbox looks at the file's first bytes, the codename is derived (two keyed hashes)
and the queue row committed. On a small virtual machine single runs vary by
a quarter either way, hence the medians.
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("1G"),
                        help="size of the uploaded file, e.g. 1G or 64M (default 1G)")
    parser.add_argument("--small-size", type=parse_size, default=parse_size("64M"),
                        help="a second, smaller size to show memory stays flat; "
                             "0 to skip (default 64M)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs per tool and size; the table shows medians (default 3)")
    parser.add_argument("--slow-seconds", type=float, default=120,
                        help="how long the slow clients hold the server; 0 to skip "
                             "(default 120)")
    parser.add_argument("--flood-seconds", type=float, default=30,
                        help="how long the flood lasts; 0 to skip (default 30)")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="Markdown file to write (default bench/RESULTS.md)")
    args = parser.parse_args()
    if args.repeat < 1 or args.size < 1:
        parser.error("--size and --repeat must be positive")
    sizes = sorted({args.size} | ({args.small_size} if 0 < args.small_size < args.size else set()))
    # A TERM (make interrupted, CI timeout) unwinds through the finally blocks.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    runs: list[Measurement] = []
    loads = [load_average()]
    with tempfile.TemporaryDirectory(prefix="intake-bench-") as tmp:
        ws = prepare(Path(tmp))
        inputs = {size: make_input(ws.root, size) for size in sizes}
        text_only = bench_intake_text_only(ws)
        for round_ in range(args.repeat):
            for size in sizes:
                for tool in TOOLS:
                    m = RUNNERS[tool](ws, inputs[size], size)
                    print(f"[{round_ + 1}/{args.repeat}] {tool:<24} {human(m.size):>7} "
                          f"{m.seconds:7.2f} s {m.size / MB / m.seconds:6.0f} MB/s "
                          f"CPU {m.cpu:6.2f} s  peak {mb(m.peak_kib)} MB", flush=True)
                    runs.append(m)
        slow = bench_slow_clients(ws, args.slow_seconds) if args.slow_seconds else []
        flooded = bench_flood(ws, args.flood_seconds) if args.flood_seconds else None
    loads.append(load_average())
    text = report(summarize(runs, sizes), text_only, args, (loads[0], loads[1]))
    if slow:
        text += "\n" + slow_report(slow, args.slow_seconds)
    if flooded is not None:
        text += "\n" + flood_report(flooded, args.flood_seconds)
    print("\n" + text)
    args.results.write_text(text)
    print(f"written to {args.results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
