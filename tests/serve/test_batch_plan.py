"""The server's batch plan (a pure function) and heap trimming: optimal passes under the limits."""

from __future__ import annotations

import random
import sys

import pytest

from rewardlab.serve.memory import HeapTrimmer, rss_mib, trim_heap
from rewardlab.serve.plan import BatchPolicy, PlanConfig, pass_cost, passes_now, plan_batches


def _partitions(items: list[int]):
    """Every set partition of ``items`` (Bell-number many)."""
    if not items:
        yield []
        return
    head, rest = items[0], items[1:]
    for part in _partitions(rest):
        for k in range(len(part)):
            yield [*part[:k], [head, *part[k]], *part[k + 1 :]]
        yield [[head], *part]


def _feasible(passes: list[list[int]], lengths: list[int], cfg: PlanConfig) -> bool:
    return all(
        len(p) <= cfg.max_rows and (len(p) == 1 or len(p) * max(lengths[i] for i in p) <= cfg.max_tokens)
        for p in passes
    )


def _total(passes: list[list[int]], lengths: list[int], cfg: PlanConfig) -> float:
    return sum(pass_cost([lengths[i] for i in p], cfg) for p in passes)


def _check_shape(passes: list[list[int]], lengths: list[int], cfg: PlanConfig) -> None:
    assert sorted(i for p in passes for i in p) == list(range(len(lengths)))  # each index once
    assert _feasible(passes, lengths, cfg)
    for p in passes:
        assert [lengths[i] for i in p] == sorted(lengths[i] for i in p)
    maxima = [max(lengths[i] for i in p) for p in passes]
    assert maxima == sorted(maxima)  # shortest first


@pytest.mark.parametrize("seed", range(40))
def test_plan_is_optimal_against_every_partition(seed):
    rng = random.Random(seed)
    n = rng.randint(1, 7)
    lengths = [rng.choice([3, 10, 17, 40, 64, 128, 256]) + rng.randint(0, 5) for _ in range(n)]
    cfg = PlanConfig(
        overhead_tokens=rng.choice([0.0, 8.0, 48.0, 500.0]),
        max_tokens=rng.choice([200, 600, 8192]),
        max_rows=rng.choice([2, 3, 64]),
    )
    passes = plan_batches(lengths, cfg)
    _check_shape(passes, lengths, cfg)
    best = min(_total(p, lengths, cfg) for p in _partitions(list(range(n))) if _feasible(p, lengths, cfg))
    assert _total(passes, lengths, cfg) == pytest.approx(best)


def test_extremes_of_the_cost_model():
    lengths = [5, 200, 5, 90, 200, 90]
    # no fixed cost: padding is all that counts, so equal lengths share a pass and nothing else does
    free = plan_batches(lengths, PlanConfig(overhead_tokens=0))
    assert sorted(sorted(lengths[i] for i in p) for p in free) == [[5, 5], [90, 90], [200, 200]]
    # a huge fixed cost: one pass, unless the token budget or the row limit splits it
    assert plan_batches(lengths, PlanConfig(overhead_tokens=1e6)) == [[0, 2, 3, 5, 1, 4]]
    tight = plan_batches(lengths, PlanConfig(overhead_tokens=1e6, max_tokens=400))
    assert all(len(p) * max(lengths[i] for i in p) <= 400 for p in tight)
    assert [len(p) for p in plan_batches(lengths, PlanConfig(overhead_tokens=1e6, max_rows=4))] == [4, 2]
    # a single row over the token budget still runs, alone
    assert plan_batches([9000, 10], PlanConfig(max_tokens=8192)) == [[1], [0]]
    assert plan_batches([], PlanConfig()) == []


def test_bundled_length_mix_pads_far_less_than_one_batch():
    rng = random.Random(0)  # lengths like the load test's texts: 15..256 tokens, a fifth truncated
    lengths = [min(256, int(rng.lognormvariate(4.6, 0.8))) for _ in range(24)]
    cfg = PlanConfig()
    passes = plan_batches(lengths, cfg)
    one = pass_cost(lengths, cfg)
    each = sum(pass_cost([n], cfg) for n in lengths)
    planned = _total(passes, lengths, cfg)
    assert 1 < len(passes) < len(lengths)
    assert planned < 0.55 * one and planned < 0.9 * each  # 3297 vs 6192 and 3930 token-times


def test_policies_pick_the_pass_of_the_oldest_or_everything():
    lengths = [200, 5, 6, 190, 7, 100]  # oldest first
    cfg = PlanConfig(overhead_tokens=48)
    everything = plan_batches(lengths, cfg)
    assert passes_now(lengths, BatchPolicy.TAKE, cfg) == everything
    (now,) = passes_now(lengths, "planned", cfg)
    assert 0 in now and now in everything  # the oldest (200 tokens) goes now, with its kind
    assert sorted(lengths[i] for i in now) == [190, 200]
    assert passes_now(lengths, "sorted", cfg) == [[1, 2, 4, 5, 3, 0]]
    assert passes_now([], "planned", cfg) == []
    with pytest.raises(ValueError):
        passes_now(lengths, "fifo", cfg)


def test_config_is_checked():
    from rewardlab.serve import ServeConfig

    for bad in ({"overhead_tokens": -1}, {"max_tokens": 0}, {"max_rows": 0}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            PlanConfig(**bad)
    with pytest.raises(ValueError, match="batch_policy: unknown 'fifo'"):
        ServeConfig(batch_policy="fifo")
    with pytest.raises(ValueError, match="pass_overhead_tokens"):
        ServeConfig(pass_overhead_tokens=-1)
    assert ServeConfig(batch_policy="take").batch_policy == BatchPolicy.TAKE


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc_trim and /proc")
def test_heap_trimmer_returns_fragmented_free_memory():
    trimmer = HeapTrimmer(bound_mib=32, min_interval_s=0)
    assert trimmer.enabled
    trimmer.maybe_trim()  # sets the floor
    # 160 MiB in 64 KiB blocks (below glibc's mmap threshold: from the heap), every 16th kept, so
    # the freed blocks lie between live ones and free() alone cannot return them
    blocks = [bytearray(64 * 1024) for _ in range(2560)]
    keep = blocks[::16]
    del blocks
    before = rss_mib()
    assert before > trimmer.floor + 100
    assert trimmer.maybe_trim()
    assert rss_mib() < before - 100
    assert not trimmer.maybe_trim()  # back within the bound: nothing to do
    assert trim_heap() and len(keep) == 160
