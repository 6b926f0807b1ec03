"""Does the posterior's std flag the RM's errors and shifted data? (issue 12 §1)

One demo RM (MiniLM, LoRA r16 on the last layer, HH harmless, ``rewardlab demo``'s training), one
set of splits, many predictives: Laplace posteriors (KFAC vs diagonal; LoRA + head vs LoRA alone
vs the head alone; prior by marginal likelihood vs a validation grid; fitted on the 200 validation
pairs or on all 1,800 training pairs) and a K = 5 LoRA ensemble on the shared trunk. Every
predictive is scored by ``recipes/uncertainty_report.py`` (error-AUROC of the std alone, of the
confidence, of the combined P(wrong); OOD-AUROC vs HH with the response-length baseline; ECE/NLL;
bootstrap intervals).

Costs are paid once: the frozen trunk's states of every sequence (``WORK/states``), the demo RM's
training shares them (so the 1,800 training pairs run the trunk once for the RM, all training-set
fits and all ensemble members), and the Jacobians J_Δ of the LoRA + head weights of every
evaluation pair (``WORK/jac``): every posterior's variance is then J_Δ Σ J_Δᵀ on a slice of them.
Every stage is cached: rerun the same command to resume.

    nice -n 10 python recipes/uncertainty.py --work runs/uncertainty --out docs/results/uncertainty
"""

from __future__ import annotations

import argparse
import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from rewardlab.bayes import EnsembleConfig, LaplaceConfig, fit_laplace
from rewardlab.bayes.ensemble import _train_member, _trainable
from rewardlab.bayes.laplace import Posterior, encode_sides, token_batches
from rewardlab.bayes.variance import rotate
from rewardlab.data.bundled import bundled_set
from rewardlab.demo import DemoConfig, demo_data
from rewardlab.models.config import ModelConfig
from rewardlab.models.fast_top import cls_top_rewards
from rewardlab.models.reward_model import RewardModel
from rewardlab.models.trunk_cache import TrunkCache
from rewardlab.train.config import TrainConfig
from rewardlab.train.trainer import train

log = logging.getLogger("uncertainty")
IN_SET = "hh-test"
OOD_SETS = ("llmbar", "hhh", "pandalm-test", "qafeedback-test")


@dataclass(frozen=True)
class Fit:
    """One Laplace fit; ``priors`` lists the prior tunings evaluated on it (one result row each)."""

    data: str  # "validation" (200 pairs) | "train" (1,800)
    hessian: str
    subset: str
    priors: tuple[str, ...] = ("marglik",)

    def name(self, prior: str) -> str:
        return f"laplace/{self.data}/{self.hessian}/{self.subset}/{prior}"


FITS = (  # most informative first; the ensemble runs after the first ``--fits-first``
    Fit("validation", "kron", "lora"),  # `rewardlab laplace --data hh-validation` defaults (the issue's)
    Fit("validation", "kron", "last_layer"),
    Fit("validation", "diag", "lora"),
    Fit("train", "kron", "lora", ("marglik", "grid")),
    Fit("train", "kron", "last_layer", ("marglik", "grid")),
    Fit("validation", "kron", "lora_only"),
    Fit("train", "diag", "lora", ("marglik", "grid")),
    Fit("train", "kron", "lora_only"),
)


# ---- data and caches ---------------------------------------------------------------------------
def eval_sets(limit: int, seed: int = 0) -> dict[str, list]:
    """hh-test (all) and a seeded sample of ``limit`` pairs of every OOD set (all when smaller)."""
    sets = {IN_SET: bundled_set(IN_SET)}
    for name in OOD_SETS:
        pairs = bundled_set(name)
        sets[name] = random.Random(seed).sample(pairs, limit) if 0 < limit < len(pairs) else pairs
    return sets


def encoded(rm: RewardModel, pairs: list) -> list[dict]:
    """Sequences in the trainer's order: id 2i = pair i's chosen, 2i + 1 its rejected."""
    ch, rj = encode_sides(rm, pairs)
    return [s for c, r in zip(ch, rj, strict=True) for s in (c, r)]


def fill_states(rm: RewardModel, seqs: list[dict], path: Path, batch_tokens: int = 4096) -> dict:
    """Frozen-trunk states of every sequence (id → (T_i, H)), computed once and saved."""
    if path.exists():
        return torch.load(path, weights_only=True)
    cache = TrunkCache(rm, rm.trunk_split)
    for idx in token_batches([len(s["input_ids"]) for s in seqs], batch_tokens):
        cache.fill(idx, rm.collate([seqs[i] for i in idx]))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(cache.store, path)
    return cache.store


