"""The workstation's import: a bundle of 1,000 text submissions and 1 GiB of files.

Builds the bundle through the real server path (the witness form in the Flask
test client, then `intake queue export`), then times `intake vault import` in
its own process and polls its peak resident memory, and that of the highest
of its children (the text analyser, which loads the language models). The team key
is made with the cheapest Argon2id cost so that the number is the import's,
not the passphrase's (a real key adds about a second and 256 MiB once).

    python bench/vault_bench.py [--small] [--texts N] [--files-size 1G] [--file-size 64M]

`measure(...)` returns the numbers, `line(...)` one Markdown table row;
`main()` prints it (bench/run.py can call it too).
"""

from __future__ import annotations

import argparse
import io
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for path in (str(ROOT), str(HERE)):
    if path not in sys.path:
        sys.path.insert(0, path)

from measure import timed  # noqa: E402
from nacl import pwhash  # noqa: E402

from intake.format import teamkeys  # noqa: E402
from intake.server.config import load_config, parse_size  # noqa: E402

PASSPHRASE = "bench passphrase, not secret"
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
SAMPLE = ("Я бачив, як колона техніки пройшла через міст о світанку. ",
          "Я видел, как колонна техники прошла через мост на рассвете. ",
          "Я бачыў, як калона тэхнікі прайшла праз мост на світанні. ",
          "I saw a column of vehicles cross the bridge at dawn. ")


@dataclass(frozen=True)
class Result:
    texts: int
    files_bytes: int
    bundle_bytes: int
    build_seconds: float
    seconds: float
    own_kib: int       # the importing process's peak (it holds the key)
    children_kib: int  # the highest of its children's (the text analyser's, mostly)


def _submit(client, testimony: str, files: list[tuple[bytes, str]]) -> None:
    token = CSRF.search(client.get("/en/").get_data(as_text=True)).group(1)
    # Random bytes no cleaner handles: the server keeps them only when the
    # witness asks it to keep what cannot be cleaned.
    data = {"csrf_token": token, "testimony": testimony, "keep_original": "y",
            "files": [(io.BytesIO(body), name) for body, name in files]}
    page = client.post("/en/submit", data=data, content_type="multipart/form-data",
                       follow_redirects=True)  # taken: to the receipt
    if page.status_code != 200:
        raise RuntimeError(f"the server refused a submission ({page.status_code})")


def build_bundle(root: Path, texts: int, files_bytes: int, file_size: int) -> tuple[Path, Path]:
    """Returns (bundle, key file)."""
    from intake.server.queue import export
    from intake.server.witness import create_app

    cheap = teamkeys.KdfCost(pwhash.argon2id.OPSLIMIT_MIN, pwhash.argon2id.MEMLIMIT_MIN)
    pub, key = teamkeys.generate("bench", root / "workstation", PASSPHRASE.encode(), cheap)
    keys = root / "keys"
    keys.mkdir()
    pub.rename(keys / pub.name)
    config = load_config({}, data_dir=root / "server", keys_dir=keys, kdf_opslimit=1,
                         kdf_memlimit=8192)
    app = create_app(config)
    client = app.test_client()
    for i in range(texts):
        _submit(client, f"{SAMPLE[i % 4] * (1 + i % 7)}#{i}", [])
    left, n = files_bytes, 0
    while left > 0:
        size = min(file_size, left)
        _submit(client, f"Files, part {n}", [(os.urandom(size), f"recording-{n}.bin")])
        left, n = left - size, n + 1
    bundle = root / "bundle.tar"
    export(app.extensions["intake"], bundle)
    app.extensions["intake"].close()
    return bundle, key


def run_import(bundle: Path, key: Path, vault: Path) -> tuple[float, int, int]:
    """Seconds, and the peak RSS (KiB) of `intake vault import` and of the
    highest of its children, polled (measure.timed)."""
    passfile = key.parent / "passphrase"
    passfile.write_text(PASSPHRASE + "\n")
    cmd = [sys.executable, "-m", "intake", "vault", "import", str(bundle), "--key", str(key),
           "--passphrase-file", str(passfile), "--vault", str(vault)]
    run = timed(cmd)
    return run.seconds, run.own_kib, run.tree_kib


def measure(texts: int, files_bytes: int, file_size: int) -> Result:
    with tempfile.TemporaryDirectory(prefix="intake-vault-bench-") as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        # Built in another process: a child's peak memory counts its parent's at the
        # fork, and building holds whole files in memory.
        subprocess.run([sys.executable, __file__, "--build-into", str(root), "--texts",
                        str(texts), "--files-size", str(files_bytes), "--file-size",
                        str(file_size)], check=True, cwd=ROOT)
        bundle, key = root / "bundle.tar", root / "workstation" / "bench.key"
        built = time.perf_counter() - start
        seconds, own, kids = run_import(bundle, key, root / "vault")
        return Result(texts, files_bytes, bundle.stat().st_size, built, seconds, own, kids)


def _human(n: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= factor:
            return f"{n / factor:.1f} {unit}".replace(".0 ", " ")
    return f"{n} B"


HEADER = ("| vault import | bundle | seconds | MB/s | own peak memory | its children's peak |\n"
          "| --- | --- | --- | --- | --- | --- |")


def line(r: Result) -> str:
    return (f"| {r.texts:,} texts + {_human(r.files_bytes)} of files | {_human(r.bundle_bytes)} "
            f"| {r.seconds:.1f} | {r.bundle_bytes / r.seconds / 1e6:.0f} "
            f"| {r.own_kib / 1024:.0f} MiB | {r.children_kib / 1024:.0f} MiB |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true",
                        help="a quick run: 100 texts and 64 MiB of files")
    parser.add_argument("--texts", type=int, default=None, help="text submissions (1000)")
    parser.add_argument("--files-size", type=parse_size, default=None,
                        help="total size of the files (1G)")
    parser.add_argument("--file-size", type=parse_size, default=parse_size("64M"),
                        help="size of each file (64M)")
    parser.add_argument("--build-into", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    texts = args.texts if args.texts is not None else (100 if args.small else 1000)
    files = args.files_size if args.files_size is not None else \
        parse_size("64M" if args.small else "1G")
    if args.build_into:
        build_bundle(args.build_into, texts, files, min(args.file_size, files or 1))
        return 0
    result = measure(texts, files, min(args.file_size, files) if files else args.file_size)
    print(HEADER)
    print(line(result))
    print(f"(bundle built through the witness form in {result.build_seconds:.0f} s; "
          "not part of the import time)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
