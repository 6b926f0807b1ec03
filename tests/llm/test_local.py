"""The local backend on the embedded SmolLM2: batching, padding, seeding, logprobs."""

from __future__ import annotations

import pytest
import torch
from llm_helpers import save_tiny_causal_lm

from rewardlab.llm import GenerationConfig, LocalBackend
from rewardlab.llm.local import resolve_device, resolve_dtype

CONVS = [
    [{"role": "user", "content": "Write one sentence about cats."}],
    [{"role": "user", "content": "Hi"}],
    [{"role": "user", "content": "List three fruits, then explain which one you like and why."}],
]


def test_resolve_device_and_dtype() -> None:
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in {"cpu", "cuda", "mps"}
    assert resolve_dtype("auto", torch.device("cpu")) == torch.float32
    assert resolve_dtype("bfloat16", torch.device("cpu")) == torch.bfloat16
    with pytest.raises(ValueError, match="dtype"):
        resolve_dtype("int3", torch.device("cpu"))


@pytest.mark.slow
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_replies_do_not_depend_on_batching(local_backend: LocalBackend, temperature: float) -> None:
    """Greedy and seeded sampled replies are the same at batch 1 and in a padded batch."""
    gen = GenerationConfig(max_new_tokens=8, temperature=temperature, seed=1)
    local_backend.batch_size = 4
    batched = local_backend.chat(CONVS, gen)
    local_backend.batch_size = 1
    assert local_backend.chat(CONVS, gen) == batched
    local_backend.batch_size = 4


@pytest.mark.slow
def test_sampling_is_seeded_and_leaves_global_rng(local_backend: LocalBackend) -> None:
    gen = GenerationConfig(max_new_tokens=8, temperature=1.0, seed=1)
    torch.manual_seed(123)
    expected = torch.rand(1)
    torch.manual_seed(123)
    a = local_backend.chat(CONVS[:2], gen)
    assert torch.equal(torch.rand(1), expected)  # the caller's RNG stream is untouched
    other = local_backend.chat(CONVS[:2], GenerationConfig(max_new_tokens=8, temperature=1.0, seed=2))
    assert other != a


@pytest.mark.slow
def test_option_logprobs_batch_invariant_and_match_top(local_backend: LocalBackend) -> None:
    local_backend.batch_size = 1
    one = local_backend.option_logprobs(CONVS, ["A", "B"])
    local_backend.batch_size = 4
    many = local_backend.option_logprobs(CONVS, ["A", "B"])
    for a, b in zip(one, many, strict=True):
        assert a["A"] == pytest.approx(b["A"], abs=1e-4)
        assert a["B"] == pytest.approx(b["B"], abs=1e-4)
    top = local_backend.top_logprobs(CONVS[:1], 3)[0]
    assert len(top) == 3 and top[0][1] >= top[1][1] >= top[2][1]
    with pytest.raises(ValueError, match="share a first token"):
        local_backend.option_logprobs(CONVS[:1], ["Yes", "Yes!"])


@pytest.mark.slow
def test_long_prompt_keeps_its_end(local_backend: LocalBackend) -> None:
    long = [{"role": "user", "content": "word " * 3000 + "Now say OK."}]
    ids = local_backend.encode([long])[0]
    assert len(ids) == local_backend.max_input_tokens
    assert local_backend.tokenizer.decode(ids[-3:]).strip().endswith("assistant")


@pytest.fixture(scope="module")
def tiny_causal_lm(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A 2-layer, hidden-16 random Llama causal LM with the SmolLM2 tokenizer, saved to disk."""
    return save_tiny_causal_lm(tmp_path_factory.mktemp("tiny-causal-lm"))


def test_any_local_causal_lm_path(tiny_causal_lm: str) -> None:
    """A local HF path works like the alias: batched, padded, seeded, with option logprobs."""
    llm = LocalBackend(tiny_causal_lm, device="cpu", batch_size=3, threads=1)
    assert llm.model == tiny_causal_lm
    for temperature in (0.0, 0.9):
        gen = GenerationConfig(max_new_tokens=5, temperature=temperature, seed=3)
        llm.batch_size = 3
        batched = llm.chat(CONVS, gen)
        llm.batch_size = 1
        assert llm.chat(CONVS, gen) == batched and len(batched) == 3
    lp = llm.option_logprobs(CONVS, ["A", "B"])
    assert all(v < 0 for d in lp for v in d.values())


@pytest.mark.slow
def test_sample_n_draws_distinct_seeded_samples(local_backend: LocalBackend) -> None:
    """n samples of one prompt: sample 0 is chat's reply; each sample is independent of n and of
    the batch size; the samples differ."""
    gen = GenerationConfig(max_new_tokens=6, temperature=1.0, top_p=1.0, seed=3)
    local_backend.batch_size = 4
    five = local_backend.sample_n(CONVS[0], 5, gen)
    assert five[0] == local_backend.chat(CONVS[:1], gen)[0]
    assert len(set(five)) > 1
    local_backend.batch_size = 2
    assert local_backend.sample_n(CONVS[0], 3, gen) == five[:3]
    local_backend.batch_size = 4
    with pytest.raises(ValueError, match="temperature"):
        local_backend.sample_n(CONVS[0], 2, GenerationConfig(max_new_tokens=2, temperature=0.0))


@pytest.mark.parametrize("top_p", [1.0, 0.9])
def test_row_sampler_draws_from_the_softmax(top_p: float) -> None:
    """Both sampler paths (inverse CDF at top_p = 1, the sorted nucleus below) match the target
    distribution: 4,000 seeded rows over a 5-token vocabulary, every frequency within 0.03."""
    from rewardlab.llm.local import RowSampler

    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, -30.0]]).repeat(4000, 1)
    choice = RowSampler(list(range(4000)), 1.0, top_p)(None, logits).argmax(-1)
    probs = torch.softmax(logits[0], -1)
    if top_p < 1:  # the nucleus keeps the smallest top set whose mass reaches top_p
        keep = (probs.sort(descending=True).values.cumsum(0) - probs.sort(descending=True).values) <= top_p
        probs = torch.where(keep[probs.argsort(descending=True).argsort()], probs, 0.0)
        probs = probs / probs.sum()
    freq = torch.bincount(choice, minlength=5).double() / 4000
    assert (freq - probs.double()).abs().max() < 0.03
    assert freq[4] == 0.0  # a token of mass ~1e-14 is never drawn
