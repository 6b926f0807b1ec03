"""Cost of Laplace-LoRA on the embedded MiniLM RM (a script, not a test).

1. Time to fit (+ tune) the posterior vs one training epoch on the same pairs.
2. Cost of the GLM predictive (mean + variance) vs plain MAP mean scoring of the same responses.

    python benchmarks/bench_laplace.py --pairs 128 --responses 128 [--threads 1]

Prints both ratios per (Hessian, subset); the last line is the default's variance/mean cost
ratio (target ≤ 1.3).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import torch

from rewardlab.bayes import LaplaceConfig, fit_laplace
from rewardlab.data.bundled import hh_splits
from rewardlab.models.config import ModelConfig
from rewardlab.train.config import TrainConfig
from rewardlab.train.trainer import train


def timed(fn, repeat: int = 1):
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", type=int, default=128, help="training pairs (one epoch, then the fit)")
    ap.add_argument("--responses", type=int, default=128, help="responses to score")
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0 = default)")
    ap.add_argument("--repeat", type=int, default=2, help="scoring repeats (best time kept)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    split = hh_splits()
    pairs = split["train"][: args.pairs]
    test = split["test"][: (args.responses + 1) // 2]
    prompts = [p.prompt for p in test for _ in (0, 1)][: args.responses]
    responses = [r for p in test for r in (p.chosen, p.rejected)][: args.responses]

    with tempfile.TemporaryDirectory() as tmp:
        res = train(
            pairs,
            ModelConfig(max_length=args.max_length),
            TrainConfig(epochs=1, save_steps=0, progress=False),
            tmp,
        )
    rm, epoch_s = res.model, res.seconds
    print(f"one training epoch on {len(pairs)} pairs: {epoch_s:.1f}s")

    rows = {}
    for hessian, subset in (("kron", "lora"), ("diag", "lora"), ("kron", "last_layer")):
        t0 = time.perf_counter()
        post = fit_laplace(rm, pairs, LaplaceConfig(hessian=hessian, subset=subset, progress=False))
        fit_s = time.perf_counter() - t0
        mean_s, _ = timed(lambda: rm.score(prompts, responses, batch_tokens=4096), args.repeat)
        var_s, _ = timed(lambda post=post: post.predict(prompts, responses), args.repeat)
        rows[(hessian, subset)] = (fit_s, mean_s, var_s)
        print(
            f"{hessian:4s} {subset:10s}: {post.n_params:7d} params, fit+tune {fit_s:6.1f}s "
            f"(fit/epoch {fit_s / epoch_s:.2f}); scoring {len(responses)} responses: mean {mean_s:.2f}s, "
            f"mean+variance {var_s:.2f}s (ratio {var_s / mean_s:.2f})"
        )
        for p in rm.parameters():  # the next subset re-selects from every trainable weight
            p.requires_grad_(False)
        for n, p in rm.named_parameters():
            if "lora_" in n or "modules_to_save" in n:
                p.requires_grad_(True)
    default = LaplaceConfig()
    key = (default.hessian.value, default.subset.value)
    fit_s, mean_s, var_s = rows[key]
    print(f"default {key} fit/epoch ratio: {fit_s / epoch_s:.2f}")
    print(f"default {key} variance/mean cost ratio: {var_s / mean_s:.2f}")


if __name__ == "__main__":
    main()
