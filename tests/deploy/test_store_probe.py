"""The store's guarantees, tried on the filesystem the tests run on, and each
one's failure named when a filesystem breaks it.

A real NFS mount cannot be made here (the kernel has neither nfsd nor the NFS
client), so the same probe that `intake doctor` runs on a shared store runs on
the local filesystem; the failures come from a filesystem module that behaves
as a copying, time-stamping or mode-dropping mount would.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import shutil
import stat
import types

import pytest

from intake.server.doctor import OK, PROBLEM, check_store
from intake.server.service import prepare
from intake.server.store import LEFTOVER_AFTER, Store
from intake.server.store_probe import probe_store

GUARANTEES = ["exclusive create", "file mode", "file fsync", "file times", "rename",
              "folder fsync", "folder times"]


def midnight_today() -> float:
    day = dt.datetime.now(dt.UTC).date()
    return dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC).timestamp()


@pytest.fixture
def store(tmp_path):
    root = tmp_path / "store"
    root.mkdir(mode=0o700)
    return root


def test_the_local_filesystem_gives_every_guarantee(store):
    results = probe_store(store)
    assert [(r.guarantee, r.ok, r.detail) for r in results] == [
        (g, True, "") for g in GUARANTEES]
    assert list(store.iterdir()) == []  # the probe leaves nothing behind
    assert store.stat().st_mtime == midnight_today()  # nor the time it ran


def test_doctor_reports_a_good_store(tmp_path, config):
    prepare(config).close()
    findings = check_store(config, min_free=1)
    assert [f.level for f in findings] == [OK, OK]
    assert "gives what the server relies on: exclusive create, file mode" in \
        findings[0].message


def faulty(**overrides) -> types.SimpleNamespace:
    """The os module with some calls replaced, as a mount that breaks a guarantee."""
    calls = {name: getattr(os, name) for name in (
        "open", "close", "read", "write", "fsync", "fstat", "stat", "utime", "rename",
        "unlink")}
    return types.SimpleNamespace(**{**calls, **overrides})


def copying_rename(src, dst):
    shutil.copyfile(src, dst)  # a new file, stamped now, as an object store's copy
    os.unlink(src)


def test_an_object_store_mount_is_refused(store, config):
    """s3fs-like: rename copies, and times set on a file or folder do not stick."""
    fs = faulty(rename=copying_rename, utime=lambda path, times: None)
    results = {r.guarantee: r for r in probe_store(store, fs)}
    assert not results["rename"].ok
    assert "a new file (a copy)" in results["rename"].detail
    assert "its time changed" in results["rename"].detail
    assert not results["file times"].ok and "reads back as" in results["file times"].detail
    assert not results["folder times"].ok
    assert results["exclusive create"].ok and results["file fsync"].ok
    assert list(store.iterdir()) == []


def test_exclusive_creation_not_honoured(store):
    fs = faulty(open=lambda path, flags, mode=0o777: os.open(path, flags & ~os.O_EXCL, mode))
    results = {r.guarantee: r for r in probe_store(store, fs)}
    assert not results["exclusive create"].ok
    assert "exclusive creation is not honoured" in results["exclusive create"].detail


def test_modes_not_kept(store):
    def open_0644(path, flags, mode=0o777):
        fd = os.open(path, flags, mode)
        if flags & os.O_CREAT:
            os.fchmod(fd, 0o644)  # a share mounted with file_mode=0644
        return fd

    results = {r.guarantee: r for r in probe_store(store, faulty(open=open_0644))}
    assert not results["file mode"].ok
    assert "is 0644" in results["file mode"].detail


def test_folder_fsync_refused(store):
    def fsync(fd):
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        os.fsync(fd)

    results = {r.guarantee: r for r in probe_store(store, faulty(fsync=fsync))}
    assert not results["folder fsync"].ok
    assert "Invalid argument" in results["folder fsync"].detail
    assert results["rename"].ok


def test_file_fsync_refused_stops_the_probe(store):
    def fsync(fd):
        raise OSError(errno.EIO, os.strerror(errno.EIO))

    results = probe_store(store, faulty(fsync=fsync))
    assert [r.guarantee for r in results if not r.ok] == ["file fsync"]
    assert "rename" not in [r.guarantee for r in results]
    assert list(store.iterdir()) == []


def test_doctor_names_each_broken_guarantee(config):
    prepare(config).close()
    fs = faulty(rename=copying_rename, utime=lambda path, times: None)
    problems = [f for f in check_store(config, 1, fs) if f.level == PROBLEM]
    assert [f.message.split(": ")[1] for f in problems] == [
        "file times", "rename", "folder times"]
    assert all("docs/operations.md" in f.fix for f in problems)


def test_a_probe_that_died_is_swept_by_the_server(store):
    """Its files carry the store's temporary prefix: the server removes them
    once idle for an hour, like any upload cut short."""
    fs = faulty(unlink=lambda path: None)  # the probe dies before removing its file
    probe_store(store, fs)
    [left] = list(store.iterdir())
    old = left.stat().st_mtime - LEFTOVER_AFTER - 1
    os.utime(left, (old, old))
    assert Store(store).remove_leftovers() == 1
