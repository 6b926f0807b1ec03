"""The real preference sets shipped with rewardlab, with fixed, seeded splits.

HH-RLHF harmless-base test (MIT): shuffled with ``random.Random(seed)``; first 1,800 train, next
200 validation, the rest (≈312) test. LLMBar natural + adversarial (MIT) and BIG-bench HHH
(Apache-2.0) are evaluation-only. Rows that fail validation (HH has a few empty responses) are
dropped and logged; see ``bundled/DATA_CARD.md``.
"""

from __future__ import annotations

import random
from pathlib import Path

from rewardlab.data.load import load_pairs
from rewardlab.data.schema import PreferencePair

ROOT = Path(__file__).resolve().parent.parent / "bundled"
HH_FILE = ROOT / "hh-rlhf" / "harmless-base-test.jsonl.gz"
LLMBAR_FILES = sorted((ROOT / "llmbar").glob("LLMBar_*.json"))
HHH_FILE = ROOT / "hhh" / "hhh_alignment_eval.json"
HH_SPLIT = (1800, 200)  # train, validation; the rest is test


def hh_splits(seed: int = 0) -> dict[str, list[PreferencePair]]:
    """The HH harmless split: ``{"train", "validation", "test"}``, shuffled by ``seed``."""
    pairs = load_pairs(HH_FILE, "hh", on_invalid="drop")
    random.Random(seed).shuffle(pairs)
    n_train, n_val = HH_SPLIT
    return {
        "train": pairs[:n_train],
        "validation": pairs[n_train : n_train + n_val],
        "test": pairs[n_train + n_val :],
    }


def llmbar() -> list[PreferencePair]:
    """LLMBar natural + the four adversarial subsets (419 pairs)."""
    return [p for f in LLMBAR_FILES for p in load_pairs(f, "llmbar")]


def hhh() -> list[PreferencePair]:
    """BIG-bench HHH alignment (221 pairs; subsets harmless/helpful/honest/other)."""
    return load_pairs(HHH_FILE, "hhh")


def bundled_set(name: str, seed: int = 0) -> list[PreferencePair]:
    """A bundled set by name: ``hh-train``, ``hh-validation``, ``hh-test``, ``llmbar``, ``hhh``."""
    if name.startswith("hh-"):
        return hh_splits(seed)[name.removeprefix("hh-")]
    table = {"llmbar": llmbar, "hhh": hhh}
    if name not in table:
        raise KeyError(f"unknown bundled set {name!r}; choose hh-train, hh-validation, hh-test, llmbar, hhh")
    return table[name]()
