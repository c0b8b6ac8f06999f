"""A folder and whichever of its parents are missing, made owner-only (0700)
whatever the umask.

os.makedirs(path, mode) gives `mode` to the last folder only: the parents it
makes get 0777 less the umask, world-writable under a umask of 000. Here each
missing folder is made by one mkdir under an open handle on its parent, opened
without following a link, and set to 0700 through that handle. Folders that
were there already (links among them) are the user's own choice: they are
followed as given and left as they are; only what this call made is changed.

Shared by the workstation's output folders (intake.workstation.folders) and
keygen (intake.format.teamkeys), which may import nothing else from each other.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

DIR_MODE = 0o700
_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC


def open_folder(path: Path | str) -> tuple[int, list[Path]]:
    """An open handle on the folder `path`, made first if missing, with every
    missing parent: each folder made here is 0700. Returns the handle and the
    folders made, outermost first. OSError when a part of the path is a file,
    or a folder cannot be made or opened."""
    path = Path(os.path.abspath(path))
    missing: list[str] = []
    top = path
    while top != top.parent and not os.path.lexists(top):
        missing.append(top.name)
        top = top.parent
    fd = os.open(top, _OPEN_DIR)
    made: list[Path] = []
    try:
        here = top
        for name in reversed(missing):
            here = here / name
            try:
                os.mkdir(name, DIR_MODE, dir_fd=fd)
                created = True
            except FileExistsError:  # made meanwhile by someone else: as given
                created = False
            flags = _OPEN_DIR | (os.O_NOFOLLOW if created else 0)
            sub = os.open(name, flags, dir_fd=fd)
            os.close(fd)
            fd = sub
            if created:
                if stat.S_IMODE(os.fstat(fd).st_mode) != DIR_MODE:
                    os.fchmod(fd, DIR_MODE)
                made.append(here)
    except BaseException:
        os.close(fd)
        raise
    return fd, made
