"""Scoring precision (rewardlab.models.fast_score): bf16 / mixed agree with fp32 within a stated
tolerance on tiny in-code models (encoder and decoder), refusals, and the flip-rate helper."""

from __future__ import annotations

import pytest
import torch

from pairs_data import make_pairs
from rewardlab.loading import load
from rewardlab.models.config import ModelConfig
from rewardlab.models.fast_score import Precision, flip_rate
from rewardlab.models.reward_model import RewardModel

# bf16 keeps 8 significant bits (relative rounding 2^-9 ≈ 0.2% per operation); through two tiny
# blocks and the head the rewards move by a few per cent of their size at most (measured: bf16
# ≤ 3%, mixed ≤ 0.6% on these models). Stated bound: max |r_fast − r_fp32| < 5% of max |r_fp32|.
REL_TOL = 0.05


def _save(backbone: str, out):
    """A saved tiny RM with a non-zero LoRA (merged on save)."""
    torch.manual_seed(0)
    rm = RewardModel.build(ModelConfig(backbone=backbone, max_length=64))
    with torch.no_grad():
        for n, p in rm.model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.5)
    return rm.save(out)


@pytest.fixture(scope="module", params=["tiny_bert", "tiny_llama"])
def saved(request, tmp_path_factory):
    """Each tiny saved RM in turn (encoder, decoder)."""
    return _save(request.getfixturevalue(request.param), tmp_path_factory.mktemp("fast-score") / "m")


def _texts():
    pairs = make_pairs(12)
    return [p.prompt for p in pairs] * 2, [p.chosen for p in pairs] + [p.rejected for p in pairs]


@pytest.mark.parametrize("precision", [Precision.BF16, Precision.MIXED])
def test_reduced_precision_agrees_with_fp32(saved, precision):
    prompts, responses = _texts()
    ref = load(saved).score(prompts, responses).rewards  # (N, 1) fp32
    fast = load(saved, precision=precision.value)
    assert fast.precision == precision
    dtypes = {p.dtype for p in fast.rm.hf_model.parameters()}
    assert torch.bfloat16 in dtypes  # it really is converted ...
    assert (torch.float32 in dtypes) == (precision == Precision.MIXED)  # ... wholly or in part
    got = fast.score(prompts, responses).rewards
    assert got.dtype == torch.float32 and got.shape == ref.shape
    err = (got - ref).abs().max() / ref.abs().max()
    assert 0 < err < REL_TOL, float(err)  # moved (rounded), but only a little


def test_fp32_is_the_default_and_unchanged(saved):
    prompts, responses = _texts()
    a, b = load(saved), load(saved, precision="fp32")
    assert a.precision == Precision.FP32
    assert torch.equal(a.score(prompts, responses).rewards, b.score(prompts, responses).rewards)


def test_reduced_precision_warns_on_a_cpu_without_native_bf16(saved, caplog, monkeypatch):
    """bf16 emulated (no AMX / AVX512-BF16) is slower than fp32: load says so, and only then."""
    import logging

    import rewardlab.llm.local as local

    for native, precision, warned in ((False, "bf16", True), (True, "bf16", False), (False, "fp32", False)):
        monkeypatch.setattr(local, "cpu_has_bf16", lambda native=native: native)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="rewardlab.loading"):
            load(saved, precision=precision)
        assert ("without native bfloat16" in caplog.text) == warned, (native, precision)


def test_reduced_precision_refused_with_a_posterior(saved, tmp_path):
    import shutil

    model = shutil.copytree(saved, tmp_path / "m")
    (model / "posterior").mkdir()  # load refuses before reading it
    with pytest.raises(ValueError, match="precision 'bf16'.*uncertainty off"):
        load(model, precision="bf16")
    with pytest.raises(ValueError):
        load(model, precision="half")


def test_flip_rate_counts_changed_preferences():
    ref_c, ref_r = torch.tensor([1.0, 0.0, 2.0, 0.5]), torch.tensor([0.0, 1.0, 1.0, 0.5])
    assert flip_rate(ref_c, ref_r, ref_c, ref_r) == 0.0
    # pair 0 keeps its order, pair 1 flips, pair 2 becomes a tie (a flip), pair 3 stays a tie
    c, r = torch.tensor([0.9, 2.0, 1.0, 0.3]), torch.tensor([0.1, 1.0, 1.0, 0.3])
    assert flip_rate(ref_c, ref_r, c, r) == 0.5
    assert flip_rate(ref_c[:, None], ref_r[:, None], c[:, None], r[:, None]) == 0.5  # (B, 1) too
    with pytest.raises(ValueError, match="equal-length"):
        flip_rate(ref_c, ref_r, c[:3], r)


