"""Transfer progress: a bar on a terminal, a line every few seconds in CI logs, nothing when quiet."""

from __future__ import annotations

import sys
import threading
import time
from typing import TextIO


class Progress:
    """Thread-safe byte counter that reports to stderr."""

    def __init__(self, label: str, total: int, *, mode: str = "auto", stream: TextIO | None = None,
                 interval_s: float = 5.0) -> None:
        self.label = label
        self.total = max(total, 0)
        self.done = 0
        self._stream = stream or sys.stderr
        self._mode = _pick_mode(mode, self._stream)
        self._interval = interval_s if self._mode == "lines" else 0.2
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._last = 0.0

    @property
    def mode(self) -> str:
        return self._mode

    def add(self, nbytes: int) -> None:
        with self._lock:
            self.done += nbytes
            now = time.monotonic()
            if self._mode != "off" and now - self._last >= self._interval:
                self._last = now
                self._emit(final=False)

    def close(self) -> None:
        with self._lock:
            if self._mode != "off":
                self._emit(final=True)

    def _emit(self, final: bool) -> None:
        elapsed = max(time.monotonic() - self._start, 1e-9)
        rate = self.done / elapsed / 2**20
        pct = 100.0 * self.done / self.total if self.total else 100.0
        text = f"{self.label}: {_size(self.done)} / {_size(self.total)} ({pct:.0f}%) {rate:.1f} MiB/s"
        if self._mode == "bar":
            width = 30
            filled = int(width * pct / 100)
            line = f"\r[{'#' * filled}{'.' * (width - filled)}] {text}"
            self._stream.write(line + ("\n" if final else ""))
        else:
            self._stream.write(text + (f" in {elapsed:.1f}s" if final else "") + "\n")
        self._stream.flush()


def _pick_mode(mode: str, stream: TextIO) -> str:
    if mode != "auto":
        return mode
    is_tty = hasattr(stream, "isatty") and stream.isatty()
    return "bar" if is_tty else "lines"


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"
