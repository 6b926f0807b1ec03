"""Training: rewardlab vs TRL ``RewardTrainer``, same backbone, data, batch size and seed, in one run.

Three comparisons (``--methods``), each side doing exactly the stated work:

* ``defaults`` — each library's defaults: TRL full fine-tuning of every layer at its default
  lr 1e-4; rewardlab LoRA r16 on the last layer (+ pooler/head) over the trunk cache at lr 5e-4.
  This ratio mixes method and implementation.
* ``full`` — the same method on both sides: full fine-tuning of every layer (+ head), lr ``--full-lr``.
  rewardlab cannot cache the trunk here (every layer trains), so this isolates the loop itself.
* ``lora`` — the same method on both sides: LoRA r16/alpha 32 on the same modules of the last layer,
  pooler + head fully trained (TRL gets the identical ``peft.LoraConfig``), lr ``--lora-lr``.
  rewardlab computes the frozen lower layers once and reuses them (its trunk cache).

TRL is configured fairly for CPU (bf16 and gradient checkpointing off) and *drops* pairs longer than
max_length (counted as ``dropped``); rewardlab truncates the prompt from the left and keeps every pair.

Two measures (``--mode``):

* ``throughput`` — one epoch; pairs/s = trained pairs / wall seconds of the training call (model
  loading excluded); HH test accuracy after the epoch.
* ``tta`` (time to accuracy) — up to ``--epochs`` epochs, validation accuracy on the 200 HH
  validation pairs after every epoch (each side scores them itself; that time counts). The target is
  the best validation accuracy TRL reaches within those epochs (per method and seed); reported per
  side: wall seconds to first reach it (``inf`` = never), best accuracy, over ``--seeds`` seeds
  with a 95% t-interval; then each side's seconds to the *common* accuracy (the lower of the two
  sides' best in that run, which both reach) and their ratio.

Prints JSON, then a table, then the ratios last.

    python benchmarks/bench_train.py --mode throughput --pairs 600
    python benchmarks/bench_train.py --mode tta --pairs 300 --seeds 3 --epochs 3
    python benchmarks/bench_train.py --mode tta --pairs 1800 --results docs/results/tta.jsonl  # resumable
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from pathlib import Path

import torch

from rewardlab.assets import minilm_path
from rewardlab.data.bundled import hh_splits
from rewardlab.evaluate.evaluator import evaluate
from rewardlab.evaluate.metrics import mean_ci95, pairwise_accuracy
from rewardlab.models.backbone import apply_trainable, load_classifier, load_tokenizer
from rewardlab.models.config import ModelConfig
from rewardlab.train.config import TrainConfig
from rewardlab.train.trainer import train

METHODS = ("defaults", "full", "lora")


def model_cfg(method: str, max_length: int) -> ModelConfig:
    """rewardlab's side: the default (LoRA, last layer) or full fine-tuning of every layer."""
    if method == "full":
        return ModelConfig(max_length=max_length, train_layers=0, lora_r=0)
    return ModelConfig(max_length=max_length)


def trl_peft_config(max_length: int):
    """The exact LoRA rewardlab puts on MiniLM (same modules, rank, alpha, modules_to_save)."""
    cfg = ModelConfig(max_length=max_length)
    tok = load_tokenizer(str(minilm_path()))
    peft_model = apply_trainable(load_classifier(str(minilm_path()), cfg, tok), cfg)
    lora = peft_model.peft_config["default"]
    lora.base_model_name_or_path = None
    return lora


def lrs(method: str, args) -> tuple[float, float]:
    """(rewardlab lr, TRL lr) for a method."""
    return {"defaults": (5e-4, 1e-4), "full": (args.full_lr, args.full_lr), "lora": (args.lora_lr,) * 2}[
        method
    ]


