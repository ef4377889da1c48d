"""Shared machinery for parallel transfers: a bounded pool that stops at the first failure."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from gate.storage.client import is_transient

STREAM_RETRIES = 4  # re-sends of one part/range after a cut connection (botocore retries requests itself)


class BoundedPool:
    """A thread pool with a cap on queued + running tasks, so buffered bytes stay bounded.

    `slots` is acquired by `submit` and released by the caller through `release()` (downloads release
    only once a chunk has been hashed, uploads once it has been sent). After the first error no new
    work starts and `submit` raises it.
    """

    def __init__(self, workers: int, slots: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="model-gate-s3")
        self._slots = threading.Semaphore(slots)
        self._futures: list[Future] = []
        self._error: BaseException | None = None
        self._lock = threading.Lock()

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        while not self._slots.acquire(timeout=0.1):
            self.raise_if_failed()
        self.raise_if_failed()
        self._futures.append(self._pool.submit(self._run, fn, *args))

    def release(self) -> None:
        self._slots.release()

    def _run(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._error is not None:
            return
        try:
            fn(*args)
        except BaseException as error:  # noqa: BLE001 - handed to the submitting thread
            with self._lock:
                if self._error is None:
                    self._error = error
            self._slots.release()  # unblock a submitter waiting for a slot

    def raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def run_now(self, fn: Callable[..., Any], items: list[Any]) -> list[Any]:
        """Map fn over items on the pool (for small requests like HEAD) and return results in order."""
        return list(self._pool.map(fn, items))

    def wait(self) -> None:
        for future in self._futures:
            future.result()
        self.raise_if_failed()

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def with_stream_retries(action: Callable[[], Any], attempts: int = STREAM_RETRIES) -> Any:
    """Run action, re-running it after a transient network error (cut connection, truncated body)."""
    for attempt in range(attempts + 1):
        try:
            return action()
        except Exception as error:
            if attempt == attempts or not is_transient(error):
                raise
            time.sleep(min(2.0, 0.1 * 2**attempt) * (0.5 + random.random() / 2))
    raise AssertionError("unreachable")
