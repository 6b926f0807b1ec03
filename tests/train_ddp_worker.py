"""Run by tests/test_train_distributed.py under ``accelerate launch --num_processes 2`` (CPU,
gloo): trains each case of a JSON spec with :func:`rewardlab.train.trainer.train` and saves every
rank's trainable weights to ``OUT/<case>/rank<r>.pt``.

    python tests/train_ddp_worker.py SPEC.json OUT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
from accelerate import PartialState

sys.path.insert(0, str(Path(__file__).parent))
from pairs_data import make_pairs  # noqa: E402
from rewardlab.models.config import ModelConfig  # noqa: E402
from rewardlab.train.config import TrainConfig  # noqa: E402
from rewardlab.train.trainer import train  # noqa: E402


def main(spec_path: str, out: str) -> None:
    """Train every case of the spec: ``{name: {"pairs": n, "model": {...}, "train": {...}}}``."""
    spec = json.loads(Path(spec_path).read_text())
    for name, case in spec.items():
        model_cfg, train_cfg = ModelConfig(**case["model"]), TrainConfig(**case["train"])
        res = train(make_pairs(case["pairs"]), model_cfg, train_cfg, Path(out) / name)
        weights = {k: v.detach().cpu() for k, v in res.model.named_parameters() if v.requires_grad}
        rank = PartialState().process_index  # after train(): its Accelerator set up the processes
        torch.save(weights, Path(out) / name / f"rank{rank}.pt")


if __name__ == "__main__":
    main(*sys.argv[1:])
