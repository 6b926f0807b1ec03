"""Shared pieces of the AI-feedback jobs: prompt templates, prompt-only input, chat conversion,
stable item keys and light clean-up of generated text."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path

from rewardlab.data.bundled import BUNDLED_NAMES, bundled_set
from rewardlab.data.load import detect_format, load_pairs
from rewardlab.data.loaders.io import read_records
from rewardlab.data.schema import DataError, Message, PreferencePair, Prompt, prompt_text
from rewardlab.llm.base import GenerationConfig, LLMBackend

BUNDLED_SETS = BUNDLED_NAMES
TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True)
class Template:
    """A prompt template: text with ``{name}`` placeholders (other braces are left alone)."""

    text: str
    source: str = "<inline>"

    @classmethod
    def load(cls, name_or_path: str | Path, required: tuple[str, ...] = ()) -> Template:
        """Load a bundled template by name (``critique``) or a user file by path.

        Raises ``ValueError`` naming the file when a placeholder in ``required`` is missing."""
        path = Path(name_or_path)
        if not path.suffix and not path.exists():
            path = TEMPLATE_DIR / f"{name_or_path}.txt"
        if not path.is_file():
            bundled = sorted(p.stem for p in TEMPLATE_DIR.glob("*.txt"))
            raise ValueError(f"template {str(name_or_path)!r} not found (bundled: {bundled})")
        tpl = cls(path.read_text(encoding="utf-8"), str(path))
        missing = [k for k in required if k not in tpl.fields]
        if missing:
            raise ValueError(f"template {path}: missing placeholder(s) {{{'}, {'.join(missing)}}}")
        return tpl

    @property
    def fields(self) -> set[str]:
        """Placeholder names used by the template."""
        return set(_PLACEHOLDER.findall(self.text))

    def render(self, **values: str) -> str:
        """Fill the placeholders; unknown ``{words}`` stay as they are."""
        return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), m.group(0))), self.text)

    def static_lines(self, min_words: int = 4) -> list[str]:
        """Template lines without placeholders and with at least ``min_words`` words (echo QC)."""
        lines = [ln.strip() for ln in self.text.splitlines()]
        return [ln for ln in lines if "{" not in ln and len(ln.split()) >= min_words]


def to_messages(prompt: Prompt) -> list[Message]:
    """A prompt as chat messages: HH transcripts (``\\n\\nHuman: … \\n\\nAssistant:``) are split
    into turns, plain text becomes one user turn, message lists pass through."""
    if isinstance(prompt, list):
        return [dict(m) for m in prompt]
    if "Human:" not in prompt:
        return [{"role": "user", "content": prompt.strip()}]
    parts = re.split(r"(?:^|\n\n)(Human|Assistant):", prompt)
    msgs: list[Message] = []
    for speaker, text in zip(parts[1::2], parts[2::2], strict=False):
        role = "user" if speaker == "Human" else "assistant"
        if text.strip():
            msgs.append({"role": role, "content": text.strip()})
    return msgs or [{"role": "user", "content": prompt.strip()}]


def render_prompt(prompt: Prompt) -> str:
    """Prompt text for embedding in a template (HH transcripts keep their speaker labels)."""
    return prompt_text(prompt).strip()


def content_hash(*texts: object) -> str:
    """A hash of an item's content (each part as ``str``), whatever its position."""
    blob = json.dumps([str(t) for t in texts], ensure_ascii=False)
    return hashlib.sha1(blob.encode()).hexdigest()


def item_key(index: int, *texts: object) -> str:
    """A stable resume key: position plus a short :func:`content_hash` of the item's content."""
    return f"{index}:{content_hash(*texts)[:12]}"


@dataclass
class PromptItem:
    """One prompt to generate from, with where it came from (``file:line``)."""

    prompt: Prompt
    where: str
    metadata: dict = field(default_factory=dict)


def load_prompts(path: str | Path, limit: int | None = None) -> list[PromptItem]:
    """Prompts from ``path``: rows ``{"prompt": ...}`` (text or chat messages), or any pair file
    the data layer reads (HH transcripts, LLMBar, HHH, TRL pairs) whose prompts are taken.

    A bundled set name (``hh-train``, ``hh-test``, ``llmbar``, ``hhh``...) works too. Bad rows raise
    :class:`DataError` naming file, line and field."""
    if _is_bundled(path):
        pairs = bundled_set(str(path))[:limit]
        return [PromptItem(p.prompt, f"{path}[{i}]") for i, p in enumerate(pairs)]
    path = Path(path)
    if detect_format(path) != "trl":
        return [
            PromptItem(p.prompt, f"{path}[pair {i}]") for i, p in enumerate(load_pairs(path, limit=limit))
        ]
    items: list[PromptItem] = []
    for where, rec in read_records(path):
        if not isinstance(rec, dict):
            raise DataError(where, None, f"expected a JSON object, got {type(rec).__name__}")
        if "prompt" not in rec:
            raise DataError(where, "prompt", 'is missing (rows need at least {"prompt": ...})')
        prompt = rec["prompt"]
        if isinstance(prompt, str):
            if not prompt.strip():
                raise DataError(where, "prompt", "is empty")
        elif (
            isinstance(prompt, list)
            and prompt
            and all(isinstance(m, dict) and isinstance(m.get("content"), str) for m in prompt)
        ):
            prompt = [{"role": str(m.get("role", "user")), "content": m["content"]} for m in prompt]
        else:
            raise DataError(where, "prompt", "expected text or a non-empty list of chat messages")
        items.append(PromptItem(prompt, where))
        if limit is not None and len(items) >= limit:
            break
    return items


