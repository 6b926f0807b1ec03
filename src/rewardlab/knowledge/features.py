"""Feature registry, feature sets, and the built-in general set.

A *feature* is a small pure function ``f(prompt, response) -> float`` (the prompt as plain text).
A *feature set* groups the features of one domain; sets live in :data:`FEATURE_SETS`. A user adds a
domain in their own code::

    from rewardlab.knowledge import register_feature_set

    legal = register_feature_set("legal", "statute-citing answers")

    @legal.feature("cites_statute")
    def cites_statute(prompt: str, response: str) -> float:
        "1 when the response cites a section sign (§), else 0."
        return float("§" in response)

and trains with ``--feature-sets general,legal``. A saved model records each set's module and
imports it again when loaded.

Built-in sets: ``general`` (below), ``opinion_summary`` (:mod:`rewardlab.knowledge.summeval`)
and ``embedding`` (prompt↔response cosine similarity with the embedded MiniLM; optional, cached).
"""

from __future__ import annotations

import importlib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache

import torch

from rewardlab.knowledge.text import content_words, sentences, syllables, tokens, word_share, words
from rewardlab.registry import Registry

FeatureFn = Callable[[str, str], float]


@dataclass
class FeatureSet:
    """A named, ordered group of features (a :class:`Registry` of functions)."""

    name: str
    description: str = ""
    module: str | None = None  # imported when a saved model names this set and it is unknown
    registry: Registry[FeatureFn] = field(init=False)

    def __post_init__(self) -> None:
        self.registry = Registry(f"{self.name} feature")
        self._order: list[str] = []

    def feature(self, name: str) -> Callable[[FeatureFn], FeatureFn]:
        """Decorator: add ``fn(prompt, response) -> float`` under ``name`` (a clash raises)."""

        def deco(fn: FeatureFn) -> FeatureFn:
            self.registry.add(name, fn)
            self._order.append(name)
            self.module = self.module or fn.__module__
            return fn

        return deco

    @property
    def names(self) -> list[str]:
        """Feature names in registration order."""
        return list(self._order)

    def __call__(self, prompt: str, response: str) -> list[float]:
        """Every feature of one (prompt, response), in order."""
        return [float(self.registry.get(n)(prompt, response)) for n in self._order]


FEATURE_SETS: Registry[FeatureSet] = Registry("feature set")


def register_feature_set(name: str, description: str = "") -> FeatureSet:
    """Create and register an empty feature set; add features with ``@fs.feature(name)``."""
    fs = FeatureSet(name, description)
    FEATURE_SETS.add(name, fs)
    return fs


def get_feature_set(name: str, module: str | None = None) -> FeatureSet:
    """The registered set ``name``; when unknown, import ``module`` (recorded by a saved model) first."""
    if name not in FEATURE_SETS:
        importlib.import_module("rewardlab.knowledge.summeval")  # built-in domain sets
        if name not in FEATURE_SETS and module:
            importlib.import_module(module)
    return FEATURE_SETS.get(name)


def feature_names(sets: list[str]) -> list[str]:
    """Qualified names ``set.feature`` of the given sets, in order."""
    return [f"{s}.{n}" for s in sets for n in get_feature_set(s).names]


def extract(sets: list[str], prompts: list[str], responses: list[str]) -> torch.Tensor:
    """Feature matrix (N, D) in float64, columns as :func:`feature_names`."""
    fsets = [get_feature_set(s) for s in sets]
    rows = [[v for fs in fsets for v in fs(p, r)] for p, r in zip(prompts, responses, strict=True)]
    return torch.tensor(rows, dtype=torch.float64).reshape(len(rows), -1)


# ---- the general set ----------------------------------------------------------------------------
GENERAL = register_feature_set("general", "length, refusals, hedging, prompt overlap, style")
REFUSALS = (
    "i can't", "i cannot", "i can not", "i won't", "i will not", "i'm sorry", "i am sorry",
    "i apologize", "as an ai", "i'm not able", "i am not able", "i'm unable", "i am unable",
)  # fmt: skip
HEDGES = frozenset(
    "might may perhaps possibly maybe probably likely seems seem appears somewhat arguably".split()
)
LIST_LINE = re.compile(r"^\s*(?:[-*•]|\d+[.)]|#{1,6}\s)")


