"""GRPO of the embedded SmolLM2-135M-Instruct against a rewardlab multi-head RM, on CPU, with a gold
RM scoring the same samples (the over-optimization view).

* Proxy RM (the reward): ``--rm DIR``, else trained here — two heads (``harmlessness`` on HH
  harmless pairs, ``helpfulness`` on PandaLM + qa-feedback pairs with their soft labels; the demo's
  ``--train-set multi`` mix, ``--proxy-pairs`` per source, ``--proxy-epochs``), reward scale and
  weighted-sum weights fitted on the validation mix. The policy's reward is its ``--scalarizer``
  output, through ``rewardlab.rl.trl_reward_func``.
* Gold RM: ``--gold DIR``, else trained here — one head on training pairs of the same three
  sources (``--gold-pairs`` per source, 0 = all; ``--gold-epochs``): three times the proxy's data
  by default, a different model. It is TRL's second reward function with weight 0, so it never
  moves the policy.
* Prompts: single-turn HH harmless test prompts and PandaLM test instructions (held out from both
  RMs' training), alternated; the policy sees a chat message, the RMs the prompt text they were
  trained on (``rm_prompt`` column, :class:`rewardlab.rl.grpo_log.PromptColumnReward`).
* Writes ``OUT/grpo_log.jsonl`` (one row per optimizer step: step, reward = mean proxy reward of
  the step's completions, gold_reward = the gold RM's mean on the same completions, reward_std),
  ``OUT/grpo_metrics.jsonl`` (every TRL metric per step), ``OUT/samples.jsonl`` (every completion
  with its in-run gold reward; ``--regold DIR`` rescores them with another gold RM and rewrites
  ``gold_reward``), ``OUT/grpo_curve.png`` and
  ``OUT/summary.json`` (first vs last 10 steps, slope per step, each with a 95% interval; the
  initial vs the trained policy on ``--compare-prompts`` fixed prompts, both RMs, paired by prompt;
  both RMs' held-out accuracy beside the length heuristics). The trained policy: OUT/policy/final.

Resumable: the RMs are cached under OUT, the policy checkpoints every ``--save-steps`` steps and a
rerun continues from the last one.

    python recipes/grpo.py --out runs/grpo                          # ~20 min on 2 CPU cores
    python recipes/grpo.py --out runs/tiny --steps 2 --rm A --gold B --prompts-per-step 1 \
        --num-generations 2 --max-completion-length 8 --save-steps 0   # smoke run
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import re
import time
from pathlib import Path

import torch

from rewardlab.data.bundled import bundled_set, hh_splits
from rewardlab.demo import MULTI_OBJECTIVES, DemoConfig, TrainSet, demo_data
from rewardlab.rl import trl_reward_func
from rewardlab.rl.grpo_log import (
    LOG_NAME,
    GRPOLogCallback,
    PromptColumnReward,
    plot_log,
    read_log,
    regold,
    trend,
)

log = logging.getLogger("grpo")
METRICS, SAMPLES = "grpo_metrics.jsonl", "samples.jsonl"


def prompts(count: int, seed: int = 0) -> list[dict]:
    """``count`` rows ``{"prompt": [user message], "rm_prompt": str, "source"}``: single-turn HH
    test prompts and short PandaLM test instructions, alternated."""
    hh = []
    for p in hh_splits(seed)["test"]:
        turns = re.findall(r"Human: (.*?)\n\nAssistant:", p.prompt, flags=re.S)
        if p.prompt.count("Human:") == 1 and turns and len(turns[0]) < 300:
            hh.append((turns[0].strip(), p.prompt, "hh"))
    seen, panda = set(), []
    for p in bundled_set("pandalm-test", seed):
        if isinstance(p.prompt, str) and len(p.prompt) < 400 and p.prompt not in seen:
            seen.add(p.prompt)
            panda.append((p.prompt, p.prompt, "pandalm"))
    mixed = [x for pair in zip(hh, panda, strict=False) for x in pair]
    if len(mixed) < count:
        raise ValueError(f"only {len(mixed)} bundled prompts, asked for {count}")
    return [
        {"prompt": [{"role": "user", "content": u}], "rm_prompt": r, "source": s} for u, r, s in mixed[:count]
    ]


def train_rm(out: Path, train_set: TrainSet, limit: int, epochs: int, seed: int) -> Path:
    """Train (once; reused when ``out`` holds a model) a demo-mix RM: ``multi`` → two heads with
    the reward scale and weighted-sum weights fitted on the validation mix (which also selects the
    epoch); ``union`` → one head, last epoch kept."""
    from rewardlab.models.config import ModelConfig
    from rewardlab.objectives import calibrate, save_config
    from rewardlab.train.config import TrainConfig
    from rewardlab.train.trainer import train

    done = out / "READY"  # written last: a run killed while calibrating retrains
    if done.exists():
        return out
    tr, va = demo_data(DemoConfig(train_limit=limit, train_set=train_set))
    multi = train_set == TrainSet.MULTI
    mcfg = ModelConfig(objectives=MULTI_OBJECTIVES) if multi else ModelConfig()
    tcfg = TrainConfig(epochs=epochs, seed=seed, save_steps=0)
    log.info("training %s RM on %d pairs → %s", train_set.value, len(tr), out)
    rm = train(tr, mcfg, tcfg, out, validation=va if multi else None).model  # gold: one pass less per epoch
    if multi:
        calibrate(rm, [dataclasses.replace(p, labels={"overall": 1.0}) for p in va])
        save_config(rm, out)
    done.write_text("ok\n")
    return out


def evaluate_rms(rms: dict[str, Path], scalarizer: str, n: int, seed: int = 0) -> dict:
    """Held-out pairwise accuracy of each RM (the proxy scalarized as in training) on ``n`` seeded
    pairs of each test set the prompts come from (+ qa-feedback), beside the length heuristics."""
    from rewardlab.evaluate.evaluator import heldout_accuracy
    from rewardlab.models.reward_model import RewardModel

    loaded = {name: RewardModel.load(path) for name, path in rms.items()}
    return heldout_accuracy(loaded, ("hh-test", "pandalm-test", "qafeedback-test"), n, seed, scalarizer)


def before_after(policies: dict[str, str], rows: list[dict], funcs: dict, samples: int, max_new: int) -> dict:
    """Each policy's ``samples`` seeded replies to the same ``rows`` (the embedded local backend),
    scored by every reward function; per function: each policy's mean and the last-minus-first
    difference of per-prompt means with its 95% t-interval over prompts (paired by prompt)."""
    from rewardlab.evaluate.metrics import mean_ci95
    from rewardlab.llm import BackendConfig, GenerationConfig, build_backend

    per: dict[str, dict[str, list[float]]] = {}  # function → policy → per-prompt mean
    for name, model in policies.items():
        backend = build_backend(BackendConfig(model=model, batch_size=len(rows), no_cache=True))
        replies = [
            backend.chat(
                [r["prompt"] for r in rows],
                GenerationConfig(max_new_tokens=max_new, temperature=1.0, top_p=1.0, seed=seed),
            )
            for seed in range(samples)
        ]  # (S, P)
        scored = {"length_chars": [[float(len(t)) for t in rep] for rep in replies]}
        for fname, f in funcs.items():
            scored[fname] = [f([r["rm_prompt"] for r in rows], rep) for rep in replies]
        for fname, grid in scored.items():
            per.setdefault(fname, {})[name] = [sum(col) / len(col) for col in zip(*grid, strict=True)]
    first, last = list(policies)
    out = {}
    for fname, by in per.items():
        d, h = mean_ci95([b - a for a, b in zip(by[first], by[last], strict=True)])
        out[fname] = {
            first: mean_ci95(by[first])[0],
            last: mean_ci95(by[last])[0],
            "delta": d,
            "delta_ci95": h,
        }
    return {"prompts": len(rows), "samples": samples, **out}


def load_policy():
    """The embedded SmolLM2-135M-Instruct (the cached fp32 copy) and its tokenizer."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rewardlab.assets import offline_hub, smollm2_path

    path = smollm2_path()
    with offline_hub():
        tok = AutoTokenizer.from_pretrained(str(path))
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    return model, tok


