"""The real preference sets shipped with rewardlab, with fixed, seeded splits.

HH-RLHF harmless-base test (MIT): shuffled with ``random.Random(seed)``; first 1,800 train, next
200 validation, the rest (≈308) test; ``source="hh-harmless"``. LLMBar natural + adversarial
(MIT) and BIG-bench HHH (Apache-2.0) are evaluation-only. SummEval-OP (MIT), qa-feedback
(Apache-2.0) and PandaLM (Apache-2.0) are split by *group* (product / question / instruction), so
no prompt appears in two splits. Rows that fail validation are dropped and each one is logged;
see ``bundled/DATA_CARD.md``. Each file is read (and its drops logged) once per process; every
call gets fresh copies of the pairs.
"""

from __future__ import annotations

import copy
import functools
import random
from collections.abc import Callable, Hashable
from pathlib import Path

from rewardlab.data.load import load_pairs
from rewardlab.data.schema import PreferencePair

ROOT = Path(__file__).resolve().parent.parent / "bundled"
HH_FILE = ROOT / "hh-rlhf" / "harmless-base-test.jsonl.gz"
LLMBAR_FILES = sorted((ROOT / "llmbar").glob("LLMBar_*.json"))
HHH_FILE = ROOT / "hhh" / "hhh_alignment_eval.json"
SUMMEVAL_FILE = ROOT / "summeval-op" / "summeval-op-detailed.jsonl.gz"
QA_FEEDBACK_FILE = ROOT / "qa-feedback" / "dev_feedback.json.gz"
PANDALM_FILE = ROOT / "pandalm" / "testset-v1.json.gz"
FEEDBACKQA_FILES = sorted((ROOT / "feedbackqa").glob("*_feedback_*.json.gz"))
HH_SPLIT = (1800, 200)  # train, validation; the rest is test
SPLITS = ("train", "validation", "test")
GROUP_FRACTIONS = (0.6, 0.1)  # train, validation share of the groups; the rest is test
SUMMEVAL_PRODUCTS = (20, 4)  # of 32 products: train, validation; the remaining 8 are test


@functools.cache
def _read(path: Path, fmt: str, on_invalid: str = "raise") -> tuple[PreferencePair, ...]:
    return tuple(load_pairs(path, fmt, on_invalid=on_invalid))


def _load(path: Path, fmt: str, on_invalid: str = "raise") -> list[PreferencePair]:
    """A bundled file's pairs: read once per process, returned as fresh copies (callers may edit)."""
    return copy.deepcopy(list(_read(path, fmt, on_invalid)))


def hh_splits(seed: int = 0) -> dict[str, list[PreferencePair]]:
    """The HH harmless split: ``{"train", "validation", "test"}``, shuffled by ``seed``."""
    pairs = _load(HH_FILE, "hh", on_invalid="drop")
    for p in pairs:
        p.source = "hh-harmless"
    random.Random(seed).shuffle(pairs)
    n_train, n_val = HH_SPLIT
    return {
        "train": pairs[:n_train],
        "validation": pairs[n_train : n_train + n_val],
        "test": pairs[n_train + n_val :],
    }


def split_by_group(
    pairs: list[PreferencePair],
    group: Callable[[PreferencePair], Hashable],
    sizes: tuple[int, int] | None = None,
    seed: int = 0,
) -> dict[str, list[PreferencePair]]:
    """Split ``pairs`` so that every group (product, question...) lies in exactly one split.

    The sorted distinct groups are shuffled with ``random.Random(seed)``; the first ``sizes[0]``
    go to train, the next ``sizes[1]`` to validation, the rest to test (default sizes: 60% / 10%
    of the groups, rounded). Pairs keep their file order within a split."""
    groups = sorted({group(p) for p in pairs}, key=repr)
    random.Random(seed).shuffle(groups)
    if sizes is None:
        sizes = (round(GROUP_FRACTIONS[0] * len(groups)), round(GROUP_FRACTIONS[1] * len(groups)))
    n_train, n_val = sizes
    if n_train + n_val >= len(groups):
        raise ValueError(
            f"{len(groups)} groups cannot fill train={n_train}, validation={n_val} and a test split"
        )
    where = {
        g: SPLITS[0] if k < n_train else SPLITS[1] if k < n_train + n_val else SPLITS[2]
        for k, g in enumerate(groups)
    }
    out: dict[str, list[PreferencePair]] = {s: [] for s in SPLITS}
    for p in pairs:
        out[where[group(p)]].append(p)
    return out


