"""Generation throughput of the local backend vs a plain ``model.generate`` loop, and cache cost.

Same prompts (HH harmless test prompts from the bundled data), same model (embedded SmolLM2),
greedy decoding, same ``max_new_tokens``. Tokens are counted the same way for every arm: the
generated replies re-tokenized. The plain loop is what one writes first: batch 1, prompts in data
order, ``model.generate`` per prompt. The backend arms batch (left padding, length-sorted).

    python benchmarks/bench_generation.py --n 16 --max-new-tokens 32 --batches 1,4,8,16

Prints one line per arm, the cache-hit cost, and the speed-up ratio last.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from rewardlab.data.bundled import hh_splits
from rewardlab.llm import CachedBackend, GenerationCache, GenerationConfig, LocalBackend
from rewardlab.llm.base import as_messages
from rewardlab.llm.local import torch_threads


def prompts(n: int) -> list[list[dict[str, str]]]:
    """The first ``n`` HH test prompts as chat conversations."""
    return [as_messages(p.prompt) for p in hh_splits()["test"][:n]]


def count(backend: LocalBackend, replies: list[str]) -> int:
    """Generated tokens, counted by re-tokenizing the replies."""
    return sum(backend.count_tokens(replies))


def plain_loop(backend: LocalBackend, convs: list, max_new: int) -> tuple[list[str], float]:
    """Batch-1 ``model.generate`` over the prompts in order; returns (replies, seconds)."""
    tok, lm = backend.tokenizer, backend.lm
    replies = []
    t0 = time.perf_counter()
    with torch.inference_mode(), torch_threads(backend.threads):
        for conv in convs:
            text = tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
            enc = tok(text, return_tensors="pt", add_special_tokens=False).to(backend.device)
            out = lm.generate(
                **enc,
                max_new_tokens=max_new,
                do_sample=False,
                top_p=None,
                temperature=None,
                top_k=None,
                pad_token_id=tok.pad_token_id,
            )
            new = out[0, enc["input_ids"].shape[1] :]
            replies.append(tok.decode(new, skip_special_tokens=True).strip())
    return replies, time.perf_counter() - t0


def timed_chat(backend: LocalBackend, convs: list, gen: GenerationConfig) -> tuple[list[str], float]:
    """``backend.chat`` with wall-clock time."""
    t0 = time.perf_counter()
    replies = backend.chat(convs, gen)
    return replies, time.perf_counter() - t0


def cache_hit_cost(
    backend: LocalBackend, convs: list, gen: GenerationConfig, replies: list[str], repeats: int = 20
) -> float:
    """Seconds per item served from a warm SQLite cache (keying + lookup + decode)."""
    with tempfile.TemporaryDirectory() as tmp:
        cached = CachedBackend(backend, GenerationCache(Path(tmp) / "bench.sqlite"))
        from rewardlab.llm.cache import cache_key, gen_params

        params = gen_params(gen)
        keys = [cache_key(cached.name, cached.model, "chat", c, params) for c in convs]
        cached.cache.put_many(dict(zip(keys, replies, strict=True)))
        t0 = time.perf_counter()
        for _ in range(repeats):
            assert cached.chat(convs, gen) == replies
        assert cached.misses == 0
        return (time.perf_counter() - t0) / (repeats * len(convs))


def main() -> None:
    """Run every arm and print the table; the ratio comes last."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=16, help="number of prompts")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--batches", default="1,4,8,16", help="backend batch sizes to try")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    ap.add_argument("--device", default="cpu")
    a = ap.parse_args()

    convs = prompts(a.n)
    backend = LocalBackend("smollm2", device=a.device, threads=a.threads)
    gen = GenerationConfig(max_new_tokens=a.max_new_tokens, temperature=0.0)
    lens = [len(x) for x in backend.encode(convs)]
    print(
        f"{a.n} HH prompts, prompt tokens {min(lens)}-{max(lens)}, max_new_tokens "
        f"{a.max_new_tokens}, greedy, device {backend.device}, torch threads "
        f"{a.threads or torch.get_num_threads()}"
    )
    backend.chat(convs[:1], GenerationConfig(max_new_tokens=2, temperature=0.0))  # warm-up

    base_replies, base_s = plain_loop(backend, convs, a.max_new_tokens)
    base_tps = count(backend, base_replies) / base_s
    print(f"plain model.generate loop (batch 1): {base_tps:7.1f} tok/s  ({base_s:.1f} s)")

    results: dict[int, float] = {}
    last: list[str] = []
    for bs in [int(x) for x in a.batches.split(",")]:
        backend.batch_size = bs
        last, secs = timed_chat(backend, convs, gen)
        results[bs] = count(backend, last) / secs
        same = sum(x == y for x, y in zip(last, base_replies, strict=True))
        print(
            f"LocalBackend batch {bs:>2}:             {results[bs]:7.1f} tok/s  ({secs:.1f} s, "
            f"{same}/{a.n} replies identical to the plain loop)"
        )

    hit = cache_hit_cost(backend, convs, gen, last)
    print(f"cache hit: {hit * 1e6:.0f} µs per item")
    best = max(results, key=results.__getitem__)
    print(f"batch 1 / plain loop: {results.get(1, float('nan')) / base_tps:.2f}x")
    print(f"best (batch {best}) / plain loop: {results[best] / base_tps:.2f}x")


if __name__ == "__main__":
    main()
