"""What a cleaner child does to itself before it reads a byte of an upload:
a seccomp filter (no network sockets, no tracing, no new namespaces or
mounts, no io_uring) and a Landlock ruleset (read and run the system's and
Python's files; write and make nothing; the data folder, keys and database
unseen). Both stay in force for every tool the child starts (ffmpeg).

Both are kernel features an unprivileged process applies to itself, so they
hold inside the shipped systemd unit, where namespaces are refused. libseccomp
(Debian's libseccomp2) is called through ctypes: the only Python bindings are
Debian's, for the system Python, and an unmaintained ctypes wrapper of the
same library. Landlock has no library; its three system calls are called
directly.

`confine()` returns what it could apply; the caller decides whether less
than everything is acceptable (the child refuses to clean without seccomp).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import intake

# -- seccomp ------------------------------------------------------------------

SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_NE = 1


def SCMP_ACT_ERRNO(number: int) -> int:  # noqa: N802 - libseccomp's macro name
    return 0x00050000 | (number & 0xFFFF)


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


# Denied outright (EPERM): reading or writing other processes, new namespaces
# or mounts, kernel keyrings, BPF, perf, io_uring (it can open sockets behind
# seccomp's back) and userfaultfd (a classic exploit helper).
DENIED = ("ptrace", "process_vm_readv", "process_vm_writev", "unshare", "setns", "mount",
          "umount2", "pivot_root", "chroot", "move_mount", "open_tree", "fsopen", "fsmount",
          "keyctl", "add_key", "request_key", "bpf", "perf_event_open", "userfaultfd",
          "io_uring_setup", "io_uring_enter", "io_uring_register", "kexec_load",
          "init_module", "finit_module", "delete_module", "acct", "swapon", "swapoff")


_SECCOMP = None


def _libseccomp():
    """Loaded once, before limits and Landlock: loading maps the library."""
    global _SECCOMP
    if _SECCOMP is not None:
        return _SECCOMP
    # By its soname: find_library() would run a compiler in a temporary folder.
    lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                           ctypes.c_uint, ctypes.POINTER(_ArgCmp)]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    _SECCOMP = lib
    return lib


def prepare() -> None:
    """What must happen before the child lowers its limits: libseccomp loaded."""
    with contextlib.suppress(OSError):  # confine() reports it
        _libseccomp()


def apply_seccomp() -> None:
    """Sockets other than AF_UNIX fail with EACCES; DENIED calls with EPERM."""
    lib = _libseccomp()
    ctx = lib.seccomp_init(SCMP_ACT_ALLOW)
    if not ctx:
        raise OSError("seccomp_init failed")
    try:
        only_unix = (_ArgCmp * 1)(_ArgCmp(0, SCMP_CMP_NE, socket.AF_UNIX, 0))
        number = lib.seccomp_syscall_resolve_name(b"socket")
        if lib.seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(errno.EACCES), number, 1,
                                      only_unix) != 0:
            raise OSError("seccomp: cannot filter socket()")
        for name in DENIED:
            number = lib.seccomp_syscall_resolve_name(name.encode())
            if number < 0:
                continue  # not on this architecture
            if lib.seccomp_rule_add_array(ctx, SCMP_ACT_ERRNO(errno.EPERM), number, 0,
                                          None) != 0:
                raise OSError(f"seccomp: cannot filter {name}()")
        # libseccomp sets no_new_privs itself before it loads the filter.
        if lib.seccomp_load(ctx) != 0:
            raise OSError("seccomp_load failed")
    finally:
        lib.seccomp_release(ctx)


# -- Landlock -----------------------------------------------------------------

SYS_LANDLOCK_CREATE_RULESET, SYS_LANDLOCK_ADD_RULE, SYS_LANDLOCK_RESTRICT_SELF = 444, 445, 446
LANDLOCK_CREATE_RULESET_VERSION = 1
LANDLOCK_RULE_PATH_BENEATH = 1
PR_SET_NO_NEW_PRIVS = 38
# Access rights by ABI version (linux/landlock.h).
EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_V1 = (1 << 13) - 1  # execute .. make_sym
FS_BY_ABI = {1: FS_V1, 2: FS_V1 | 1 << 13, 3: FS_V1 | 1 << 13 | 1 << 14}
IOCTL_DEV = 1 << 15  # ABI 5
NET_BIND_TCP, NET_CONNECT_TCP = 1, 2  # ABI 4
SCOPE_ABSTRACT_UNIX, SCOPE_SIGNAL = 1, 2  # ABI 6


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64),
                ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.syscall.restype = ctypes.c_long


def landlock_abi() -> int:
    """The kernel's Landlock version, 0 when it has none (or it is off)."""
    version = _LIBC.syscall(SYS_LANDLOCK_CREATE_RULESET, None, ctypes.c_size_t(0),
                            ctypes.c_uint32(LANDLOCK_CREATE_RULESET_VERSION))
    return max(0, int(version))


