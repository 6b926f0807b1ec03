"""Packed encoder passes (rewardlab.models.encoder_pack): the packing, exactness against the padded
path, and that the per-sequence mask and positions are what makes it exact."""

from __future__ import annotations

import random

import pytest
import torch

from rewardlab.models import encoder_pack as ep
from rewardlab.models.config import ModelConfig
from rewardlab.models.reward_model import RewardModel


def test_pack_rows_places_every_index_once_within_the_row():
    rng = random.Random(0)
    lengths = [rng.randint(1, 60) for _ in range(200)] + [90, 64]  # 90: longer than a row
    rows = ep.pack_rows(lengths, 64)
    flat = sorted(i for r in rows for i in r)
    assert flat == list(range(len(lengths)))
    for r in rows:
        assert sum(lengths[i] for i in r) <= 64 or len(r) == 1
    assert [200] in rows  # the over-long one alone
    # first-fit decreasing: at most one row less than half full
    assert sum(sum(lengths[i] for i in r) <= 32 for r in rows) <= 1
    assert ep.pack_rows([], 64) == []


def _rm(backbone: str, objectives=("reward",), max_length=64) -> RewardModel:
    torch.manual_seed(1)
    rm = RewardModel.build(ModelConfig(backbone=backbone, objectives=list(objectives), max_length=max_length))
    for p in rm.hf_model.parameters():  # spread the random weights: rewards that differ per text
        p.data.normal_(0, 0.5)
    return rm.eval()


def _texts(n: int) -> tuple[list[str], list[str]]:
    rng = random.Random(3)
    words = "the cat sat on a mat while seven dogs ran far away quickly".split()
    prompts = [" ".join(rng.choices(words, k=rng.randint(1, 12))) for _ in range(n)]
    responses = [" ".join(rng.choices(words, k=rng.randint(1, 70))) for _ in range(n)]
    return prompts, responses


@pytest.mark.parametrize("objectives", [("reward",), ("helpful", "harmless")])
def test_packed_rewards_equal_the_padded_path(tiny_bert, objectives):
    rm = _rm(tiny_bert, objectives)
    assert ep.supports_packing(rm)
    seqs = rm.encode(*_texts(40))
    lengths = [len(s["input_ids"]) for s in seqs]
    assert len(set(lengths)) > 10 and max(lengths) == 64  # a mix, some cut at max_length
    ref = rm.score_encoded(seqs)
    assert float(ref.std()) > 1e-2  # rewards that differ, so the comparison means something
    for row_tokens in (None, 256):  # rows of max_length (the default), and longer rows
        packed = ep.score_packed(rm, seqs, row_tokens)
        assert packed.shape == ref.shape == (40, len(objectives))
        torch.testing.assert_close(packed, ref, atol=1e-5, rtol=1e-5)
    assert len(ep.pack_rows(lengths, 64)) < 35  # really packed
    assert max(len(r) for r in ep.pack_rows(lengths, 256)) > 4


def test_packing_depends_on_the_mask_and_the_positions(tiny_bert):
    """Letting sequences see each other, or counting positions across the row, changes rewards:
    the exactness above comes from the block-diagonal mask and the restarting positions."""
    rm = _rm(tiny_bert)
    seqs = rm.encode(*_texts(12))
    ref = rm.score_encoded(seqs)
    rows = ep.pack_rows([len(s["input_ids"]) for s in seqs], 64)
    hf = rm.hf_model

    def rewards(p: ep.PackedPass) -> torch.Tensor:
        with torch.inference_mode():
            r = ep.packed_top_rewards(hf, ep.below_top_unpadded(hf, p), p)
        out = torch.empty_like(r)
        out[torch.tensor(p.members)] = r
        return out

    p = ep.packed_pass(seqs, rows, hf.config.pad_token_id, rm.device)
    torch.testing.assert_close(rewards(p), ref, atol=1e-5, rtol=1e-5)
    leaky = ep.packed_pass(seqs, rows, hf.config.pad_token_id, rm.device)
    leaky.inputs["attention_mask"] = torch.ones_like(leaky.inputs["attention_mask"])
    assert (rewards(leaky) - ref).abs().max() > 1e-3
    shifted = ep.packed_pass(seqs, rows, hf.config.pad_token_id, rm.device)
    t = shifted.inputs["position_ids"].shape[1]
    shifted.inputs["position_ids"] = torch.arange(t).expand_as(shifted.inputs["position_ids"]).clone()
    assert (rewards(shifted) - ref).abs().max() > 1e-3


def test_decoders_are_not_packed(tiny_llama):
    assert not ep.supports_packing(_rm(tiny_llama))


def test_states_below_top_is_per_thread(tiny_bert):
    """A forward of another thread while a thread's stop-hook is set passes it by: each thread gets
    its own states (a user scoring from threads with one model; the hook is on the shared layer)."""
    import threading

    from rewardlab.models.fast_top import states_below_top

    rm = _rm(tiny_bert)
    hf = rm.hf_model
    a, b = (rm.collate(rm.encode(*_texts(n))) for n in (3, 5))
    with torch.inference_mode():
        ref_a = states_below_top(hf, lambda: hf(**a))
        ref_b = states_below_top(hf, lambda: hf(**b))
        got_b: list[torch.Tensor] = []

        def run_a():  # while this thread's hook is set, another thread runs its own forward first
            t = threading.Thread(target=lambda: got_b.append(states_below_top(hf, lambda: hf(**b))))
            t.start()
            t.join()
            hf(**a)

        got_a = states_below_top(hf, run_a)
    assert len(got_b) == 1
    torch.testing.assert_close(got_b[0], ref_b)
    torch.testing.assert_close(got_a, ref_a)


def test_linears_run_on_the_real_tokens_only(tiny_bert):
    """The unpadded pass: every layer's MLP sees the R real tokens of the pass (topped up to a
    multiple of FLAT_BUCKET), not all the rows' padding (~1 token in 12 on a server window)."""
    from rewardlab.models.backbone import find_layers

    rm = _rm(tiny_bert)
    seqs = rm.encode(*_texts(30))
    real = sum(len(s["input_ids"]) for s in seqs)
    p = ep.packed_pass(seqs, ep.pack_rows([len(s["input_ids"]) for s in seqs], 64), 0, rm.device)
    assert p.segment.numel() > real  # the rows do pad
    seen: list[int] = []
    layers = find_layers(rm.hf_model)
    handles = [
        lyr.intermediate.dense.register_forward_hook(lambda _m, inp, _o: seen.append(inp[0].shape[-2]))
        for lyr in layers[:-1]
    ]
    try:
        ep.score_packed(rm, seqs)
    finally:
        for h in handles:
            h.remove()
    assert len(seen) == len(layers) - 1 and len(set(seen)) == 1
    assert seen[0] % ep.FLAT_BUCKET == 0 and real <= seen[0] < real + ep.FLAT_BUCKET  # topped up a little
    assert seen[0] < p.segment.numel()


def test_flat_tokens_top_up_with_padding_only():
    seg = torch.tensor([0, 0, 1, -1, -1, 0, -1, -1, -1, -1])
    assert ep._flat_tokens(seg, 1).tolist() == [0, 1, 2, 5]
    assert ep._flat_tokens(seg, 3).tolist() == [0, 1, 2, 3, 4, 5]  # 4 real + 2 padding
    assert ep._flat_tokens(seg, 64).tolist() == list(range(10))  # not enough padding: all there is