def grpo_config(args: argparse.Namespace, out: Path):
    """TRL's GRPOConfig for a CPU run: fp32, no gradient checkpointing, one log row per step."""
    from trl import GRPOConfig

    return GRPOConfig(
        output_dir=str(out / "policy"),
        use_cpu=True,
        bf16=False,
        activation_checkpointing=False,  # TRL defaults to gradient checkpointing: slower on CPU
        per_device_train_batch_size=args.prompts_per_step * args.num_generations // args.grad_accum,
        gradient_accumulation_steps=args.grad_accum,  # one generation per optimizer step, less memory
        num_generations=args.num_generations,
        max_completion_length=args.max_completion_length,
        temperature=args.temperature,
        learning_rate=args.lr,
        lr_scheduler_type="constant",
        beta=args.beta,
        max_steps=args.steps,
        reward_weights=[1.0, 0.0],  # the gold RM is logged, never optimised
        logging_steps=1,
        save_strategy="steps" if args.save_steps else "no",
        save_steps=args.save_steps or 500,
        save_total_limit=1,
        report_to="none",
        seed=args.seed,
        disable_dropout=True,
        dataloader_num_workers=0,
    )


def run(args: argparse.Namespace):
    """Train/load the RMs, run GRPO, write the log, plot and summary; returns the trainer."""
    from datasets import Dataset
    from transformers.trainer_utils import get_last_checkpoint
    from trl import GRPOTrainer

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    proxy = (
        Path(args.rm)
        if args.rm
        else train_rm(out / "proxy", TrainSet.MULTI, args.proxy_pairs, args.proxy_epochs, args.seed)
    )
    gold = (
        Path(args.gold)
        if args.gold
        else train_rm(out / "gold", TrainSet.UNION, args.gold_pairs, args.gold_epochs, args.seed)
    )
    log.info("RMs ready (%.0fs)", time.perf_counter() - t0)
    funcs = [
        PromptColumnReward(trl_reward_func(proxy, scalarizer=args.scalarizer), name="proxy"),
        PromptColumnReward(trl_reward_func(gold), name="gold", samples=out / SAMPLES),
    ]
    model, tok = load_policy()
    cfg = grpo_config(args, out)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=funcs,
        args=cfg,
        train_dataset=Dataset.from_list(prompts(args.prompts, args.seed)),
        processing_class=tok,
        callbacks=[GRPOLogCallback(out / LOG_NAME, "gold", out / METRICS, out / SAMPLES)],
    )
    last = get_last_checkpoint(cfg.output_dir) if Path(cfg.output_dir).is_dir() else None
    trainer.train(resume_from_checkpoint=last)
    trainer.save_model(str(out / "policy" / "final"))
    summarize(args, out, proxy, gold, t0)
    return trainer


