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
import hashlib
import json
import logging
import random
import time
from pathlib import Path

import torch

from rewardlab.bayes import (
    EnsembleConfig,
    LaplaceConfig,
    MapPredictor,
    best_of_n_gains,
    bootstrap_curves,
    fit_laplace,
    kl_best_of_n,
    load_ensemble,
    load_posterior,
    penalized_score,
    train_ensemble,
    uncertainty_report,
)
from rewardlab.data.bundled import hh_splits, hhh, llmbar, pandalm_splits, qa_feedback_splits
from rewardlab.data.prompt_sets import train_prompts
from rewardlab.llm import BackendConfig, GenerationConfig, build_backend, resumable_map
from rewardlab.models.config import ModelConfig
from rewardlab.models.reward_model import RewardModel
from rewardlab.train.config import TrainConfig
from rewardlab.train.trainer import train

log = logging.getLogger("overoptimization")


def policy_prompts(spec: str) -> list[tuple[str, str, str]]:
    """(RM prompt, user text, source) for a ``source:count,...`` spec of bundled *train* prompts
    (:func:`rewardlab.data.prompt_sets.train_prompts`)."""
    try:
        return [(t.prompt, t.user, t.source) for t in train_prompts(spec)]
    except ValueError as e:
        raise SystemExit(f"--{e}") from None


def generate(args, prompts: list[tuple[str, str, str]]) -> list[list[str]]:
    """N samples per prompt (``LocalBackend.sample_n``: one prompt's samples batched together),
    resumable per prompt.

    Rows go to ``--samples`` (shipped in the repo); the job's configuration (policy, sampling,
    prompts) is recorded beside it and a rerun with another one is refused.
    """
    cfg = BackendConfig(model="smollm2", batch_size=args.gen_batch, no_cache=True)  # the policy
    backend = build_backend(cfg)
    gen = GenerationConfig(max_new_tokens=args.max_new_tokens, temperature=1.0, top_p=1.0, seed=0)
    digest = hashlib.sha256(json.dumps([p[1] for p in prompts]).encode()).hexdigest()[:16]
    config = {
        "policy": backend.fingerprint(),
        "gen": {k: getattr(gen, k) for k in ("max_new_tokens", "temperature", "top_p", "seed")},
        "n": args.n,
        "prompts": args.prompts,
        "prompts_sha256_16": digest,
    }

    def fn(batch):
        rows = []
        for it in batch:
            rm_prompt, user, source = prompts[it["prompt"]]
            replies = backend.sample_n([{"role": "user", "content": user}], args.n, gen)
            rows.append({**it, "source": source, "user": user, "responses": replies})
        return rows

    items = [{"prompt": i} for i in range(len(prompts))]
    rows = resumable_map(
        items,
        fn,
        Path(args.samples),
        key=lambda it: str(it["prompt"]),
        batch_size=1,
        desc="sampling",
        config=config,
    )
    return [r["responses"] for r in rows]


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


