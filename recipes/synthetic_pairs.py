"""RMBoost vs RLAIF vs West-of-N synthetic pairs, same prompts and LLM budget (MISSION §5).

From the same N prompts of the bundled HH-RLHF train split, ``--model`` (default: the embedded
SmolLM2-135M-Instruct) builds (a) RMBoost pairs (y1, then y2 rewritten better/worse in drawn
aspects), (b) RLAIF pairs (two samples labelled by the per-principle A/B judge, both orders) and
(c) West-of-N pairs (N samples ranked by a base RM trained on ``--base-pairs`` real HH pairs from
*other* prompts).
Budget: 2 generations per prompt for each method by default (``--wofn-n 2``); every method asks
for "sample k of prompt x" identically, so the generation cache makes RMBoost's y1, RLAIF's two
samples and West-of-N's samples the very same texts. A reference RM trains on the real human
pairs of the same N prompts. Each RM (the foundation MiniLM RM, identical settings) is evaluated
on HH test, LLMBar and HHH; results go to ``OUT/results.json`` and ``OUT/results.md``.
Every stage is cached under ``--out``: rerun to resume.

    python recipes/synthetic_pairs.py --out runs/synthetic          # defaults: ~15 min, 2 cores
    python recipes/synthetic_pairs.py --prompts 400 --max-new-tokens 128 --eval-limit 0
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import time
from pathlib import Path

import torch

from rewardlab.data.bundled import hh_splits, hhh, llmbar
from rewardlab.data.load import load_pairs
from rewardlab.evaluate.evaluator import evaluate
from rewardlab.feedback import (
    PromptItem,
    RLAIFConfig,
    RMBoostConfig,
    WestOfNConfig,
    generate_rlaif,
    generate_rmboost,
    generate_west_of_n,
)
from rewardlab.llm import BackendConfig, GenerationConfig, build_backend
from rewardlab.models.config import ModelConfig
from rewardlab.models.reward_model import RewardModel
from rewardlab.train.config import TrainConfig
from rewardlab.train.trainer import train

log = logging.getLogger("synthetic_pairs")
METHODS = ["rmboost", "rlaif", "west-of-n", "human (same prompts)", "base (West-of-N's ranker)"]


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/synthetic_pairs")
    ap.add_argument("--prompts", type=int, default=32, help="N prompts from the HH train split")
    ap.add_argument("--max-prompt-chars", type=int, default=600, help="skip longer HH prompts (CPU cost)")
    ap.add_argument(
        "--model",
        default="smollm2",
        help="generator and judge (local alias, e.g. qwen2.5-1.5b, the feedback jobs' default: hours here)",
    )
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--temperature", type=float, default=0.8)
    ap.add_argument("--wofn-n", type=int, default=2, help="West-of-N samples (2 = same budget)")
    ap.add_argument("--base-pairs", type=int, default=128, help="real HH pairs for West-of-N's RM")
    ap.add_argument("--principles", default="helpfulness,harmlessness", help="RLAIF judge")
    ap.add_argument("--aspect-set", default="general", help="RMBoost aspect set")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--max-length", type=int, default=256, help="RM tokens per prompt+response")
    ap.add_argument("--eval-limit", type=int, default=100, help="pairs per test set (0 = all)")
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = default)")
    ap.add_argument("--seed", type=int, default=0)
    return ap.parse_args()


def select_prompts(args: argparse.Namespace) -> tuple[list[PromptItem], list, list]:
    """The N prompts (with their human pairs) and disjoint base pairs for West-of-N's RM."""
    train_split = hh_splits(args.seed)["train"]
    chosen = [p for p in train_split if len(str(p.prompt)) <= args.max_prompt_chars][: args.prompts]
    used = {id(p) for p in chosen}
    rest = [p for p in train_split if id(p) not in used]
    base = rest[-args.base_pairs :]  # from the other end: no overlap with the N prompts
    items = [PromptItem(p.prompt, f"hh-train[{i}]") for i, p in enumerate(chosen)]
    return items, chosen, base


def test_sets(limit: int, seed: int) -> dict[str, list]:
    """HH test, LLMBar and HHH; a seeded random subset of ``limit`` pairs each when limit > 0."""
    sets = {"HH test": hh_splits(seed)["test"], "LLMBar": llmbar(), "HHH": hhh()}
    if limit:
        sets = {k: random.Random(seed).sample(v, min(limit, len(v))) for k, v in sets.items()}
    return sets


def train_rm(name: str, pairs: list, args: argparse.Namespace, out: Path) -> RewardModel:
    """Train (or reload) the foundation RM on ``pairs`` into ``out/rm-<name>``."""
    path = out / f"rm-{name.split()[0]}"
    if (path / "rewardlab.json").exists():
        return RewardModel.load(path)
    cfg = TrainConfig(epochs=args.epochs, save_steps=0, seed=args.seed, progress=False)
    return train(pairs, ModelConfig(max_length=args.max_length), cfg, path).model


