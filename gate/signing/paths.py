"""Path rules of OpenSSF Model Signing (spec §6.1.2, §6.2): canonical names and ignore matching.

Pure functions, no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable

# Excluded by default, matched only as top-level components of the model root (spec §6.2).
DEFAULT_IGNORES: tuple[str, ...] = (".git", ".gitattributes", ".github", ".gitignore")
_GLOB_CHARS = set("*?[")


def canonical_name(raw: str) -> str:
    """Normalize a relative path: `/` separators, no `.` parts or doubled slashes.

    Raises ValueError for absolute paths, `..` parts and empty names, which a
    signature must never contain.
    """
    if raw.startswith("/"):
        raise ValueError(f"{raw!r} is an absolute path")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise ValueError(f"{raw!r} leaves the model folder (..)")
    if not parts:
        raise ValueError(f"{raw!r} names no file")
    return "/".join(parts)


def check_ignore_entry(raw: str) -> str:
    """Validate one user ignore entry and return it canonical (exact relative path, no globs)."""
    if _GLOB_CHARS & set(raw):
        raise ValueError(
            f"ignore entry {raw!r} contains a glob character; OMS ignore paths are exact "
            "paths relative to the model folder (a folder excludes everything below it)"
        )
    if "\\" in raw:
        raise ValueError(f"ignore entry {raw!r} must use / as the separator")
    return canonical_name(raw)


def is_ignored(name: str, ignores: Iterable[str]) -> bool:
    """True when `name` is an ignore entry or lies below one."""
    return any(name == entry or name.startswith(entry + "/") for entry in ignores)


def split_shard_name(name: str) -> tuple[str, int, int]:
    """Split "path:start:end" on its last two colons (file names may contain colons)."""
    path, sep1, rest = name.rpartition(":")
    path2, sep2, start = path.rpartition(":")
    if not (sep1 and sep2 and start.isdigit() and rest.isdigit()):
        raise ValueError(f"shard resource {name!r} is not of the form path:start:end")
    return path2, int(start), int(rest)