def plot(result: dict, path: Path) -> None:
    """Gold gain vs KL per method, with the 95% bootstrap band over prompts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kl = result["kl"]
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for name, ys in result["curves"].items():
        style = "k--" if name.startswith("gold") else "-"
        (line,) = ax.plot(kl, ys, style, marker="o", ms=3, label=name)
        lo, hi = zip(*result["curves_ci"][name], strict=True)
        ax.fill_between(kl, lo, hi, color=line.get_color(), alpha=0.12, lw=0)
    ax.set_xlabel("KL(best-of-n ‖ policy) = log n − (n−1)/n")
    ax.set_ylabel("gold reward of the chosen sample (vs n=1)")
    s = result["setup"]
    ax.set_title(
        f"Best-of-n over-optimization ({s['prompts']}, {s['n']} samples; 95% bootstrap over prompts)",
        fontsize=9,
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def table(result: dict) -> str:
    """Markdown: mean gain [95% CI] per n, the drop (peak − end) and its paired difference to argmax-mean."""
    ns, boot = result["ns"], result["bootstrap"]
    head = ["method", *[f"n={n}" for n in ns], "drop (peak − n_max)", "drop − argmax-mean's"]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]

    def ci(m, lo_hi):
        return f"{m:+.3f} [{lo_hi[0]:+.3f}, {lo_hi[1]:+.3f}]"

    for name, r in boot.items():
        cells = [ci(m, c) for m, c in zip(r["mean"], r["ci"], strict=True)]
        lines.append(
            f"| {name} | " + " | ".join(cells) + f" | {ci(r['drop'], r['drop_ci'])} | "
            f"{ci(r['drop_diff'], r['drop_diff_ci'])} |"
        )
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    """The recipe's command line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/overoptimization")
    ap.add_argument(
        "--prompts",
        default="hh:48,pandalm:48,qa-feedback:24",
        help="SOURCE:COUNT,... of bundled train prompts (hh: single-turn; qa-feedback: the shortest)",
    )
    ap.add_argument(
        "--samples",
        default="data/generated/overoptimization/samples.jsonl",
        help="the policy's samples (shipped; resumable; another configuration is refused)",
    )
    ap.add_argument("--gen-batch", type=int, default=64, help="samples of one prompt per generate() call")
    ap.add_argument("--n", type=int, default=64, help="samples per prompt (largest n)")
    ap.add_argument("--max-new-tokens", type=int, default=48)
    ap.add_argument("--max-length", type=int, default=256, help="RM tokens per prompt+response")
    ap.add_argument("--gold-pairs", type=int, default=0, help="gold RM pairs (0: all 3,900 of the mix)")
    ap.add_argument("--gold-epochs", type=int, default=2)
    ap.add_argument("--proxy-pairs", type=int, default=100, help="proxy RM pairs per source")
    ap.add_argument("--proxy-epochs", type=int, default=3)
    ap.add_argument("--label-noise", type=float, default=0.1)
    ap.add_argument("--members", type=int, default=3)
    ap.add_argument("--ks", default="0.5,1,2,4")
    ap.add_argument("--var-ks", default="1,4")
    ap.add_argument("--boot", type=int, default=1000, help="bootstrap resamples over prompts")
    ap.add_argument(
        "--heldout-pairs", type=int, default=200, help="pairs per held-out set (gold/proxy accuracy)"
    )
    ap.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads (0 = torch's default; 1 is much faster on a machine shared with other jobs)",
    )
    ap.add_argument("--only-samples", action="store_true", help="stop after sampling (resumable)")
    ap.add_argument(
        "--only-models", action="store_true", help="train/fit the RMs only (e.g. beside a sampling run)"
    )
    ap.add_argument(
        "--report-pairs", type=int, default=150, help="pairs per set for the calibration report (0 = skip)"
    )
    return ap


def main() -> None:
    args = parser().parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    split = hh_splits()
    if args.only_models:
        build_rms(args, out)
        log.info("models ready (%.0fs)", time.perf_counter() - t0)
        return
    prompts = policy_prompts(args.prompts)
    samples = generate(args, prompts)
    log.info("samples ready (%.0fs)", time.perf_counter() - t0)
    if args.only_samples:
        return

    gold_rm, proxy, post, ens, ens_rm, proxy_pairs = build_rms(args, out)
    log.info("models ready (%.0fs)", time.perf_counter() - t0)
    result = analyse(args, prompts, samples, gold_rm, post, ens, ens_rm)
    result["heldout"] = heldout({"gold": gold_rm, "proxy": proxy}, args.heldout_pairs)
    result["seconds"] = time.perf_counter() - t0
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
    log.info("done in %.0fs → %s", time.perf_counter() - t0, out)


def train_mix(limit_per_set: int | None) -> list:
    """Human train pairs of the three prompt sources (HH harmless, PandaLM, qa-feedback), the
    first ``limit_per_set`` of each (None: all 3,900)."""
    sets = (hh_splits()["train"], pandalm_splits()["train"], qa_feedback_splits()["train"])
    return [p for s in sets for p in (s if limit_per_set is None else s[:limit_per_set])]


def build_rms(args, out: Path):
    """Gold RM (all human train pairs of the three sources), proxy RM (``--proxy-pairs`` per
    source, ``--label-noise`` flipped), the proxy's Laplace posterior and ensemble; all cached."""
    mcfg = ModelConfig(max_length=args.max_length)
    gold_rm = trained(out / "gold", train_mix(None)[: args.gold_pairs or None], args.gold_epochs, mcfg)
    proxy_pairs = noisy(train_mix(args.proxy_pairs), args.label_noise, seed=1)
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
    return gold_rm, proxy, post, ens, ens_rm, proxy_pairs


