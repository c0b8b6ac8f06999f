"""Deleting a submission from the vault: its files, its index rows and its triage
data go; the custody log keeps the record of what was deleted, by whom and why."""

from __future__ import annotations

from intake.workstation import custody
from intake.workstation.triage import TriageError
from intake.workstation.vault import Vault, valid_id


def delete_submission(vault: Vault, submission_id: str, reason: str,
                      actor: str | None = None) -> int:
    """Returns how many items were deleted."""
    if not reason.strip():
        raise TriageError("give a reason for the deletion; it goes into the custody log")
    with vault.transaction() as conn:
        if conn.execute("SELECT 1 FROM submissions WHERE submission_id = ?",
                        (submission_id,)).fetchone() is None:
            raise TriageError(f"no submission {submission_id} in this vault")
        items = conn.execute("SELECT item_id, sha256_kept FROM items WHERE submission_id = ?",
                             (submission_id,)).fetchall()
        # Remembered so that importing the same bundle again does not bring it back.
        conn.executemany("INSERT OR IGNORE INTO deleted_items (item_id) VALUES (?)",
                         [(r["item_id"],) for r in items])
        conn.execute("DELETE FROM search WHERE submission_id = ?", (submission_id,))
        conn.execute("DELETE FROM submission_items WHERE submission_id = ?", (submission_id,))
        conn.execute("DELETE FROM items WHERE submission_id = ?", (submission_id,))
        conn.execute("DELETE FROM submissions WHERE submission_id = ?", (submission_id,))
        custody.append(conn, "deletion", f"submission:{submission_id}",
                       {"reason": reason.strip(),
                        "items": {r["item_id"]: r["sha256_kept"] for r in items}}, actor)
    for r in items:
        vault.items.unlink(valid_id(r["item_id"]))
    return len(items)
