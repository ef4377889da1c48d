"""Parallel, streaming hashing of files and byte ranges.

Each worker thread reads into one reused buffer (readinto + memoryview), so
memory is workers x CHUNK whatever the model size. hashlib and file reads
release the GIL for large buffers, so threads use every core.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

CHUNK = 4 * 1024 * 1024
SUPPORTED = ("sha256", "blake2b")

_local = threading.local()


class UnsupportedHash(ValueError):
    pass


def new_hasher(algorithm: str) -> "hashlib._Hash":
    if algorithm == "sha256":
        return hashlib.sha256()
    if algorithm == "blake2b":
        return hashlib.blake2b()  # 512-bit digest, as OMS registers it
    raise UnsupportedHash(f"unsupported hash algorithm {algorithm!r} (supported: {', '.join(SUPPORTED)})")


@dataclass(frozen=True)
class Job:
    """Hash bytes [start, end) of a file; end=None means up to end of file."""

    path: str
    start: int = 0
    end: int | None = None


class FileChanged(OSError):
    """The file was shorter than its listing said (changed while hashing)."""


def _buffer() -> memoryview:
    buf = getattr(_local, "buf", None)
    if buf is None:
        buf = _local.buf = memoryview(bytearray(CHUNK))
    return buf


def hash_job(job: Job, algorithm: str) -> bytes:
    hasher = new_hasher(algorithm)
    buf = _buffer()
    with open(job.path, "rb", buffering=0) as handle:
        if job.start:
            handle.seek(job.start)
        remaining = None if job.end is None else job.end - job.start
        while remaining is None or remaining > 0:
            want = CHUNK if remaining is None else min(CHUNK, remaining)
            n = handle.readinto(buf[:want])
            if not n:
                if remaining:
                    raise FileChanged(f"{job.path} is shorter than expected")
                break
            hasher.update(buf[:n])
            if remaining is not None:
                remaining -= n
    return hasher.digest()


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


def hash_jobs(
    jobs: Sequence[Job],
    algorithm: str,
    *,
    sizes: Sequence[int] | None = None,
    workers: int | None = None,
) -> list[bytes]:
    """Digests of `jobs`, in the same order. Largest jobs start first to balance the threads."""
    new_hasher(algorithm)  # fail early on an unknown algorithm
    workers = workers or default_workers()
    order = list(range(len(jobs)))
    if sizes is not None:
        order.sort(key=lambda i: -sizes[i])
    results: list[bytes] = [b""] * len(jobs)
    if workers == 1 or len(jobs) <= 1:
        for i in order:
            results[i] = hash_job(jobs[i], algorithm)
        return results
    with ThreadPoolExecutor(max_workers=min(workers, len(jobs)), thread_name_prefix="hash") as pool:
        futures = {i: pool.submit(hash_job, jobs[i], algorithm) for i in order}
        for i, future in futures.items():
            results[i] = future.result()
    return results


def shard_ranges(size: int, shard_size: int) -> list[tuple[int, int]]:
    """Consecutive [start, end) ranges of `shard_size` bytes; an empty file has none (spec §6.3.2)."""
    return [(start, min(start + shard_size, size)) for start in range(0, size, shard_size)]
