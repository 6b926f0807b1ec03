"""Dynamic micro-batching across concurrent requests.

Requests put their samples on one bounded queue and await futures; ONE worker thread owns the
model: it waits for the first sample, then up to ``max_wait_ms`` for the batch to fill to
``max_batch``, sorts the batch by length (similar lengths pad least; the RM's own batching
splits it by a token budget) and scores it, so the event loop never runs a forward pass. A
request that would overfill the queue is refused at once (:class:`Overloaded` → 503 with
``Retry-After``); samples of requests that gave up (timeout, disconnect) are skipped.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


class Overloaded(Exception):
    """The queue cannot take the request's samples now."""


@dataclass
class BatchStats:
    """Counters shown by ``/health``."""

    batches: int = 0  # forward batches scored
    samples: int = 0  # samples scored
    largest_batch: int = 0
    rejected: int = 0  # requests refused with 503
    batch_sizes: dict[int, int] = field(default_factory=dict)  # size → how many batches

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready counters (mean batch size included)."""
        mean = self.samples / self.batches if self.batches else 0.0
        return {
            "batches": self.batches,
            "samples": self.samples,
            "mean_batch": round(mean, 3),
            "largest_batch": self.largest_batch,
            "rejected": self.rejected,
        }


@dataclass
class _Job:
    payload: Any
    length: int
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    queued_at: float


def _deliver(fut: asyncio.Future, result: Any, error: BaseException | None) -> None:
    """Runs on the event loop: complete ``fut`` unless its request already gave up."""
    if fut.done():
        return
    if error is not None:
        fut.set_exception(error)
    else:
        fut.set_result(result)


class MicroBatcher:
    """Batch samples from concurrent requests into one worker thread (see the module docstring).

    ``fn(payloads) -> results`` scores one batch (same order) and runs only on the worker thread.
    """

    def __init__(
        self, fn: Callable[[list[Any]], list[Any]], max_batch: int, max_wait_ms: float, max_queue: int
    ) -> None:
        self.fn, self.max_batch, self.max_wait, self.max_queue = fn, max_batch, max_wait_ms / 1000, max_queue
        self.stats = BatchStats()
        self._pending: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="rewardlab-scorer", daemon=True)

    @property
    def depth(self) -> int:
        """Samples waiting in the queue."""
        return len(self._pending)

    def start(self) -> None:
        """Start the worker thread."""
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the worker after its current batch."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    async def submit(self, payloads: Sequence[Any], lengths: Sequence[int]) -> list[Any]:
        """Queue the samples of one request and await their results (in order)."""
        if not payloads:
            return []
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        jobs = [_Job(p, n, loop.create_future(), loop, now) for p, n in zip(payloads, lengths, strict=True)]
        with self._cond:
            if self._stopping:
                raise Overloaded("the server is shutting down")
            if len(self._pending) + len(jobs) > self.max_queue:
                self.stats.rejected += 1
                raise Overloaded(f"{len(self._pending)} samples queued (limit {self.max_queue})")
            self._pending.extend(jobs)
            self._cond.notify()
        return list(await asyncio.gather(*(j.future for j in jobs)))

    def _take(self) -> list[_Job] | None:
        """Block until a batch is due; ``None`` when stopping."""
        with self._cond:
            while not self._pending and not self._stopping:
                self._cond.wait()
            if self._stopping:
                return None
            deadline = self._pending[0].queued_at + self.max_wait
            while len(self._pending) < self.max_batch and not self._stopping:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            n = min(self.max_batch, len(self._pending))
            return [self._pending.popleft() for _ in range(n)]

    def _run(self) -> None:
        while (batch := self._take()) is not None:
            batch = sorted((j for j in batch if not j.future.done()), key=lambda j: j.length)
            if not batch:
                continue
            try:
                results, error = self.fn([j.payload for j in batch]), None
            except Exception as e:  # delivered to every request of the batch
                results, error = [None] * len(batch), e
            self.stats.batches += 1
            self.stats.samples += len(batch)
            self.stats.largest_batch = max(self.stats.largest_batch, len(batch))
            self.stats.batch_sizes[len(batch)] = self.stats.batch_sizes.get(len(batch), 0) + 1
            for j, r in zip(batch, results, strict=True):
                try:
                    j.loop.call_soon_threadsafe(_deliver, j.future, r, error)
                except RuntimeError:  # the loop closed (server shutting down)
                    pass
