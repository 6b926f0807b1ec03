"""RMBoost vs RLAIF vs West-of-N synthetic pairs, same prompts and LLM budget (MISSION §5).

From the same N prompts of the bundled HH-RLHF train split, ``--model`` (default: the embedded
SmolLM2-135M-Instruct) builds (a) RMBoost pairs (y1, then y2 rewritten better/worse in drawn
aspects), (b) RLAIF pairs (two samples labelled by the per-principle A/B judge, both orders) and
(c) West-of-N pairs (N samples ranked by a base RM trained on ``--base-pairs`` real HH pairs from
*other* prompts).
Budget: 2 generations per prompt for each method by default (``--wofn-n 2``); every method asks
for "sample k of prompt x" identically, so the generation cache makes RMBoost's y1, RLAIF's two
samples and West-of-N's samples the very same texts. A reference RM trains on the real human
pairs of the same N prompts; ``rlaif-hard`` trains on the RLAIF pairs as plain
preferences (the judge's decision without its soft label, which sits near ½ for small judges).
Each RM (the foundation MiniLM RM, identical settings) is evaluated on HH test, LLMBar and HHH;
results go to ``OUT/results.json`` and ``OUT/results.md``.
Every stage is cached under ``--out``: rerun to resume.

    python recipes/synthetic_pairs.py --out runs/synthetic          # defaults: ~15 min, 2 cores
    python recipes/synthetic_pairs.py --prompts 400 --max-new-tokens 128 --eval-limit 0
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import random
import time
from pathlib import Path

import torch

from rewardlab.data.bundled import hh_splits, hhh, llmbar, pandalm_splits, qa_feedback_splits
from rewardlab.data.load import load_pairs
from rewardlab.data.prompt_sets import train_prompts
from rewardlab.evaluate.evaluator import evaluate
from rewardlab.evaluate.metrics import mean_ci95
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
    ap.add_argument(
        "--sources",
        default="",
        help="instead of --prompts: a source:count,... spec of bundled train prompts, e.g. "
        "hh:100,pandalm:100,qa-feedback:50 (rewardlab.data.prompt_sets)",
    )
    ap.add_argument("--seeds", type=int, default=1, help="RM training seeds per dataset (intervals need 3+)")
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
    if args.sources:
        return select_sources(args)
    train_split = hh_splits(args.seed)["train"]
    chosen = [p for p in train_split if len(str(p.prompt)) <= args.max_prompt_chars][: args.prompts]
    used = {id(p) for p in chosen}
    rest = [p for p in train_split if id(p) not in used]
    base = rest[-args.base_pairs :]  # from the other end: no overlap with the N prompts
    items = [PromptItem(p.prompt, f"hh-train[{i}]") for i, p in enumerate(chosen)]
    return items, chosen, base


def select_sources(args: argparse.Namespace) -> tuple[list[PromptItem], list, list]:
    """``--sources`` prompts (each with its first human pair) and ``--base-pairs`` real pairs of
    the same sources' train splits whose prompts are not among them (a seeded sample)."""
    try:
        prompts = train_prompts(args.sources)
    except ValueError as e:
        raise SystemExit(f"--sources: {e}") from None
    used = {str(t.prompt) for t in prompts}
    loaders = {"hh": hh_splits, "pandalm": pandalm_splits, "qa-feedback": qa_feedback_splits}
    names = list(dict.fromkeys(t.source for t in prompts))
    rest = [p for n in names for p in loaders[n](args.seed)["train"] if str(p.prompt) not in used]
    base = random.Random(args.seed).sample(rest, min(args.base_pairs, len(rest)))
    items = [PromptItem(t.prompt, f"{t.source}-train[{i}]") for i, t in enumerate(prompts)]
    return items, [t.pair for t in prompts], base


def test_sets(limit: int, seed: int) -> dict[str, list]:
    """HH test, LLMBar and HHH; a seeded random subset of ``limit`` pairs each when limit > 0."""
    sets = {"HH test": hh_splits(seed)["test"], "LLMBar": llmbar(), "HHH": hhh()}
    if limit:
        sets = {k: random.Random(seed).sample(v, min(limit, len(v))) for k, v in sets.items()}
    return sets


def slug(name: str, seed: int, args: argparse.Namespace) -> str:
    """A (dataset, seed) run's file-name stem: the dataset's first word (``human + rmboost`` →
    ``human+rmboost``), with ``-s<seed>`` for seeds other than ``--seed``."""
    return name.replace(" + ", "+").split()[0] + ("" if seed == args.seed else f"-s{seed}")


def train_rm(
    name: str, pairs: list, args: argparse.Namespace, out: Path, seed: int | None = None
) -> RewardModel:
    """Train (or reload) the foundation RM on ``pairs`` into ``out/rm-<name>`` (``-s<seed>`` for
    seeds other than ``--seed``)."""
    seed = args.seed if seed is None else seed
    path = out / f"rm-{slug(name, seed, args)}"
    if (path / "rewardlab.json").exists():
        return RewardModel.load(path)
    cfg = TrainConfig(epochs=args.epochs, save_steps=0, seed=seed, progress=False)
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
    """Train ``--seeds`` RMs per dataset and evaluate each on every test set (each run cached in
    ``eval-<name>[-s<seed>].json``); per set the mean over seeds and its 95% t-interval."""
    sets = test_sets(args.eval_limit, args.seed)
    results: dict = {}
    for name, pairs in datasets.items():
        runs = {
            seed: eval_run(name, pairs, seed, sets, args, out)
            for seed in range(args.seed, args.seed + args.seeds)
        }
        first = next(iter(runs.values()))
        res = {"train_pairs": len(pairs), "heuristics": first["heuristics"], "seeds": runs, "ci": {}}
        for set_name in sets:
            res[set_name], res["ci"][set_name] = mean_ci95([r[set_name] for r in runs.values()])
        results[name] = res
    return {"sets": {k: len(v) for k, v in sets.items()}, "results": results}