def test_score_cli_precision_flag(tiny_bert, tmp_path):
    """``rewardlab score --precision mixed`` writes rewards near fp32; a bad value and a reduced
    precision with --uncertainty on a posterior model are one-line errors with exit code 2."""
    import json
    import shutil
    import subprocess
    import sys

    from rewardlab.data.load import write_pairs

    saved = _save(tiny_bert, tmp_path / "m")
    data = tmp_path / "pairs.jsonl"
    write_pairs(make_pairs(6), data)

    def score(model, *flags):
        out = tmp_path / "out.jsonl"
        cmd = [sys.executable, "-m", "rewardlab.cli", "score", "--model", str(model), "--data", str(data)]
        r = subprocess.run([*cmd, "--out", str(out), *flags], capture_output=True, text=True)
        return r, [json.loads(line)["reward"] for line in open(out)] if r.returncode == 0 else None

    rmix, mixed = score(saved, "--precision", "mixed")
    assert rmix.returncode == 0, rmix.stderr
    pairs = make_pairs(6)  # the pairs file gives chosen, then rejected, per pair
    responses = [x for p in pairs for x in (p.chosen, p.rejected)]
    ref = load(saved).score([p.prompt for p in pairs for _ in (0, 1)], responses).reward
    mixed = torch.tensor(mixed)
    assert 0 < (mixed - ref).abs().max() < REL_TOL * ref.abs().max()
    assert score(saved, "--precision", "half")[0].returncode == 2
    post = shutil.copytree(saved, tmp_path / "post")
    (post / "posterior").mkdir()
    r, _ = score(post, "--precision", "bf16", "--uncertainty")
    assert r.returncode == 2 and "precision 'bf16'" in r.stdout + r.stderr


def test_serve_config_precision():
    from rewardlab.serve.config import ServeConfig

    assert ServeConfig().precision == Precision.FP32
    assert ServeConfig(precision="bf16").precision == Precision.BF16
    with pytest.raises(ValueError, match="precision: unknown 'half'"):
        ServeConfig(precision="half")


def _groups_texts():
    """Three prompts with 3, 2 and 1 responses of different lengths (the best-of-n shape)."""
    prompts = [
        f"question {i}: " + "please tell me about bicycles and their chains " * (2 + i) for i in range(3)
    ]
    answers = ["check the chain", "no idea, go away " * 3, "oil it, then wipe it down twice", "sure"]
    rows = [(0, 0), (0, 1), (0, 2), (1, 3), (1, 0), (2, 1)]
    return [prompts[p] for p, _ in rows], [answers[a] for _, a in rows]


def test_prompt_sharing_matches_the_full_forward(tiny_backbone):
    """Decoders share each prompt's KV among its responses (exact to 1e-5); encoders ignore the
    groups (their prompt tokens see the response)."""
    from rewardlab.models import prompt_share as ps

    rm = RewardModel.build(ModelConfig(backbone=tiny_backbone, max_length=64, lora_r=0))
    rm.eval()
    prompts, responses = _groups_texts()
    seqs = rm.encode(prompts, responses)
    groups = ps.prefix_groups(seqs, prompts)
    assert [len(idx) for _, idx in groups] == [3, 2] and all(p >= ps.MIN_PREFIX for p, _ in groups)
    shared = rm.score_encoded(seqs, groups=prompts)
    rm.fast_inference = False  # the plain HF forward, every sequence alone in its batch
    full = torch.cat([rm.score_encoded([s]) for s in seqs])
    assert torch.allclose(shared, full, atol=1e-5), (shared - full).abs().max()
    assert ps.supports_prompt_sharing(rm) == (tiny_backbone.endswith("llama0"))


def test_common_prefix_stops_inside_every_member():
    from rewardlab.models import prompt_share as ps

    seqs = [{"input_ids": list(range(12))}, {"input_ids": list(range(10))}, {"input_ids": [0, 1]}]
    assert ps.common_prefix(seqs[0]["input_ids"], seqs[1]["input_ids"]) == 10
    # the 10-token member must keep one token of its own: P = 9
    assert ps.prefix_groups(seqs[:2], ["a", "a"]) == [(9, [0, 1])]
    assert ps.prefix_groups(seqs, ["a", "a", "a"]) == []  # prefix below MIN_PREFIX: normal path
    assert ps.prefix_groups(seqs[:2], ["a", "b"]) == []  # different prompts never share


