"""The content digest of a model folder: what exactly was gated, recorded on the version.

A registry version points at artifacts that can still be overwritten after the gate ran
(run artifacts are not immutable). The digest lets a deployment check that it ships the
files the gate tested, with or without a signature. Its definition is reproducible with
coreutils, in the model folder:

    find . -type f | sed 's|^\\./||' | LC_ALL=C sort | xargs -d '\\n' sha256sum | sha256sum

i.e. SHA-256 of the lines "<sha256 hex>  <relative POSIX path>\\n", sorted by path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from gate.signing.hashing import Job, hash_jobs
from gate.signing.walk import list_model_files


@dataclass(frozen=True)
class ContentDigest:
    digest: str | None  # "sha256:<hex>", None when the folder cannot be digested
    files: int
    problem: str | None = None


def content_digest(model_dir: Path, precomputed: Mapping[str, str] | None = None,
                   exclude: tuple[str, ...] = ()) -> ContentDigest:
    """Digest every regular file under model_dir (but the exact relative paths in exclude);
    reuse SHA-256 hex digests already computed (by a verified download) instead of reading
    those files again."""
    listing = list_model_files(model_dir, exclude)
    if listing.problems:
        return ContentDigest(None, len(listing.files), listing.problems[0])
    files = sorted(listing.files, key=lambda f: f.name.encode("utf-8"))
    known = dict(precomputed or {})
    to_hash = [f for f in files if f.name not in known]
    digests = hash_jobs([Job(f.path) for f in to_hash], "sha256", sizes=[f.size for f in to_hash])
    known.update({f.name: d.hex() for f, d in zip(to_hash, digests)})
    manifest = "".join(f"{known[f.name]}  {f.name}\n" for f in files)
    return ContentDigest("sha256:" + hashlib.sha256(manifest.encode("utf-8")).hexdigest(), len(files))