def eval_run(name: str, pairs: list, seed: int, sets: dict, args: argparse.Namespace, out: Path) -> dict:
    """One (dataset, seed) RM: accuracy on every test set, with the length heuristics (cached)."""
    cached = out / f"eval-{slug(name, seed, args)}.json"
    if cached.exists():
        return json.loads(cached.read_text())
    t = time.perf_counter()
    rm = train_rm(name, pairs, args, out, seed)
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
    cached.write_text(json.dumps(res))
    log.info("%s seed %d: %s", name, seed, {k: v for k, v in res.items() if k != "heuristics"})
    return res


def _cell(res: dict, set_name: str) -> str:
    """Accuracy in %, with the 95% t-interval over seeds when there are several."""
    half = res.get("ci", {}).get(set_name, 0.0)
    return f"{100 * res[set_name]:.1f}" + (f" ± {100 * half:.1f}" if len(res.get("seeds", {})) > 1 else "")


def _binomial_half(report: dict) -> float:
    """95% half-width (points) of an accuracy near 50% on the smallest test set."""
    n = min(report["eval"]["sets"].values())
    return 196 * (0.25 / n) ** 0.5


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
        method = name.split(" (")[0].removesuffix("-hard")  # rlaif-hard: rlaif's generations
        g = report["generation"].get(method, {}).get("generations_per_prompt", "—")
        g = f"{g:.2f}" if isinstance(g, float) else str(g)
        accs = " | ".join(_cell(res, s) for s in sets)
        lines.append(f"| {name} | {res['train_pairs']} | {g} | {accs} |")
    heur = next(iter(report["eval"]["results"].values()))["heuristics"]
    for h in ("longer", "shorter"):
        lines.append(
            f"| *{h} response wins* | — | — | " + " | ".join(f"{100 * heur[s][h]:.1f}" for s in sets) + " |"
        )
    a = report["args"]
    lines += [
        "",
        f"Accuracy in % (ties wrong; ± = 95% t-interval over {a.get('seeds', 1)} RM seeds, when more than 1; "
        f"test-pair sampling adds about ±{_binomial_half(report):.0f} points). "
        f"{a.get('sources') or str(a['prompts']) + ' HH-train'} prompts, generator and judge "
        f"{a.get('model', 'smollm2')}, {a['max_new_tokens']} new tokens, T={a['temperature']}; "
        f"West-of-{a['wofn_n']} ranks with an RM trained on {a['base_pairs']} real pairs "
        f"of other prompts; RM: MiniLM foundation RM, {a['epochs']} epochs. "
        f"Total {report['seconds']:.0f} s.",
    ]
    return "\n".join(lines) + "\n"


def plot(report: dict, path: Path) -> None:
    """Grouped bars: accuracy per test set and training data, 95% t-interval over seeds as error
    bars; both length heuristics as black markers on each set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets, results = list(report["eval"]["sets"]), report["eval"]["results"]
    width = 0.8 / max(len(results), 1)
    fig, ax = plt.subplots(figsize=(8, 4.2))
    for k, (name, res) in enumerate(results.items()):
        xs = [i + (k - (len(results) - 1) / 2) * width for i in range(len(sets))]
        ax.bar(
            xs,
            [100 * res[s] for s in sets],
            width,
            yerr=[100 * res.get("ci", {}).get(s, 0) for s in sets],
            capsize=2,
            label=name,
        )
    heur = next(iter(results.values()))["heuristics"]
    for h, marker in (("longer", "_"), ("shorter", "x")):
        ax.scatter(
            range(len(sets)),
            [100 * heur[s][h] for s in sets],
            color="k",
            marker=marker,
            s=300 if marker == "_" else 40,
            zorder=3,
            label=f"{h} response wins",
        )
    ax.axhline(50, color="grey", lw=0.5)
    ax.set_xticks(range(len(sets)), [f"{s} ({report['eval']['sets'][s]})" for s in sets])
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"RMs on synthetic vs human pairs ({report['args'].get('model')}; mean ± 95% CI over seeds)")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


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
    if METHODS[1] in datasets:  # the judge's decision alone: its near-½ soft labels carry little gradient
        datasets["rlaif-hard (decisions only)"] = [
            dataclasses.replace(p, labels={}) for p in datasets[METHODS[1]]
        ]
    datasets[METHODS[3]] = human
    if METHODS[0] in datasets:  # real + synthetic: the human pairs and the RMBoost pairs together
        datasets["human + rmboost"] = human + datasets[METHODS[0]]
    datasets[METHODS[4]] = base  # reloads OUT/rm-base: the RM that ranked West-of-N's samples
    report = {"args": vars(args), "generation": gen_stats}
    report["eval"] = evaluate_all(args, out, datasets)
    report["seconds"] = time.perf_counter() - t0
    (out / "results.json").write_text(json.dumps(report, indent=2))
    (out / "results.md").write_text(markdown(report))
    plot(report, out / "plot.png")
    print(markdown(report))


if __name__ == "__main__":
    main()
