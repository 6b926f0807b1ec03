"""Scoring throughput: ``RewardModel.score`` (what ``rewardlab score`` runs) vs a plain transformers
loop (padding to max_length, batch 16, input order) over the same responses of the bundled test
sets (HH test, LLMBar, HHH), in one run. Also checks both give the same rewards. Prints the ratio last.

    python benchmarks/bench_score.py [--model runs/demo/model] [--limit 600]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification

from rewardlab.data.bundled import hh_splits, hhh, llmbar
from rewardlab.data.schema import prompt_text
from rewardlab.models.config import ModelConfig
from rewardlab.models.reward_model import RewardModel


@torch.inference_mode()
def plain_loop(path: Path, tok, prompts, responses, max_length: int) -> torch.Tensor:
    model = AutoModelForSequenceClassification.from_pretrained(path).eval()
    out = []
    for i in range(0, len(prompts), 16):
        b = tok([prompt_text(p) for p in prompts[i : i + 16]], responses[i : i + 16], padding="max_length",
                truncation="longest_first", max_length=max_length, return_tensors="pt")
        out.append(model(**b).logits[:, 0])
    return torch.cat(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=Path("runs/demo/model"))
    ap.add_argument("--limit", type=int, default=600, help="responses to score (0 = all)")
    args = ap.parse_args()
    if not (args.model / "rewardlab.json").exists():  # speed does not depend on training
        args.model = Path("/tmp/bench-score-model")
        RewardModel.build(ModelConfig()).save(args.model)
    pairs = hh_splits()["test"] + llmbar() + hhh()
    prompts = [p.prompt for p in pairs for _ in (0, 1)]
    responses = [r for p in pairs for r in (p.chosen, p.rejected)]
    if args.limit:
        prompts, responses = prompts[: args.limit], responses[: args.limit]
    rm = RewardModel.load(args.model)
    t0 = time.perf_counter()
    ours = rm.score(prompts, responses)[:, 0]
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    plain = plain_loop(args.model, rm.tokenizer, prompts, responses, rm.cfg.max_length)
    t_plain = time.perf_counter() - t0
    n = len(prompts)
    corr = torch.corrcoef(torch.stack([ours, plain]))[0, 1].item()
    print(f"responses: {n}   agreement of rewards (Pearson r): {corr:.4f}")
    print(f"plain transformers loop (pad to {rm.cfg.max_length}, batch 16): {n / t_plain:6.1f} responses/s")
    print(f"rewardlab score (length-sorted, token-budget batches):     {n / t_ours:6.1f} responses/s")
    print(f"scoring throughput ratio rewardlab/plain: {t_plain / t_ours:.2f}x")


if __name__ == "__main__":
    main()