def summarize(args: argparse.Namespace, out: Path, proxy: Path, gold: Path, t0: float) -> dict:
    """After training: regold (``--regold``), plot, trends, initial vs final policy, RM accuracy;
    writes and returns ``OUT/summary.json``."""
    rows = read_log(out / LOG_NAME)
    if args.regold:  # a different gold RM scores the recorded samples; the in-run gold stays in METRICS
        rows = regold(out / LOG_NAME, out / SAMPLES, trl_reward_func(args.regold))
        gold = Path(args.regold)
    plot_log(rows, out / "grpo_curve.png", title=f"GRPO, SmolLM2-135M, proxy = {args.scalarizer} of 2 heads")
    summary = {
        "reward": trend(rows, "reward"),
        "gold_reward": trend(rows, "gold_reward"),
        "completion_length": _length_trend(out / METRICS),
        "seconds": round(time.perf_counter() - t0, 1),
        "setup": {k: v for k, v in vars(args).items()},
        "proxy_rm": str(proxy),
        "gold_rm": str(gold),
    }
    if args.compare_prompts:  # the initial vs the trained policy on the same prompts, both RMs
        summary["before_after"] = before_after(
            {"initial": "smollm2", "final": str(out / "policy" / "final")},
            prompts(args.prompts, args.seed)[: args.compare_prompts],
            {"proxy": trl_reward_func(proxy, scalarizer=args.scalarizer), "gold": trl_reward_func(gold)},
            args.compare_samples,
            args.max_completion_length,
        )
    if args.eval_pairs:
        summary["rm_eval"] = evaluate_rms({"proxy": proxy, "gold": gold}, args.scalarizer, args.eval_pairs)
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    log.info("done in %.0fs → %s\n%s", time.perf_counter() - t0, out, json.dumps(summary, indent=2))
    return summary


