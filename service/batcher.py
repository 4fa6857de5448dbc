"""Micro-batching: concurrent requests share the embedder's forward passes.

A network run on one crop costs nearly as much as on eight, so one worker thread owns the
embedder, waits a moment for other requests to join, embeds every waiting crop in one call and
hands each request its rows. Throughput then grows with concurrency instead of queueing.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field

import numpy as np

log = logging.getLogger(__name__)

EmbedFn = Callable[[Sequence[np.ndarray], int], np.ndarray]


@dataclass
class _Job:
    crops: Sequence[np.ndarray]
    future: Future[np.ndarray] = field(default_factory=Future)


class MicroBatcher:
    """Queue in front of ``embed(crops, batch_size)``; the only thread that calls it."""

    def __init__(
        self,
        embed: EmbedFn,
        dim: int,
        max_batch: int = 32,
        wait_s: float = 0.002,
        on_batch: Callable[[int, float], None] | None = None,
    ) -> None:
        self._embed = embed
        self.dim = dim
        self.max_batch = max_batch
        self.wait_s = wait_s
        self._on_batch = on_batch
        # None is the stop signal: the worker finishes the jobs queued before it, then ends.
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="facefind-embedder", daemon=True)
        self._closed = False
        self._thread.start()

    def submit(self, crops: Sequence[np.ndarray]) -> Future[np.ndarray]:
        """A future of the (len(crops), dim) vectors."""
        if self._closed:
            raise RuntimeError("the embedder is shut down")
        job = _Job(list(crops))
        if not job.crops:
            job.future.set_result(np.zeros((0, self.dim), dtype=np.float32))
        else:
            self._queue.put(job)
        return job.future

    async def embed(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        return await asyncio.wrap_future(self.submit(crops))

    def close(self, timeout: float = 30.0) -> None:
        """Finish the jobs already queued, then stop the worker."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch, stop = self._gather(first)
            self._process(batch)
            if stop:
                return

    def _gather(self, first: _Job) -> tuple[list[_Job], bool]:
        """Take ``first`` and whatever arrives within the wait, up to ``max_batch`` crops."""
        batch, size = [first], len(first.crops)
        deadline = time.monotonic() + self.wait_s
        while size < self.max_batch:
            try:
                remaining = deadline - time.monotonic()
                job = (
                    self._queue.get(timeout=remaining)
                    if remaining > 0
                    else self._queue.get_nowait()
                )
            except queue.Empty:
                break
            if job is None:
                return batch, True
            batch.append(job)
            size += len(job.crops)
        return batch, False

    def _process(self, batch: list[_Job]) -> None:
        live = [job for job in batch if job.future.set_running_or_notify_cancel()]
        crops = [crop for job in live for crop in job.crops]
        if not crops:
            return
        start = time.perf_counter()
        try:
            vectors = self._embed(crops, self.max_batch)
        except Exception as exc:
            log.exception("embedding a batch of %d crops failed", len(crops))
            for job in live:
                job.future.set_exception(exc)
            return
        if self._on_batch is not None:
            self._on_batch(len(crops), time.perf_counter() - start)
        offset = 0
        for job in live:
            job.future.set_result(vectors[offset : offset + len(job.crops)])
            offset += len(job.crops)