def check_states(rm: RewardModel, seqs: list[dict], store: dict) -> None:
    """The cached states are this model's trunk (they may have been computed before it trained:
    the frozen layers are the pretrained encoder's)."""
    fresh = TrunkCache(rm, rm.trunk_split)
    for i, s in enumerate(seqs):
        fresh.fill([i], rm.collate([s]))
        torch.testing.assert_close(fresh.store[i], store[i], rtol=1e-4, atol=1e-5)


def demo_model(work: Path, pairs: dict) -> RewardModel:
    """The demo RM (``rewardlab demo``'s training: defaults, HH train, select-best on validation),
    trained here once; its trunk states are kept for the fits and the ensemble."""
    mdir = work / "demo" / "model"
    if not (mdir / "rewardlab.json").exists():
        store: dict = {}
        train(
            pairs["train"],
            ModelConfig(),
            TrainConfig(),
            mdir,
            validation=pairs["validation"],
            trunk_store=store,
        )
        n = 2 * len(pairs["train"])
        (work / "states").mkdir(parents=True, exist_ok=True)
        torch.save({i: v for i, v in store.items() if i < n}, work / "states" / "train.pt")
        torch.save({i - n: v for i, v in store.items() if i >= n}, work / "states" / "validation.pt")
    return RewardModel.load(mdir, adapter=True)


def reset_trainable(rm: RewardModel, names: set[str]) -> None:
    """Make exactly ``names`` trainable again (a posterior's subset selection freezes the rest)."""
    for n, p in rm.named_parameters():
        p.requires_grad_(n in names)


def jacobians(rm: RewardModel, post: Posterior, pairs: list, store: dict, path: Path, sign: int = -1) -> dict:
    """J_Δ = J_c − J_r (n, P) of ``post``'s weights and μ_Δ (n,) for every pair, on cached states
    (``sign=+1``: J_c + J_r, whose variance with v_Δ's gives the responses' own: v_c + v_r =
    (v_Δ + v_{c+r}) / 2)."""
    if path.exists():
        return torch.load(path, weights_only=True)
    seqs = encoded(rm, pairs)
    cache = TrunkCache(rm, rm.trunk_split)
    cache.store = store
    n = len(pairs)
    jd = torch.empty(n, post.n_params)
    mu = torch.empty(n, dtype=torch.float64)
    lengths = [2 * max(len(seqs[2 * i]["input_ids"]), len(seqs[2 * i + 1]["input_ids"])) for i in range(n)]
    post.fn.eval()
    for idx in token_batches(lengths, 4096, max_batch=32):
        b = len(idx)
        ids = [2 * i for i in idx] + [2 * i + 1 for i in idx]
        batch = rm.collate([seqs[i] for i in ids])
        cache.fill(ids, batch)
        x = {**batch, "states": cache.padded(ids, batch["input_ids"].shape[1])}
        js, f = post.la.backend.jacobians(x)  # (2b, 1, P), (2b, 1)
        jd[idx] = (js[:b, 0] + sign * js[b:, 0]).float()
        mu[idx] = (f[:b, 0] + sign * f[b:, 0]).double()
    sizes = [p.numel() for p in post.la.params]
    out = {"jd": jd, "mu": mu, "names": post.param_names, "sizes": sizes}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(out, path)
    return out


def columns(jac: dict, names: list[str]) -> torch.Tensor:
    """Column indices in ``jac['jd']`` of the parameters ``names`` (a subset, in the same order)."""
    starts, s = {}, 0
    for n, k in zip(jac["names"], jac["sizes"], strict=True):
        starts[n] = (s, k)
        s += k
    return torch.cat([torch.arange(starts[n][0], starts[n][0] + starts[n][1]) for n in names])


def set_variances(
    post: Posterior, jd: torch.Tensor, priors: dict, chunk: int = 128
) -> tuple[dict, torch.Tensor]:
    """v_Δ (n,) at each named prior precision of ``priors`` (None = the posterior's own) and the
    per-block variances (n, B) at its own prior, from one rotation into the eigenbasis."""
    out: dict = {k: [] for k in priors}
    blocks = []
    for s in range(0, len(jd), chunk):
        rot = rotate(post.la, jd[s : s + chunk])
        for k, lam in priors.items():
            out[k].append(rot.variance(lam).double().clamp_min(0))
        blocks.append(rot.blocks())
    return {k: torch.cat(v) for k, v in out.items()}, torch.cat(blocks).double()


