"""The triage desk over a caseload: list, filter, page and search 10,000 submissions.

Generates a vault of N submissions in four languages (tests/workstation/caseload.py:
rows written by the importer's own code, with the vault's language detection,
search index, previews and signed custody log), starts `intake vault serve` on
a free loopback port in its own process, opens the address it prints (its
token exchanged for the run's cookie, as a browser does), and times each page
over HTTP with that cookie: the median of five requests after one to warm up,
the whole response read. Goals: a list page (any filter, any page) under
0.5 s; a search under 1 s.

    python bench/desk_bench.py [--submissions 10000] [--out bench/RESULTS-desk.md]
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parents[1]
for path in (ROOT, ROOT / "tests" / "workstation"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from caseload import generate  # noqa: E402

LIST_GOAL, SEARCH_GOAL = 0.5, 1.0
PAGES = [
    ("list, newest first, page 1", "/", LIST_GOAL),
    ("list, page 100", "/?page=100", LIST_GOAL),
    ("list, last page", "/?page=200", LIST_GOAL),
    ("language uk, oldest first, page 20", "/?language=uk&sort=oldest&page=20", LIST_GOAL),
    ("status new + priority urgent", "/?status=new&priority=3", LIST_GOAL),
    ("has files, sorted by priority, page 30", "/?has_files=yes&sort=priority&page=30",
     LIST_GOAL),
    ("sanitizer flag \"timed out\"", "/?flagged=timed+out", LIST_GOAL),
    ("received in one week", "/?day_from=2026-02-01&day_to=2026-02-07", LIST_GOAL),
    ("search \"дитина\" (uk forms)", "/?query=" + quote("дитина"), SEARCH_GOAL),
    ("search \"дитина\", page 5", "/?query=" + quote("дитина") + "&page=5", SEARCH_GOAL),
    ("search \"школа\", best match first", "/?query=" + quote("школа") + "&sort=relevance",
     SEARCH_GOAL),
    ("search \"салдаты\" (be) + status new", "/?query=" + quote("салдаты") + "&status=new",
     SEARCH_GOAL),
    ("search two words \"обстріл будинок\"", "/?query=" + quote("обстріл будинок"),
     SEARCH_GOAL),
]


# The desk's cookie, got by opening the address it prints, sent with every request.
BROWSER = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))


def _serve(vault: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-u", "-m", "intake", "vault", "serve", "--vault",
                             str(vault), "--port", "0"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    line = proc.stdout.readline()
    found = re.search(r"(http://127\.0\.0\.1:\d+)/\?token=\S+", line)
    if not found:
        raise SystemExit(f"the desk did not start: {line}")
    _time(found.group(0))  # the token, exchanged for the cookie
    return proc, found.group(1)


def _time(url: str) -> tuple[float, str]:
    start = time.perf_counter()
    with BROWSER.open(url, timeout=60) as response:
        body = response.read().decode()
    return time.perf_counter() - start, body


def measure(url: str, runs: int = 5) -> tuple[float, float, str]:
    _time(url)
    times, body = [], ""
    for _ in range(runs):
        t, body = _time(url)
        times.append(t)
    count = re.search(r'<p class="count" id="count">(.*?)</p>', body, re.S)
    return statistics.median(times), max(times), count.group(1).strip() if count else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=10_000)
    parser.add_argument("--out", type=Path, help="write the Markdown results here too")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="desk-bench-") as tmp:
        load = generate(Path(tmp), args.submissions)
        proc, base = _serve(load.root)
        try:
            rows = [(name, goal, *measure(base + path)) for name, path, goal in PAGES]
            witness = max(load.threads, key=lambda w: len(load.threads[w]))
            name = f"a witness's thread ({len(load.threads[witness])} submissions)"
            rows.append((name, LIST_GOAL, *measure(f"{base}/witness/{witness}")))
        finally:
            os.killpg(proc.pid, signal.SIGINT)
            proc.wait(timeout=30)
    lines = [f"Desk over {args.submissions:,} generated submissions (vault made in "
             f"{load.seconds:.1f} s), `intake vault serve` over HTTP on loopback; "
             "median and slowest of 5 requests after one to warm up.", "",
             "| page | median (s) | slowest (s) | goal (s) | met | what it showed |",
             "| --- | ---: | ---: | ---: | --- | --- |"]
    for name, goal, median, slowest, shown in rows:
        lines.append(f"| {name} | {median:.3f} | {slowest:.3f} | {goal} | "
                     f"{'yes' if slowest < goal else 'NO'} | {shown} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    main()
