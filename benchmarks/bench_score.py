"""Scoring throughput: rewardlab vs TRL GRPO's reward-model path, same model and responses, one run.

Both sides score the same responses (chosen and rejected of HH test, LLMBar, HHH) with the same
saved RM and give the same rewards in fp32 (checked: max |Δ| and Pearson r are printed).

* **peer — TRL GRPO's reward-model path** (``GRPOTrainer._calculate_rewards``): for each batch of
  ``--batch`` responses in input order, ``apply_chat_template(prompt + [assistant response])``
  → ``tokenizer(texts, padding=True, padding_side="right", add_special_tokens=False)`` →
  ``AutoModelForSequenceClassification(...).logits[:, 0]`` under ``inference_mode``, in fp32 (TRL's
  CPU settings: ``bf16=False``). GRPO does not truncate; here texts are cut from the left to the
  model's ``max_length`` so both sides see the same tokens.
* **rewardlab** — ``rewardlab.load(DIR, precision=P).score`` (what ``rewardlab score --precision P``
  and ``rewardlab serve --precision P`` run): the same chat template encoding, sequences sorted by
  length and batched by a token budget, for BERT-family RMs the last layer computed for ``[CLS]``
  only (exact), in each ``--precisions`` (see :mod:`rewardlab.models.fast_score`).

The machine is shared, so every side is timed ``--repeats`` times, the sides interleaved (peer,
then each rewardlab variant, then again), and the best time of each is kept; the load average is
printed with the numbers. Beside each speed: the share of pairwise preferences (chosen vs rejected
of one pair) that flip against fp32, on ``--flip-pairs`` pairs sampled from the same sets (seeded),
with a 95% Clopper-Pearson upper bound. Prints the ratios against the plain loop last.

    python benchmarks/bench_score.py [--model runs/demo/model] [--limit 300] [--batch 16]
        [--precisions fp32,mixed,bf16] [--flip-pairs 600] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

import rewardlab
from rewardlab.data.bundled import hh_splits, hhh, llmbar
from rewardlab.models.config import ModelConfig
from rewardlab.models.fast_score import Precision, flip_rate
from rewardlab.models.reward_model import RewardModel
from rewardlab.models.tokenize import messages

SAMPLES = Path(__file__).resolve().parents[1] / "data/generated/overoptimization/samples.jsonl"


def load_peer(path: Path):
    """The peer's tokenizer and model (loaded once, outside the timing)."""
    tok = AutoTokenizer.from_pretrained(path)
    tok.truncation_side = "left"
    return tok, AutoModelForSequenceClassification.from_pretrained(path).eval()


