"""The parsing sandbox's child: one hostile file in on stdin, one result out on
stdout, in a fresh interpreter that never held a key.

    python -m intake.workstation.parse_child JOB ARG LIMITS...

Started by intake.workstation.sandbox under `unshare -rnm` (its own user,
network and mount namespaces). Before it reads a byte it:

1. makes every mount it can see read-only, recursively (mount_setattr), so
   it can write nowhere on disk, the vault included;
2. gives up every capability, for itself and for anything it starts, and
   sets no_new_privs, so it cannot undo step 1 nor gain anything by exec;
3. sets its limits: CPU seconds, address space, file size, open files, no
   core file.

Jobs: `image FORMAT` (a preview PNG and a perceptual hash), `pdf -` and
`office MIME` (the words, for search). The answer is one frame:

    MAGIC | u32be(len(header)) | header (JSON) | u32be(len(body)) | body
"""

from __future__ import annotations

import ctypes
import json
import resource
import struct
import sys

MAGIC = b"INTAKEP1"
SYS_MOUNT_SETATTR = 442  # the same number on every architecture
MOUNT_ATTR_RDONLY = 0x1
AT_FDCWD = -100
AT_RECURSIVE = 0x8000
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
CAPABILITY_VERSION_3 = 0x20080522
EXIT_ISOLATION = 3


class _MountAttr(ctypes.Structure):
    _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                ("inheritable", ctypes.c_uint32)]


class IsolationFailed(Exception):
    pass


def _isolate() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    attr = _MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0)
    if libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, b"/", AT_RECURSIVE, ctypes.byref(attr),
                    ctypes.sizeof(attr)) != 0:
        raise IsolationFailed("read-only mounts")
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            break  # past the last capability this kernel knows
    if libc.capset(ctypes.byref(_CapHeader(CAPABILITY_VERSION_3, 0)), (_CapData * 2)()) != 0:
        raise IsolationFailed("capabilities")


def confine(limits: dict, isolated: bool) -> None:
    """Isolates this process (when `isolated`: it runs under `unshare -rnm`)
    and sets its limits: cpu_seconds, memory and max_input of `limits`."""
    if isolated:
        _isolate()
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise IsolationFailed("no_new_privs")
    # The input is copied into a memfd for pdftotext: no file may grow beyond it.
    for kind, value in ((resource.RLIMIT_CPU, limits["cpu_seconds"]),
                        (resource.RLIMIT_AS, limits["memory"]),
                        (resource.RLIMIT_FSIZE, limits["max_input"]),
                        (resource.RLIMIT_NOFILE, 64),
                        (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(kind, (value, value))


def _answer(header: dict, body: bytes = b"") -> None:
    head = json.dumps(header).encode()
    out = sys.stdout.buffer
    out.write(MAGIC + struct.pack(">I", len(head)) + head + struct.pack(">I", len(body)))
    out.write(body)
    out.flush()


def _read_input(limit: int) -> bytes | None:
    data = sys.stdin.buffer.read(limit + 1)
    return None if len(data) > limit else data


def _run(job: str, arg: str, data: bytes, limits: dict) -> None:
    if job == "image":
        from intake.workstation import images

        try:
            png, dhash, width, height = images.preview(data, arg, limits["max_pixels"])
        except images.TooManyPixels:
            _answer({"ok": False, "reason": "pixels"})
            return
        except images.NotAnImage:
            _answer({"ok": False, "reason": "broken"})
            return
        _answer({"ok": True, "dhash": dhash, "width": width, "height": height}, png)
        return
    from intake.workstation import document_text

    try:
        if job == "pdf":
            text = document_text.pdf_text(data, limits["max_text"], limits["cpu_seconds"])
        elif job == "office":
            text = document_text.office_text(data, arg, limits["max_text"])
        else:
            _answer({"ok": False, "reason": "unsupported"})
            return
    except document_text.Unreadable as exc:
        _answer({"ok": False, "reason": str(exc)})
        return
    _answer({"ok": True}, text.encode())


def main(argv: list[str]) -> int:
    job, arg, isolated, limits = argv[0], argv[1], argv[2] == "isolated", json.loads(argv[3])
    try:
        confine(limits, isolated)
    except (IsolationFailed, OSError, ValueError):
        _answer({"ok": False, "reason": "isolation"})
        return EXIT_ISOLATION
    try:
        data = _read_input(limits["max_input"])
        if data is None:
            _answer({"ok": False, "reason": "size"})
            return 0
        _run(job, arg, data, limits)
    except MemoryError:
        _answer({"ok": False, "reason": "memory"})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