class TrlSide:
    """TRL RewardTrainer on MiniLM, scored in its own input format (prompt+response+eos)."""

    def __init__(self, method: str, args, seed: int) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.method, self.args, self.seed = method, args, seed
        path = str(minilm_path())
        self.tok = AutoTokenizer.from_pretrained(path)
        self.tok.eos_token = self.tok.sep_token  # BERT tokenizers have no eos; TRL appends one
        torch.manual_seed(seed)
        self.model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
        self.model.config.pad_token_id = self.tok.pad_token_id

    @torch.inference_mode()
    def accuracy(self, model, pairs) -> float:
        was = model.training
        model.eval()
        side = self.tok.truncation_side
        self.tok.truncation_side = "left"

        def score(texts):
            out = []
            for i in range(0, len(texts), 32):
                b = self.tok(
                    texts[i : i + 32],
                    padding=True,
                    truncation=True,
                    max_length=self.args.max_length,
                    return_tensors="pt",
                )
                out.append(model(**b).logits[:, 0].float())
            return torch.cat(out)

        eos = self.tok.eos_token
        rc = score([p.prompt + p.chosen + eos for p in pairs])
        rr = score([p.prompt + p.rejected + eos for p in pairs])
        self.tok.truncation_side = side
        model.train(was)
        return pairwise_accuracy(rc, rr)

    def run(self, pairs, val, test, epochs: int) -> dict:
        import datasets
        from transformers import TrainerCallback
        from trl import RewardConfig, RewardTrainer

        side, curve = self, []

        class EpochEval(TrainerCallback):
            def on_epoch_end(self, args, state, control, model=None, **kw):
                if val is not None:
                    curve.append((time.perf_counter() - t0, side.accuracy(model, val)))

        rows = [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in pairs]
        cfg = RewardConfig(
            output_dir="/tmp/bench-trl",
            per_device_train_batch_size=self.args.batch_size,
            num_train_epochs=epochs,
            learning_rate=lrs(self.method, self.args)[1],
            max_length=self.args.max_length,
            bf16=False,
            gradient_checkpointing=False,
            seed=self.seed,
            report_to=[],
            save_strategy="no",
            logging_steps=10,
            disable_tqdm=True,
            dataloader_num_workers=0,
        )
        peft = trl_peft_config(self.args.max_length) if self.method == "lora" else None
        trainer = RewardTrainer(
            model=self.model,
            args=cfg,
            train_dataset=datasets.Dataset.from_list(rows),
            processing_class=self.tok,
            peft_config=peft,
            callbacks=[EpochEval()],
        )
        kept = len(trainer.train_dataset)
        t0 = time.perf_counter()
        trainer.train()
        seconds = time.perf_counter() - t0
        out = {
            "pairs_in": len(pairs),
            "pairs_trained": kept,
            "dropped": len(pairs) - kept,
            "seconds": seconds,
            "pairs_per_s": kept * epochs / seconds,
            "curve": curve,
        }
        if test is not None:
            out["hh_test_accuracy"] = self.accuracy(trainer.model, test)
        return out


def run_rewardlab(method: str, args, seed: int, pairs, val, test, epochs: int) -> dict:
    """rewardlab's trainer; with ``val`` it validates after every epoch (its own history rows)."""
    t = TrainConfig(
        epochs=epochs,
        batch_size=args.batch_size,
        lr=lrs(method, args)[0],
        save_steps=0,
        progress=False,
        seed=seed,
        select_best=False,
    )
    res = train(
        pairs, model_cfg(method, args.max_length), t, f"/tmp/bench-rewardlab-{method}", validation=val
    )
    curve = [(h["seconds"], h["val_accuracy"]) for h in res.history if "val_accuracy" in h]
    out = {
        "pairs_in": len(pairs),
        "pairs_trained": len(pairs),
        "dropped": 0,
        "seconds": res.seconds,
        "pairs_per_s": res.pairs_per_second,
        "curve": curve,
    }
    if test is not None:
        out["hh_test_accuracy"] = evaluate(res.model, test)["accuracy"]
    return out


def time_to(curve: list[tuple[float, float]], target: float) -> float:
    """Wall seconds at the first validation at or above ``target`` (inf if never)."""
    return next((s for s, a in curve if a >= target - 1e-12), math.inf)


def mean_ci(xs: list[float]) -> str:
    """``mean ± half-width`` of a 95% t-interval (inf when any run never reached the target)."""
    if any(math.isinf(x) for x in xs):
        return f"{sum(math.isinf(x) for x in xs)}/{len(xs)} never"
    m, h = mean_ci95(xs)
    return f"{m:.3g} ± {h:.2g}"


def throughput(args, s) -> None:
    pairs, test = s["train"][: args.pairs], s["test"]
    results = {}
    for method in args.methods:
        results[method] = {
            "rewardlab": run_rewardlab(method, args, 0, pairs, None, test, 1),
            "trl": TrlSide(method, args, 0).run(pairs, None, test, 1),
        }
    print(json.dumps(results, indent=2))
    for method, sides in results.items():
        for name, r in sides.items():
            print(
                f"{method:9s} {name:10s} {r['pairs_per_s']:6.2f} pairs/s  trained {r['pairs_trained']}/"
                f"{r['pairs_in']} (dropped {r['dropped']}) in {r['seconds']:.0f}s  "
                f"HH test {100 * r['hh_test_accuracy']:.1f}%"
            )
    for method, sides in results.items():
        ratio = sides["rewardlab"]["pairs_per_s"] / sides["trl"]["pairs_per_s"]
        print(f"training throughput ratio rewardlab/TRL [{method}]: {ratio:.2f}x")


