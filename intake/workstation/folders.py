"""Folders the workstation writes into, held open by a handle.

Every file and folder is made under an open directory handle (the `*at`
system calls: `os.open(name, dir_fd=...)`), by one plain name that never
holds a separator, without following a symbolic link and without replacing
anything already there (O_CREAT | O_EXCL, mkdir). So a name from outside
cannot reach another folder, a link planted in the output folder leads
nowhere, and an existing file is never overwritten. Everything gets owner-only
permissions (0700 folders, 0600 files) whatever the umask.

A Folder remembers what it made (by device and inode), and removes only that:
the tools delete only files they created in the same run.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path

from intake.private_folders import DIR_MODE, open_folder

FILE_MODE = 0o600
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class FolderError(OSError):
    """A folder or file that cannot be made or used safely; the message says why."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def check_name(name: str) -> str:
    """A name this module may create: one plain path component."""
    if not name or name in (".", "..") or "/" in name or "\0" in name:
        raise ValueError(f"not a plain file name: {name!r}")
    return name


@dataclass
class _Made:
    folder: Folder
    name: str
    dev: int
    ino: int
    is_dir: bool


@dataclass
class Made:
    """What one run created, in order, so that it (and only it) can be undone.
    Shared by the threads that open envelopes side by side
    (intake.workstation.ahead): every change holds the lock."""

    entries: list[_Made] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, made: _Made) -> None:
        with self.lock:
            self.entries.append(made)

    def take(self, folder: Folder, name: str) -> _Made | None:
        """Forgets, and returns, the last entry for `name` in `folder`."""
        with self.lock:
            for i in range(len(self.entries) - 1, -1, -1):
                made = self.entries[i]
                if made.folder is folder and made.name == name:
                    del self.entries[i]
                    return made
        return None

    def undo(self) -> None:
        with self.lock:
            entries, self.entries = self.entries, []
        for made in reversed(entries):
            made.folder.remove_made(made)


def _fix_mode(fd: int, mode: int) -> None:
    if stat.S_IMODE(os.fstat(fd).st_mode) != mode:
        os.fchmod(fd, mode)


