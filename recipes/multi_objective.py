"""MORLAIF in miniature: per-principle reward models + a scalarizer vs one monolithic RM.

Two experiments, each over ``--seeds`` seeds, every model on every bundled evaluation set beside
both length heuristics (95% t-intervals over seeds):

* ``mix`` — the lever on the demo RM. Training pairs: HH harmless (objective ``harmlessness``) +
  PandaLM + qa-feedback (objective ``helpfulness``, soft human labels). Models:
  ``harmless`` (K=1 on HH harmless only: today's demo RM), ``union`` (K=1 on the union, plain
  preferences), ``multi`` (K=2 heads; a pair trains only the objective of its source — the other is
  masked). The multi RM's weighted-sum weights are fitted by logistic regression on the validation
  mix (the human preference as the overall label); every scalarizer is scored on the same heads.
  Held out from all training: LLMBar, HHH, SummEval-OP.
* ``summeval`` — SummEval-OP, held-out products: ``mono`` (K=1 on the overall label) vs ``multi``
  (7 aspect heads on the aspect labels; weights fitted on the validation products' overall label),
  at several training sizes (``--summeval-sizes``).
* ``debias`` — length debiasing on the mix (``TrainConfig.length_debias``): ``harmless+poe``,
  ``union+poe``, ``multi+poe`` (a fixed per-source length expert in the BT logit, dropped at
  scoring) and ``union+balance`` (the union subsampled so that within each source the longer
  response wins half of the pairs; one subset, seed 0, for every seed). Compare with the mix rows.
* ``mixsize`` — the mix's three models at several data sizes (``--mix-sizes``: at most N training
  pairs per source, the demo's ``--train-limit``).

All models: embedded MiniLM, LoRA r16 on the last layer, ``--epochs`` epochs, no epoch selection
(every model gets the same schedule). The frozen lower layers are identical for every model, so
their outputs are computed once per set and shared (training: the trunk cache; evaluation: the
states entering the last layer) — the scores are the same as ``rewardlab evaluate`` (same math).

Resumable: every finished (experiment, model, size, seed) appends a row to OUT/results.jsonl and
is skipped on a rerun. Writes OUT/table.md and OUT/plot.png.

    python recipes/multi_objective.py --out runs/multi_objective [--seeds 5] [--experiments mix,summeval]
"""

from __future__ import annotations

import argparse
import json
import logging
import random
from pathlib import Path

import torch
from multi_objective_report import ci, write_report  # noqa: F401  (ci: shared with other recipes)

from rewardlab.data.bundled import bundled_set
from rewardlab.data.schema import PreferencePair
from rewardlab.demo import MULTI_OBJECTIVES, DemoConfig, TrainSet, demo_data
from rewardlab.evaluate.metrics import length_heuristics, pairwise_accuracy
from rewardlab.models.config import ModelConfig
from rewardlab.models.fast_top import below_top, cls_top_rewards
from rewardlab.models.reward_model import RewardModel
from rewardlab.objectives import SCALARIZERS, fit_weights, normalise, reward_scale, scalarize
from rewardlab.train.config import TrainConfig
from rewardlab.train.length_bias import balance_by_length
from rewardlab.train.trainer import train

log = logging.getLogger("multi_objective")
EVAL_SETS = ("hh-test", "pandalm-test", "qafeedback-test", "summeval-test", "llmbar", "hhh")
ASPECTS = [
    "fluency",
    "coherence",
    "relevance",
    "faithfulness",
    "aspect_coverage",
    "sentiment_consistency",
    "specificity",
]


class FrozenTrunkScorer:
    """Scores pairs with any last-layer RM over the shared frozen MiniLM: the states entering the
    last layer are computed once (``below_top``), each RM then runs only its last layer + head."""

    def __init__(self, rm: RewardModel, pairs: list[PreferencePair], batch: int = 32) -> None:
        seqs = rm.encode(
            [p.prompt for p in pairs for _ in (0, 1)], [r for p in pairs for r in (p.chosen, p.rejected)]
        )
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]["input_ids"]))
        self.n, self.batches = len(seqs), []
        rm.eval()
        with torch.inference_mode():
            for s in range(0, len(order), batch):
                idx = order[s : s + batch]
                b = rm.collate([seqs[i] for i in idx])
                self.batches.append((idx, below_top(rm, b), b["attention_mask"]))

    @torch.inference_mode()
    def rewards(self, rm: RewardModel) -> tuple[torch.Tensor, torch.Tensor]:
        """(r_chosen, r_rejected), each (P, K)."""
        rm.eval()
        out = torch.empty(self.n, rm.cfg.num_objectives)
        for idx, states, mask in self.batches:
            out[idx] = cls_top_rewards(rm, states, mask).float()
        return out[0::2], out[1::2]


