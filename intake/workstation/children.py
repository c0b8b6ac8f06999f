"""How the workstation starts other processes, and keeps them out of its memory.

A child is always a fresh interpreter (fork and exec, never a fork that goes
on running this process's code), with a clean environment. Before a key
enters this process, it is made non-dumpable: no core file, and no other
process without CAP_SYS_PTRACE in this process's namespace (a sandboxed
parser included) may read its memory through ptrace or /proc/PID/mem.
"""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

import intake

PACKAGE_ROOT = Path(intake.__file__).resolve().parents[1]
PR_SET_DUMPABLE = 4


def child_env() -> dict[str, str]:
    """A clean environment for a child interpreter: no inherited secrets or
    proxies, this copy of the package first on the path. It writes no
    bytecode; where this process reads its bytecode from a cache of its own
    (PYTHONPYCACHEPREFIX), the child reads the same, which was already trusted
    with everything this process holds."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8",
           "PYTHONPATH": str(PACKAGE_ROOT), "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONHASHSEED": "0"}
    if sys.pycache_prefix:
        env["PYTHONPYCACHEPREFIX"] = sys.pycache_prefix
    return env


def protect_process() -> bool:
    """Makes this process non-dumpable; False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False
