"""File access that never follows a symlink, so a link swapped in after a path was checked cannot redirect it.

`workbench.tools.confine` resolves a path and checks it lies inside the workspace. Between that check and
the open, anything that can write in the workspace could replace a folder or the file with a symlink that
points out. Here every component is opened relative to its parent folder with O_NOFOLLOW, starting at `/`:
a symlink anywhere on the (already resolved) path fails the open instead of being followed.

    text, cut = read_text(path, limit=1_000_000)
    write_text(path, "new content")     # refuses a file with other hard links (one may be outside)
    names = list_dir(path)
    with open_dir(path) as fd: os.fwalk(".", dir_fd=fd)
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from workbench.errors import ToolError, ToolRefused

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
# O_NONBLOCK: opening a FIFO for reading would otherwise wait forever for a writer.
_FILE_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_LINK_ERRORS = (errno.ELOOP, errno.ENOTDIR, errno.EMLINK)


def _refusal(exc: OSError, name: str, dir_fd: int, path: Path) -> Exception:
    """What a failed open of `name` (in the folder `dir_fd`) means: a symlink refused, a file where a folder was
    expected, or the OS error itself. ENOTDIR alone cannot tell (O_DIRECTORY on a symlink gives it too)."""
    if exc.errno not in _LINK_ERRORS:
        return exc
    try:
        is_link = stat.S_ISLNK(os.lstat(name, dir_fd=dir_fd).st_mode)
    except OSError:
        is_link = False
    if is_link:
        return ToolRefused(f"Refused: {path} (or a folder above it) is a symbolic link now. File tools never "
                           f"follow links; use the path the link points to, inside the workspace.")
    return ToolError(f"{path}: {name} is not a folder; give a path whose parts are folders.")


def _parent_fd(path: Path, *, create: bool) -> int:
    """An open fd of `path`'s folder, reached from / one component at a time, never through a symlink."""
    if not path.is_absolute() or ".." in path.parts:
        raise ValueError(f"{path} must be absolute and resolved (confine() gives such paths)")
    fd = os.open("/", _DIR_FLAGS)
    try:
        for part in path.parts[1:-1]:
            try:
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise
                with contextlib.suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fd)
                child = os.open(part, _DIR_FLAGS, dir_fd=fd)
            os.close(fd)
            fd = child
    except OSError as exc:
        refusal = _refusal(exc, part, fd, path)
        os.close(fd)
        if refusal is exc:
            raise
        raise refusal from None
    return fd


def open_file(path: Path, flags: int, mode: int = 0o644, *, create_parents: bool = False) -> int:
    """os.open(path, flags | O_NOFOLLOW) with no symlink followed on the way either; the caller closes the fd."""
    if path == Path("/"):
        return os.open("/", _DIR_FLAGS)
    parent = _parent_fd(path, create=create_parents)
    try:
        return os.open(path.name, flags | _FILE_FLAGS, mode, dir_fd=parent)
    except OSError as exc:
        refusal = _refusal(exc, path.name, parent, path)
        if refusal is exc:
            raise
        raise refusal from None
    finally:
        os.close(parent)


def _regular(fd: int, path: Path) -> os.stat_result:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        raise ToolRefused(f"Refused: {path.name} is not a regular file (a folder, device or pipe); "
                          f"file tools read and write plain files only.")
    return info


def read_text(path: Path, limit: int) -> tuple[str, bool]:
    """(the file's first `limit` bytes as UTF-8 text, whether it was longer)."""
    fd = open_file(path, os.O_RDONLY)
    try:
        _regular(fd, path)
        with os.fdopen(fd, "rb", closefd=False) as f:
            data = f.read(limit + 1)
    finally:
        os.close(fd)
    return data[:limit].decode("utf-8", errors="replace"), len(data) > limit


def write_text(path: Path, content: str) -> int:
    """Replace the file's content (creating it and its folders as needed); returns the bytes written."""
    data = content.encode("utf-8")
    # No O_TRUNC: the file is only emptied once it has passed the checks below.
    fd = open_file(path, os.O_WRONLY | os.O_CREAT, create_parents=True)
    try:
        info = _regular(fd, path)
        if info.st_nlink > 1:
            # Its other names may lie outside the workspace: writing here would change a file out there.
            raise ToolRefused(f"Refused: {path.name} has {info.st_nlink} hard links, and another of them may be "
                              f"outside the workspace. Write a new file, or copy it and write the copy.")
        os.ftruncate(fd, 0)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)
    return len(data)


@contextlib.contextmanager
def open_dir(path: Path) -> Iterator[int]:
    """An fd of the folder `path` (for os.fwalk(dir_fd=...) or os.scandir), closed on exit."""
    fd = open_file(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        yield fd
    finally:
        os.close(fd)


def list_dir(path: Path) -> list[str]:
    """The folder's entries, folders marked with a trailing `/` (a symlink is never followed to decide)."""
    with open_dir(path) as fd, os.scandir(fd) as entries:
        return sorted(e.name + ("/" if e.is_dir(follow_symlinks=False) else "") for e in entries)
