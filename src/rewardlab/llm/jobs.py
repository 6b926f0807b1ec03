"""Resumable generation jobs: a map over rows into an append-only JSONL file.

Every output row carries its item's key (field ``_key``). Rows are appended one batch at a time
with ``flush`` + ``fsync``, so a job killed at any moment loses at most the batch in flight. On a
rerun with the same output file the rows already written are kept, their items skipped, and a torn
last line (a crash in the middle of a write) is truncated away first. A lock file stops two
processes from running the same job at once.

Resume keys name items, not the settings that produced their rows, so a job given a ``config``
(everything its rows depend on: model, sampling, templates, options) records it beside the output
in ``<out>.meta.json`` before writing any row. A rerun into the same file with another
configuration is refused with :class:`ConfigMismatch` naming what changed, instead of returning
the old rows as if new; :func:`discard_output` (the CLI's ``--overwrite``) starts afresh.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rewardlab.data.schema import DataError

log = logging.getLogger(__name__)

KEY_FIELD = "_key"
META_SUFFIX = ".meta.json"
META_FORMAT = 1


class ConfigMismatch(ValueError):
    """An output file holds rows written with another configuration than the one given now."""


def meta_path(out: str | Path) -> Path:
    """The configuration record beside an output file: ``<out>.meta.json``."""
    out = Path(out)
    return out.with_name(out.name + META_SUFFIX)


def canonical(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` as it reads back from JSON (tuples → lists, paths → strings, sorted keys)."""
    return json.loads(json.dumps(config, sort_keys=True, ensure_ascii=False, default=str))


def config_diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted paths where two JSON values differ, as ``"path: old → new"`` lines."""
    if isinstance(old, dict) and isinstance(new, dict):
        lines: list[str] = []
        for k in sorted(set(old) | set(new)):
            where = f"{prefix}.{k}" if prefix else str(k)
            lines += config_diff(old.get(k, "<absent>"), new.get(k, "<absent>"), where)
        return lines
    return [] if old == new else [f"{prefix or '<config>'}: {old!r} → {new!r}"]


def check_config(out: Path, config: dict[str, Any], n_rows: int) -> None:
    """Refuse ``config`` when ``out`` holds rows written under another; record it otherwise.

    Raises :class:`ConfigMismatch` naming the file and each changed field. Called under the job
    lock before any row is written, so a job killed at any point resumes under the same record.
    """
    new, meta = canonical(config), meta_path(out)
    old = json.loads(meta.read_text(encoding="utf-8")).get("config") if meta.exists() else None
    if old == new:
        return
    if n_rows:
        how = "pass --overwrite (CLI) or call discard_output() to start afresh, or choose another --out"
        if old is None:
            raise ConfigMismatch(
                f"{out}: holds {n_rows} row(s) but no record of the configuration that wrote them "
                f"({meta.name} is missing), so they cannot be resumed safely; {how}"
            )
        changes = config_diff(old, new)
        shown = "; ".join(changes[:8]) + (f"; … {len(changes) - 8} more" if len(changes) > 8 else "")
        raise ConfigMismatch(
            f"{out}: its {n_rows} row(s) were written with another configuration ({shown}); {how}"
        )
    _write_meta(meta, new)


def _write_meta(meta: Path, config: dict[str, Any]) -> None:
    """Write the record atomically (temp file, fsync, rename)."""
    tmp = meta.with_name(meta.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump({"format": META_FORMAT, "config": config}, f, indent=1, sort_keys=True, ensure_ascii=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, meta)


def discard_output(out: str | Path) -> bool:
    """Delete a job's output and its configuration record (under the job lock).

    Returns whether anything was there."""
    out = Path(out)
    if not out.exists() and not meta_path(out).exists():
        return False
    with _job_lock(out):
        for path in (out, meta_path(out)):
            path.unlink(missing_ok=True)
    log.warning("%s: discarded the earlier output (--overwrite)", out)
    return True


def repair_tail(path: Path) -> int:
    """Truncate a torn last line (no trailing newline) from ``path``; return the bytes removed."""
    if not path.exists():
        return 0
    with open(path, "rb+") as f:
        size = f.seek(0, os.SEEK_END)
        if size == 0:
            return 0
        f.seek(size - 1)
        if f.read(1) == b"\n":
            return 0
        # walk back to the last newline
        pos, chunk = size, 1 << 16
        while pos > 0:
            start = max(0, pos - chunk)
            f.seek(start)
            cut = f.read(pos - start).rfind(b"\n")
            if cut >= 0:
                keep = start + cut + 1
                break
            pos = start
        else:
            keep = 0
        f.truncate(keep)
        f.flush()
        os.fsync(f.fileno())
    log.warning("%s: removed a torn last line (%d bytes) left by an interrupted run", path, size - keep)
    return size - keep


def read_done(path: Path, key_field: str = KEY_FIELD) -> list[dict[str, Any]]:
    """The rows already in ``path`` (after :func:`repair_tail`); each must carry ``key_field``."""
    rows: list[dict[str, Any]] = []
    if not path.exists():
        return rows
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{n}", None, f"not valid JSON ({e.msg})") from None
            if not isinstance(row, dict) or key_field not in row:
                raise DataError(f"{path}:{n}", key_field, "is missing: not a rewardlab job output")
            rows.append(row)
    return rows


@contextmanager
def _job_lock(path: Path) -> Iterator[None]:
    """An exclusive, non-blocking lock on ``<out>.lock`` (POSIX; a no-op elsewhere)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    lock_path = path.with_name(path.name + ".lock")
    with open(lock_path, "a") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise RuntimeError(f"another process is writing {path} (lock {lock_path})") from None
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def _append(path: Path, rows: list[dict[str, Any]]) -> None:
    """Append ``rows`` as JSONL in one write, then flush and fsync."""
    blob = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    with open(path, "a", encoding="utf-8") as f:
        f.write(blob)
        f.flush()
        os.fsync(f.fileno())


