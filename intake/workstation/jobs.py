"""Long work started from the desk (case and reply exports), run in a thread of
the desk's process while the triager goes on; its page shows how far it got.

A job lives as long as the process that runs it; what it made is on disk and
in the custody log, so nothing is lost with it.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from intake.workstation import custody
from intake.workstation.refusals import N_, Refusal


@dataclass
class Job:
    job_id: str
    kind: str                       # "case" or "replies"
    title: str                      # the case's name, or "" for replies
    started_at: str
    state: str = "running"          # running, done, failed
    done: int = 0
    total: int = 0
    path: str = ""
    count: int = 0                  # files in the package, or replies in the bundle
    hashes: dict[str, str] = field(default_factory=dict)   # what -> SHA-256
    listing: str = ""               # a case package's SHA256SUMS
    error: Refusal | None = None     # why it failed, shown in the page's language
    finished_at: str = ""

    def progress(self, done: int, total: int) -> None:
        self.done, self.total = done, total


class Jobs:
    def __init__(self) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()

    def start(self, kind: str, title: str, work: Callable[[Job], None]) -> Job:
        job = Job(secrets.token_hex(8), kind, title, custody.now())
        with self._lock:
            self._jobs[job.job_id] = job
        threading.Thread(target=self._run, args=(job, work), daemon=True,
                         name=f"export-{job.job_id}").start()
        return job

    @staticmethod
    def _run(job: Job, work: Callable[[Job], None]) -> None:
        try:
            work(job)
        except Refusal as exc:
            job.error, job.state = exc, "failed"
        except Exception as exc:  # noqa: BLE001  (shown on the job's page, not lost in a thread)
            job.error = Refusal(N_("an unexpected error (%(detail)s)"),
                                detail=f"{type(exc).__name__}: {exc}")
            job.state = "failed"
        else:
            job.state = "done"
        job.finished_at = custody.now()

    def get(self, job_id: str) -> Job | None:
        with self._lock:
            return self._jobs.get(job_id)

    def all(self) -> list[Job]:
        with self._lock:
            return sorted(self._jobs.values(), key=lambda j: j.started_at, reverse=True)