def _is_bundled(path: str | Path) -> bool:
    return str(path) in BUNDLED_SETS and not Path(path).exists()


def load_pair_input(
    path: str | Path, limit: int | None = None, on_invalid: str = "raise"
) -> list[PreferencePair]:
    """Pairs for ``critique``/``judge``: any format the data layer reads, or a bundled set name.
    ``on_invalid="drop"`` drops and logs each bad row of a file (bundled sets always do)."""
    if _is_bundled(path):
        return bundled_set(str(path))[:limit]
    return load_pairs(path, limit=limit, on_invalid=on_invalid)


_PREAMBLE = re.compile(
    r"^\s*(?:sure|okay|ok|certainly|of course)?[!,.]?\s*(?:here(?:'s| is) (?:a|an|the|my) )?"
    r"(?:new|improved|better|worse|revised|rewritten)?\s*(?:version of the )?response"
    r"\s*[:：]\s*\n?",
    re.IGNORECASE,
)


def clean_generation(text: str) -> str:
    """Strip whitespace and a leading "Here is the new response:"-style preamble."""
    text = text.strip()
    stripped = _PREAMBLE.sub("", text, count=1).strip()
    return stripped or text


def distinct(a: str, b: str) -> bool:
    """Two responses can form a valid pair: both non-empty and not identical."""
    return bool(a.strip()) and bool(b.strip()) and a.strip() != b.strip()


def sample_responses(backend: LLMBackend, prompts: list[Prompt], gen: GenerationConfig, k: int) -> list[str]:
    """Sample number ``k`` of a response to each prompt (seed ``gen.seed + k``).

    Every method asks for sample ``k`` the same way, so through the generation cache RMBoost's y1,
    RLAIF's two samples and West-of-N's first samples are the very same texts."""
    g = replace(gen, seed=gen.seed + k)
    return [clean_generation(t) for t in backend.chat([to_messages(p) for p in prompts], g)]


def backend_id(backend: LLMBackend) -> str:
    """``"local:smollm2"``-style id recorded in output metadata."""
    return f"{backend.name}:{backend.model}"


@dataclass
class JobIO:
    """Input, output and resume granularity of a feedback job."""

    data: Path | None = field(
        default=None,
        metadata={
            "help": "input file: rows with 'prompt' (generate) or pairs (critique, judge); "
            "JSONL, JSON, Parquet, HH, LLMBar and HHH files are read, or a bundled set name "
            "(hh-train, hh-test, llmbar, hhh)"
        },
    )
    out: Path | None = field(
        default=None,
        metadata={"help": "output JSONL of pairs; rerunning with the same file resumes"},
    )
    limit: int | None = field(default=None, metadata={"help": "use only the first N input rows"})
    chunk: int = field(
        default=16, metadata={"help": "items per resumable write (a kill loses at most these)"}
    )
    on_invalid: str = field(
        default="raise",
        metadata={"help": "raise | drop: what a bad input row does (drop logs every dropped row)"},
    )
    overwrite: bool = field(
        default=False,
        metadata={
            "help": "discard rows already in --out and start afresh (needed to rerun into the "
            "same file with another model, sampling, template or option: resuming refuses that)"
        },
    )

    def __post_init__(self) -> None:
        if self.data is None:
            raise ValueError("data: required (--data FILE)")
        if self.out is None:
            raise ValueError("out: required (--out FILE.jsonl)")
        if self.on_invalid not in ("raise", "drop"):
            raise ValueError(f"on_invalid: choose raise or drop, got {self.on_invalid!r}")
        self.data, self.out = Path(self.data), Path(self.out)
        if self.data.resolve() == self.out.resolve():
            raise ValueError("out: must differ from data")
        if self.limit is not None and self.limit < 1:
            raise ValueError("limit must be >= 1")
        if self.chunk < 1:
            raise ValueError("chunk must be >= 1")