def selection_scores(args, mean, var, members, gold) -> dict[str, torch.Tensor]:
    """Selection score (P, N) of every method; the gold RM itself is the oracle."""
    scores = {"gold (oracle best-of-n)": gold, "proxy: argmax mean": mean}
    for k in [float(x) for x in args.ks.split(",")]:
        scores[f"proxy: mean − {k:g}·std"] = penalized_score(mean, var, k, "std")
    for k in [float(x) for x in args.var_ks.split(",")]:
        scores[f"proxy: mean − {k:g}·var"] = penalized_score(mean, var, k, "var")
    scores["ensemble: mean"] = members.mean(0)
    scores["ensemble: min"] = members.min(0).values
    return scores


def analyse(args, prompts, samples, gold_rm, post, ens, ens_rm) -> dict:
    """Score every sample with the gold RM and the proxy's predictors; curves with paired
    bootstrap intervals over prompts, overall and per prompt source."""
    flat_p = [p[0] for p, s in zip(prompts, samples, strict=True) for _ in s]
    flat_r = [r for s in samples for r in s]
    shape = (len(prompts), args.n)
    gold = gold_rm.score(flat_p, flat_r)[:, 0].view(shape)
    mean, var = post.predict(flat_p, flat_r)
    mean, var = mean[:, 0].view(shape), var[:, 0].view(shape)
    members = ens.member_rewards(ens_rm.encode(flat_p, flat_r))[..., 0].view(-1, *shape)  # (M, P, N)
    scores = selection_scores(args, mean, var, members, gold)
    ns = [n for n in (1, 2, 4, 8, 16, 32, 64, 128, 256) if n <= args.n]
    gains = {k: best_of_n_gains(v, gold, ns) for k, v in scores.items()}
    boot = bootstrap_curves(gains, "proxy: argmax mean", n_boot=args.boot, seed=0)
    sources = [p[2] for p in prompts]
    by_source = {}
    for src in dict.fromkeys(sources):
        rows = torch.tensor([s == src for s in sources])
        sub = bootstrap_curves({k: v[rows] for k, v in gains.items()}, "proxy: argmax mean", args.boot)
        by_source[src] = {
            "prompts": int(rows.sum()),
            "curves": {k: v["mean"] for k, v in sub.items()},
            "drop": {k: v["drop"] for k, v in sub.items()},
        }
    return {
        "ns": ns,
        "kl": [kl_best_of_n(n) for n in ns],
        "curves": {k: v["mean"] for k, v in boot.items()},
        "curves_ci": {k: v["ci"] for k, v in boot.items()},
        "bootstrap": boot,
        "by_source": by_source,
        "gold_n1": float(gold.mean()),
        "gold_within_prompt_std": float(gold.std(dim=1).mean()),
        "proxy_std_mean": float(var.sqrt().mean()),
        "rank_corr_proxy_gold": _spearman(mean.flatten(), gold.flatten()),
        "rank_corr_within_prompt": float(
            torch.tensor([_spearman(mean[i], gold[i]) for i in range(len(prompts))]).nanmean()
        ),
        "setup": {k: v for k, v in vars(args).items()},
        "prior_precision": post.prior_precision,
        "posterior": {
            "hessian": post.cfg.hessian.value,
            "subset": post.cfg.subset.value,
            "n_params": post.n_params,
        },
    }


def heldout(rms: dict, limit: int) -> dict:
    """Pairwise accuracy of each RM on seeded held-out test pairs of the three sources and on
    LLMBar / HHH, beside the length heuristics (how good is the gold, how weak the proxy)."""
    from rewardlab.evaluate.evaluator import heldout_accuracy

    return heldout_accuracy(rms, ("hh-test", "pandalm-test", "qafeedback-test", "llmbar", "hhh"), limit)


def _spearman(a: torch.Tensor, b: torch.Tensor) -> float:
    ra, rb = a.argsort().argsort().double(), b.argsort().argsort().double()
    return float(torch.corrcoef(torch.stack([ra, rb]))[0, 1])


if __name__ == "__main__":
    main()
