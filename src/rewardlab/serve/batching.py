"""Dynamic micro-batching across concurrent requests.

Requests put their samples on one bounded queue and await futures; ONE worker thread owns the
model, so the event loop never tokenizes or runs a forward pass. The worker waits for the first
sample, then up to ``max_wait_ms`` for the queue to fill to ``max_batch``; it tokenizes each
sample once (all new samples of a window in one call), then picks the next passes from the
oldest ``window`` queued samples with :func:`rewardlab.serve.plan.passes_now`: policy
``planned`` scores the length-planned pass that holds the oldest sample, answers its requests,
and plans again with whatever arrived meanwhile (one pass over a random mix of lengths would pad
every row to the longest; re-planning keeps the oldest sample from being overtaken for long).
``take`` scores every planned pass of the window, ``sorted`` the window as one length-sorted
batch (the RM's token budget splits it; the design ``planned`` replaced), ``packed`` the window,
oldest first, as one pass that the scorer packs into rows without padding between samples. A
request that would overfill the queue is refused at once (:class:`Overloaded` → 503 with
``Retry-After``); samples of requests that gave up (timeout, disconnect) are skipped. After each
plan the heap is trimmed when the resident set grew past a bound (:mod:`rewardlab.serve.memory`).
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from rewardlab.serve.memory import HeapTrimmer
from rewardlab.serve.plan import BatchPolicy, PlanConfig, passes_now


class BatchFn(Protocol):
    """What the worker runs: ``prepare`` (tokenize a take; items have ``.length``), ``score``
    (one pass of prepared items → results in order) and ``padded_tokens`` (what a pass computes)."""

    def prepare(self, payloads: list[Any]) -> list[Any]: ...

    def score(self, items: list[Any]) -> list[Any]: ...

    def padded_tokens(self, items: list[Any]) -> int: ...


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
    takes: int = 0  # plans made (planned: one per pass; take, sorted: one per window)
    tokens: int = 0  # real tokens scored
    padded_tokens: int = 0  # tokens after padding each pass to its longest row
    busy_s: float = 0.0  # worker time spent tokenizing and scoring
    wait_s: float = 0.0  # summed over samples: queued → answered
    trims: int = 0  # heap trims (rewardlab.serve.memory)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready counters (mean batch size included)."""
        mean = self.samples / self.batches if self.batches else 0.0
        return {
            "batches": self.batches,
            "samples": self.samples,
            "mean_batch": round(mean, 3),
            "largest_batch": self.largest_batch,
            "rejected": self.rejected,
            "takes": self.takes,
            "padding_efficiency": round(self.tokens / self.padded_tokens, 4) if self.padded_tokens else None,
            "busy_s": round(self.busy_s, 3),
            "trims": self.trims,
            "mean_latency_ms": round(1000 * self.wait_s / self.samples, 1) if self.samples else None,
        }

    def count(self, lengths: list[int], padded: int) -> None:
        """Count one scored pass of samples of these lengths that computed ``padded`` tokens."""
        n = len(lengths)
        self.batches += 1
        self.samples += n
        self.largest_batch = max(self.largest_batch, n)
        self.batch_sizes[n] = self.batch_sizes.get(n, 0) + 1
        self.tokens += sum(lengths)
        self.padded_tokens += padded