# ---- stages --------------------------------------------------------------------------------------
def save_pred(path: Path, pred: dict, meta: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"pred": pred, "meta": meta}, path)


def fit_variances(
    post, fit: Fit, jacs, sets: list[str], cols, work: Path, priors: dict
) -> tuple[dict, dict, dict]:
    """Per set of ``sets``: the reward variance under every prior (``var``), the per-pair response variance
    under the fit's own priors (``resp``: (v_c + v_r) / 2 of the pair's two responses), and the
    in-set variance summed per weight group (``groups``)."""
    var, resp, blocks = {}, {}, None
    for s in sets:
        var[s], b = set_variances(post, jacs[s]["jd"][:, cols], priors)
        blocks = b if s == IN_SET else blocks
        js = torch.load(work / "jac" / f"{s}_sum.pt", weights_only=True)["jd"][:, cols]
        own = {k: priors[k] for k in fit.priors}
        vs, _ = set_variances(post, js, own)
        resp[s] = {k: (var[s][k] + vs[k]) / 4 for k in own}  # (v_c + v_r) / 2 per pair
        del js
    groups: dict[str, torch.Tensor] = {}
    for j, name in enumerate(post.param_names):
        g = group_of(name)
        groups[g] = groups.get(g, 0) + blocks[:, j]
    return var, resp, groups


def run_fit(
    fit: Fit, rm, trainable, pairs, stores, jacs, work: Path, sweep: list[float], cost_seqs: list[dict]
) -> None:
    """Fit one posterior on cached states; save each prior tuning's (μ_Δ, v_Δ) per set, the
    variance per weight group and a λ sweep (all from one rotation of the cached Jacobians)."""
    paths = {p: work / "preds" / f"{fit.name(p).replace('/', '_')}.pt" for p in fit.priors}
    if all(path.exists() for path in paths.values()):
        return
    reset_trainable(rm, trainable)
    cfg = LaplaceConfig(hessian=fit.hessian, subset=fit.subset, progress=False)
    t0 = time.perf_counter()
    post = fit_laplace(rm, pairs[fit.data], cfg, trunk_store=stores[fit.data])
    fit_s = time.perf_counter() - t0
    cols = columns(jacs[IN_SET], post.param_names)
    lams = {"marglik": post.prior_precision}
    if "grid" in fit.priors:
        jv = jacs["validation"]
        post.tune_grid_on(
            jv["jd"][:, cols].to(post.la.mean.dtype).unsqueeze(1), jv["mu"], torch.ones(len(jv["mu"]))
        )
        lams["grid"] = post.prior_precision
        post.la.prior_precision = torch.tensor(lams["marglik"], dtype=post.la.mean.dtype)
    priors = {
        "marglik": None,
        **({"grid": lams["grid"][0]} if "grid" in lams else {}),
        **{f"sweep:{x}": x for x in sweep},
    }
    t1 = time.perf_counter()
    sets = [s for s in jacs if s != "validation"]
    var, resp, groups = fit_variances(post, fit, jacs, sets, cols, work, priors)
    var_s = time.perf_counter() - t1
    old = work / "preds_old" / paths[fit.priors[0]].name
    cost = torch.load(old, weights_only=False)["meta"].get("cost") if old.exists() else None
    if cost is None and fit.data == "validation" and fit.subset != "lora_only":
        cost = predictive_cost(rm, post, cost_seqs, full_top=fit.hessian == "kron" and fit.subset == "lora")
    for prior in fit.priors:
        meta = {
            "name": fit.name(prior),
            "kind": "laplace",
            "fit": fit.data,
            "hessian": fit.hessian,
            "subset": fit.subset,
            "prior": prior,
            "n_params": post.n_params,
            "prior_precision": lams[prior],
            "fit_seconds": round(fit_s, 1),
            "variance_seconds": round(var_s, 1),
            "cost": cost,
            "blocks": groups,
            "sweep": {x: {s: var[s][f"sweep:{x}"] for s in sets} for x in sweep}
            if prior == "marglik"
            else {},
        }
        save_pred(paths[prior], {s: (jacs[s]["mu"], var[s][prior], resp[s][prior]) for s in sets}, meta)
        log.info("%s: λ=%s, fit %.0fs, variances %.0fs", fit.name(prior), lams[prior], fit_s, var_s)


