"""Cache keys tell apart models that share a name: other weights, dtype, server (real backends)."""

from __future__ import annotations

import json
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from llm_helpers import THREADS, free_port, save_tiny_causal_lm, start_server

from rewardlab.llm import CachedBackend, GenerationCache, LocalBackend, OpenAIBackend
from rewardlab.llm.base import GenerationConfig

CONV = [[{"role": "user", "content": "Name a colour."}]]
GREEDY = GenerationConfig(max_new_tokens=6, temperature=0.0)


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory: pytest.TempPathFactory) -> str:
    return save_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lm"), seed=0)


def test_local_key_follows_weights_and_dtype(tmp_path: Path) -> None:
    """Same path and name, re-initialised weights or another dtype: a cache miss, not a stale hit."""
    path = tmp_path / "lm"
    cache = GenerationCache(tmp_path / "c.sqlite")
    save_tiny_causal_lm(path, seed=0)
    first = CachedBackend(LocalBackend(str(path), device="cpu", threads=THREADS), cache)
    reply0 = first.chat(CONV, GREEDY)
    again = CachedBackend(LocalBackend(str(path), device="cpu", threads=THREADS), cache)
    assert again.chat(CONV, GREEDY) == reply0 and (again.hits, again.misses) == (1, 0)

    save_tiny_causal_lm(path, seed=1)  # other weights under the same path (and so the same name)
    other = CachedBackend(LocalBackend(str(path), device="cpu", threads=THREADS), cache)
    assert other.fingerprint()["revision"] != first.fingerprint()["revision"]
    reply1 = other.chat(CONV, GREEDY)
    assert (other.hits, other.misses) == (0, 1)
    assert reply1 == other.inner.chat(CONV, GREEDY)  # what these weights say, not the old entry

    bf16 = CachedBackend(LocalBackend(str(path), device="cpu", dtype="bfloat16", threads=THREADS), cache)
    bf16.chat(CONV, GREEDY)
    assert (bf16.hits, bf16.misses) == (0, 1)


@pytest.fixture(scope="module")
def tiny_server(tiny_lm: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The rewardlab server over a tiny random model that it calls "smollm2"."""
    cmd = [sys.executable, "-m", "rewardlab.llm.server", "--model", tiny_lm]
    cmd += ["--served-model-name", "smollm2", "--port", str(free_port()), "--device", "cpu"]
    cmd += ["--threads", str(THREADS), "--no-cache"]
    yield from start_server(cmd, tmp_path_factory.mktemp("tiny-server") / "server.log")


def card(base_url: str) -> dict:
    with urllib.request.urlopen(f"{base_url}/models") as r:
        return json.loads(r.read())["data"][0]


@pytest.mark.slow
def test_two_servers_one_model_name_do_not_share_entries(
    llm_server: str, tiny_server: str, tmp_path: Path
) -> None:
    """The embedded SmolLM2 and a tiny random model, both served as "smollm2" on loopback."""
    a, b = card(llm_server), card(tiny_server)
    assert a["id"] == b["id"] == "smollm2" and a["fingerprint"] != b["fingerprint"]
    cache = GenerationCache(tmp_path / "c.sqlite")
    real = CachedBackend(OpenAIBackend("smollm2", base_url=llm_server, timeout=120), cache)
    tiny = CachedBackend(OpenAIBackend("smollm2", base_url=tiny_server, timeout=120), cache)
    from_real = real.chat(CONV, GREEDY)
    from_tiny = tiny.chat(CONV, GREEDY)
    assert (tiny.hits, tiny.misses) == (0, 1), "the second server's request was served from the cache"
    assert from_tiny == tiny.inner.chat(CONV, GREEDY) and from_tiny != from_real
    again = CachedBackend(OpenAIBackend("smollm2", base_url=llm_server, timeout=120), cache)
    assert again.chat(CONV, GREEDY) == from_real and again.hits == 1
    assert real.fingerprint()["served"] == a["fingerprint"]
