"""Best-of-n over-optimization with and without an uncertainty penalty (Gao et al. 2022 style).

The embedded SmolLM2-135M-Instruct samples N responses per HH prompt (cached and resumable via
``rewardlab.llm``). A *gold* RM (all 1,800 HH train pairs) scores the response that a *proxy* RM
(few pairs, optional label noise) picks among n ≤ N samples, for n = 1, 2, 4, ..., N, under:
argmax of the proxy mean; argmax of mean − k·std and mean − k·var of its Laplace posterior; the
ensemble mean and the ensemble minimum. The expected gold reward of each choice over random
n-subsets is computed exactly (``expected_best_of_n``) and plotted against
KL = log n − (n − 1)/n. Every stage is cached under ``--out``: rerun to resume.

    python recipes/overoptimization.py --out runs/overopt            # defaults: ~15 min, 2 cores
    python recipes/overoptimization.py --out runs/tiny --prompts 2 --n 4 --gold-pairs 32 \
        --proxy-pairs 16 --members 2 --report-pairs 0                 # smoke run
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import re
import time
from pathlib import Path

import torch

from rewardlab.bayes import (
    EnsembleConfig,
    LaplaceConfig,
    MapPredictor,
    expected_best_of_n,
    fit_laplace,
    kl_best_of_n,
    load_ensemble,
    load_posterior,
    penalized_score,
    train_ensemble,
    uncertainty_report,
)
from rewardlab.data.bundled import hh_splits, hhh, llmbar
from rewardlab.llm import BackendConfig, GenerationConfig, build_backend, resumable_map
from rewardlab.models.config import ModelConfig
from rewardlab.models.reward_model import RewardModel
from rewardlab.train.config import TrainConfig
from rewardlab.train.trainer import train

log = logging.getLogger("overoptimization")


def single_turn_prompts(pairs, count: int) -> list[tuple[str, str]]:
    """(RM prompt, user text) of the first ``count`` single-turn HH prompts."""
    out = []
    for p in pairs:
        turns = re.findall(r"Human: (.*?)\n\nAssistant:", p.prompt, flags=re.S)
        if isinstance(p.prompt, str) and p.prompt.count("Human:") == 1 and turns and len(turns[0]) < 300:
            out.append((p.prompt, turns[0].strip()))
        if len(out) == count:
            break
    return out


def generate(args, prompts: list[tuple[str, str]]) -> list[list[str]]:
    """N samples per prompt (seed-major batches: one ``chat`` call per seed), resumable."""
    backend = build_backend(BackendConfig(model="smollm2", batch_size=max(1, len(prompts))))  # the policy
    items = [{"prompt": i, "seed": s} for s in range(args.n) for i in range(len(prompts))]

    def fn(batch):
        by_seed: dict[int, list[int]] = {}
        for j, it in enumerate(batch):
            by_seed.setdefault(it["seed"], []).append(j)
        rows: list[dict | None] = [None] * len(batch)
        for seed, js in by_seed.items():
            gen = GenerationConfig(max_new_tokens=args.max_new_tokens, temperature=1.0, top_p=1.0, seed=seed)
            convs = [[{"role": "user", "content": prompts[batch[j]["prompt"]][1]}] for j in js]
            for j, text in zip(js, backend.chat(convs, gen), strict=True):
                rows[j] = {**batch[j], "response": text}
        return rows

    rows = resumable_map(
        items,
        fn,
        Path(args.out) / "samples.jsonl",
        key=lambda it: f"{it['prompt']}-{it['seed']}",
        batch_size=len(prompts),
        desc="sampling",
    )
    samples = [[""] * args.n for _ in prompts]
    for r in rows:
        samples[r["prompt"]][r["seed"]] = r["response"]
    return samples


def trained(path: Path, pairs, epochs: int, model_cfg: ModelConfig, validation=None) -> RewardModel:
    """Train once and cache: reuse ``path`` when it already holds a model."""
    if (path / "rewardlab.json").exists():
        return RewardModel.load(path, adapter=True)
    return train(
        pairs, model_cfg, TrainConfig(epochs=epochs, save_steps=0), path, validation=validation
    ).model


def noisy(pairs, rate: float, seed: int):
    """Flip chosen/rejected of a ``rate`` share of the pairs (label noise for the proxy)."""
    rng = random.Random(seed)
    out = []
    for p in pairs:
        if rng.random() < rate:
            p = type(p)(p.prompt, p.rejected, p.chosen)
        out.append(p)
    return out


def curves(scores: dict[str, torch.Tensor], gold: torch.Tensor, ns: list[int]) -> dict[str, list[float]]:
    """Mean over prompts of E[gold of the choice] at each n, per selection method."""
    return {name: [float(expected_best_of_n(s, gold, n).mean()) for n in ns] for name, s in scores.items()}


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kl = result["kl"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name, ys in result["curves"].items():
        style = "k--" if name.startswith("gold") else "-"
        ax.plot(kl, ys, style, marker="o", ms=3, label=name)
    ax.set_xlabel("KL(best-of-n ‖ policy) = log n − (n−1)/n")
    ax.set_ylabel("gold reward of the chosen sample (vs n=1)")
    ax.set_title(
        f"Best-of-n over-optimization ({result['setup']['prompts']} prompts × {result['setup']['n']} samples)"
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def table(result: dict) -> str:
    ns = result["ns"]
    lines = ["| method | " + " | ".join(f"n={n}" for n in ns) + " |", "|---" * (len(ns) + 1) + "|"]
    for name, ys in result["curves"].items():
        lines.append(f"| {name} | " + " | ".join(f"{y:+.3f}" for y in ys) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/overoptimization")
    ap.add_argument("--prompts", type=int, default=8)
    ap.add_argument("--n", type=int, default=64, help="samples per prompt (largest n)")
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=128, help="RM tokens per prompt+response")
    ap.add_argument("--gold-pairs", type=int, default=1800)
    ap.add_argument("--gold-epochs", type=int, default=1)
    ap.add_argument("--proxy-pairs", type=int, default=250)
    ap.add_argument("--proxy-epochs", type=int, default=3)
    ap.add_argument("--label-noise", type=float, default=0.1)
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--ks", default="0.5,1,2,4")
    ap.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads (0 = torch's default; 1 is much faster on a machine shared with other jobs)",
    )
    ap.add_argument("--only-samples", action="store_true", help="stop after sampling (resumable)")
    ap.add_argument(
        "--report-pairs", type=int, default=150, help="pairs per set for the calibration report (0 = skip)"
    )
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    split = hh_splits()
    prompts = single_turn_prompts(split["test"], args.prompts)
    samples = generate(args, prompts)
    log.info("samples ready (%.0fs)", time.perf_counter() - t0)
    if args.only_samples:
        return

    mcfg = ModelConfig(max_length=args.max_length)
    gold_rm = trained(
        out / "gold", split["train"][: args.gold_pairs], args.gold_epochs, mcfg, split["validation"]
    )
    proxy_pairs = noisy(split["train"][: args.proxy_pairs], args.label_noise, seed=1)
    proxy = trained(out / "proxy", proxy_pairs, args.proxy_epochs, mcfg)
    post = load_posterior(out / "proxy", rm=proxy)
    if post is None:
        post = fit_laplace(proxy, proxy_pairs, LaplaceConfig(progress=False))
        post.save(out / "proxy")
    ens_rm = RewardModel.load(out / "proxy", adapter=True)
    ens = load_ensemble(out / "proxy", rm=ens_rm)
    if ens is None:
        ens = train_ensemble(
            proxy_pairs,
            EnsembleConfig(members=args.members, epochs=args.proxy_epochs, progress=False),
            rm=ens_rm,
        )
        ens.save(out / "proxy")
    log.info("models ready (%.0fs)", time.perf_counter() - t0)

    flat_p = [p[0] for p in prompts for _ in range(args.n)]
    flat_r = [r for s in samples for r in s]
    shape = (len(prompts), args.n)
    gold = gold_rm.score(flat_p, flat_r)[:, 0].view(shape)
    mean, var = post.predict(flat_p, flat_r)
    mean, var = mean[:, 0].view(shape), var[:, 0].view(shape)
    members = ens.member_rewards(ens_rm.encode(flat_p, flat_r))[..., 0].view(-1, *shape)  # (M, P, N)
    scores = {"gold (oracle best-of-n)": gold, "proxy: argmax mean": mean}
    for k in [float(x) for x in args.ks.split(",")]:
        scores[f"proxy: mean − {k:g}·std"] = penalized_score(mean, var, k, "std")
    scores["proxy: mean − 1·var"] = penalized_score(mean, var, 1.0, "var")
    scores["ensemble: mean"] = members.mean(0)
    scores["ensemble: min"] = members.min(0).values
    ns = [n for n in (1, 2, 4, 8, 16, 32, 64, 128, 256) if n <= args.n]
    base = float(gold.mean())
    cur = {k: [y - base for y in v] for k, v in curves(scores, gold, ns).items()}
    spread = float(gold.std(dim=1).mean())
    result = {
        "ns": ns,
        "kl": [kl_best_of_n(n) for n in ns],
        "curves": cur,
        "gold_n1": base,
        "gold_within_prompt_std": spread,
        "proxy_std_mean": float(var.sqrt().mean()),
        "rank_corr_proxy_gold": _spearman(mean.flatten(), gold.flatten()),
        "setup": {k: v for k, v in vars(args).items()},
        "prior_precision": post.prior_precision,
        "seconds": time.perf_counter() - t0,
    }
    plot(result, out / "overoptimization.png")
    (out / "overoptimization.md").write_text(table(result) + "\n")
    (out / "overoptimization.json").write_text(json.dumps(result, indent=2))
    print(table(result))
    if args.report_pairs:
        rng = random.Random(0)
        sets = {"hh-test": split["test"], "llmbar": llmbar(), "hhh": hhh()}
        sets = {k: rng.sample(v, min(args.report_pairs, len(v))) for k, v in sets.items()}
        rep = uncertainty_report(
            {"map": MapPredictor(proxy), "laplace": post, "ensemble": ens}, sets, "hh-test"
        )
        (out / "uncertainty_report.json").write_text(json.dumps(rep, indent=2))
        for method, rows in rep.items():
            for s, m in rows.items():
                print(
                    f"{method:9s} {s:8s} acc {m['accuracy']:.3f} ece {m['ece']:.3f} nll {m['nll']:.3f} "
                    f"err-auroc {m['error_auroc']:.3f} ood-auroc {m.get('ood_auroc', float('nan')):.3f}"
                )
    log.info("done in %.0fs → %s", time.perf_counter() - t0, out)


def _spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra, rb = a.argsort().argsort().double(), b.argsort().argsort().double()
    return float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])


if __name__ == "__main__":
    main()
