"""Guard the GitHub runner's command files while model code runs.

Model code never gets the paths of GITHUB_OUTPUT, GITHUB_ENV, GITHUB_PATH, GITHUB_STATE or
GITHUB_STEP_SUMMARY, but on a runner it shares the gate's user and filesystem, so it can guess
them. A line appended to GITHUB_ENV would change the environment of the workflow's later steps,
one in GITHUB_OUTPUT would forge the gate's decision. The gate notes each file before the first
model process starts and, once the model processes are stopped, puts back any that changed and
rejects the model.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from typing import Mapping

COMMAND_FILES = ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH", "GITHUB_STATE", "GITHUB_STEP_SUMMARY")
KEEP_BYTES = 1 << 20  # each step gets fresh, empty files; a copy this large is plenty to restore one


@dataclass(frozen=True)
class _Noted:
    variable: str
    path: str
    identity: tuple[int, int]  # (device, inode): a file swapped for another is a change
    size: int
    sha256: str
    content: bytes | None  # None when larger than KEEP_BYTES: then only growth can be undone


def _open_regular(path: str) -> int:
    """A descriptor of path only if it is a regular file; never follows a symlink nor waits on a FIFO."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(f"{path} is not a regular file")
    return fd


def _digest(fd: int, limit: int | None = None) -> str:
    hasher = hashlib.sha256()
    os.lseek(fd, 0, os.SEEK_SET)
    remaining = limit
    while remaining is None or remaining > 0:
        chunk = os.read(fd, 1 << 16 if remaining is None else min(1 << 16, remaining))
        if not chunk:
            break
        hasher.update(chunk)
        if remaining is not None:
            remaining -= len(chunk)
    return hasher.hexdigest()


class RunnerFiles:
    def __init__(self, environ: Mapping[str, str]) -> None:
        self._noted: list[_Noted] = []
        for variable in COMMAND_FILES:
            path = environ.get(variable)
            if not path:
                continue
            try:
                fd = _open_regular(path)
            except OSError:
                continue  # missing, not a file or unreadable: nothing the gate could restore
            try:
                info = os.fstat(fd)
                content = None
                if info.st_size <= KEEP_BYTES:
                    content = os.read(fd, info.st_size + 1)
                self._noted.append(_Noted(variable, path, (info.st_dev, info.st_ino), info.st_size,
                                          _digest(fd), content))
            except OSError:
                continue
            finally:
                os.close(fd)

    def restore_changed(self) -> tuple[list[str], list[str]]:
        """(variables whose files changed and were put back, variables whose files changed and could not be)."""
        restored: list[str] = []
        lost: list[str] = []
        for noted in self._noted:
            if self._unchanged(noted):
                continue
            try:
                self._put_back(noted)
                restored.append(noted.variable)
            except OSError:
                lost.append(noted.variable)
        return restored, lost

    @staticmethod
    def _unchanged(noted: _Noted) -> bool:
        try:
            fd = _open_regular(noted.path)
        except OSError:
            return False  # deleted, or replaced by a symlink, a FIFO or a folder
        try:
            info = os.fstat(fd)
            return ((info.st_dev, info.st_ino) == noted.identity and info.st_size == noted.size
                    and _digest(fd) == noted.sha256)
        finally:
            os.close(fd)

    @staticmethod
    def _put_back(noted: _Noted) -> None:
        """The file as it was, at its path, as a regular file: a symlink model code put there is
        removed, never written through (that would let it aim the gate at any file)."""
        try:
            fd = os.open(noted.path, os.O_RDWR | os.O_NOFOLLOW | os.O_NONBLOCK)
        except OSError:
            fd = None  # gone, or a symlink (ELOOP)
        if fd is not None:
            try:
                info = os.fstat(fd)
                if stat.S_ISREG(info.st_mode) and (info.st_dev, info.st_ino) == noted.identity:
                    if noted.content is not None:
                        os.ftruncate(fd, 0)
                        os.pwrite(fd, noted.content, 0)
                        return
                    if info.st_size > noted.size and _digest(fd, noted.size) == noted.sha256:
                        os.ftruncate(fd, noted.size)  # only appended to: cut it back
                        return
                    raise OSError(f"{noted.path}: too large to put back")
            finally:
                os.close(fd)
        if noted.content is None:
            raise OSError(f"{noted.path}: too large to put back")
        if os.path.islink(noted.path) or (os.path.lexists(noted.path) and not os.path.isdir(noted.path)):
            os.unlink(noted.path)
        fd = os.open(noted.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        try:
            os.write(fd, noted.content)
        finally:
            os.close(fd)