DEV_NULL = Path("/dev/null")


def readable_roots() -> list[Path]:
    """What a cleaner may read and run: the system's programs and libraries,
    the Python installation, and this package; not /etc (beyond the loader's
    cache), /home, /var, /tmp or the service's data."""
    roots = {Path(p) for p in ("/usr", "/lib", "/lib64", "/bin", "/sbin",
                               "/etc/ld.so.cache", "/etc/localtime", "/dev/null",
                               "/dev/urandom")}
    roots |= {Path(sys.prefix), Path(sys.base_prefix), Path(intake.__file__).parent}
    for entry in sys.path:  # the virtualenv's site-packages, wherever it lives
        if entry.endswith(("site-packages", "dist-packages", ".zip")) or \
                Path(entry).name.startswith("python3"):
            roots.add(Path(entry))
    return sorted(r for r in roots if r.exists())


def apply_landlock(roots: list[Path] | None = None) -> int:
    """Restricts this process (and what it starts) to reading `roots`; returns
    the ABI used, 0 when the kernel has no Landlock."""
    abi = landlock_abi()
    if abi == 0:
        return 0
    handled = FS_BY_ABI.get(abi, FS_BY_ABI[3]) | (IOCTL_DEV if abi >= 5 else 0)
    attr = _RulesetAttr(handled, NET_BIND_TCP | NET_CONNECT_TCP if abi >= 4 else 0,
                        SCOPE_ABSTRACT_UNIX | SCOPE_SIGNAL if abi >= 6 else 0)
    size = ctypes.sizeof(_RulesetAttr) if abi >= 6 else (16 if abi >= 4 else 8)
    ruleset = _LIBC.syscall(SYS_LANDLOCK_CREATE_RULESET, ctypes.byref(attr),
                            ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        for root in roots if roots is not None else readable_roots():
            try:
                fd = os.open(root, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue
            try:
                allowed = EXECUTE | READ_FILE | (READ_DIR if root.is_dir() else 0)
                if root == DEV_NULL:  # tools open it for writing; it keeps nothing
                    allowed |= WRITE_FILE
                rule = _PathBeneath(allowed & handled, fd)
                if _LIBC.syscall(SYS_LANDLOCK_ADD_RULE, ctypes.c_int(ruleset),
                                 ctypes.c_int(LANDLOCK_RULE_PATH_BENEATH),
                                 ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
                    raise OSError(ctypes.get_errno(), f"landlock_add_rule {root}")
            finally:
                os.close(fd)
        if _LIBC.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "PR_SET_NO_NEW_PRIVS")
        if _LIBC.syscall(SYS_LANDLOCK_RESTRICT_SELF, ctypes.c_int(ruleset),
                         ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)
    return abi


@dataclass(frozen=True)
class Confinement:
    seccomp: bool
    landlock: int  # ABI version, 0 when none


def confine() -> Confinement:
    """Landlock first (it needs no_new_privs, which seccomp sets too), then
    seccomp, which forbids what Landlock's setup no longer needs."""
    try:
        landlock = apply_landlock()
    except OSError:
        landlock = 0
    try:
        apply_seccomp()
        seccomp = True
    except OSError:
        seccomp = False
    return Confinement(seccomp, landlock)