def best_time(fn, repeat: int = 2) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def predictive_cost(rm: RewardModel, post: Posterior, seqs: list[dict], full_top: bool = False) -> dict:
    """Seconds to score ``seqs`` (library paths, trunk included): MAP mean, GLM mean + variance
    with the [CLS]-only top, and with the full top layer (the path before this change)."""
    mean_s = best_time(lambda: rm.score_encoded(seqs, batch_tokens=4096))
    var_s = best_time(lambda: post.predict_encoded(seqs))
    out = {"responses": len(seqs), "mean_s": mean_s, "variance_s": var_s, "ratio": var_s / mean_s}
    if full_top:
        post.fn.cls_top = False
        out["variance_full_top_s"] = full_s = best_time(lambda: post.predict_encoded(seqs))
        out["ratio_full_top"] = full_s / mean_s
        post.fn.cls_top = True
    return out


def group_of(name: str) -> str:
    """A readable weight group: 'lora:query', 'head:pooler', 'head:classifier', …"""
    parts = name.split(".")
    if "lora_A" in parts or "lora_B" in parts:
        i = parts.index("lora_A" if "lora_A" in parts else "lora_B")
        mod = parts[i - 1]
        if mod == "dense":  # attention.output.dense | intermediate.dense | output.dense (MLP out)
            mod = "attention.output" if "attention" in parts else parts[i - 2]
        return f"lora:{mod}"
    return "head:" + ("classifier" if "classifier" in parts else "pooler" if "pooler" in parts else parts[-2])


def run_ensemble(
    rm,
    trainable,
    pairs,
    stores,
    sets,
    work: Path,
    members: int,
    epochs: int,
    seed: int,
    train_missing: bool = True,
) -> None:
    """K LoRA members (fresh LoRA + head, the demo's lr; ``epochs`` each: the demo RM's select-best
    kept its first epoch) on the shared train trunk. ``train_missing=False``: the members saved so
    far only (K = how many)."""
    if not train_missing:
        members = len(list((work / "ensemble").glob("member_*.pt")))
    path = work / "preds" / f"ensemble_{members}.pt"
    if path.exists():
        return
    reset_trainable(rm, trainable)
    start = {n: p.detach().clone() for n, p in _trainable(rm).items()}
    tcfg = TrainConfig()
    cfg = EnsembleConfig(
        members=members, epochs=epochs, lr=tcfg.lr, batch_size=tcfg.batch_size, progress=False
    )
    states = {}
    for m in range(members):
        mpath = work / "ensemble" / f"member_{m}.pt"
        if mpath.exists():
            state = torch.load(mpath, weights_only=True)
        else:
            t0 = time.perf_counter()
            state = _train_member(rm, pairs["train"], stores["train"], cfg, seed + m, start)
            mpath.parent.mkdir(parents=True, exist_ok=True)
            torch.save(state, mpath)
            log.info("ensemble member %d trained in %.0fs", m, time.perf_counter() - t0)
        states[m] = state
    rewards = {s: member_rewards(rm, states, p, stores[s]) for s, p in sets.items()}  # (M, 2n)
    with torch.no_grad():
        for n, p in _trainable(rm).items():
            p.copy_(start[n])
    deltas = {s: r[:, 0::2] - r[:, 1::2] for s, r in rewards.items()}  # (M, n)
    pred = {
        s: (d.mean(0), d.var(0, unbiased=False), rewards[s].var(0, unbiased=False).view(-1, 2).mean(1))
        for s, d in deltas.items()
    }
    save_pred(
        path,
        pred,
        {
            "name": f"ensemble/train/K={members}",
            "kind": "ensemble",
            "members": members,
            "probs": {s: torch.sigmoid(d).mean(0) for s, d in deltas.items()},
        },
    )


