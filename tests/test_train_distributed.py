"""Data-parallel training: ``accelerate launch --num_processes 2`` on CPU (gloo) over tiny models.

Both ranks must end with bitwise identical weights (DDP all-reduces gradients on every training
path: [CLS]-only top over the trunk cache, trunk injection, plain forward), and the run must match
one process that sees the same global batch — 2 micro-batches of B pairs accumulated per step,
which are exactly the batches the two ranks take (accelerate deals batch i to rank i % 2).
Tolerance: 1e-5 on each step's loss and on the final weights (float summation order only).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch

from pairs_data import make_pairs
from rewardlab.models.config import ModelConfig
from rewardlab.train.config import TrainConfig
from rewardlab.train.trainer import train

TOL = 1e-5  # per-step loss and lr: DDP vs one process with the same global batch
# Final weights vs the one-process run, to the same tolerance — except the classifier bias: a shared
# shift cancels in r_c − r_r, so its gradient is exactly 0 in exact arithmetic and what remains is
# float-summation noise that Adam (g/√v) turns into lr-sized steps. The ranks agree bitwise on it too.
W_TOL = 1e-5
MODEL = {"max_length": 64, "train_layers": 1, "lora_r": 4}
TRAIN = {"epochs": 2, "lr": 1e-2, "warmup_ratio": 0.0, "save_steps": 0, "progress": False, "seed": 0}
PAIRS, B = 16, 2  # per rank: 4 batches of 2 pairs per epoch


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(spec: dict, out: Path) -> None:
    out.mkdir(parents=True)
    (out / "spec.json").write_text(json.dumps(spec))
    worker = Path(__file__).parent / "train_ddp_worker.py"
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    cmd += ["--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no"]
    cmd += ["--main_process_port", str(_free_port()), str(worker), str(out / "spec.json"), str(out)]
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]


def _steps(folder: Path) -> list[dict]:
    rows = [json.loads(line) for line in open(folder / "train_log.jsonl")]
    return [r for r in rows if "loss" in r]


def test_two_processes_train_like_one_with_the_same_global_batch(tiny_bert, tiny_llama, tmp_path):
    cases = {  # BERT top layer: [CLS]-only fast path; Llama: trunk injection; BERT uncached: plain
        "bert_fast_top": {"model": {"backbone": tiny_bert, **MODEL}, "train": TRAIN},
        "llama_trunk": {"model": {"backbone": tiny_llama, **MODEL}, "train": TRAIN},
        "bert_plain": {"model": {"backbone": tiny_bert, **MODEL}, "train": {**TRAIN, "cache_trunk": False}},
    }
    spec = {n: {**c, "train": {**c["train"], "batch_size": B}, "pairs": PAIRS} for n, c in cases.items()}
    _launch(spec, tmp_path / "ddp")
    for name, case in cases.items():
        folder = tmp_path / "ddp" / name
        r0, r1 = (torch.load(folder / f"rank{r}.pt") for r in (0, 1))
        for k in r0:
            assert torch.equal(r0[k], r1[k]), f"{name}: ranks drifted apart at {k}"
        one = train(
            make_pairs(PAIRS),
            ModelConfig(**case["model"]),
            TrainConfig(**case["train"], batch_size=B, grad_accum=2),
            tmp_path / "one" / name,
        )
        ddp_steps, one_steps = _steps(folder), _steps(tmp_path / "one" / name)
        assert len(ddp_steps) == len(one_steps) == 2 * PAIRS // (2 * B)
        for a, b in zip(ddp_steps, one_steps, strict=True):
            assert abs(a["loss"] - b["loss"]) < TOL, (name, a, b)
            assert abs(a["lr"] - b["lr"]) < 1e-12, (name, a, b)
        assert one_steps[-1]["loss"] < one_steps[0]["loss"]  # it learnt something
        for k, v in one.model.named_parameters():
            if v.requires_grad and not k.endswith("classifier.modules_to_save.default.bias"):
                where = f"{name}: {k}"
                torch.testing.assert_close(
                    r0[k], v.detach().cpu(), rtol=0, atol=W_TOL, msg=lambda m, w=where: f"{w}: {m}"
                )
