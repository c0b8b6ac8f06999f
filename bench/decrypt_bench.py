"""Decrypting on the workstation against `age -d`, in the same run.

Builds, through the real server path (the witness form, then `intake queue
export`), a bundle of 1 GiB of files (16 uploads of 64 MiB), and an age file
of a 1 GiB file from disk. Then, each in its own process and in turn:

    age -d -i IDENTITY -o OUT FILE.age                  (X25519 identity, no passphrase)
    intake decrypt BUNDLE --key K --out DIR             (a fresh folder each time)
    intake vault import BUNDLE --key K --vault DIR      (a fresh vault each time)

Each row is the median of `--repeat` runs; each round starts with the next of
the three, in turn, and each tool with its input just read through, so that
all of it is in the page cache. The team key is made with the
cheapest Argon2id cost, as in bench/vault_bench.py, so the rows measure the
decryption, not the passphrase; unlocking a key file of `intake keygen`'s
default cost ("moderate", 256 MiB) is timed on its own row. The team key is
unlocked by a short-lived child process (intake.workstation.unlock): "own
peak" is the decrypting process's VmHWM, "its children's peak" the highest of
the processes it started (both polled every 20 ms).

Intake runs as an installed copy does, from compiled bytecode (pip compiles
a package as it installs it): a copy of the package under the run's
temporary folder, compiled there once before the first round, so that no
round pays for compiling it, nor its children, and the checkout is left as
it was.

    python bench/decrypt_bench.py [--size 1G] [--repeat 3] [--results FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
for path in (str(ROOT), str(HERE)):
    if path not in sys.path:
        sys.path.insert(0, path)

from measure import Run, timed  # noqa: E402
from run import human, load_average, machine  # noqa: E402
from vault_bench import PASSPHRASE  # noqa: E402

from intake.format import teamkeys  # noqa: E402
from intake.server.config import parse_size  # noqa: E402

FILE_SIZE = 64 * 1024 * 1024


def median(runs: list[Run]) -> Run:
    return Run(statistics.median(r.seconds for r in runs), statistics.median(r.cpu for r in runs),
               max(r.own_kib for r in runs), max(r.tree_kib for r in runs))


def build(root: Path, size: int) -> tuple[Path, Path, Path, Path]:
    """(bundle, key file, age file, age identity)."""
    subprocess.run([sys.executable, str(HERE / "vault_bench.py"), "--build-into", str(root),
                    "--texts", "0", "--files-size", str(size), "--file-size",
                    str(min(FILE_SIZE, size))], check=True, cwd=ROOT)
    plain = root / "plain.bin"
    with open(plain, "wb") as f:
        for _ in range(size // FILE_SIZE or 1):
            f.write(os.urandom(min(FILE_SIZE, size)))
    identity = root / "age.key"
    subprocess.run(["age-keygen", "-o", str(identity)], check=True, capture_output=True)
    recipient = next(line.split(": ")[1] for line in identity.read_text().splitlines()
                     if line.startswith("# public key"))
    subprocess.run(["age", "-e", "-r", recipient, "-o", str(root / "plain.age"), str(plain)],
                   check=True)
    plain.unlink()
    return root / "bundle.tar", root / "workstation" / "bench.key", root / "plain.age", identity


# Per row: against age -d, against its second run, and the lowest and the
# highest of the rounds against that second run.
Speeds = dict[str, tuple[float, float, float, float]]


def ratios(runs: dict[str, list[Run]], name: str, base: str = "age") -> list[float]:
    """`base`'s seconds over this row's, round by round: each round runs them
    one after the other, so a change in the machine's load between rounds
    moves both."""
    return [a.seconds / r.seconds for a, r in zip(runs[base], runs[name], strict=True)]


def paired(runs: dict[str, list[Run]], name: str, base: str = "age") -> float:
    """The median of ratios() over the rounds."""
    return statistics.median(ratios(runs, name, base))


def installed(root: Path) -> dict[str, str]:
    """An environment in which Intake runs as an installed copy does: from a
    copy of the package under root/installed, compiled there once (pip
    compiles a package as it installs it), its dependencies from their own
    compiled files. The checkout is not written to. (A PYTHONPYCACHEPREFIX
    would not do: Python then looks for every module's bytecode there, the
    standard library's included, and the workstation's children, which
    write none, would compile each module only they import at every run.)"""
    copy = root / "installed"
    shutil.copytree(ROOT / "intake", copy / "intake",
                    ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPYCACHEPREFIX")}
    env["PYTHONPATH"] = str(copy)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(copy / "intake")],
                   env=env, check=True)
    return env


def measure(size: int, repeat: int) -> tuple[dict[str, Run],
                                             Speeds]:
    with tempfile.TemporaryDirectory(prefix="intake-decrypt-bench-") as tmp:
        root = Path(tmp)
        bundle, key, age_file, identity = build(root, size)
        passfile = key.parent / "passphrase"
        passfile.write_text(PASSPHRASE + "\n")
        intake = [sys.executable, "-m", "intake"]
        env = installed(root)
        keys = ["--key", str(key), "--passphrase-file", str(passfile)]
        out = root / "out"
        commands = {
            "age": ["age", "-d", "-i", str(identity), "-o", str(out), str(age_file)],
            "decrypt": [*intake, "decrypt", str(bundle), *keys, "--out", str(out)],
            "import": [*intake, "vault", "import", str(bundle), *keys, "--vault", str(out)],
        }
        commands["age again"] = commands["age"]
        inputs = {"age": age_file, "age again": age_file, "decrypt": bundle,
                  "import": bundle}
        names = ["age", "decrypt", "import"]
        runs: dict[str, list[Run]] = {name: [] for name in commands}
        for n in range(repeat):
            # Each round starts with the next tool: the one that runs first, or
            # right after a given other, is not always the same. age -d runs a
            # second time at once, on the pages its first run just gave back.
            for name in names[n % 3:] + names[:n % 3]:
                for one in (name, "age again") if name == "age" else (name,):
                    runs[one].append(timed(commands[one], None if name == "age" else env,
                                           inputs[one], cwd=root))
                    if out.is_dir():
                        shutil.rmtree(out)
                    else:
                        out.unlink()
        moderate = root / "moderate"
        teamkeys.generate("moderate", moderate, PASSPHRASE.encode(), teamkeys.MODERATE)
        unlock = [sys.executable, "-c", "import sys; from pathlib import Path; "
                  "from intake.workstation.unlock import load_private_key as load; "
                  "load(Path(sys.argv[1]), sys.argv[2].encode())",
                  str(moderate / "moderate.key"), PASSPHRASE]
        runs["unlock"] = [timed(unlock, env, cwd=root) for _ in range(repeat)]
        return ({name: median(r) for name, r in runs.items()},
                {name: (paired(runs, name), paired(runs, name, "age again"),
                        min(ratios(runs, name, "age again")),
                        max(ratios(runs, name, "age again")))
                 for name in ("decrypt", "import")})


def table(rows: dict[str, Run], speeds: Speeds, size: int) -> str:
    labels = {"age": "age -d", "age again": "age -d, run again at once",
              "decrypt": "intake decrypt", "import": "intake vault import",
              "unlock": "unlocking a key file of keygen's default cost"}
    lines = ["| what | size | seconds (median) | MB/s | CPU seconds | own peak RSS (MB) "
             "| its children's peak (MB) | speed against age -d (median of rounds) "
             "| against age -d run again at once |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for name in labels:
        r = rows[name]
        sized = name != "unlock"
        speed = (f"{speeds[name][0]:.2f}x | {speeds[name][1]:.2f}x" if name in speeds
                 else " | ")
        lines.append(f"| {labels[name]} | {human(size) if sized else ''} | {r.seconds:.2f} "
                     f"| {size / r.seconds / 1e6:.0f} | " if sized else
                     f"| {labels[name]} | | {r.seconds:.2f} | | ")
        lines[-1] += (f"{r.cpu:.2f} | {r.own_kib / 1024:.0f} | {r.tree_kib / 1024:.0f} "
                      f"| {speed} |")
    return "\n".join(lines)


def spread(speed: tuple[float, float, float, float]) -> str:
    return f"rounds from {speed[2]:.2f}x to {speed[3]:.2f}x"


def report(rows: dict[str, Run], speeds: Speeds, size: int,
           repeat: int,
           loads: tuple[str, str]) -> str:
    command = "python bench/decrypt_bench.py" + (f" {' '.join(sys.argv[1:])}"
                                                  if sys.argv[1:] else "")
    decrypt, imported = rows["decrypt"], rows["import"]
    return f"""# Decrypting against age -d

