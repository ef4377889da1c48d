"""List the files a signature covers: every regular file under the model root, minus ignores.

Symlinks are problems by default. With allow_symlinks (only when a signature
records it) a link is followed only when its target stays inside the model
root, and a folder already visited is never entered twice, so a cycle cannot
hang the walk.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from gate.signing.paths import is_ignored


@dataclass(frozen=True)
class ModelFile:
    name: str  # canonical relative POSIX path (for a single-file model, its basename)
    path: str  # what to open (the link's target when a symlink is followed)
    size: int


@dataclass
class Listing:
    files: list[ModelFile] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # symlinks, special files, unreadable folders

    @property
    def names(self) -> list[str]:
        return sorted(f.name for f in self.files)


def list_model_files(root: Path, ignores: Iterable[str], *, allow_symlinks: bool = False) -> Listing:
    """Walk `root` (a folder or a single file) without reading any file content."""
    ignores = tuple(ignores)
    listing = Listing()
    if not root.exists():
        listing.problems.append(f"missing: the model path {root} does not exist")
        return listing
    if root.is_symlink() and not allow_symlinks:
        listing.problems.append(f"symlink: the model path {root} is a symlink")
        return listing
    if root.is_file():
        st = root.stat()
        listing.files.append(ModelFile(root.name, str(root), st.st_size))
        return listing
    real_root = os.path.realpath(root)
    root_st = os.stat(real_root)
    visited = {(root_st.st_dev, root_st.st_ino)}
    stack: list[tuple[str, str]] = [(str(root), "")]
    while stack:
        folder, prefix = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError as error:
            listing.problems.append(f"unreadable folder: {prefix or '.'} ({error.strerror})")
            continue
        for entry in entries:
            name = prefix + entry.name
            if is_ignored(name, ignores):
                continue
            path = entry.path
            if entry.is_symlink():
                if not allow_symlinks:
                    listing.problems.append(f"symlink: {name} -> {os.readlink(path)} (symlinks are not allowed)")
                    continue
                target = os.path.realpath(path)
                if os.path.commonpath([real_root, target]) != real_root:
                    listing.problems.append(f"symlink outside the model folder: {name} (not followed)")
                    continue
                path = target
            try:
                st = os.stat(path)
            except OSError:
                listing.problems.append(f"dangling symlink: {name}")
                continue
            if stat.S_ISDIR(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if key in visited:  # a link back to a folder already walked: a cycle or a duplicate
                    listing.problems.append(f"symlink cycle: {name} (not followed)")
                    continue
                visited.add(key)
                stack.append((path, name + "/"))
            elif stat.S_ISREG(st.st_mode):
                listing.files.append(ModelFile(name, path, st.st_size))
            else:
                listing.problems.append(f"special file: {name} (not a regular file)")
    listing.files.sort(key=lambda f: f.name)
    return listing