def _length_trend(path: Path) -> dict | None:
    """Trend of TRL's mean completion length (tokens) per step: the length view beside the reward."""
    if not path.exists():
        return None
    rows = [json.loads(ln) for ln in path.read_text().splitlines() if ln.strip()]
    return trend([{"step": r["step"], "len": r.get("completions/mean_length")} for r in rows], "len")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The recipe's flags."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/grpo")
    ap.add_argument("--steps", type=int, default=48, help="optimizer steps")
    ap.add_argument("--rm", help="proxy RM directory (default: train a two-head RM under OUT/proxy)")
    ap.add_argument("--gold", help="gold RM directory (default: train a one-head RM under OUT/gold)")
    ap.add_argument("--scalarizer", default="weighted_sum", help="how the proxy's heads become one reward")
    ap.add_argument("--proxy-pairs", type=int, default=100, help="proxy training pairs per source")
    ap.add_argument("--proxy-epochs", type=int, default=2)
    ap.add_argument("--gold-pairs", type=int, default=300, help="gold training pairs per source (0 = all)")
    ap.add_argument("--gold-epochs", type=int, default=2)
    ap.add_argument("--regold", help="after the run, rescore the recorded samples with this RM as the gold")
    ap.add_argument("--prompts", type=int, default=80, help="bundled prompts in the training set (<= 84)")
    ap.add_argument("--prompts-per-step", type=int, default=4)
    ap.add_argument("--num-generations", type=int, default=4, help="completions per prompt (>= 2)")
    ap.add_argument(
        "--grad-accum", type=int, default=2, help="micro-batches per step (must divide the batch)"
    )
    ap.add_argument("--max-completion-length", type=int, default=32)
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--beta", type=float, default=0.0, help="KL coefficient (0: no reference model)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save-steps", type=int, default=8, help="policy checkpoint every N steps (0 = none)")
    ap.add_argument("--compare-prompts", type=int, default=16, help="prompts for initial vs final (0 = skip)")
    ap.add_argument("--compare-samples", type=int, default=4, help="seeded replies per prompt and policy")
    ap.add_argument("--eval-pairs", type=int, default=100, help="held-out pairs per set to score both RMs on")
    ap.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch CPU threads (0 = torch's default; 1 is faster on a busy machine)",
    )
    args = ap.parse_args(argv)
    if (args.prompts_per_step * args.num_generations) % args.grad_accum:
        ap.error("--grad-accum must divide --prompts-per-step × --num-generations")
    return args


def main(argv: list[str] | None = None):
    """Run the recipe from command-line flags; returns the trainer."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    return run(parse_args(argv))


if __name__ == "__main__":
    main()