def _spied_decoder(tiny_llama, tmp_path, monkeypatch):
    """A loaded tiny decoder RM and the list a spy on ``prompt_share.pack_group`` appends to."""
    from rewardlab.models import prompt_share as ps

    calls = []
    real = ps.pack_group
    monkeypatch.setattr(ps, "pack_group", lambda *a, **k: calls.append(1) or real(*a, **k))
    torch.manual_seed(0)
    saved = RewardModel.build(ModelConfig(backbone=tiny_llama, max_length=64, lora_r=0)).save(tmp_path / "m")
    return load(saved), calls


def test_loaded_score_shares_prompts_unless_told_not_to(tiny_llama, tmp_path, monkeypatch):
    lr, calls = _spied_decoder(tiny_llama, tmp_path, monkeypatch)
    prompts, responses = _groups_texts()
    plain = lr.score(prompts, responses, share_prompts=False).rewards
    assert not calls
    shared = lr.score(prompts, responses).rewards  # on by default
    assert len(calls) == 2 and torch.allclose(plain, shared, atol=1e-5)  # the 3- and 2-response groups


def test_packed_mask_is_block_causal():
    """A member's token sees the prefix and its own earlier tokens; padding sees only itself."""
    from rewardlab.models import prompt_share as ps

    seqs = [{"input_ids": [5, 6, 7, 1]}, {"input_ids": [5, 6, 8, 9]}]
    (row,) = ps.pack_group(seqs, [0, 1], 2, pad=0)
    assert row.ids == [5, 6, 7, 1, 8, 9] and row.positions == [0, 1, 2, 3, 2, 3]
    assert row.reads == [3, 5] and row.members == [0, 1]
    short = ps.PackedRow([5, 6, 7], [0, 1, 2], [0, 0, 1], [2], [0])
    b = ps.packed_batch([row, short], pad=0, mask_dtype=None, device="cpu")
    m = b["attention_mask"][:, 0].int()
    assert m[0].tolist() == [
        [1, 0, 0, 0, 0, 0],
        [1, 1, 0, 0, 0, 0],
        [1, 1, 1, 0, 0, 0],
        [1, 1, 1, 1, 0, 0],
        [1, 1, 0, 0, 1, 0],  # member 2 skips member 1's tokens
        [1, 1, 0, 0, 1, 1],
    ]
    assert m[1, 3:].tolist() == [[0, 0, 0, 1, 0, 0], [0, 0, 0, 0, 1, 0], [0, 0, 0, 0, 0, 1]]
    add = ps.packed_batch([row], pad=0, mask_dtype=torch.float32, device="cpu")["attention_mask"]
    assert add[0, 0, 4, 2] == torch.finfo(torch.float32).min and add[0, 0, 4, 1] == 0


def test_packed_rows_cut_and_eager_attention_stay_exact(tiny_llama, monkeypatch):
    """Groups cut into several packed rows, and the eager attention's additive mask, give the
    rewards of the plain forward."""
    from rewardlab.models import prompt_share as ps

    rm = RewardModel.build(ModelConfig(backbone=tiny_llama, max_length=64, lora_r=0))
    rm.eval()
    prompts, responses = _groups_texts()
    seqs = rm.encode(prompts, responses)
    rm.fast_inference = False
    full = torch.cat([rm.score_encoded([s]) for s in seqs])
    rm.fast_inference = True
    p, idx = ps.prefix_groups(seqs, prompts)[0]
    assert len(ps.pack_group(seqs, idx, p, 0, row_tokens=p + 1)) == len(idx)  # one member per row
    monkeypatch.setattr(ps, "ROW_TOKENS", 1)
    cut = rm.score_encoded(seqs, groups=prompts)
    assert torch.allclose(cut, full, atol=1e-5), (cut - full).abs().max()
    monkeypatch.undo()
    rm.hf_model.set_attn_implementation("eager")
    eager = rm.score_encoded(seqs, groups=prompts)
    assert torch.allclose(eager, full, atol=1e-5), (eager - full).abs().max()


def test_server_passes_share_prompts_exactly(tiny_llama, tmp_path, monkeypatch):
    """The server's worker groups a pass's samples by prompt (concurrent OpenRLHF requests of one
    GRPO group): a decoder RM packs them, with the rewards of the plain offline path."""
    from rewardlab.serve.scoring import Sample, Scorer

    lr, calls = _spied_decoder(tiny_llama, tmp_path, monkeypatch)
    prompts, responses = _groups_texts()
    plain = lr.score(prompts, responses, share_prompts=False).reward
    assert not calls
    scored = Scorer(lr)([Sample(p, r) for p, r in zip(prompts, responses, strict=True)])
    assert len(calls) == 2  # the 3- and 2-response groups were packed
    assert torch.allclose(torch.tensor([s.reward for s in scored]), plain, atol=1e-5)