def summeval_splits(seed: int = 0) -> dict[str, list[PreferencePair]]:
    """SummEval-OP pairs with 7 aspect labels + ``overall``, split 20/4/8 products."""
    pairs = _load(SUMMEVAL_FILE, "summeval-op")
    return split_by_group(pairs, lambda p: p.metadata["product"], SUMMEVAL_PRODUCTS, seed)


def qa_feedback_splits(seed: int = 0) -> dict[str, list[PreferencePair]]:
    """qa-feedback (FineGrainedRLHF dev) pairs, split 60/10/30% of the questions."""
    pairs = _load(QA_FEEDBACK_FILE, "qa-feedback")
    return split_by_group(pairs, lambda p: p.metadata["question"], seed=seed)


def pandalm_splits(seed: int = 0) -> dict[str, list[PreferencePair]]:
    """PandaLM test-set majority-vote pairs, split 60/10/30% of the instructions. Rows with a
    JSON boolean or an empty response are dropped, each one logged with file:line:field."""
    pairs = _load(PANDALM_FILE, "pandalm", on_invalid="drop")
    return split_by_group(pairs, lambda p: p.metadata["instruction"], seed=seed)


@functools.cache
def _read_feedbackqa() -> tuple[PreferencePair, ...]:
    from rewardlab.data.loaders.feedbackqa import load_feedbackqa

    return tuple(load_feedbackqa(FEEDBACKQA_FILES))


def feedbackqa_splits(seed: int = 0) -> dict[str, list[PreferencePair]]:
    """FeedbackQA leak-free pairs with human critiques (all 9 files pooled), split 60/10/30% of
    the questions; see :mod:`rewardlab.data.loaders.feedbackqa`."""
    pairs = copy.deepcopy(list(_read_feedbackqa()))
    return split_by_group(pairs, lambda p: p.metadata["question"], seed=seed)


def llmbar() -> list[PreferencePair]:
    """LLMBar natural + the four adversarial subsets (419 pairs)."""
    return [p for f in LLMBAR_FILES for p in _load(f, "llmbar")]


def hhh() -> list[PreferencePair]:
    """BIG-bench HHH alignment (221 pairs; subsets harmless/helpful/honest/other)."""
    return _load(HHH_FILE, "hhh")


SPLIT_SETS: dict[str, Callable[[int], dict[str, list[PreferencePair]]]] = {
    "hh": hh_splits,
    "summeval": summeval_splits,
    "qafeedback": qa_feedback_splits,
    "pandalm": pandalm_splits,
    "feedbackqa": feedbackqa_splits,
}
WHOLE_SETS: dict[str, Callable[[], list[PreferencePair]]] = {"llmbar": llmbar, "hhh": hhh}
BUNDLED_NAMES = tuple(f"{k}-{s}" for k in SPLIT_SETS for s in SPLITS) + tuple(WHOLE_SETS)


def bundled_set(name: str, seed: int = 0) -> list[PreferencePair]:
    """A bundled set by name: ``{hh,summeval,qafeedback,pandalm,feedbackqa}-{train,validation,test}``,
    ``llmbar`` or ``hhh``."""
    if name in WHOLE_SETS:
        return WHOLE_SETS[name]()
    base, _, split = name.rpartition("-")
    if base not in SPLIT_SETS or split not in SPLITS:
        raise KeyError(f"unknown bundled set {name!r}; choose one of {', '.join(BUNDLED_NAMES)}")
    return SPLIT_SETS[base](seed)[split]
