"""Where the critiques recipe's pairs and critiques come from (``recipes/critiques.py``).

* Training datasets (:data:`DATASETS`): ``feedbackqa`` (human critiques: all five conditions),
  ``hh`` (HH-RLHF harmless), ``pandalm`` and ``qafeedback`` (no human critiques: conditions b–e).
* Out-of-domain evaluation sets (:data:`EVAL_SETS`): ``llmbar-natural`` (the 100 LLMBar Natural
  pairs) and ``hhh`` (BIG-bench HHH, 221 pairs). An RM trained with critiques reads a critique of
  every test response too, so the LLM-critic conditions need that LLM's critiques of these sets;
  the human condition is evaluated in-domain only (FeedbackQA has the only human critiques).
* Conditions (:data:`CONDITIONS`): how a split's critiques are made, ``transform(pairs, seed,
  source)``. ``shuffled`` (d) permutes the source's *base* critiques across its responses: the
  human ones on FeedbackQA, the default LLM critic's (:data:`SHUFFLE_CRITIC`) elsewhere.
* LLM critiques are shipped in ``data/generated/critiques/SOURCE-MODEL.jsonl`` (``rewardlab
  critique`` output, with its ``.meta.json`` configuration fingerprint); :func:`generate_critiques`
  writes (resumes) them.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rewardlab.data.bundled import ROOT, bundled_set
from rewardlab.data.load import load_pairs
from rewardlab.data.schema import PreferencePair
from rewardlab.registry import Registry

log = logging.getLogger(__name__)
SIDES = ("chosen", "rejected")
GENERATED = Path(__file__).resolve().parents[1] / "data" / "generated" / "critiques"
CRITICS = {  # condition -> (local LLM alias, description)
    "llm-1.5b": ("qwen2.5-1.5b", "(b) Qwen2.5-Coder-1.5B critic"),
    "llm-135m": ("smollm2", "(c) SmolLM2-135M critic"),
}
SHUFFLE_CRITIC = "qwen2.5-1.5b"  # whose critiques `shuffled` permutes where no human ones exist


@dataclass(frozen=True)
class Dataset:
    """A training dataset: its bundled split prefix, the soft-label key (None: hard labels) and
    whether its pairs carry human critiques."""

    prefix: str
    label_key: str | None
    human: bool
    description: str


DATASETS: Registry[Dataset] = Registry("critique dataset")
DATASETS.add("feedbackqa", Dataset("feedbackqa", "helpfulness", True, "FeedbackQA (human critiques)"))
DATASETS.add("hh", Dataset("hh", None, False, "HH-RLHF harmless"))
DATASETS.add("pandalm", Dataset("pandalm", None, False, "PandaLM (helpfulness)"))
DATASETS.add("qafeedback", Dataset("qafeedback", None, False, "qa-feedback (helpfulness)"))


def split(dataset: str, name: str) -> list[PreferencePair]:
    """One split (train / validation / test) of a training dataset."""
    return bundled_set(f"{DATASETS.get(dataset).prefix}-{name}")


EVAL_SETS: Registry[Callable[[], list[PreferencePair]]] = Registry("critique eval set")
EVAL_SETS.add("llmbar-natural", lambda: load_pairs(ROOT / "llmbar" / "LLMBar_Natural.json", "llmbar"))
EVAL_SETS.add("hhh", lambda: bundled_set("hhh"))


def _key(prompt, meta: dict, response: str, side: str) -> tuple[str, str]:
    if "question" in meta and f"{side}_passage_id" in meta:  # FeedbackQA: the passage is the answer
        return meta["question"], meta[f"{side}_passage_id"]
    return json.dumps(prompt, sort_keys=True), response


def response_key(p: PreferencePair, side: str) -> tuple[str, str]:
    """A response's identity across pairs: (question, passage id) on FeedbackQA, else (prompt,
    response text)."""
    return _key(p.prompt, p.metadata, getattr(p, side), side)


def critic_file(source: str, model: str) -> Path:
    """Where the shipped critiques of ``model`` on ``source`` (a dataset or eval set) live."""
    return GENERATED / f"{source}-{model}.jsonl"


def read_critic(path: Path) -> dict[tuple[str, str], str]:
    """:func:`response_key` → critique, from a ``rewardlab critique`` output file."""
    table: dict[tuple[str, str], str] = {}
    for n, line in enumerate(path.open(), 1):
        try:
            row = json.loads(line)
            for s in SIDES:
                table[_key(row["prompt"], row.get("metadata") or {}, row[s], s)] = row["critiques"][s]
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as e:
            raise SystemExit(f"{path}:{n}: not a critiqued pair ({type(e).__name__}: {e})") from e
    return table


def with_llm_critiques(pairs: list[PreferencePair], source: str, model: str) -> list[PreferencePair]:
    """``pairs`` with every response's critique by ``model`` from :func:`critic_file`. Refuses,
    naming the file and a missing response, when the file lacks any."""
    path = critic_file(source, model)
    table = read_critic(path) if path.exists() else {}
    missing = [response_key(p, s) for p in pairs for s in SIDES if response_key(p, s) not in table]
    if missing:
        raise SystemExit(
            f"{path}: no {model} critique for {len(missing)} response(s), e.g. {missing[0][0][:80]!r} / "
            f"{missing[0][1][:80]!r}; run: python recipes/critiques.py --generate {model} (with the same "
            f"--dataset/--pool/--test-pairs/--validation-pairs/--eval-sets)"
        )
    return [dataclasses.replace(p, critiques={s: table[response_key(p, s)] for s in SIDES}) for p in pairs]


def shuffle_critiques(pairs: list[PreferencePair], seed: int) -> list[PreferencePair]:
    """Each distinct response gets the critique of another response of the split: a random cyclic
    permutation (Sattolo), so no response keeps its own critique."""
    own: dict[tuple, str] = {}
    for p in pairs:
        for side in SIDES:
            own.setdefault(response_key(p, side), p.critiques[side])
    keys = list(own)
    src = list(range(len(keys)))
    rng = random.Random(seed)
    for i in range(len(src) - 1, 0, -1):
        j = rng.randrange(i)
        src[i], src[j] = src[j], src[i]
    new = {k: own[keys[src[i]]] for i, k in enumerate(keys)}
    return [dataclasses.replace(p, critiques={s: new[response_key(p, s)] for s in SIDES}) for p in pairs]


def _human(pairs: list[PreferencePair], seed: int, source: str) -> list[PreferencePair]:
    if source != "feedbackqa":
        raise SystemExit(f"condition 'human' needs human critiques; only feedbackqa has them, not {source!r}")
    return pairs


def _none(pairs: list[PreferencePair], seed: int, source: str) -> list[PreferencePair]:
    return pairs


def _shuffled(pairs: list[PreferencePair], seed: int, source: str) -> list[PreferencePair]:
    base = pairs if source == "feedbackqa" else with_llm_critiques(pairs, source, SHUFFLE_CRITIC)
    return shuffle_critiques(base, seed)


def _llm(model: str) -> Callable[[list[PreferencePair], int, str], list[PreferencePair]]:
    return lambda pairs, seed, source: with_llm_critiques(pairs, source, model)


@dataclass(frozen=True)
class Condition:
    """What the RM reads beside each response: ``critiques`` on or off, ``transform(pairs, seed,
    source)`` turning a split of ``source`` into this condition's pairs, and ``in_domain_only``
    (no critiques of this kind exist for the out-of-domain sets)."""

    description: str
    transform: Callable[[list[PreferencePair], int, str], list[PreferencePair]]
    critiques: bool = True
    in_domain_only: bool = False


CONDITIONS: Registry[Condition] = Registry("critique condition")
CONDITIONS.add(
    "human",
    Condition("(a) each response's human critique (one rater; label from the others)", _human, True, True),
)
CONDITIONS.add(
    "shuffled",
    Condition(
        f"(d) the same critiques permuted across responses (human; {SHUFFLE_CRITIC} elsewhere)", _shuffled
    ),
)
CONDITIONS.add("none", Condition("(e) no critique", _none, critiques=False))
for _name, (_model, _desc) in CRITICS.items():
    CONDITIONS.add(_name, Condition(_desc, _llm(_model)))


def generate_critiques(
    model: str, source: str, pairs: list[PreferencePair], threads: int, batch: int = 32
) -> dict:
    """Write (resume) ``critic_file(source, model)``: ``model``'s critique of both responses of
    every pair, prompt ``critique_brief``, greedy, ≤ 64 new tokens, bfloat16 weights, pairs sorted
    by length. Returns the job's QC summary."""
    from rewardlab.feedback.critique import CritiqueConfig, critique_pairs
    from rewardlab.llm import GenerationConfig, LocalBackend
    from rewardlab.llm.local import cpu_has_bf16, resolve_device

    GENERATED.mkdir(parents=True, exist_ok=True)
    # the shipped files are bf16: regenerating them keeps that, at a price on such a CPU
    if resolve_device("auto").type == "cpu" and not cpu_has_bf16():
        log.warning(
            "this CPU has no native bfloat16 (AMX / AVX512-BF16): the critic runs in bf16 anyway, so "
            "its critiques match the shipped ones, but ~3-4x slower than on an AMX CPU (measured "
            "2026-12-02: ~40-80 s per pair for the 1.5B on one core)"
        )
    # bf16 (AMX) for every critic on a bf16 CPU: the 135M in fp32 is as slow as the 1.5B in bf16.
    # Wide batches (decoding reads all weights per step) of length-sorted pairs (one 1,500-token
    # answer would pad a whole batch).
    pairs = sorted(pairs, key=lambda p: len(p.chosen) + len(p.rejected))
    backend = LocalBackend(model, threads=threads, batch_size=batch, dtype="bfloat16")
    cfg, gen = CritiqueConfig(template="critique_brief"), GenerationConfig(max_new_tokens=64, temperature=0.0)
    return critique_pairs(
        pairs, backend, critic_file(source, model), cfg, gen, batch_size=max(1, batch // 2)
    ).summary()
