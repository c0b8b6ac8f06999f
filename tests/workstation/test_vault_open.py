"""Opening the vault while another connection to it is open in the same
process (the desk opens it per request, in threads): the open connection
keeps the locks SQLite holds, so another process (a command run beside the
desk) cannot checkpoint or reset the log under it."""

from __future__ import annotations

import os

from intake.workstation.vault import Vault


def _locks_on(path) -> list[str]:
    """This process's POSIX locks on `path`, from /proc/locks."""
    st = os.stat(path)
    inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    with open("/proc/locks") as f:
        return [line for line in f
                if line.split()[4] == str(os.getpid()) and line.split()[5] == inode]


def test_opening_the_vault_again_keeps_the_locks_of_a_connection_already_open(tmp_path):
    root = tmp_path / "vault"
    first = Vault(root)
    try:
        first.conn.execute("SELECT COUNT(*) FROM items").fetchone()
        shm = root / "vault.db-shm"
        held = _locks_on(shm)
        assert held, "SQLite holds a lock on the shared-memory file while connected"
        for _ in range(3):
            Vault(root).close()
        assert _locks_on(shm) == held
        first.conn.execute("BEGIN IMMEDIATE")
        first.conn.execute("COMMIT")
    finally:
        first.close()


def test_the_database_files_stay_private_and_links_are_refused(tmp_path):
    root = tmp_path / "vault"
    Vault(root).close()
    os.chmod(root / "vault.db", 0o644)
    with Vault(root) as vault:
        vault.conn.execute("SELECT 1").fetchone()
    for name in ("vault.db", "vault.db-wal", "vault.db-shm"):
        if (root / name).exists():
            assert os.stat(root / name).st_mode & 0o777 == 0o600, name

