"""Low-level readers: JSONL (gz ok), JSON arrays, Parquet, saved HF datasets."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

from rewardlab.data.schema import DataError


def _open(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def read_records(path: Path):
    """Yield ``(where, record)`` from a JSONL / JSON / Parquet file or a saved HF dataset dir."""
    path = Path(path)
    if not path.exists():
        raise DataError(str(path), None, "file not found")
    if path.is_dir():
        yield from _read_hf_dataset(path)
        return
    suffixes = [s for s in path.suffixes if s != ".gz"]
    kind = suffixes[-1] if suffixes else ""
    if kind == ".parquet":
        yield from _read_parquet(path)
    elif kind == ".json":
        yield from _read_json(path)
    else:
        yield from _read_jsonl(path)


def iter_jsonl(path: str | Path, allow_empty: bool = False):
    """Yield ``(where, record)`` for every non-blank line of a JSONL file (gz ok), ``where`` =
    ``"file:line"``; a line that is not JSON raises ``DataError`` naming file and line, and so does
    a file with no records unless ``allow_empty``."""
    path, n = Path(path), 0
    with _open(path) as f:
        for i, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                rec: Any = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{i}", None, f"invalid JSON ({e.msg} at column {e.colno})") from None
            n += 1
            yield f"{path}:{i}", rec
    if n == 0 and not allow_empty:
        raise DataError(str(path), None, "contains no records")


_read_jsonl = iter_jsonl


_SEP = re.compile(r"[\s,]*")


def _array_lines(text: str) -> list[int] | None:
    """The 1-based line on which each element of a top-level JSON array starts (None if the text
    is not a plain array), so errors can name ``file:line``."""
    dec = json.JSONDecoder()
    i = len(text) - len(text.lstrip())
    if not text.startswith("[", i):
        return None
    lines, pos, line = [], i + 1, 1 + text.count("\n", 0, i + 1)
    while True:
        start = _SEP.match(text, pos).end()  # type: ignore[union-attr]
        if start >= len(text) or text[start] == "]":
            return lines
        line += text.count("\n", pos, start)
        lines.append(line)
        _, end = dec.raw_decode(text, start)
        line += text.count("\n", start, end)
        pos = end


def _read_json(path: Path):
    with _open(path) as f:
        text = f.read()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(f"{path}:{e.lineno}", None, f"invalid JSON ({e.msg})") from None
    lines = _array_lines(text) if isinstance(data, list) else None
    if isinstance(data, dict):  # {"data": [...]} or {"train": [...]}
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise DataError(str(path), None, "expected a JSON array of records")
        data = lists[0]
    if not isinstance(data, list) or not data:
        raise DataError(str(path), None, "expected a non-empty JSON array of records")
    for i, rec in enumerate(data):
        yield (f"{path}:{lines[i]} [record {i}]" if lines else f"{path}[record {i}]"), rec


def _read_parquet(path: Path):
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    for i, rec in enumerate(table.to_pylist()):
        yield f"{path}[row {i}]", rec


def _read_hf_dataset(path: Path):
    import datasets

    ds = datasets.load_from_disk(str(path))
    if isinstance(ds, datasets.DatasetDict):
        ds = ds["train"] if "train" in ds else ds[next(iter(ds))]
    for i, rec in enumerate(ds):
        yield f"{path}[row {i}]", rec