Measured on {dt.date.today().isoformat()} with `{command}` (medians of {repeat}).

Machine: {machine()}. Load average (1, 5, 15 min) before the run: {loads[0]};
after: {loads[1]}.

{table(rows, speeds, size)}

Speed against age -d is the median over the rounds of age's seconds over
Intake's in the same round (each round runs age -d, decrypt and import one
after the other, starting with the next of them each round, each after a sync
and with its input just read into the page cache); Intake runs from compiled
bytecode, as installed; CPU seconds count every thread and child. age -d's
second run in each round follows its first at once, and writes its 1 GiB
into the page-cache pages the first one's output just gave back: on a
virtual machine whose host takes back memory the guest left free, fresh
pages cost age far more than reused ones (bench/README.md). Intake reuses a
few MiB of pages as it writes, either way.

- intake decrypt: {speeds["decrypt"][0]:.2f}x the speed of age -d, {speeds["decrypt"][1]:.2f}x
  that of age -d run again at once ({spread(speeds["decrypt"])}; goal 1.0x); its own peak
  {decrypt.own_kib / 1024:.0f} MB (goal under 64 MB).
- intake vault import: {speeds["import"][0]:.2f}x the speed of age -d, {speeds["import"][1]:.2f}x
  that of age -d run again at once ({spread(speeds["import"])}); its own
  peak {imported.own_kib / 1024:.0f} MB. It does more than decrypt: both SHA-256s (the
  envelope's and the content's), its files made durable before each batch
  commits, the database.
- A key file of keygen's default cost takes {rows['unlock'].seconds:.1f} s to unlock, in a
  child that peaks at {rows['unlock'].tree_kib / 1024:.0f} MB and exits before decrypting
  starts; it is unlocked once per run.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("1G"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--results", type=Path, default=HERE / "RESULTS-decrypt.md")
    args = parser.parse_args(argv)
    before = load_average()
    rows, speeds = measure(args.size, args.repeat)
    text = report(rows, speeds, args.size, args.repeat, (before, load_average()))
    print(text)
    args.results.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
