"""Scoring throughput: rewardlab vs TRL GRPO's reward-model path, same model and responses, one run.

Both sides score the same responses (chosen and rejected of HH test, LLMBar, HHH) with the same
saved RM and give the same rewards (checked: max |Δ| and Pearson r are printed).

* **peer — TRL GRPO's reward-model path** (``GRPOTrainer._calculate_rewards``): for each batch of
  ``--batch`` responses in input order, ``apply_chat_template(prompt + [assistant response])``
  → ``tokenizer(texts, padding=True, padding_side="right", add_special_tokens=False)`` →
  ``AutoModelForSequenceClassification(...).logits[:, 0]`` under ``inference_mode``. GRPO does not
  truncate; here texts are cut from the left to the model's ``max_length`` so both sides see the
  same tokens (rewardlab keeps the response end the same way for every response within budget).
* **rewardlab** — ``rewardlab.load(DIR).score`` (what ``rewardlab score`` runs): the same chat
  template encoding, sequences sorted by length and batched by a token budget, and for BERT-family
  RMs the last layer computed for ``[CLS]`` only (exact).

Prints the ratio last.

    python benchmarks/bench_score.py [--model runs/demo/model] [--limit 600] [--batch 16]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

import rewardlab
from rewardlab.data.bundled import hh_splits, hhh, llmbar
from rewardlab.models.config import ModelConfig
from rewardlab.models.reward_model import RewardModel
from rewardlab.models.tokenize import messages


@torch.inference_mode()
def trl_grpo_path(
    path: Path, prompts, responses, batch: int, max_length: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """TRL GRPO's reward-model scoring, batch by batch in input order (see the module docstring).
    Returns rewards (N,) and whether each text fit ``max_length`` uncut (N,)."""
    tok = AutoTokenizer.from_pretrained(path)
    tok.truncation_side = "left"
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    out, fits = [], []
    for i in range(0, len(prompts), batch):
        texts = [
            tok.apply_chat_template(messages(p, r), tokenize=False)
            for p, r in zip(prompts[i : i + batch], responses[i : i + batch], strict=True)
        ]
        fits += [len(ids) <= max_length for ids in tok(texts, add_special_tokens=False)["input_ids"]]
        enc = tok(
            texts,
            padding=True,
            padding_side="right",
            add_special_tokens=False,
            truncation=True,
            max_length=max_length,
            return_tensors="pt",
        )
        out.append(model(**enc).logits[:, 0].float())
    return torch.cat(out), torch.tensor(fits)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=Path("runs/demo/model"))
    ap.add_argument("--limit", type=int, default=600, help="responses to score (0 = all)")
    ap.add_argument("--batch", type=int, default=16, help="the peer's batch size (GRPO's generation batch)")
    args = ap.parse_args()
    if not (args.model / "rewardlab.json").exists():  # speed does not depend on training
        args.model = Path("/tmp/bench-score-model")
        RewardModel.build(ModelConfig()).save(args.model)
    pairs = hh_splits()["test"] + llmbar() + hhh()
    prompts = [p.prompt for p in pairs for _ in (0, 1)]
    responses = [r for p in pairs for r in (p.chosen, p.rejected)]
    if args.limit:
        prompts, responses = prompts[: args.limit], responses[: args.limit]
    rm = rewardlab.load(args.model)
    max_length = rm.rm.cfg.max_length
    t0 = time.perf_counter()
    ours = rm.score(prompts, responses, uncertainty=False).reward
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    peer, fits = trl_grpo_path(args.model, prompts, responses, args.batch, max_length)
    t_peer = time.perf_counter() - t0
    n = len(prompts)
    corr = torch.corrcoef(torch.stack([ours, peer]))[0, 1].item()
    diff = float((ours - peer)[fits].abs().max()) if fits.any() else float("nan")
    print(
        f"responses: {n} ({int(fits.sum())} within max_length)   rewards agree: max |diff| on those "
        f"{diff:.2e}; Pearson r on all {corr:.6f} (over-long ones differ: the peer cuts [CLS] too)"
    )
    print(f"TRL GRPO reward-model path (batch {args.batch}, pad to longest): {n / t_peer:6.1f} responses/s")
    print(
        f"rewardlab score (length-sorted token-budget batches, [CLS]-only top): {n / t_ours:6.1f} responses/s"
    )
    print(f"scoring throughput ratio rewardlab/TRL-GRPO-path: {t_peer / t_ours:.2f}x")


if __name__ == "__main__":
    main()
