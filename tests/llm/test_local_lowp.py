"""Option log-probabilities in bfloat16 keep small A/B margins (the head runs in float32)."""

from __future__ import annotations

import pytest
import torch
from llm_helpers import save_tiny_causal_lm

from rewardlab.llm.local import LocalBackend

CONVS = [
    [{"role": "user", "content": "Which is better, A or B? Answer A or B."}],
    [{"role": "user", "content": "Pick one letter: A or B. Short answer please, thanks."}],
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    return save_tiny_causal_lm(tmp_path_factory.mktemp("tiny-lowp"))


def test_bf16_margins_follow_fp32_and_are_not_on_the_bf16_grid(tiny: str) -> None:
    fp32 = LocalBackend(tiny, device="cpu", dtype="float32", threads=1)
    bf16 = LocalBackend(tiny, device="cpu", dtype="bfloat16", threads=1)
    with torch.no_grad():  # logits of a real LM's size (~10-20), where the bf16 grid is coarse
        fp32.lm.lm_head.weight.mul_(40.0)
        bf16.lm.lm_head.weight.copy_(fp32.lm.lm_head.weight.to(torch.bfloat16))
    ref = fp32.next_token_logprobs(CONVS)  # (N, V)
    low = bf16.next_token_logprobs(CONVS)
    assert low.dtype == torch.float32
    assert torch.allclose(low, ref, rtol=0.02, atol=0.3)
    a, b = bf16.option_token("A"), bf16.option_token("B")
    margin, margin32 = low[:, a] - low[:, b], ref[:, a] - ref[:, b]  # (N,)
    assert torch.allclose(margin, margin32, atol=0.1)
    # plain bf16 logits put every margin on the bf16 grid (a multiple of 2**-7 for |logit| >= 1),
    # which turns a judge's small A/B margins into exact ties; the float32 head does not
    plain = bf16.lm(**bf16._pad(bf16.encode(CONVS))).logits[:, -1].float()  # (N, V)
    grid = 2.0**-7
    plain_margin = plain[:, a] - plain[:, b]
    assert plain[:, [a, b]].abs().min() >= 1.0
    assert torch.equal(torch.remainder(plain_margin, grid), torch.zeros_like(plain_margin))
    assert (torch.remainder(margin, grid) != 0).all()
