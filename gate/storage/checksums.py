"""Digests computed while bytes stream past, in file order even when ranges arrive out of order.

S3 stores a SHA-256 per object: of the whole object for a single PUT, or for a multipart upload
the "composite" checksum, sha256(concat(sha256(part_i))). Both are computed here in the same pass.
"""

from __future__ import annotations

import base64
import hashlib
import threading
import zlib
from collections.abc import Callable


def b64_to_hex(value: str) -> str:
    return base64.b64decode(value).hex()


def hex_to_b64(value: str) -> str:
    return base64.b64encode(bytes.fromhex(value)).decode()


def sha256_b64(data: bytes | bytearray | memoryview) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def split_stored_checksum(value: str) -> tuple[str, int | None]:
    """'abc=-3' (composite of 3 parts, as AWS reports it) -> ('abc=', 3); 'abc=' -> ('abc=', None)."""
    head, sep, tail = value.rpartition("-")
    if sep and tail.isdigit() and head.endswith("="):
        return head, int(tail)
    return value, None


class StreamDigests:
    """Full SHA-256 (and optionally CRC32 and per-part SHA-256) of one file, fed in order."""

    def __init__(self, part_size: int | None = None, crc32: bool = False) -> None:
        self._sha = hashlib.sha256()
        self._crc: int | None = 0 if crc32 else None
        self._part_size = part_size
        self._part = hashlib.sha256() if part_size else None
        self._part_filled = 0
        self.part_digests: list[bytes] = []
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        self._sha.update(view)
        if self._crc is not None:
            self._crc = zlib.crc32(view, self._crc)
        if self._part is not None and self._part_size:
            while len(view):
                take = min(len(view), self._part_size - self._part_filled)
                self._part.update(view[:take])
                self._part_filled += take
                view = view[take:]
                if self._part_filled == self._part_size:
                    self.part_digests.append(self._part.digest())
                    self._part, self._part_filled = hashlib.sha256(), 0
        self.size += len(data)

    def finish(self) -> None:
        if self._part is not None and self._part_filled:
            self.part_digests.append(self._part.digest())
            self._part_filled = 0

    @property
    def sha256_hex(self) -> str:
        return self._sha.hexdigest()

    @property
    def sha256_b64(self) -> str:
        return base64.b64encode(self._sha.digest()).decode()

    @property
    def composite_b64(self) -> str | None:
        if not self.part_digests:
            return None
        return base64.b64encode(hashlib.sha256(b"".join(self.part_digests)).digest()).decode()

    @property
    def crc32_b64(self) -> str | None:
        if self._crc is None:
            return None
        return base64.b64encode(self._crc.to_bytes(4, "big")).decode()


class OrderedFeeder:
    """Accepts chunks by index from many threads and feeds them to `sink` in index order.

    Chunks that arrive early wait in memory; `on_flushed` is called once per chunk after it has been
    fed, which lets the caller release a slot so the number of buffered chunks stays bounded.
    """

    def __init__(self, sink: Callable[[bytes], None], on_flushed: Callable[[], None] | None = None) -> None:
        self._sink = sink
        self._on_flushed = on_flushed
        self._next = 0
        self._waiting: dict[int, bytes] = {}
        self._lock = threading.Lock()

    def put(self, index: int, data: bytes) -> int:
        """Add a chunk; returns how many chunks have been fed so far (read under the lock, so exactly
        one caller sees the final count)."""
        with self._lock:
            self._waiting[index] = data
            while self._next in self._waiting:
                chunk = self._waiting.pop(self._next)
                self._sink(chunk)
                self._next += 1
                if self._on_flushed:
                    self._on_flushed()
            return self._next

    @property
    def fed(self) -> int:
        return self._next