@torch.no_grad()
def member_rewards(rm, states: dict, pairs: list, store: dict) -> torch.Tensor:
    """Each member's rewards (M, 2n) of chosen (even columns) and rejected (odd) responses, its
    top layer on the cached states."""
    seqs = encoded(rm, pairs)
    cache = TrunkCache(rm, rm.trunk_split)
    cache.store = store
    out = torch.empty(len(states), len(seqs))
    rm.eval()
    for idx in token_batches([len(s["input_ids"]) for s in seqs], 8192):
        batch = rm.collate([seqs[i] for i in idx])
        x = cache.padded(idx, batch["input_ids"].shape[1])
        for m, state in states.items():
            params = dict(rm.named_parameters())
            for n, v in state.items():
                params[n].copy_(v)
            out[m, idx] = cls_top_rewards(rm, x, batch["attention_mask"])[:, 0].float()
    return out.double()


def parser() -> argparse.ArgumentParser:
    """The recipe's command line."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--work", default="runs/uncertainty", help="caches: model, trunk states, Jacobians, predictions"
    )
    ap.add_argument("--out", default="docs/results/uncertainty", help="table.md, plots, results.jsonl")
    ap.add_argument("--ood-limit", type=int, default=200, help="pairs per OOD set (seeded sample; 0 = all)")
    ap.add_argument("--members", type=int, default=5)
    ap.add_argument("--member-epochs", type=int, default=1, help="epochs per ensemble member")
    ap.add_argument(
        "--cost-pairs", type=int, default=48, help="hh-test pairs timed for the predictive's cost"
    )
    ap.add_argument("--fits", default="all", help="comma-separated indices into FITS, or all")
    ap.add_argument("--fits-first", type=int, default=4, help="fits run before the ensemble")
    ap.add_argument("--skip-ensemble", action="store_true")
    ap.add_argument("--only-ensemble", action="store_true")
    ap.add_argument("--ensemble-from-saved", action="store_true", help="the members trained so far only")
    ap.add_argument("--threads", type=int, default=0)
    return ap


def main() -> None:
    args = parser().parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    work = Path(args.work)
    t0 = time.perf_counter()
    fit_pairs = dict(zip(("train", "validation"), demo_data(DemoConfig()), strict=True))
    rm = demo_model(work, fit_pairs)
    trainable = {n for n, p in rm.named_parameters() if p.requires_grad}
    sets = eval_sets(args.ood_limit)
    stores = {
        k: fill_states(rm, encoded(rm, v), work / "states" / f"{k}.pt")
        for k, v in {**fit_pairs, **sets}.items()
    }
    check_states(rm, encoded(rm, sets[IN_SET][:2]), stores[IN_SET])
    log.info("trunk states ready (%.0fs)", time.perf_counter() - t0)
    if args.only_ensemble or args.ensemble_from_saved:  # e.g. in a second process beside the fits
        run_ensemble(
            rm,
            trainable,
            fit_pairs,
            stores,
            sets,
            work,
            args.members,
            args.member_epochs,
            0,
            not args.ensemble_from_saved,
        )
        return
    base = Posterior(rm, LaplaceConfig(progress=False))  # LoRA + head: the widest subset
    jacs = {
        s: jacobians(rm, base, p, stores[s], work / "jac" / f"{s}.pt")
        for s, p in {"validation": fit_pairs["validation"], **sets}.items()
    }
    for s, p in sets.items():  # J_c + J_r: on disk only (loaded per set by each fit)
        if not (work / "jac" / f"{s}_sum.pt").exists():
            jacobians(rm, base, p, stores[s], work / "jac" / f"{s}_sum.pt", sign=+1)
    log.info("Jacobians ready (%.0fs)", time.perf_counter() - t0)
    sweep = torch.logspace(-3, 5, 9).tolist()
    chosen = FITS if args.fits == "all" else [FITS[int(i)] for i in args.fits.split(",")]
    cost_seqs = encoded(rm, sets[IN_SET][: args.cost_pairs])
    for i, fit in enumerate(chosen):
        if i == args.fits_first and not args.skip_ensemble:
            run_ensemble(
                rm, trainable, fit_pairs, stores, sets, work, args.members, args.member_epochs, seed=0
            )
        run_fit(fit, rm, trainable, fit_pairs, stores, jacs, work, sweep, cost_seqs)
    if not args.skip_ensemble:
        run_ensemble(rm, trainable, fit_pairs, stores, sets, work, args.members, args.member_epochs, seed=0)
    log.info(
        "done (%.0fs); now: python recipes/uncertainty_report.py --work %s --out %s",
        time.perf_counter() - t0,
        work,
        args.out,
    )


if __name__ == "__main__":
    main()