def mix_data(limit: int = 0) -> dict:
    """Training/validation pairs of the mix experiment, per model: the demo's training sets
    (:func:`rewardlab.demo.demo_data`, at most ``limit`` training pairs per source), so the recipe
    measures exactly what ``--train-set`` trains."""
    data = {t.value: demo_data(DemoConfig(train_set=t, train_limit=limit)) for t in TrainSet}
    return {
        "harmless": (ModelConfig(), *data["harmless"]),
        "union": (ModelConfig(), *data["union"]),
        "multi": (ModelConfig(objectives=MULTI_OBJECTIVES), *data["multi"]),
    }


def debias_data(limit: int = 0) -> dict:
    """The debias experiment (at most ``limit`` training pairs per source): model -> (config, train,
    validation, length_debias, trunk group)."""
    mix = mix_data(limit)
    (_, hh, hh_va), (_, un, un_va), (multi_cfg, mu, mu_va) = mix["harmless"], mix["union"], mix["multi"]
    return {
        "union+poe": (ModelConfig(), un, un_va, "poe", "union"),
        "multi+poe": (multi_cfg, mu, mu_va, "poe", "union"),
        "harmless+poe": (ModelConfig(), hh, hh_va, "poe", "harmless"),
        "union+balance": (ModelConfig(), balance_by_length(un, seed=0), un_va, "off", "balance"),
    }


def summeval_data(size: int, seed: int) -> dict:
    """SummEval-OP: a seeded subset of ``size`` training pairs (0 = all)."""
    tr, va = bundled_set("summeval-train"), bundled_set("summeval-validation")
    if size:
        tr = random.Random(seed).sample(tr, min(size, len(tr)))
    return {
        "mono": (ModelConfig(label_key="overall"), tr, va),
        "multi": (ModelConfig(objectives=ASPECTS), tr, va),
    }


def fit_scalarizers(rm: RewardModel, val: FrozenTrunkScorer) -> None:
    """Per-objective reward scale from the validation responses; weighted-sum weights fitted on the
    validation pairs (overall label = the human preference, 1)."""
    rc, rr = val.rewards(rm)
    rm.cfg.reward_scale = reward_scale(torch.cat([rc, rr]))
    zc, _ = normalise(rc, rm.cfg.reward_scale)
    zr, _ = normalise(rr, rm.cfg.reward_scale)
    w = fit_weights(zc, zr, torch.ones(len(rc)))
    rm.cfg.scalarizer_params = {**rm.cfg.scalarizer_params, "weighted_sum": {"weights": w}}


def score_sets(rm: RewardModel, scorers: dict[str, FrozenTrunkScorer]) -> dict:
    """Accuracy per evaluation set: the default scalarizer, and for K > 1 every scalarizer,
    equal weights and each objective alone."""
    out = {}
    for name, sc in scorers.items():
        rc, rr = sc.rewards(rm)
        row = {"accuracy": pairwise_accuracy(scalarize(rm, rc), scalarize(rm, rr))}
        if rm.cfg.num_objectives > 1:
            for s in SCALARIZERS.names():
                row[f"scalarizer:{s}"] = pairwise_accuracy(scalarize(rm, rc, s), scalarize(rm, rr, s))
            eq = {"weights": [1.0] * rm.cfg.num_objectives}
            row["scalarizer:equal_sum"] = pairwise_accuracy(
                scalarize(rm, rc, "weighted_sum", **eq), scalarize(rm, rr, "weighted_sum", **eq)
            )
            for k, o in enumerate(rm.cfg.objectives):
                row[f"objective:{o}"] = pairwise_accuracy(rc[:, k], rr[:, k])
        out[name] = row
    return out


def bounded_get(cache: dict, key, make, keep: int = 3):  # noqa: ANN001, ANN201
    """``cache[key]``, made by ``make()`` when missing; keeps the last ``keep`` entries."""
    if key not in cache:
        while len(cache) >= keep:
            cache.pop(next(iter(cache)))
        cache[key] = make()
    return cache[key]


def trunk_store(stores: dict, key: tuple, keep: int = 3) -> dict:
    """The shared trunk store of one training set (same pairs, same order); keeps the last ``keep``."""
    return bounded_get(stores, key, dict, keep)


def val_scorer(cache: dict, rm: RewardModel, va: list[PreferencePair], keep: int = 3) -> FrozenTrunkScorer:
    """The frozen-trunk scorer of one validation set, built once per distinct set (by content)
    and shared by every multi-objective model fitted on it; keeps the last ``keep``."""
    key = hash(tuple((str(p.prompt), p.chosen, p.rejected) for p in va))
    return bounded_get(cache, key, lambda: FrozenTrunkScorer(rm, va), keep)


