"""The SQLite generation cache, the cached backend wrapper and BackendConfig."""

from __future__ import annotations

import multiprocessing as mp
from pathlib import Path

import pytest

from rewardlab.llm import (
    BACKENDS,
    DEFAULT_LOCAL_MODEL,
    BackendConfig,
    CachedBackend,
    GenerationCache,
    build_backend,
)
from rewardlab.llm.base import GenerationConfig
from rewardlab.llm.cache import cache_key, gen_params


class CountingLLM:
    """A fake backend that records what it was asked (for testing the cache only)."""

    name = "counting"

    def __init__(self, model: str = "fake") -> None:
        self.model = model
        self.chat_calls: list[int] = []
        self.lp_calls: list[int] = []

    @classmethod
    def from_config(cls, cfg: BackendConfig) -> CountingLLM:
        return cls(cfg.model or "fake")

    def chat(self, conversations, gen):
        self.chat_calls.append(len(conversations))
        return [f"{c[-1]['content']}|{gen.seed}|{gen.temperature}" for c in conversations]

    def option_logprobs(self, conversations, options):
        self.lp_calls.append(len(conversations))
        return [{o: -float(i + 1) for i, o in enumerate(options)} for _ in conversations]


if "counting" not in BACKENDS:
    BACKENDS.add("counting", CountingLLM)


def conv(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def test_hits_are_not_resent_and_misses_deduplicated(tmp_path: Path) -> None:
    inner = CountingLLM()
    llm = CachedBackend(inner, GenerationCache(tmp_path / "c.sqlite"))
    gen = GenerationConfig(max_new_tokens=5, temperature=0.7, seed=1)
    first = llm.chat([conv("a"), conv("b"), conv("a")], gen)
    assert first == ["a|1|0.7", "b|1|0.7", "a|1|0.7"]
    assert inner.chat_calls == [2]  # "a" sent once
    assert llm.chat([conv("b"), conv("c"), conv("a")], gen) == ["b|1|0.7", "c|1|0.7", "a|1|0.7"]
    assert inner.chat_calls == [2, 1]
    assert llm.chat([conv("a")], gen) == ["a|1|0.7"] and inner.chat_calls == [2, 1]
    lp = llm.option_logprobs([conv("a"), conv("a")], ["A", "B"])
    assert lp == [{"A": -1.0, "B": -2.0}] * 2 and inner.lp_calls == [1]
    llm.option_logprobs([conv("a")], ["B", "A"])  # other options: another key
    assert inner.lp_calls == [1, 1]


def test_cache_persists_across_instances(tmp_path: Path) -> None:
    gen = GenerationConfig(max_new_tokens=5, temperature=0.7)
    CachedBackend(CountingLLM(), GenerationCache(tmp_path / "c.sqlite")).chat([conv("x")], gen)
    inner = CountingLLM()
    again = CachedBackend(inner, GenerationCache(tmp_path / "c.sqlite"))
    assert again.chat([conv("x")], gen) == ["x|0|0.7"] and inner.chat_calls == []


def test_key_depends_on_everything_that_changes_the_reply() -> None:
    g = GenerationConfig(temperature=0.7, seed=1)
    fp = {"backend": "local", "model": "m", "revision": "r1", "dtype": "float32", "device": "cpu"}
    base = cache_key(fp, "chat", conv("a"), gen_params(g))
    variants = [
        cache_key({**fp, "backend": "openai"}, "chat", conv("a"), gen_params(g)),
        cache_key({**fp, "model": "m2"}, "chat", conv("a"), gen_params(g)),
        cache_key({**fp, "revision": "r2"}, "chat", conv("a"), gen_params(g)),
        cache_key({**fp, "dtype": "bfloat16"}, "chat", conv("a"), gen_params(g)),
        cache_key({**fp, "device": "cuda"}, "chat", conv("a"), gen_params(g)),
        cache_key({**fp, "chat_template": "t2"}, "chat", conv("a"), gen_params(g)),
        cache_key({**fp, "base_url": "http://127.0.0.1:2/v1"}, "chat", conv("a"), gen_params(g)),
        cache_key(fp, "option_logprobs", conv("a"), gen_params(g)),
        cache_key(fp, "chat", conv("b"), gen_params(g)),
        cache_key(fp, "chat", conv("a"), gen_params(GenerationConfig(temperature=0.7, seed=2))),
        cache_key(fp, "chat", conv("a"), gen_params(GenerationConfig(temperature=0.8, seed=1))),
        cache_key(fp, "chat", conv("a"), gen_params(GenerationConfig(max_new_tokens=9))),
    ]
    assert len({base, *variants}) == len(variants) + 1
    greedy = [gen_params(GenerationConfig(temperature=0, seed=s, top_p=p)) for s, p in [(1, 0.9), (2, 1)]]
    assert greedy[0] == greedy[1]  # greedy replies do not depend on seed or top_p


def _writer(path: str, start: int) -> None:
    cache = GenerationCache(path)
    for i in range(start, start + 50):
        cache.put_many({f"k{i}": {"v": i}})


def test_concurrent_processes_share_one_file(tmp_path: Path) -> None:
    path = str(tmp_path / "c.sqlite")
    GenerationCache(path)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(path, s)) for s in (0, 50, 100)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    cache = GenerationCache(path)
    assert len(cache) == 150 and cache.get("k149") == {"v": 149}
    assert cache.get("missing") is None


def test_backend_config_validation_and_front_door(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    cfg = BackendConfig()
    assert cfg.backend == "local" and cfg.model == DEFAULT_LOCAL_MODEL and cfg.api_key == "sk-test"
    for bad in (
        {"backend": "nope"},
        {"concurrency": 0},
        {"batch_size": 0},
        {"timeout": 0},
        {"max_retries": -1},
        {"dtype": "int3"},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            BackendConfig(**bad)
    llm = build_backend(BackendConfig(backend="counting", cache_path=str(tmp_path / "c.sqlite")))
    assert isinstance(llm, CachedBackend) and llm.name == "counting"
    raw = build_backend(BackendConfig(backend="counting", no_cache=True))
    assert isinstance(raw, CountingLLM)
