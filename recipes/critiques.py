"""Do critiques help a reward model, most of all with little data? (issue 11 §2, Ye et al. 2024)

Critique-conditioned MiniLM RMs (``ModelConfig(critiques=True)``: the RM reads
``response + "### Critique" + critique``) trained on ``--dataset`` — ``feedbackqa`` (leak-free
pairs: each answer's human critique comes from one rater, the pair's label from the other raters;
see ``rewardlab.data.loaders.feedbackqa``), ``hh`` (HH harmless), ``pandalm`` or ``qafeedback`` —
evaluated on its held-out test split and, with ``--eval-sets llmbar-natural,hhh``, out of domain.
Datasets, eval sets and conditions are registries in ``recipes/critique_sources.py``:

* ``human`` (a) — each response's human critique (FeedbackQA only; evaluated in-domain only);
* ``llm-1.5b`` (b) / ``llm-135m`` (c) — a critique by Qwen2.5-Coder-1.5B / SmolLM2-135M (the
  ``critique_brief`` prompt, greedy, ≤ 64 new tokens, bfloat16), read from the shipped
  ``data/generated/critiques/SOURCE-MODEL.jsonl``; ``--generate MODEL`` writes (resumes) those
  files for the validation, test and pool pairs and every eval set, shortest pairs first;
* ``shuffled`` (d) — the same critiques (human on FeedbackQA, the 1.5B's elsewhere) permuted
  across the split's distinct responses (no response keeps its own): fluent critiques of another
  answer;
* ``none`` (e) — no critique (a plain RM on the same pairs).

Every (condition, size, seed) trains on the same seeded subset of a fixed pool of ``--pool`` (800)
training pairs (paired across conditions; at the pool size every seed has the whole pool and
differs in initialisation and order). MiniLM, LoRA r16 on the last layer, ``max_length`` 256 (the
library's default; on FeedbackQA 36% of the critique inputs and 28% of the plain ones are longer
and lose the question down to its last 8 tokens, then the start of the passage — the critique at
the end is always kept), FeedbackQA's soft labels ``labels["helpfulness"]`` (hard labels
elsewhere), epochs chosen so every size gets about ``--steps`` (60) optimiser steps of 16 pairs
(2 to ``--max-epochs`` 12 epochs), the best epoch on the first ``--validation-pairs`` (100)
validation pairs kept. Test: a fixed random sample of ``--test-pairs`` (300) of the test split (0
= all), the same for every run. The frozen lower layers are the same for every model: their
outputs are computed once per condition and sequence (:class:`SharedTrunk`) and handed to
``train()`` as its trunk store, re-indexed to each subset, and the test pairs are scored from the
same states with the exact [CLS]-only top (equal to ``RewardModel.score`` within 5e-8). One torch
thread (``--threads``) on the shared CPU.

Resumable: every finished run appends a row to OUT/results.jsonl and is skipped on a rerun.
Writes OUT/table.md and OUT/plot.png (``recipes/critiques_report.py``: accuracy, mean ± 95%
t-interval over seeds, beside both length heuristics on the same pairs).

    python recipes/critiques.py --out docs/results/critiques [--sizes 50,100,200,400,800] [--seeds 3]
    python recipes/critiques.py --dataset hh --out runs/critiques-hh --pool 200 --sizes 50,100,200 \
        --conditions llm-1.5b,llm-135m,shuffled,none --eval-sets llmbar-natural,hhh [--generate MODEL]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
from pathlib import Path

import torch
from critique_sources import CONDITIONS, DATASETS, EVAL_SETS, SIDES, Condition, generate_critiques, split
from critiques_report import heuristics, lexicon_score, write_report

from rewardlab.data.schema import PreferencePair
from rewardlab.evaluate.metrics import pair_metrics
from rewardlab.models.config import ModelConfig
from rewardlab.models.fast_top import below_top, cls_top_rewards
from rewardlab.models.reward_model import RewardModel
from rewardlab.train.config import TrainConfig
from rewardlab.train.trainer import train

log = logging.getLogger("critiques")
SPLITS = ("train", "validation", "test")


def model_config(cond: Condition, args) -> ModelConfig:
    """The RM of a condition: MiniLM, LoRA on the last layer, the dataset's soft labels (FeedbackQA:
    ``helpfulness``) or hard ones."""
    label_key = DATASETS.get(args.dataset).label_key
    return ModelConfig(critiques=cond.critiques, max_length=args.max_length, label_key=label_key)


class SharedTrunk:
    """Frozen-trunk outputs (the states entering the last layer) of a split's sequences, computed
    once each, on first use: ``states[2i]`` / ``states[2i + 1]`` are pair i's chosen / rejected,
    (T_i, H). The trunk is the pretrained MiniLM below the trained layer, the same for every RM."""

    def __init__(self, rm: RewardModel, pairs: list[PreferencePair], batch: int = 32) -> None:
        crit = [p.critiques[s] for p in pairs for s in SIDES] if rm.cfg.critiques else None
        self.seqs = rm.encode(
            [p.prompt for p in pairs for _ in SIDES], [getattr(p, s) for p in pairs for s in SIDES], crit
        )
        self.rm, self.batch = rm, batch
        self.states: dict[int, torch.Tensor] = {}

    @torch.inference_mode()
    def ensure(self, pair_ids: list[int]) -> None:
        """Compute the states of the pairs ``pair_ids`` not computed yet (length-sorted batches)."""
        todo = sorted(
            (i for p in pair_ids for i in (2 * p, 2 * p + 1) if i not in self.states),
            key=lambda i: len(self.seqs[i]["input_ids"]),
        )
        self.rm.eval()
        for s in range(0, len(todo), self.batch):
            idx = todo[s : s + self.batch]
            h = below_top(self.rm, self.rm.collate([self.seqs[i] for i in idx]))  # (n, T, H)
            for row, i in enumerate(idx):
                self.states[i] = h[row, : len(self.seqs[i]["input_ids"])].clone()

    def store(self, pair_ids: list[int], offset: int = 0) -> dict[int, torch.Tensor]:
        """A trunk store for ``train()`` over the pairs ``pair_ids`` in that order, numbered as the
        trainer numbers sequences: chosen ``offset + 2k``, rejected ``offset + 2k + 1``."""
        self.ensure(pair_ids)
        out = {}
        for k, i in enumerate(pair_ids):
            out[offset + 2 * k], out[offset + 2 * k + 1] = self.states[2 * i], self.states[2 * i + 1]
        return out

    @torch.inference_mode()
    def rewards(self, rm: RewardModel, batch: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
        """(r_chosen, r_rejected), each (P,), of a last-layer RM over all of the split's pairs."""
        n = len(self.seqs)
        self.ensure(list(range(n // 2)))
        rm.eval()
        order = sorted(range(n), key=lambda i: self.states[i].shape[0])
        out = torch.empty(n)
        for s in range(0, n, batch):
            idx = order[s : s + batch]
            t = max(self.states[i].shape[0] for i in idx)
            h = torch.zeros(len(idx), t, self.states[idx[0]].shape[1])  # (n, T, H)
            mask = torch.zeros(len(idx), t, dtype=torch.long)  # (n, T)
            for row, i in enumerate(idx):
                h[row, : self.states[i].shape[0]] = self.states[i]
                mask[row, : self.states[i].shape[0]] = 1
            out[idx] = cls_top_rewards(rm, h, mask)[:, 0].float()
        return out[0::2], out[1::2]


def epochs_for(size: int, args) -> int:
    """About ``args.steps`` optimiser steps for every size, clamped to [2, ``args.max_epochs``]."""
    batches = math.ceil(size / args.batch_size)
    return max(2, min(args.max_epochs, math.ceil(args.steps / batches)))


def pool(n_train: int, size: int) -> list[int]:
    """The fixed training pool: ``size`` pairs of a ``random.Random(0)`` permutation."""
    return random.Random(0).sample(range(n_train), min(size, n_train))


def subset(pool_ids: list[int], size: int, seed: int) -> list[int]:
    """The training pairs of (size, seed), drawn from the pool: the same for every condition."""
    return random.Random(1000 * size + seed).sample(pool_ids, min(size, len(pool_ids)))


def run_one(cond_name: str, ids: list[int], seed: int, data: dict, trunks: dict, args) -> dict:
    """Train one RM on the training pairs ``ids`` (trunk states from ``trunks``), score the test
    pairs; select-best on the validation pairs."""
    cond = CONDITIONS.get(cond_name)
    tr, va = [data["train"][i] for i in ids], data["validation"]
    store = trunks["train"].store(ids)
    store.update(trunks["validation"].store(list(range(len(va))), offset=2 * len(tr)))
    epochs = epochs_for(len(tr), args)
    cfg = TrainConfig(
        epochs=epochs, seed=seed, batch_size=args.batch_size, save_steps=0, progress=False, select_best=True
    )
    torch.manual_seed(seed)
    res = train(tr, model_config(cond, args), cfg, out=None, validation=va, trunk_store=store)
    rc, rr = trunks["test"].rewards(res.model)
    best = max(res.history, key=lambda h: h.get("val_accuracy", -1.0))
    ood = (
        {}
        if cond.in_domain_only
        else {e: pair_metrics(*trunks[e].rewards(res.model)) for e in args.eval_sets}
    )
    return {
        "condition": cond_name,
        "size": len(tr),
        "seed": seed,
        "epochs": epochs,
        "best_epoch": best["epoch"],
        "val_accuracy": best.get("val_accuracy"),
        "seconds": round(res.seconds, 1),
        "test": pair_metrics(rc, rr),
    } | ({"eval": ood} if ood else {})


def condition_data(name: str, splits: dict, dataset: str) -> dict:
    """The condition's pairs of every split and eval set (its transform seeded per split; each
    eval set's critiques from that set's own file)."""
    cond = CONDITIONS.get(name)
    out = {s: cond.transform(splits[s], k, dataset) for k, s in enumerate(SPLITS)}
    if not cond.in_domain_only:
        out |= {e: cond.transform(splits[e], 10 + k, e) for k, e in enumerate(splits) if e not in SPLITS}
    return out


def sample(pairs: list[PreferencePair], n: int) -> list[PreferencePair]:
    """A fixed ``random.Random(0)`` sample of ``n`` pairs in file order (0 or n ≥ len: all)."""
    if not n or n >= len(pairs):
        return pairs
    return [pairs[i] for i in sorted(random.Random(0).sample(range(len(pairs)), n))]


def plan(args, n_train: int, done: set) -> list[tuple[str, int, int]]:
    """(condition, size, seed) still to run, smallest sizes first (each size for every condition
    and seed before the next size)."""
    sizes = sorted({min(z, n_train, args.pool) for z in args.sizes})
    return [
        (c, z, s) for z in sizes for s in range(args.seeds) for c in args.conditions if (c, z, s) not in done
    ]


CONFIG_KEYS = ("pool", "steps", "max_epochs", "batch_size", "max_length", "validation_pairs", "test_pairs")
# what configs written before these keys meant (before, `shuffled` permuted over the whole train split)
CONFIG_DEFAULTS = {"dataset": "feedbackqa", "eval_sets": [], "shuffle_within": "train split"}


def check_config(args) -> None:
    """OUT/config.json holds the settings the results were measured with; resuming with other
    settings is refused (the rows would not be comparable)."""
    path = args.out / "config.json"
    cfg = {k: getattr(args, k) for k in (*CONFIG_KEYS, "dataset", "eval_sets")}
    cfg |= {"shuffle_within": "pool", "limit": args.limit}
    if path.exists():
        old = CONFIG_DEFAULTS | json.loads(path.read_text())
        if diff := {k: (old.get(k), v) for k, v in cfg.items() if old.get(k) != v}:
            raise SystemExit(f"{path}: results were measured with other settings {diff}; use another --out")
    path.write_text(json.dumps(cfg, indent=2) + "\n")


def parse_args() -> argparse.Namespace:
    """The recipe's command line."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    csv = lambda s: [x for x in s.split(",") if x]  # noqa: E731
    ap.add_argument("--out", type=Path, default=Path("runs/critiques"))
    ap.add_argument("--dataset", default="feedbackqa", choices=DATASETS.names())
    ap.add_argument("--conditions", type=csv, default=["human", "shuffled", "none"])
    ap.add_argument(
        "--eval-sets", type=csv, default=[], help=f"out of domain: {', '.join(EVAL_SETS.names())}"
    )
    ap.add_argument("--sizes", type=lambda s: [int(x) for x in csv(s)], default=[50, 100, 200, 400, 800])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--pool", type=int, default=800, help="training pool the subsets are drawn from")
    ap.add_argument("--steps", type=int, default=60, help="about this many optimiser steps per run")
    ap.add_argument("--max-epochs", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--validation-pairs", type=int, default=100, help="select-best on this many")
    ap.add_argument("--test-pairs", type=int, default=300, help="a fixed random sample (0 = all)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (shared CPU: 1)")
    ap.add_argument("--limit", type=int, default=0, help="at most N pairs per split (smoke runs)")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--generate", default="", help="write the critiques of this LLM (qwen2.5-1.5b, smollm2)")
    ap.add_argument("--gen-batch", type=int, default=32, help="--generate: conversations per forward")
    args = ap.parse_args()
    for e in args.eval_sets:
        EVAL_SETS.get(e)  # an unknown name fails here, naming the choices
    for c in args.conditions:
        CONDITIONS.get(c)
    return args


def load_splits(args) -> dict[str, list[PreferencePair]]:
    """train / validation / test of ``--dataset`` and the eval sets: train is the fixed pool (the
    only pairs ever trained on, so the only ones critiqued), validation cut, test sampled."""
    splits = {s: split(args.dataset, s)[: args.limit or None] for s in SPLITS}
    splits["train"] = [splits["train"][i] for i in pool(len(splits["train"]), args.pool)]
    splits["validation"] = splits["validation"][: args.validation_pairs]
    splits["test"] = sample(splits["test"], args.test_pairs)
    return splits | {e: EVAL_SETS.get(e)()[: args.limit or None] for e in args.eval_sets}


def generate(args, splits: dict) -> None:
    """``--generate MODEL``: the critiques of the validation, test and pool pairs, then of every eval set."""
    needed = splits["validation"] + splits["test"] + splits["train"]
    log.info("%s", generate_critiques(args.generate, args.dataset, needed, args.threads, args.gen_batch))
    for e in args.eval_sets:
        log.info("%s: %s", e, generate_critiques(args.generate, e, splits[e], args.threads, args.gen_batch))


def critique_lexicons(args, test: list[PreferencePair]) -> dict[str, float]:
    """:func:`lexicon_score` of the test pairs under each condition that has critiques (skipped,
    with a note, where a condition's critiques are not all there yet)."""
    out = {}
    for name in args.conditions:
        cond = CONDITIONS.get(name)
        if cond.critiques:
            try:
                out[name] = lexicon_score(cond.transform(test, SPLITS.index("test"), args.dataset))
            except SystemExit as e:
                log.info("no lexicon for %s: %s", name, str(e)[:200])
    return out


def main() -> None:
    """Generate critiques (``--generate``), or train and score every planned run, then report."""
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    if not args.report_only:  # a report adds no rows
        check_config(args)
    results = args.out / "results.jsonl"
    rows = [json.loads(line) for line in results.open()] if results.exists() else []
    done = {(r["condition"], r["size"], r["seed"]) for r in rows}
    splits = load_splits(args)
    n_train = len(splits["train"])  # the pool
    pool_ids = list(range(n_train))  # subset() draws the same positions, so the same pairs, as from pool()
    if args.generate:
        return generate(args, splits)
    lexicon = DATASETS.get(args.dataset).human
    baselines = {"test": heuristics(splits["test"], lexicon)}
    baselines |= {e: heuristics(splits[e], lexicon=False) for e in args.eval_sets}
    lexicons = critique_lexicons(args, splits["test"])
    todo = [] if args.report_only else plan(args, n_train, done)
    data, trunks = {}, {}
    for name, size, seed in todo:
        if name not in trunks:
            data[name] = condition_data(name, splits, args.dataset)
            base = RewardModel.build(model_config(CONDITIONS.get(name), args))
            trunks[name] = {s: SharedTrunk(base, pairs) for s, pairs in data[name].items()}
        row = run_one(name, subset(pool_ids, size, seed), seed, data[name], trunks[name], args)
        with results.open("a") as f:
            f.write(json.dumps(row) + "\n")
        log.info("%s", {k: row[k] for k in ("condition", "size", "seed", "epochs", "seconds")} | row["test"])
        write_report(results, args.out, baselines, args.dataset, lexicons)
    write_report(results, args.out, baselines, args.dataset, lexicons)


if __name__ == "__main__":
    main()