def resumable_map(
    items: list[dict[str, Any]],
    fn: Callable[[list[dict[str, Any]]], list[dict[str, Any] | None]],
    out_path: str | Path,
    key: Callable[[dict[str, Any]], str],
    batch_size: int = 8,
    desc: str | None = None,
    key_field: str = KEY_FIELD,
    progress: bool = True,
    config: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Apply ``fn`` to ``items`` in batches, appending its rows to ``out_path``; resume on rerun.

    ``key(item)`` is a stable, unique id. ``fn(batch)`` returns one output row (a dict) per item,
    in order; ``None`` means the item yields no row this run (it is retried on the next run).
    Each row is written with ``key_field`` set to its item's key. Items whose key is already in
    ``out_path`` are skipped. Returns the output rows of ``items`` in item order (rows from
    earlier runs included).

    ``config`` (JSON-able) is what the rows depend on: it is recorded in ``<out>.meta.json`` and
    a rerun with another one raises :class:`ConfigMismatch` (see :func:`check_config`).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    keys = [str(key(it)) for it in items]
    if len(set(keys)) != len(keys):
        dup = next(k for k in keys if keys.count(k) > 1)
        raise ValueError(f"key() must be unique per item; {dup!r} repeats")
    with _job_lock(out):
        repair_tail(out)
        done = {r[key_field]: r for r in read_done(out, key_field)}
        if config is not None:
            check_config(out, config, len(done))
        todo = [(k, it) for k, it in zip(keys, items, strict=True) if k not in done]
        if done:
            log.info("%s: resuming, %d of %d item(s) already done", out, len(keys) - len(todo), len(keys))
        bar = _progress(len(keys), len(keys) - len(todo), desc or out.name, progress)
        try:
            for s in range(0, len(todo), batch_size):
                chunk = todo[s : s + batch_size]
                rows = fn([it for _, it in chunk])
                if len(rows) != len(chunk):
                    raise ValueError(f"fn returned {len(rows)} rows for a batch of {len(chunk)}")
                new = [{**r, key_field: k} for (k, _), r in zip(chunk, rows, strict=True) if r is not None]
                _append(out, new)
                done.update((r[key_field], r) for r in new)
                bar.update(len(chunk))
        finally:
            bar.close()
    return [done[k] for k in keys if k in done]


def _progress(total: int, initial: int, desc: str, enabled: bool) -> Any:
    """A tqdm bar (stderr), or a no-op stand-in when disabled."""
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="item", disable=not enabled)
