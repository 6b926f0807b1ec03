"""What a run directory holds: its JSON / JSONL artifacts, read once and checked.

A bad file stops the report with a :class:`~rewardlab.data.schema.DataError` naming the file, the
line and the field; a missing file only means that section is absent."""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from rewardlab.data.schema import DataError

NUMBER = (int, float)
# JSONL artifacts a report knows: file → {field: (types, required)}
GRPO_FIELDS = {
    "step": ((int,), True),
    "reward": (NUMBER, False),  # null when the step's reward was not finite
    "gold_reward": (NUMBER, False),
    "reward_std": (NUMBER, False),
}
PAIR_FIELDS = {
    "set": ((str,), True),
    "chosen": (NUMBER, True),
    "rejected": (NUMBER, True),
    "chosen_chars": ((int,), False),
    "rejected_chars": ((int,), False),
}
MULTI_OBJECTIVE_FIELDS = {
    "experiment": ((str,), True),
    "model": ((str,), True),
    "size": ((int,), True),
    "seed": ((int,), True),
    "sets": ((dict,), True),
}
DATA_EFFICIENCY_FIELDS = {
    "set": ((str,), True),
    "method": ((str,), True),
    "n": ((int,), True),
    "seed": ((int,), True),
    "accuracy": (NUMBER, True),
    "similar_accuracy": (NUMBER, False),
}
TRAIN_LOG_FIELDS = {"step": ((int,), False), "epoch": ((int,), False), "loss": (NUMBER, False)}


def multi_objective_groups(rows: list[dict]) -> dict:
    """Rows of ``recipes/multi_objective.py`` grouped for tables and plots:
    ``{(experiment, size, model): {set: {metric: [value per seed]}}}``."""
    out: dict = defaultdict(lambda: defaultdict(lambda: defaultdict(list)))
    for r in rows:
        for s, metrics in r["sets"].items():
            for m, v in metrics.items():
                out[(r["experiment"], r["size"], r["model"])][s][m].append(v)
    return out


def check_row(row: Any, fields: dict, where: str) -> dict:
    """``row`` as a dict whose ``fields`` have the right types (``None`` allowed when optional);
    raise :class:`DataError` naming ``where`` and the field otherwise."""
    if not isinstance(row, dict):
        raise DataError(where, None, f"expected a JSON object, got {type(row).__name__}")
    for name, (types, required) in fields.items():
        value = row.get(name)
        if value is None:
            if required:
                raise DataError(where, name, "is missing")
            continue
        if isinstance(value, bool) or not isinstance(value, types):
            want = " or ".join(t.__name__ for t in types)
            raise DataError(where, name, f"expected {want}, got {value!r}")
    return row


def read_json(path: Path) -> Any:
    """Parse a JSON file; a syntax error names the file and line."""
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}", None, f"invalid JSON: {e.msg}") from None


def read_jsonl(path: Path, fields: dict) -> list[dict]:
    """Rows of a JSONL file, each checked by :func:`check_row` (blank lines skipped)."""
    from rewardlab.data.loaders.io import iter_jsonl

    return [check_row(row, fields, where) for where, row in iter_jsonl(path, allow_empty=True)]


@dataclass
class RunDir:
    """A run directory: artifacts are looked up in it (and a model in it or in ``model/``)."""

    path: Path
    used: list[str] = field(default_factory=list)  # files a section read, for the page's footer

    def __post_init__(self) -> None:
        self.path = Path(self.path)
        if not self.path.is_dir():
            raise FileNotFoundError(f"{self.path}: not a directory (give a run directory)")

    def find(self, *names: str) -> Path | None:
        """The first of ``names`` (relative paths) that exists in the run directory."""
        for name in names:
            p = self.path / name
            if p.is_file():
                rel = str(p.relative_to(self.path))
                if rel not in self.used:
                    self.used.append(rel)
                return p
        return None

    def json(self, *names: str) -> Any | None:
        """Parsed JSON of the first existing file of ``names``, else ``None``."""
        p = self.find(*names)
        return None if p is None else read_json(p)

    def jsonl(self, fields: dict, *names: str) -> list[dict] | None:
        """Checked rows of the first existing JSONL file of ``names``; ``None`` if absent or empty."""
        p = self.find(*names)
        rows = None if p is None else read_jsonl(p, fields)
        return rows or None

    @cached_property
    def model_meta(self) -> dict | None:
        """``rewardlab.json`` of the run's model (the run directory itself or ``model/``)."""
        meta = self.json("rewardlab.json", "model/rewardlab.json")
        if meta is not None and not isinstance(meta.get("model"), dict):
            raise DataError(str(self.find("rewardlab.json", "model/rewardlab.json")), "model", "is missing")
        return meta

    @cached_property
    def results(self) -> tuple[str, list[dict]] | None:
        """``results.jsonl`` of a recipe: ``("multi_objective" | "data_efficiency" | "other", rows)``."""
        p = self.find("results.jsonl")
        rows = read_jsonl(p, {}) if p is not None else []
        if not rows:
            return None
        for kind, keys, fields in (
            ("multi_objective", {"experiment", "sets"}, MULTI_OBJECTIVE_FIELDS),
            ("data_efficiency", {"set", "method", "n"}, DATA_EFFICIENCY_FIELDS),
        ):
            if keys <= set(rows[0]):
                return kind, read_jsonl(p, fields)
        return "other", rows  # another recipe's rows: drawn as a plain table
