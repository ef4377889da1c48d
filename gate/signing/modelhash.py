"""Hash a listed model the way a serialization says (whole files or fixed-size shards)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gate.signing.hashing import Job, hash_jobs, shard_ranges
from gate.signing.oms import Serialization
from gate.signing.walk import ModelFile


@dataclass(frozen=True)
class Hashed:
    resources: dict[str, str]  # resource name -> hex digest, as the manifest lists them
    bytes_read: int


def hash_model(
    files: list[ModelFile],
    serialization: Serialization,
    *,
    precomputed: Mapping[str, str] | None = None,
    workers: int | None = None,
) -> Hashed:
    """Digests for every resource. Precomputed SHA-256 file digests are used instead of reading the file."""
    reuse = precomputed if (serialization.method == "files" and serialization.hash_type == "sha256") else None
    resources: dict[str, str] = {}
    jobs: list[Job] = []
    names: list[str] = []
    sizes: list[int] = []
    for f in files:
        if serialization.method == "files":
            known = reuse.get(f.name) if reuse else None
            if known:
                resources[f.name] = known.lower()
                continue
            jobs.append(Job(f.path))
            names.append(f.name)
            sizes.append(f.size)
        else:
            assert serialization.shard_size is not None
            for start, end in shard_ranges(f.size, serialization.shard_size):
                jobs.append(Job(f.path, start, end))
                names.append(f"{f.name}:{start}:{end}")
                sizes.append(end - start)
    digests = hash_jobs(jobs, serialization.hash_type, sizes=sizes, workers=workers)
    resources.update((name, digest.hex()) for name, digest in zip(names, digests))
    return Hashed(resources, sum(sizes))
