"""What the store must guarantee, tried for real (the probe `intake doctor` runs).

The receive path (store.py) relies on the filesystem under the store for:
exclusive creation (O_EXCL), file modes kept, fsync of a file and of the
folder, a rename within the folder that moves the file itself (not a copy), and
file and folder times that can be set to midnight. A local filesystem gives all
of them; a shared one (NFS v4, CephFS) must too; an object store mounted as
files (s3fs, goofys) renames by copying and stamps each object with the time
of day, and fails here.

The probe writes one small file under a temporary name (swept by
Store.remove_leftovers should the probe die), renames it, reads it back,
removes it and sets the folder's times back to midnight. `fs` is the module
whose calls it makes (os); a test passes one that breaks a guarantee.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from intake.server.store import TMP_PREFIX, today

PROBE = b"intake doctor store probe\n"


@dataclass(frozen=True)
class Result:
    guarantee: str
    ok: bool
    detail: str = ""  # what happened, when it is not what the server needs


class ProbeFailed(Exception):
    """A step the later ones need did not work."""


def _midnight() -> float:
    day = today()
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()


def _clock(timestamp: float) -> str:
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def probe_store(root: Path, fs=os) -> list[Result]:
    """Each guarantee with whether it held. A store that cannot even create a
    file gives one result, 'create', and nothing else is tried."""
    token = secrets.token_hex(8)
    tmp = root / f"{TMP_PREFIX}doctor-{token}"
    final = root / f"{TMP_PREFIX}doctor-{token}-renamed"
    results: list[Result] = []
    try:
        fd = fs.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        return [Result("create", False, f"cannot create a file in {root}: {exc.strerror}")]
    try:
        try:
            results += _file_guarantees(fs, fd, tmp)
        finally:
            fs.close(fd)
        results += _rename_guarantees(fs, tmp, final)
        results.append(_folder_fsync(fs, root))
    except ProbeFailed as exc:
        results.append(Result(*exc.args))
    finally:
        for path in (tmp, final):
            try:
                fs.unlink(path)
            except FileNotFoundError:
                pass
            except OSError as exc:
                results.append(Result("remove", False, f"cannot remove {path}: "
                                      f"{exc.strerror}"))
        results.append(_folder_times(fs, root))
    return results


def _file_guarantees(fs, fd: int, tmp: Path) -> list[Result]:
    results = []
    try:
        again = fs.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        results.append(Result("exclusive create", True))
    except OSError as exc:
        results.append(Result("exclusive create", False, "creating an existing file with "
                              f"O_EXCL failed with {errno.errorcode.get(exc.errno, '?')}, "
                              "not EEXIST"))
    else:
        fs.close(again)
        results.append(Result("exclusive create", False, "creating a file that exists "
                              "with O_EXCL succeeded: exclusive creation is not honoured"))
    mode = fs.fstat(fd).st_mode & 0o777
    results.append(Result("file mode", mode & 0o077 == 0, "" if mode & 0o077 == 0 else
                          f"a file created 0600 is {mode:04o}: the store does not keep "
                          "file modes"))
    try:
        fs.write(fd, PROBE)
        fs.fsync(fd)
    except OSError as exc:
        raise ProbeFailed("file fsync", False, f"writing and fsyncing a file failed: "
                          f"{exc.strerror}") from exc
    results.append(Result("file fsync", True))
    midnight = _midnight()
    try:
        fs.utime(tmp, (midnight, midnight))
        mtime = fs.stat(tmp).st_mtime
    except OSError as exc:
        results.append(Result("file times", False, f"cannot set a file's times: "
                              f"{exc.strerror}"))
    else:
        results.append(Result("file times", mtime == midnight, "" if mtime == midnight else
                              f"a file's time set to {_clock(midnight)} reads back as "
                              f"{_clock(mtime)}"))
    return results


def _rename_guarantees(fs, tmp: Path, final: Path) -> list[Result]:
    before = fs.stat(tmp)
    try:
        fs.rename(tmp, final)
    except OSError as exc:
        raise ProbeFailed("rename", False, f"renaming within the store failed: "
                          f"{exc.strerror}") from exc
    after = fs.stat(final)
    fd = fs.open(final, os.O_RDONLY)
    try:
        content = fs.read(fd, len(PROBE) + 1)
    finally:
        fs.close(fd)
    problems = []
    if (after.st_dev, after.st_ino) != (before.st_dev, before.st_ino):
        problems.append("the renamed file is a new file (a copy), not the same one")
    if content != PROBE:
        problems.append("the renamed file does not hold what was written")
    if after.st_mtime != before.st_mtime:
        problems.append(f"its time changed from {_clock(before.st_mtime)} to "
                        f"{_clock(after.st_mtime)}")
    return [Result("rename", not problems, "; ".join(problems))]


def _folder_fsync(fs, root: Path) -> Result:
    try:
        fd = fs.open(root, os.O_RDONLY)
        try:
            fs.fsync(fd)
        finally:
            fs.close(fd)
    except OSError as exc:
        return Result("folder fsync", False, f"fsync of the folder failed: {exc.strerror}")
    return Result("folder fsync", True)


def _folder_times(fs, root: Path) -> Result:
    """The probe changed the folder; its times go back to midnight, as after
    every submission."""
    midnight = _midnight()
    try:
        fs.utime(root, (midnight, midnight))
        mtime = fs.stat(root).st_mtime
    except OSError as exc:
        return Result("folder times", False, f"cannot set the folder's times: {exc.strerror}")
    return Result("folder times", mtime == midnight, "" if mtime == midnight else
                  f"the folder's time set to {_clock(midnight)} reads back as {_clock(mtime)}")
