"""rewardlab: reward models that are accurate with little data, say how sure they are, and resist
over-optimization."""

from __future__ import annotations

import importlib
import logging
import os
import sys
import types
import warnings

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
logging.getLogger("accelerate").setLevel(logging.WARNING)
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*")  # peft ↔ transformers 5

__version__ = "0.1.0"

# The public API, imported on first use so `import rewardlab` stays cheap (no torch).
_LAZY = {
    "DataError": "rewardlab.data.schema",
    "EnsembleConfig": "rewardlab.bayes.config",
    "LaplaceConfig": "rewardlab.bayes.config",
    "LoadedRM": "rewardlab.loading",
    "ModelConfig": "rewardlab.models.config",
    "PreferencePair": "rewardlab.data.schema",
    "RewardModel": "rewardlab.models.reward_model",
    "TrainConfig": "rewardlab.train.config",
    "best_of_n": "rewardlab.bayes.predictive",
    "evaluate": "rewardlab.evaluate.evaluator",
    "fit_laplace": "rewardlab.bayes.laplace",
    "load": "rewardlab.loading",
    "load_pairs": "rewardlab.data.load",
    "train": "rewardlab.train.trainer",
    "train_ensemble": "rewardlab.bayes.ensemble",
    "write_pairs": "rewardlab.data.load",
}
# `train` and `evaluate` name both a function (the API) and a subpackage. Importing a subpackage
# binds it on its parent; the package refuses that binding for these names, so `rewardlab.train`
# stays the function while `from rewardlab.train.config import TrainConfig` keeps working.
_FUNCTION_OVER_SUBPACKAGE = ("evaluate", "train")


class _Package(types.ModuleType):
    def __getattr__(self, name: str):
        if name not in _LAZY:
            raise AttributeError(f"module 'rewardlab' has no attribute {name!r}")
        value = getattr(importlib.import_module(_LAZY[name]), name)
        self.__dict__[name] = value
        return value

    def __setattr__(self, name: str, value) -> None:
        if name in _FUNCTION_OVER_SUBPACKAGE and isinstance(value, types.ModuleType):
            return  # the subpackage stays in sys.modules; the attribute stays the function
        super().__setattr__(name, value)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(_LAZY))


sys.modules[__name__].__class__ = _Package

__all__ = [
    "DataError",
    "EnsembleConfig",
    "LaplaceConfig",
    "LoadedRM",
    "ModelConfig",
    "PreferencePair",
    "RewardModel",
    "TrainConfig",
    "__version__",
    "best_of_n",
    "evaluate",
    "fit_laplace",
    "load",
    "load_pairs",
    "train",
    "train_ensemble",
    "write_pairs",
]