def tta_runs(args, s):
    """One row per (method, seed): TRL's and rewardlab's validation curves. With ``--results FILE``
    each row is appended as it finishes and rows already there (same pairs, epochs, method, seed)
    are reused, so the grid can be run a piece at a time."""
    pairs, val = s["train"][: args.pairs], s["validation"]
    done = {}
    if args.results and args.results.exists():
        for line in args.results.open():
            row = json.loads(line)
            done[(row["pairs"], row["epochs"], row["method"], row["seed"])] = row
    for method in args.methods:
        for seed in range(args.seeds):
            key = (args.pairs, args.epochs, method, seed)
            if key not in done:
                trl = TrlSide(method, args, seed).run(pairs, val, None, args.epochs)
                ours = run_rewardlab(method, args, seed, pairs, val, None, args.epochs)
                done[key] = {"pairs": args.pairs, "epochs": args.epochs, "method": method, "seed": seed}
                done[key].update(trl=trl, rewardlab=ours)
                print(json.dumps(done[key]), flush=True)
                if args.results:
                    with args.results.open("a") as f:
                        f.write(json.dumps(done[key]) + "\n")
            yield done[key]


def tta(args, s) -> None:
    rows: dict[str, dict[str, list]] = {}
    for run in tta_runs(args, s):
        trl, ours = run["trl"], run["rewardlab"]
        target = max(a for _, a in trl["curve"])
        r = rows.setdefault(
            run["method"], {k: [] for k in ("rl_t", "trl_t", "rl_best", "trl_best", "rl_c", "trl_c")}
        )
        r["trl_t"].append(time_to(trl["curve"], target))
        r["rl_t"].append(time_to(ours["curve"], target))
        r["trl_best"].append(target)
        r["rl_best"].append(max(a for _, a in ours["curve"]))
        common = min(target, r["rl_best"][-1])  # the best accuracy both sides reach in this run
        r["trl_c"].append(time_to(trl["curve"], common))
        r["rl_c"].append(time_to(ours["curve"], common))
    print(
        f"\ntime to accuracy, {args.pairs} pairs, {args.epochs} epochs, {args.seeds} seeds "
        "(target = TRL's best validation accuracy in that run)"
    )
    print("method    | TRL s to target | rewardlab s to target | TRL best val | rewardlab best val")
    for method, r in rows.items():
        print(
            f"{method:9s} | {mean_ci(r['trl_t']):>15s} | {mean_ci(r['rl_t']):>21s} | "
            f"{mean_ci(r['trl_best']):>12s} | {mean_ci(r['rl_best']):>18s}"
        )
    print("\ntime to the common accuracy (the lower of the two sides' best, per run)")
    print("method    | TRL s to common | rewardlab s to common | ratio TRL/rewardlab")
    for method, r in rows.items():
        ratio = statistics.fmean(t / o for t, o in zip(r["trl_c"], r["rl_c"], strict=True))
        print(f"{method:9s} | {mean_ci(r['trl_c']):>15s} | {mean_ci(r['rl_c']):>21s} | {ratio:.2f}x")
    for method, r in rows.items():
        ratios = [t / o for t, o in zip(r["trl_t"], r["rl_t"], strict=True) if math.isfinite(o)]
        print(
            f"time-to-accuracy ratio TRL/rewardlab [{method}]: "
            + (
                f"{statistics.fmean(ratios):.2f}x (seeds where rewardlab reached it: {len(ratios)})"
                if ratios
                else "rewardlab never reached TRL's best"
            )
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", choices=("throughput", "tta"), default="throughput")
    ap.add_argument("--methods", type=lambda x: x.split(","), default=list(METHODS))
    ap.add_argument("--pairs", type=int, default=600)
    ap.add_argument("--epochs", type=int, default=3, help="tta: epochs per side")
    ap.add_argument("--seeds", type=int, default=3, help="tta: seeds per method")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--full-lr", type=float, default=1e-4, help="lr for full fine-tuning (both sides)")
    ap.add_argument("--lora-lr", type=float, default=5e-4, help="lr for LoRA (both sides)")
    ap.add_argument(
        "--results", type=Path, default=None, help="tta: JSONL of finished runs (appended; reused on a rerun)"
    )
    args = ap.parse_args()
    bad = set(args.methods) - set(METHODS)
    if bad:
        ap.error(f"--methods: unknown {sorted(bad)}; choose from {METHODS}")
    torch.manual_seed(0)
    (throughput if args.mode == "throughput" else tta)(args, hh_splits())


if __name__ == "__main__":
    main()