def generate(args: argparse.Namespace, out: Path, items: list[PromptItem], base: list) -> dict:
    """The three synthetic datasets (resumable) and their generation statistics."""
    backend = build_backend(BackendConfig(model=args.model, cache_path=str(out / "llm-cache.sqlite")))
    gen = GenerationConfig(max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed)
    stats: dict = {}
    t = time.perf_counter()
    rows, _ = generate_rmboost(
        items,
        backend,
        out / "rmboost.jsonl",
        RMBoostConfig(aspect_set=args.aspect_set, draw_seed=args.seed),
        gen,
    )
    tries = sum(r["metadata"]["rmboost"].get("y2_attempts", 1) for r in rows)
    stats["rmboost"] = {
        "pairs": len(rows),
        "seconds": time.perf_counter() - t,
        "generations_per_prompt": 1 + tries / max(len(rows), 1),
        "better": sum(r["metadata"]["rmboost"]["label"] == "better" for r in rows),
    }
    t = time.perf_counter()
    rcfg = RLAIFConfig(principles=args.principles.split(","))
    rows, _ = generate_rlaif(items, backend, out / "rlaif.jsonl", rcfg, gen)
    stats["rlaif"] = {
        "pairs": len(rows),
        "seconds": time.perf_counter() - t,
        "generations_per_prompt": 2,
        "judge_passes_per_prompt": 2 * len(rcfg.principles),
    }
    t = time.perf_counter()
    base_rm = train_rm("base", base, args, out)
    stats["base_rm"] = {"pairs": len(base), "seconds": time.perf_counter() - t}
    t = time.perf_counter()
    wcfg = WestOfNConfig(model=str(out / "rm-base"), n=args.wofn_n)
    rows, _ = generate_west_of_n(items, backend, out / "west_of_n.jsonl", wcfg, gen, rm=base_rm)
    stats["west-of-n"] = {
        "pairs": len(rows),
        "seconds": time.perf_counter() - t,
        "generations_per_prompt": args.wofn_n,
    }
    stats["cache"] = {"hits": getattr(backend, "hits", None), "misses": getattr(backend, "misses", None)}
    return stats


def evaluate_all(args: argparse.Namespace, out: Path, datasets: dict[str, list]) -> dict:
    """Train one RM per dataset and evaluate it on every test set (cached in results.json)."""
    sets = test_sets(args.eval_limit, args.seed)
    results: dict = {}
    for name, pairs in datasets.items():
        cached = out / f"eval-{name.split()[0]}.json"
        if cached.exists():
            results[name] = json.loads(cached.read_text())
            continue
        t = time.perf_counter()
        rm = train_rm(name, pairs, args, out)
        train_s = time.perf_counter() - t
        res = {"train_pairs": len(pairs), "train_seconds": round(train_s, 1)}
        for set_name, test in sets.items():
            metrics = evaluate(rm, test)
            res[set_name] = metrics["accuracy"]
            res.setdefault("heuristics", {})[set_name] = {
                "longer": metrics["longer_accuracy"],
                "shorter": metrics["shorter_accuracy"],
            }
        res["eval_seconds"] = round(time.perf_counter() - t - train_s, 1)
        results[name] = res
        cached.write_text(json.dumps(res))
        log.info("%s: %s", name, {k: v for k, v in res.items() if k != "heuristics"})
    return {"sets": {k: len(v) for k, v in sets.items()}, "results": results}


def markdown(report: dict) -> str:
    """The results table."""
    sets = list(report["eval"]["sets"])
    head = (
        "| training data | pairs | gens/prompt | "
        + " | ".join(f"{s} ({report['eval']['sets'][s]})" for s in sets)
        + " |"
    )
    lines = [head, "|" + "---|" * (len(sets) + 3)]
    for name, res in report["eval"]["results"].items():
        g = report["generation"].get(name, {}).get("generations_per_prompt", "—")
        g = f"{g:.2f}" if isinstance(g, float) else str(g)
        accs = " | ".join(f"{100 * res[s]:.1f}" for s in sets)
        lines.append(f"| {name} | {res['train_pairs']} | {g} | {accs} |")
    heur = next(iter(report["eval"]["results"].values()))["heuristics"]
    for h in ("longer", "shorter"):
        lines.append(
            f"| *{h} response wins* | — | — | " + " | ".join(f"{100 * heur[s][h]:.1f}" for s in sets) + " |"
        )
    a = report["args"]
    lines += [
        "",
        f"Accuracy in % (ties wrong). {a['prompts']} HH-train prompts, generator and judge "
        f"{a.get('model', 'smollm2')}, {a['max_new_tokens']} new tokens, T={a['temperature']}; "
        f"West-of-{a['wofn_n']} ranks with an RM trained on {a['base_pairs']} real HH pairs "
        f"of other prompts; RM: MiniLM foundation RM, {a['epochs']} epochs. "
        f"Total {report['seconds']:.0f} s.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    items, human, base = select_prompts(args)
    log.info("%d prompts, %d base pairs", len(items), len(base))
    gen_stats = generate(args, out, items, base)
    datasets = {}
    for m in METHODS[:3]:
        path = out / f"{m.replace('-', '_')}.jsonl"
        if path.exists() and path.stat().st_size:
            datasets[m] = load_pairs(path)
        else:
            log.warning("%s produced no pairs; left out of the table", m)
    datasets[METHODS[3]] = human
    datasets[METHODS[4]] = base  # reloads OUT/rm-base: the RM that ranked West-of-N's samples
    report = {"args": vars(args), "generation": gen_stats}
    report["eval"] = evaluate_all(args, out, datasets)
    report["seconds"] = time.perf_counter() - t0
    (out / "results.json").write_text(json.dumps(report, indent=2))
    (out / "results.md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
