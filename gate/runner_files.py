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
from dataclasses import dataclass
from typing import Mapping

COMMAND_FILES = ("GITHUB_OUTPUT", "GITHUB_ENV", "GITHUB_PATH", "GITHUB_STATE", "GITHUB_STEP_SUMMARY")
KEEP_BYTES = 1 << 20  # each step gets fresh, empty files; a copy this large is plenty to restore one


@dataclass(frozen=True)
class _Noted:
    variable: str
    path: str
    size: int
    sha256: str
    content: bytes | None  # None when larger than KEEP_BYTES: then only growth can be undone


def _digest(path: str, limit: int | None = None) -> str:
    hasher = hashlib.sha256()
    remaining = limit
    with open(path, "rb") as handle:
        while remaining is None or remaining > 0:
            chunk = handle.read(1 << 16 if remaining is None else min(1 << 16, remaining))
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
            if not path or not os.path.isfile(path):
                continue
            try:
                size = os.path.getsize(path)
                content = None
                if size <= KEEP_BYTES:
                    with open(path, "rb") as handle:
                        content = handle.read()
                self._noted.append(_Noted(variable, path, size, _digest(path), content))
            except OSError:
                continue  # unreadable: the gate could not restore it anyway

    def restore_changed(self) -> tuple[list[str], list[str]]:
        """(variables whose files changed and were put back, variables whose files changed and could not be)."""
        restored: list[str] = []
        lost: list[str] = []
        for noted in self._noted:
            try:
                unchanged = os.path.getsize(noted.path) == noted.size and _digest(noted.path) == noted.sha256
            except OSError:
                unchanged = False  # deleted or made unreadable: also a change
            if unchanged:
                continue
            try:
                if noted.content is not None:
                    with open(noted.path, "wb") as handle:
                        handle.write(noted.content)
                elif os.path.getsize(noted.path) > noted.size and _digest(noted.path, noted.size) == noted.sha256:
                    os.truncate(noted.path, noted.size)
                else:
                    lost.append(noted.variable)
                    continue
                restored.append(noted.variable)
            except OSError:
                lost.append(noted.variable)
        return restored, lost
