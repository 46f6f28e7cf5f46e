"""The bounded inference pool: `workers` threads sharing one Reader, and at most `capacity`
(= workers + queue) images admitted at once. An image that finds no free slot is refused at once
(PoolBusy -> 503): waiting requests cannot pile up in memory. The app also looks at `free` before it
reads a request's body, so a full pool refuses uploads without receiving them.

One Reader serves every worker: reading never changes the model (reading.cascade and reading.pyramid run
the detector's parts with their own resize), so the weights are in memory once. Torch's own threads are set by
the caller (`digitdet serve` divides the CPUs among the workers).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any


class PoolBusy(Exception):
    """Every slot of the pool is taken."""


class ReaderPool:
    def __init__(self, reader, workers: int = 2, queue_size: int = 16) -> None:
        if workers < 1 or queue_size < 0:
            raise ValueError(f"workers must be >= 1 and queue >= 0 (got {workers}, {queue_size})")
        self.workers = workers
        self.capacity = workers + queue_size
        self._slots = threading.BoundedSemaphore(self.capacity)
        self._lock = threading.Lock()
        self._in_flight = 0
        self.reader = reader
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="digitdet-read")

    @property
    def in_flight(self) -> int:
        """Images admitted and not finished (running or waiting for a worker)."""
        return self._in_flight

    @property
    def free(self) -> int:
        """Slots not taken: images that could be admitted now."""
        return self.capacity - self._in_flight

    def busy_message(self) -> str:
        return f"busy: {self.capacity} images are being read or waiting (try again shortly)"

    def _take(self, n: int) -> None:
        got = 0
        while got < n and self._slots.acquire(blocking=False):
            got += 1
        if got < n:
            for _ in range(got):
                self._slots.release()
            raise PoolBusy(self.busy_message())
        with self._lock:
            self._in_flight += n

    def _give(self, _future: Future | None = None) -> None:
        with self._lock:
            self._in_flight -= 1
        self._slots.release()

    def _job(self, fn: Callable, args: tuple) -> Any:
        return fn(self.reader, *args)

    def submit_all(self, fn: Callable, jobs: list[tuple]) -> list[Future]:
        """fn(reader, *args) for each args in `jobs`, admitted all together or not at all (PoolBusy).
        Each slot is given back when its job ends, even if the client has gone."""
        self._take(len(jobs))
        futures = []
        for i, args in enumerate(jobs):
            try:
                fut = self._executor.submit(self._job, fn, args)
            except BaseException:
                for _ in range(len(jobs) - i):
                    self._give()
                raise
            fut.add_done_callback(self._give)
            futures.append(fut)
        return futures

    async def run_all(self, fn: Callable, jobs: list[tuple]) -> list:
        """submit_all, awaited: the results in order. Every job has ended when this returns (the caller may
        then close what the jobs read); the first job's exception, if any, is raised then."""
        futures = self.submit_all(fn, jobs)
        results = await asyncio.gather(*(asyncio.wrap_future(f) for f in futures), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r
        return results

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
