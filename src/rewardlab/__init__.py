"""rewardlab: reward models that are accurate with little data, say how sure they are, and resist
over-optimization."""

from __future__ import annotations

import logging
import os
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
logging.getLogger("accelerate").setLevel(logging.WARNING)
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")  # peft ↔ transformers 5

__version__ = "0.1.0"
__all__ = ["__version__"]