@dataclass
class _Job:
    payload: Any
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    queued_at: float
    item: Any = None  # the payload as prepared (tokenized) by the worker


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

    ``fn`` (a :class:`BatchFn`) runs only on the worker thread; ``plan`` bounds each pass.
    """

    def __init__(
        self,
        fn: BatchFn,
        max_batch: int,
        max_wait_ms: float,
        max_queue: int,
        policy: BatchPolicy | str = BatchPolicy.PACKED,
        plan: PlanConfig | None = None,
        rss_bound_mib: float | None = 128.0,
        window: int | None = None,
    ) -> None:
        self.fn, self.max_batch, self.max_wait, self.max_queue = fn, max_batch, max_wait_ms / 1000, max_queue
        self.policy, self.plan = BatchPolicy(policy), plan or PlanConfig(max_rows=max_batch)
        # the oldest samples a pass is planned from (sorted: the whole take, as the old design)
        self.window = max_batch if self.policy == BatchPolicy.SORTED else (window or max_batch)
        # None: never trim; else malloc_trim when the RSS grew that much (rewardlab.serve.memory)
        self.trimmer = None if rss_bound_mib is None else HeapTrimmer(rss_bound_mib)
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

    async def submit(self, payloads: Sequence[Any]) -> list[Any]:
        """Queue the samples of one request and await their results (in order)."""
        if not payloads:
            return []
        loop = asyncio.get_running_loop()
        now = time.monotonic()
        jobs = [_Job(p, loop.create_future(), loop, now) for p in payloads]
        with self._cond:
            if self._stopping:
                raise Overloaded("the server is shutting down")
            if len(self._pending) + len(jobs) > self.max_queue:
                self.stats.rejected += 1
                raise Overloaded(f"{len(self._pending)} samples queued (limit {self.max_queue})")
            self._pending.extend(jobs)
            self._cond.notify()
        return list(await asyncio.gather(*(j.future for j in jobs)))

    def _window(self) -> list[_Job] | None:
        """Block until a pass is due; the oldest ``window`` queued jobs (still queued), or
        ``None`` when stopping. An idle queue waits up to ``max_wait_ms`` for more samples."""
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
            return list(itertools.islice(self._pending, self.window))

    def _dequeue(self, jobs: list[_Job]) -> None:
        gone = {id(j) for j in jobs}
        with self._cond:
            self._pending = deque(j for j in self._pending if id(j) not in gone)

    def _prepare(self, window: list[_Job]) -> list[_Job]:
        """Tokenize the window's new jobs (one call); drop abandoned ones; the jobs left."""
        dead = [j for j in window if j.future.done()]
        new = [j for j in window if j.item is None and not j.future.done()]
        if new:
            t0 = time.perf_counter()
            try:
                for j, it in zip(new, self.fn.prepare([j.payload for j in new]), strict=True):
                    j.item = it
            except Exception as e:  # delivered to every request of these samples
                self._answer(new, [None] * len(new), e)
                dead += new
            self.stats.busy_s += time.perf_counter() - t0
        if dead:
            self._dequeue(dead)
        return [j for j in window if j.item is not None and not j.future.done()]

    def _passes(self, window: list[_Job]) -> list[list[_Job]]:
        """The passes to score now, by the policy (the window is oldest first)."""
        lengths = [j.item.length for j in window]
        return [[window[i] for i in p] for p in passes_now(lengths, self.policy, self.plan)]

    def _run(self) -> None:
        while (window := self._window()) is not None:
            jobs = self._prepare(window)
            if not jobs:
                continue
            passes = self._passes(jobs)
            self._dequeue([j for p in passes for j in p])
            for p in passes:
                t0 = time.perf_counter()
                try:
                    results, error = self.fn.score([j.item for j in p]), None
                except Exception as e:  # delivered to every request of the pass
                    results, error = [None] * len(p), e
                self.stats.busy_s += time.perf_counter() - t0
                self.stats.count([j.item.length for j in p], self.fn.padded_tokens([j.item for j in p]))
                self._answer(p, results, error)
            self.stats.takes += 1
            if self.trimmer is not None:
                t0 = time.perf_counter()
                self.stats.trims += self.trimmer.maybe_trim()
                self.stats.busy_s += time.perf_counter() - t0

    def _answer(self, jobs: list[_Job], results: list[Any], error: BaseException | None) -> None:
        now = time.monotonic()
        self.stats.wait_s += sum(now - j.queued_at for j in jobs)
        for j, r in zip(jobs, results, strict=True):
            try:
                j.loop.call_soon_threadsafe(_deliver, j.future, r, error)
            except RuntimeError:  # the loop closed (server shutting down)
                pass
