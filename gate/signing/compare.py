"""Name every difference between the signed manifest and the model on disk (pure)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping


def compare(expected: Mapping[str, Hashable], actual: Mapping[str, Hashable]) -> list[str]:
    """Differences as "modified: x", "added: y", "missing: z", "renamed: a -> b".

    Values are per-file digests (or tuples of shard digests); a missing file whose
    content reappears under an added name is reported as one rename.
    """
    missing = sorted(set(expected) - set(actual))
    added = sorted(set(actual) - set(expected))
    modified = sorted(n for n in set(expected) & set(actual) if expected[n] != actual[n])
    renamed: list[str] = []
    by_content: dict[Hashable, list[str]] = {}
    for name in added:
        by_content.setdefault(actual[name], []).append(name)
    still_missing = []
    for name in missing:
        candidates = by_content.get(expected[name])
        if candidates:
            new = candidates.pop(0)
            added.remove(new)
            renamed.append(f"renamed: {name} -> {new}")
        else:
            still_missing.append(name)
    return (
        [f"modified: {n}" for n in modified]
        + [f"missing: {n}" for n in still_missing]
        + [f"added: {n} (not covered by the signature)" for n in added]
        + renamed
    )