class Folder:
    """An open folder; `path` is for messages only, never used to reach files."""

    def __init__(self, fd: int, path: Path, made: Made, parent: Folder | None = None):
        self.fd, self.path, self.made = fd, path, made
        self._parent = parent  # kept open while this folder may be undone through it

    @classmethod
    def open(cls, path: Path, *, create: bool = True, made: Made | None = None) -> Folder:
        """The folder at `path` (the user's own choice, so its parents are
        followed as given, and made if missing; the folder itself must not be
        a link). Made 0700 when missing, and so is each parent made for it; an
        existing one is set to 0700, existing parents are left as they are."""
        made = made if made is not None else Made()
        path = Path(os.path.abspath(path))
        if not create:
            try:
                fd = os.open(path, _DIR_FLAGS)
            except OSError as exc:
                raise _refusal(path, exc) from exc
            _fix_mode(fd, DIR_MODE)
            return cls(fd, path, made)
        try:  # missing parents are made 0700 too, not 0777 less the umask
            parent = cls(open_folder(path.parent)[0], path.parent, made)
        except OSError as exc:
            raise _refusal(path.parent, exc) from exc
        try:
            folder = parent.sub(path.name)
        except BaseException:
            parent.close()
            raise
        folder._parent = parent
        return folder

    @classmethod
    def existing(cls, path: Path) -> Folder:
        """The user's own folder at `path`, left as it is (its mode too), for
        writing one new file into it: the folder a reply bundle is written to.
        The path is the user's choice, so it is followed as given."""
        path = Path(os.path.abspath(path))
        try:
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise _refusal(path, exc) from exc
        return cls(fd, path, Made())

    def sub(self, name: str, *, exclusive: bool = False) -> Folder:
        """The sub-folder `name`, made 0700 if missing. With `exclusive`, one
        that exists already is refused (FileExistsError)."""
        check_name(name)
        try:
            os.mkdir(name, DIR_MODE, dir_fd=self.fd)
            created = True
        except FileExistsError:
            if exclusive:
                raise
            created = False
        try:
            fd = os.open(name, _DIR_FLAGS, dir_fd=self.fd)
        except OSError as exc:
            raise _refusal(self.path / name, exc) from exc
        _fix_mode(fd, DIR_MODE)
        if created:
            st = os.fstat(fd)
            self.made.add(_Made(self, name, st.st_dev, st.st_ino, True))
        return Folder(fd, self.path / name, self.made)

    def create(self, name: str) -> int:
        """A new file `name` (never an existing one, never through a link),
        0600, open for writing; FileExistsError when the name is taken."""
        check_name(name)
        fd = os.open(name, _NEW_FILE, FILE_MODE, dir_fd=self.fd)
        try:
            _fix_mode(fd, FILE_MODE)
            st = os.fstat(fd)
        except BaseException:
            os.close(fd)
            raise
        self.made.add(_Made(self, name, st.st_dev, st.st_ino, False))
        return fd

    def write_new(self, name: str, data: bytes) -> None:
        fd = self.create(name)
        with os.fdopen(fd, "wb") as f:
            f.write(data)

    def open_read(self, name: str) -> int:
        """An existing regular file in this folder, for reading; never a link."""
        check_name(name)
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=self.fd)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise FolderError(f"{self.path / name} is not a regular file")
        return fd

    def exists(self, name: str) -> bool:
        check_name(name)
        try:
            os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        return True

    def place(self, tmp: str, final: str, into: Folder | None = None) -> None:
        """Gives the file this run made as `tmp` the name `final` (in `into`,
        or here) without replacing anything: FileExistsError when taken."""
        into = into or self
        check_name(tmp), check_name(final)
        os.link(tmp, final, src_dir_fd=self.fd, dst_dir_fd=into.fd, follow_symlinks=False)
        st = os.stat(final, dir_fd=into.fd, follow_symlinks=False)
        into.made.add(_Made(into, final, st.st_dev, st.st_ino, False))
        self.remove_own(tmp)

    def replace(self, tmp: str, final: str, into: Folder) -> None:
        """Renames `tmp` over `final` in `into`: for the vault's own folders,
        where a leftover of an interrupted run may hold the name. Whatever is
        there (a link included) is replaced, never followed."""
        check_name(tmp), check_name(final)
        os.replace(tmp, final, src_dir_fd=self.fd, dst_dir_fd=into.fd)
        self.made.take(self, tmp)

    def remove_own(self, name: str) -> bool:
        """Removes `name` if it is still what this run made there; True if it did."""
        made = self.made.take(self, name)
        return made is not None and self.remove_made(made)

    def remove_made(self, made: _Made) -> bool:
        """Removes what `made` records, if it is still there as this run made it."""
        name = made.name
        try:
            st = os.stat(name, dir_fd=self.fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if (st.st_dev, st.st_ino) != (made.dev, made.ino):
            return False  # replaced by someone else since: not ours to remove
        with contextlib.suppress(OSError):  # a folder someone else put files in stays
            if made.is_dir:
                os.rmdir(name, dir_fd=self.fd)
            else:
                os.unlink(name, dir_fd=self.fd)
            return True
        return False

    def unlink(self, name: str) -> None:
        """Removes an existing file by name (the vault's own items, on request)."""
        check_name(name)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name, dir_fd=self.fd)

    def listing(self) -> list[str]:
        return os.listdir(self.fd)

    def sync(self) -> None:
        """Makes everything written to this folder's filesystem durable: one
        syncfs(2) where the system has it, else a sync of every filesystem."""
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.syncfs(self.fd) == 0:
                return
        except (OSError, AttributeError):
            pass
        os.sync()

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self._parent is not None:
            self._parent.close()

    def __enter__(self) -> Folder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _refusal(path: Path, exc: OSError) -> FolderError:
    if exc.errno in (errno.ENOTDIR, errno.ELOOP):
        return FolderError(f"{path} is not a folder (a link or a file is there)")
    return FolderError(f"cannot open {path}: {exc.strerror}")