@torch.inference_mode()
def trl_grpo_path(peer, prompts, responses, batch: int, max_length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """TRL GRPO's reward-model scoring, batch by batch in input order (see the module docstring).
    Returns rewards (N,) and whether each text fit ``max_length`` uncut (N,)."""
    tok, model = peer
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


def pairs_sample(n: int, seed: int = 0):
    """``n`` pairs drawn (seeded) from HH test + LLMBar + HHH, as aligned prompts/responses
    ``[c0..c(n-1), r0..r(n-1)]`` (chosen rows, then rejected)."""
    pairs = hh_splits()["test"] + llmbar() + hhh()
    pairs = random.Random(seed).sample(pairs, min(n, len(pairs)))
    return [p.prompt for p in pairs] * 2, [p.chosen for p in pairs] + [p.rejected for p in pairs]


def upper95(k: int, n: int) -> float:
    """One-sided 95% Clopper-Pearson upper bound on a rate of k events in n trials."""
    from scipy.stats import beta

    return 1.0 if k >= n else float(beta.ppf(0.95, k + 1, n - k))


def flip_rates(loaded: dict, n_pairs: int) -> dict[str, tuple[int, int]]:
    """Flipped pairs (k, n) of each precision against fp32 on ``n_pairs`` sampled pairs."""
    prompts, responses = pairs_sample(n_pairs)
    n = len(prompts) // 2
    rewards = {p: lr.score(prompts, responses, uncertainty=False).reward for p, lr in loaded.items()}
    ref = rewards["fp32"]
    return {p: (round(flip_rate(ref[:n], ref[n:], r[:n], r[n:]) * n), n) for p, r in rewards.items()}


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def bench_texts(args) -> tuple[list, list[str]]:
    """The timed prompts and responses, in the order the peer sees them. ``pairs``: chosen and
    rejected of HH test, LLMBar, HHH (a pair's two responses follow each other); ``groups``: the
    GRPO / best-of-n shape — ``--group-size`` policy samples per prompt, consecutive
    (``data/generated/overoptimization/samples.jsonl``: HH, PandaLM and qa-feedback prompts,
    SmolLM2-135M samples of ≤ 48 tokens)."""
    if args.shape == "groups":
        rows = [json.loads(line) for line in SAMPLES.open()]
        prompts = [r["user"] for r in rows for _ in range(args.group_size)]
        responses = [x for r in rows for x in r["responses"][: args.group_size]]
    else:
        pairs = hh_splits()["test"] + llmbar() + hhh()
        prompts = [p.prompt for p in pairs for _ in (0, 1)]
        responses = [r for p in pairs for r in (p.chosen, p.rejected)]
    if args.limit:
        prompts, responses = prompts[: args.limit], responses[: args.limit]
    return prompts, responses


def parser() -> argparse.ArgumentParser:
    """The benchmark's command line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=Path("runs/demo/model"))
    ap.add_argument(
        "--backbone",
        default="minilm",
        help="the untrained RM built when --model does not exist (minilm, smollm2)",
    )
    ap.add_argument(
        "--shape", choices=("pairs", "groups"), default="pairs", help="what is scored (bench_texts)"
    )
    ap.add_argument("--group-size", type=int, default=8, help="--shape groups: responses per prompt")
    ap.add_argument(
        "--share-prompts",
        action="store_true",
        help="time the precisions without prompt sharing, and fp32 with it",
    )
    ap.add_argument("--limit", type=int, default=300, help="responses to time (0 = all)")
    ap.add_argument("--batch", type=int, default=16, help="the peer's batch size (GRPO's generation batch)")
    ap.add_argument("--precisions", default="fp32,mixed,bf16", help="rewardlab precisions to time")
    ap.add_argument("--batch-tokens", type=int, default=8192, help="rewardlab's padded tokens per forward")
    ap.add_argument("--flip-pairs", type=int, default=600, help="pairs for the flip rates (0 = skip)")
    ap.add_argument("--repeats", type=int, default=3, help="timings per side (best kept), interleaved")
    return ap


def main() -> None:
    args = parser().parse_args()
    if not (args.model / "rewardlab.json").exists():  # speed does not depend on training
        args.model = Path(f"/tmp/bench-score-{args.backbone}")
        RewardModel.build(ModelConfig(backbone=args.backbone)).save(args.model)
    precisions = [Precision(p) for p in ["fp32", *args.precisions.split(",")]]
    precisions = list(dict.fromkeys(precisions))  # fp32 (the reference) first, once
    prompts, responses = bench_texts(args)
    loaded = {p.value: rewardlab.load(args.model, uncertainty=False, precision=p) for p in precisions}

    def side(lr, share: bool):
        return lambda: (
            lr.score(
                prompts, responses, uncertainty=False, batch_tokens=args.batch_tokens, share_prompts=share
            ).reward
        )

    # with --share-prompts the precisions run the plain batches and fp32+shared adds the sharing;
    # without it each runs rewardlab's default (sharing on for decoder RMs, ignored by encoders)
    sides = {p: side(lr, not args.share_prompts) for p, lr in loaded.items()}
    if args.share_prompts:
        sides["fp32+shared"] = side(loaded["fp32"], True)
    peer = load_peer(args.model)
    max_length = loaded["fp32"].rm.cfg.max_length
    best: dict[str, float] = {}
    out: dict[str, torch.Tensor] = {}
    for _ in range(args.repeats):
        t, (out["peer"], fits) = timed(
            lambda: trl_grpo_path(peer, prompts, responses, args.batch, max_length)
        )
        best["peer"] = min(best.get("peer", float("inf")), t)
        for name, fn in sides.items():
            t, out[name] = timed(fn)
            best[name] = min(best.get(name, float("inf")), t)
    flips = flip_rates(loaded, args.flip_pairs) if args.flip_pairs else {}
    report(args, len(prompts), best, out, fits, flips)


def report(args, n: int, best: dict, out: dict, fits: torch.Tensor, flips: dict) -> None:
    """Speeds, agreement with the peer and flips; the ratios against the peer last."""
    ours = out["fp32"]
    corr = torch.corrcoef(torch.stack([ours, out["peer"]]))[0, 1].item()
    diff = float((ours - out["peer"])[fits].abs().max()) if fits.any() else float("nan")
    print(f"load average (1, 5, 15 min) after the timings: {os.getloadavg()}; {os.cpu_count()} CPUs")
    print(
        f"shape: {args.shape}"
        + (f", {args.group_size} responses per prompt" if args.shape == "groups" else "")
    )
    print(
        f"responses: {n} ({int(fits.sum())} within max_length)   fp32 rewards agree: max |diff| on those "
        f"{diff:.2e}; Pearson r on all {corr:.6f} (over-long ones differ: the peer cuts [CLS] too)"
    )
    print(
        f"TRL GRPO reward-model path (batch {args.batch}, pad to longest, fp32): "
        f"{n / best['peer']:6.1f} responses/s"
    )
    for p in (k for k in best if k != "peer"):
        k, m = flips.get(p, (0, 0))
        flip = f"flips {k}/{m} = {k / m:.2%} (95% upper {upper95(k, m):.2%})" if m else "flips not measured"
        flip = "the reference for the flips" if p == "fp32" else flip
        if p == "fp32+shared":
            d = (out[p] - ours).abs().max().item()
            k = round(flip_rate(ours[0::2], ours[1::2], out[p][0::2], out[p][1::2]) * (n // 2))
            flip = f"max |diff| vs fp32 {d:.1e}; flips {k}/{n // 2} of the timed adjacent pairs"
        print(
            f"rewardlab score --precision {p} (token budget {args.batch_tokens}): "
            f"{n / best[p]:6.1f} responses/s; {flip}"
        )
    for p in (k for k in best if k != "peer"):
        print(f"scoring throughput ratio rewardlab[{p}]/TRL-GRPO-path: {best['peer'] / best[p]:.2f}x")


if __name__ == "__main__":
    main()
