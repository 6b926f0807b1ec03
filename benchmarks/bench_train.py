"""Training throughput and accuracy: rewardlab vs TRL ``RewardTrainer`` in one run.

Same backbone (embedded MiniLM), same HH-RLHF harmless train pairs, max_length, epochs, batch size
and seed. TRL is configured fairly for CPU (bf16 and gradient checkpointing off). Note: TRL *drops*
pairs longer than max_length; rewardlab truncates the prompt from the left and keeps every pair.
pairs/s = training pairs processed / wall seconds of the training call (model loading excluded).
Both models are then scored on the HH test split (TRL's in its own input format: prompt+response+eos,
left-truncated so no test pair is dropped). Prints the throughput ratio last.

    python benchmarks/bench_train.py [--pairs 1800] [--epochs 1]
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from rewardlab.assets import minilm_path
from rewardlab.data.bundled import hh_splits
from rewardlab.evaluate.evaluator import evaluate
from rewardlab.evaluate.metrics import pairwise_accuracy
from rewardlab.models.config import ModelConfig
from rewardlab.train.config import TrainConfig
from rewardlab.train.trainer import train


def run_trl(pairs, test, args) -> dict:
    import datasets
    from transformers import AutoModelForSequenceClassification, AutoTokenizer
    from trl import RewardConfig, RewardTrainer

    path = str(minilm_path())
    tok = AutoTokenizer.from_pretrained(path)
    tok.eos_token = tok.sep_token  # BERT tokenizers have no eos; TRL appends one
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1)
    model.config.pad_token_id = tok.pad_token_id
    ds = datasets.Dataset.from_list([{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in pairs])
    cfg = RewardConfig(output_dir="/tmp/bench-trl", per_device_train_batch_size=args.batch_size,
                       num_train_epochs=args.epochs, learning_rate=args.trl_lr, max_length=args.max_length,
                       bf16=False, gradient_checkpointing=False, seed=0, report_to=[], save_strategy="no",
                       logging_steps=10, disable_tqdm=True, dataloader_num_workers=0)
    trainer = RewardTrainer(model=model, args=cfg, train_dataset=ds, processing_class=tok)
    kept = len(trainer.train_dataset)
    t0 = time.perf_counter()
    trainer.train()
    seconds = time.perf_counter() - t0
    model.eval()
    tok.truncation_side = "left"

    @torch.inference_mode()
    def score(texts):
        out = []
        for i in range(0, len(texts), 16):
            b = tok(texts[i : i + 16], padding=True, truncation=True, max_length=args.max_length, return_tensors="pt")
            out.append(model(**b).logits[:, 0])
        return torch.cat(out)

    rc = score([p.prompt + p.chosen + tok.eos_token for p in test])
    rr = score([p.prompt + p.rejected + tok.eos_token for p in test])
    return {"pairs_in": len(pairs), "pairs_trained": kept, "seconds": seconds,
            "pairs_per_s": kept * args.epochs / seconds, "hh_test_accuracy": pairwise_accuracy(rc, rr)}


def run_rewardlab(pairs, test, args) -> dict:
    m = ModelConfig(max_length=args.max_length)
    t = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, save_steps=0, progress=False)
    res = train(pairs, m, t, "/tmp/bench-rewardlab")
    return {"pairs_in": len(pairs), "pairs_trained": len(pairs), "seconds": res.seconds,
            "pairs_per_s": res.pairs_per_second, "hh_test_accuracy": evaluate(res.model, test)["accuracy"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=1800)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--lr", type=float, default=1e-3, help="rewardlab (LoRA on the top layers)")
    ap.add_argument("--trl-lr", type=float, default=2e-5, help="TRL (full fine-tuning)")
    args = ap.parse_args()
    torch.manual_seed(0)
    s = hh_splits()
    pairs, test = s["train"][: args.pairs], s["test"]
    results = {"rewardlab": run_rewardlab(pairs, test, args), "trl": run_trl(pairs, test, args)}
    print(json.dumps(results, indent=2))
    for name, r in results.items():
        print(f"{name:10s} {r['pairs_per_s']:6.2f} pairs/s  trained {r['pairs_trained']}/{r['pairs_in']} pairs "
              f"in {r['seconds']:.0f}s  HH test accuracy {100 * r['hh_test_accuracy']:.1f}%")
    ratio = results["rewardlab"]["pairs_per_s"] / results["trl"]["pairs_per_s"]
    print(f"training throughput ratio rewardlab/TRL: {ratio:.2f}x")


if __name__ == "__main__":
    main()
