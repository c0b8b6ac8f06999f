"""`make demo`: a demo team key, the embedded defaults, and the server on 127.0.0.1.

Everything lives under ./demo: the data folder, the public key the server
seals to, and (for the demo only, never on a real server) the private key and
its passphrase file, so the one printed command can decrypt what arrives.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = Path(os.environ.get("INTAKE_DEMO_DIR", ROOT / "demo")).resolve()
HOST, PORT = "127.0.0.1", int(os.environ.get("INTAKE_DEMO_PORT", "8080"))


def main() -> int:
    from intake.format import teamkeys

    keys, workstation = DEMO / "server-keys", DEMO / "workstation"
    passfile = workstation / "demo.passphrase"
    if not (keys / "demo.pub").exists():
        workstation.mkdir(parents=True, exist_ok=True)
        passphrase = "-".join(secrets.token_hex(3) for _ in range(4))
        passfile.write_text(passphrase + "\n")
        passfile.chmod(0o600)
        teamkeys.generate("demo", workstation, passphrase.encode(), teamkeys.MODERATE)
        keys.mkdir(parents=True, exist_ok=True)
        (workstation / "demo.pub").replace(keys / "demo.pub")
    env = {**os.environ, "INTAKE_DATA_DIR": str(DEMO / "data"), "INTAKE_KEYS_DIR": str(keys)}
    intake = [sys.executable, "-m", "intake"]
    cli = Path(sys.executable).with_name("intake")
    bundle = DEMO / "bundle.tar"
    print(f"""
Intake demo
  witness form:   http://{HOST}:{PORT}/
  data folder:    {DEMO / 'data'}   (ciphertext and the SQLite database only)
  server key:     {keys / 'demo.pub'}

When something has arrived, export the queue and decrypt it (in another terminal):

  INTAKE_DATA_DIR={DEMO / 'data'} INTAKE_KEYS_DIR={keys} \\
  {cli} queue export --out {bundle} && \\
  {cli} decrypt {bundle} --key {workstation / 'demo.key'} \\
      --passphrase-file {passfile} --out {DEMO / 'decrypted'}

(A real team keeps demo.key on the air-gapped workstation, never beside the server.)
Stop the server with Ctrl-C.
""", flush=True)
    return subprocess.call([*intake, "serve", "--host", HOST, "--port", str(PORT)], env=env)


if __name__ == "__main__":
    sys.exit(main())
