"""A default reward model for steps that need one when the user names none (e.g. West-of-N):
the embedded MiniLM trained on bundled HH-RLHF harmless pairs, built once and cached."""

from __future__ import annotations

import logging
from pathlib import Path

from rewardlab.assets import cache_dir
from rewardlab.models.reward_model import ENCODING

log = logging.getLogger(__name__)
DEFAULT_PAIRS = 600


def default_reward_model() -> Path:
    """Directory of the cached default RM, training it on first use (a few minutes on 2 CPU cores)."""
    out = cache_dir() / f"default-rm-hh{DEFAULT_PAIRS}-enc{ENCODING}"  # retrained when the encoding changes
    if (out / "rewardlab.json").exists():
        return out
    from rewardlab.data.bundled import hh_splits
    from rewardlab.models.config import ModelConfig
    from rewardlab.train.config import TrainConfig
    from rewardlab.train.trainer import train

    log.info("no reward model given: training the default RM on %d bundled HH pairs → %s", DEFAULT_PAIRS, out)
    s = hh_splits()
    tmp = out.with_name(out.name + ".tmp")
    train(
        s["train"][:DEFAULT_PAIRS],
        ModelConfig(),
        TrainConfig(epochs=3, save_steps=0),
        tmp,
        validation=s["validation"],
    )
    tmp.rename(out)
    return out