def run_one(
    key: dict, cfg: ModelConfig, tr, va, store: dict, args, scorers, val_cache: dict, debias: str = "off"
) -> dict:
    """Train one model (with the trunk ``store`` of its training set), score every set; a multi RM's
    scalarizers are fitted on ``va`` (its frozen-trunk scorer cached in ``val_cache``)."""
    t = TrainConfig(
        epochs=args.epochs,
        seed=key["seed"],
        save_steps=0,
        progress=False,
        select_best=False,
        length_debias=debias,
    )
    torch.manual_seed(key["seed"])
    # no validation in training: every model gets the same schedule (no epoch selection); the
    # multi RM's weights are fitted on ``va`` below
    res = train(tr, cfg, t, Path(args.out) / "models" / "last", trunk_store=store)
    rm = res.model
    if cfg.num_objectives > 1:
        fit_scalarizers(rm, val_scorer(val_cache, rm, va))
    return {
        **key,
        "seconds": round(res.seconds, 1),
        "sets": score_sets(rm, scorers),
        "weights": rm.cfg.scalarizer_params.get("weighted_sum", {}).get("weights"),
    }


def experiments(args) -> list:
    """(key, model config, train pairs, validation pairs, trunk-store key, length_debias) for every
    run, ordered by seed, then trunk-store key. Runs with one trunk-store key train on the same
    pairs in the same order (their frozen-trunk outputs are shared): the mix's union and multi and
    their debiased variants at one size (``mix``, ``mixsize``, ``debias``); SummEval's mono and
    multi of one subset, and of the full set across seeds."""
    runs = []
    for exp in args.experiments:
        if exp == "debias":
            for seed in range(args.seeds):
                for model, (cfg, tr, va, debias, group) in debias_data(args.debias_size).items():
                    key = {"experiment": exp, "model": model, "size": len(tr), "seed": seed}
                    runs.append((key, cfg, tr, va, ("mix", args.debias_size, group), debias))
            continue
        sizes = {"mix": [0], "mixsize": args.mix_sizes}.get(exp, args.summeval_sizes)
        for size in sizes:
            for seed in range(args.seeds):
                data = mix_data(size) if exp in ("mix", "mixsize") else summeval_data(size, seed)
                for model, (cfg, tr, va) in data.items():
                    n = len(tr) if exp in ("mix", "mixsize") else size or len(tr)
                    key = {"experiment": exp, "model": model, "size": n, "seed": seed}
                    if exp in ("mix", "mixsize"):
                        group = ("mix", size, "harmless" if model == "harmless" else "union")
                    else:
                        group = (exp, size, seed if size else None)
                    runs.append((key, cfg, tr, va, group, "off"))
    return sorted(runs, key=lambda r: (r[0]["seed"], str(r[4])))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/multi_objective"))
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--experiments", type=lambda s: s.split(","), default=["mix", "summeval"])
    ap.add_argument("--summeval-sizes", type=lambda s: [int(x) for x in s.split(",")], default=[150, 400, 0])
    ap.add_argument(
        "--mix-sizes",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[100, 300, 1000],
        help="mixsize: at most N training pairs per source",
    )
    ap.add_argument(
        "--debias-size", type=int, default=0, help="debias: at most N training pairs per source (0 = all)"
    )
    ap.add_argument(
        "--eval-limit", type=int, default=0, help="at most N pairs per evaluation set (smoke runs)"
    )
    ap.add_argument(
        "--train-limit", type=int, default=0, help="at most N training pairs per model (smoke runs)"
    )
    ap.add_argument("--report-only", action="store_true", help="only write the table and plot")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args.out.mkdir(parents=True, exist_ok=True)
    results = args.out / "results.jsonl"
    done = (
        {
            json.dumps({k: r[k] for k in ("experiment", "model", "size", "seed")}, sort_keys=True)
            for r in map(json.loads, results.open())
        }
        if results.exists()
        else set()
    )
    if not args.report_only:
        base = RewardModel.build(ModelConfig())
        sets = {n: bundled_set(n)[: args.eval_limit or None] for n in EVAL_SETS}
        scorers = {n: FrozenTrunkScorer(base, p) for n, p in sets.items()}
        stores: dict = {}
        val_cache: dict = {}
        for key, cfg, tr, va, store_key, debias in experiments(args):
            if json.dumps(key, sort_keys=True) in done:
                continue
            tr, va = tr[: args.train_limit or None], va[: args.train_limit or None]
            row = run_one(key, cfg, tr, va, trunk_store(stores, store_key), args, scorers, val_cache, debias)
            with results.open("a") as f:
                f.write(json.dumps(row) + "\n")
            log.info("%s", {k: row[k] for k in ("experiment", "model", "size", "seed", "seconds")})
    write_report(
        results,
        args.out,
        {
            n: length_heuristics([p.chosen for p in ps], [p.rejected for p in ps])
            for n, ps in ((n, bundled_set(n)) for n in EVAL_SETS)
        },
    )


if __name__ == "__main__":
    main()