@GENERAL.feature("log_length")
def log_length(prompt: str, response: str) -> float:
    """``log(1 + n)``, n = word and punctuation tokens of the response."""
    return math.log1p(len(tokens(response)))


@GENERAL.feature("refusal")
def refusal(prompt: str, response: str) -> float:
    """1 when the response contains a refusal marker ("I can't", "I'm sorry", "as an AI"...), else 0."""
    low = response.lower().replace("’", "'")
    return float(any(m in low for m in REFUSALS))


@GENERAL.feature("hedging")
def hedging(prompt: str, response: str) -> float:
    """Share of the response's words that hedge (might, may, perhaps, probably, seems...)."""
    return word_share(response, HEDGES)


@GENERAL.feature("prompt_overlap")
def prompt_overlap(prompt: str, response: str) -> float:
    """Share of the response's distinct content words that also occur in the prompt."""
    resp = set(content_words(response))
    return len(resp & set(content_words(prompt))) / len(resp) if resp else 0.0


@GENERAL.feature("readability")
def readability(prompt: str, response: str) -> float:
    """Flesch reading ease ``206.835 − 1.015·words/sentences − 84.6·syllables/words`` (0 if empty)."""
    ws, ss = words(response), sentences(response)
    if not ws:
        return 0.0
    syl = sum(syllables(w) for w in ws)
    return 206.835 - 1.015 * len(ws) / max(len(ss), 1) - 84.6 * syl / len(ws)


@GENERAL.feature("repetition")
def repetition(prompt: str, response: str) -> float:
    """Share of word trigrams that repeat an earlier one: ``1 − distinct/total`` (0 below 3 words)."""
    ws = words(response)
    grams = [tuple(ws[i : i + 3]) for i in range(len(ws) - 2)]
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


@GENERAL.feature("lexical_diversity")
def lexical_diversity(prompt: str, response: str) -> float:
    """Mean type-token ratio over windows of 50 words (the whole text when shorter; 0 if empty)."""
    ws = words(response)
    if not ws:
        return 0.0
    win = min(50, len(ws))
    ratios = [len(set(ws[i : i + win])) / win for i in range(0, len(ws) - win + 1, 25)]
    return sum(ratios) / len(ratios)


@GENERAL.feature("formatting")
def formatting(prompt: str, response: str) -> float:
    """``log(1 + n)``, n = list items, headings and code fences (lines starting -, *, •, 1., #, ```)."""
    lines = response.splitlines()
    return math.log1p(sum(bool(LIST_LINE.match(ln)) or ln.strip().startswith("```") for ln in lines))


@GENERAL.feature("question_marks")
def question_marks(prompt: str, response: str) -> float:
    """Share of the response's sentences that are questions (asking back instead of answering)."""
    ss = sentences(response)
    return sum(s.endswith("?") for s in ss) / len(ss) if ss else 0.0


# ---- optional, model-based: embedding similarity -----------------------------------------------
EMBEDDING = register_feature_set("embedding", "prompt↔response cosine similarity (MiniLM; cached)")


@lru_cache(maxsize=1)
def _minilm():  # noqa: ANN202
    from transformers import AutoModel, AutoTokenizer

    from rewardlab.assets import minilm_path, offline_hub

    with offline_hub():
        path = str(minilm_path())
        return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()


@lru_cache(maxsize=32768)
def embed(text: str) -> tuple[float, ...]:
    """Unit-norm mean-pooled MiniLM embedding of ``text`` (first 256 tokens), cached per text."""
    tok, model = _minilm()
    with torch.inference_mode():
        b = tok(text, truncation=True, max_length=256, return_tensors="pt")
        h = model(**b).last_hidden_state[0]  # (T, H)
        v = torch.nn.functional.normalize(h.mean(0), dim=0)
    return tuple(v.tolist())


@EMBEDDING.feature("prompt_similarity")
def prompt_similarity(prompt: str, response: str) -> float:
    """Cosine similarity of the prompt's and the response's MiniLM embeddings."""
    return float(sum(a * b for a, b in zip(embed(prompt), embed(response), strict=True)))
