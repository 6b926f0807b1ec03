"""A persistent generation cache (SQLite, WAL) and the backend wrapper that uses it.

Keys are sha256 of a canonical JSON of (key version, backend fingerprint, kind of call, messages,
parameters). The fingerprint (:func:`~rewardlab.llm.base.backend_fingerprint`) holds everything
about the backend that can change a reply: for a local model the digest of its weight files, dtype,
device and chat template; for a server its base URL and the fingerprint it reports. So two servers
serving different models under one name never share entries. With ``temperature == 0`` (greedy)
the seed and ``top_p`` do not change the reply, so they are left out of the key. WAL mode plus a
busy timeout makes one cache file safe to share between threads and processes (parallel jobs, a
crashed job and its rerun).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rewardlab.data.schema import Message
from rewardlab.llm.base import GenerationConfig, LLMBackend, backend_fingerprint

KEY_VERSION = 2  # bump when the key's content changes: old entries then simply miss


def cache_key(fingerprint: dict[str, Any], kind: str, messages: Any, params: dict[str, Any]) -> str:
    """sha256 hex digest of the canonical JSON of one request to the backend ``fingerprint``."""
    blob = json.dumps(
        {
            "v": KEY_VERSION,
            "backend": fingerprint,
            "kind": kind,
            "messages": messages,
            "params": params,
        },
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def gen_params(gen: GenerationConfig) -> dict[str, Any]:
    """The sampling parameters that can change a reply (greedy drops ``seed`` and ``top_p``)."""
    params = asdict(gen)
    if gen.temperature == 0:
        params.pop("seed")
        params.pop("top_p")
    return params


class GenerationCache:
    """A key → JSON value store in one SQLite file (WAL journal, safe across processes)."""

    def __init__(self, path: str | Path, timeout: float = 60.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            str(self.path), timeout=timeout, check_same_thread=False, isolation_level=None
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS cache (key TEXT PRIMARY KEY, value TEXT NOT NULL, "
            "created REAL NOT NULL)"
        )

    def get_many(self, keys: list[str]) -> dict[str, Any]:
        """The cached values of the ``keys`` that are present."""
        found: dict[str, Any] = {}
        uniq = list(dict.fromkeys(keys))
        with self._lock:
            for s in range(0, len(uniq), 500):  # stay under SQLite's variable limit
                chunk = uniq[s : s + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(
                    f"SELECT key, value FROM cache WHERE key IN ({marks})", chunk
                ).fetchall()
                found.update((k, json.loads(v)) for k, v in rows)
        return found

    def get(self, key: str) -> Any | None:
        """The cached value of ``key`` or ``None``."""
        return self.get_many([key]).get(key)

    def put_many(self, items: dict[str, Any]) -> None:
        """Store ``key → value`` pairs (JSON-serializable values) in one transaction."""
        now = time.time()
        rows = [(k, json.dumps(v, ensure_ascii=False), now) for k, v in items.items()]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.executemany("INSERT OR REPLACE INTO cache VALUES (?, ?, ?)", rows)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM cache").fetchone()[0]

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            self._db.close()


class CachedBackend:
    """Wrap an :class:`LLMBackend`: serve cache hits, send only the misses (deduplicated)."""

    def __init__(self, inner: LLMBackend, cache: GenerationCache) -> None:
        self.inner = inner
        self.cache = cache
        self.name = inner.name
        self.model = inner.model
        self.hits = 0
        self.misses = 0
        self._fingerprint: dict[str, Any] | None = None

    def fingerprint(self) -> dict[str, Any]:
        """The wrapped backend's :func:`~rewardlab.llm.base.backend_fingerprint` (computed once)."""
        if self._fingerprint is None:
            self._fingerprint = backend_fingerprint(self.inner)
        return self._fingerprint

    def _cached(self, keys: list[str], compute: Any) -> list[Any]:
        """Values for ``keys``; ``compute(indices)`` produces the missing ones, in order."""
        found = self.cache.get_many(keys)
        first: dict[str, int] = {}
        for i, k in enumerate(keys):
            if k not in found:
                first.setdefault(k, i)
        self.hits += len(keys) - len(first)
        self.misses += len(first)
        if first:
            values = compute(list(first.values()))
            new = dict(zip(first, values, strict=True))
            self.cache.put_many(new)
            found.update(new)
        return [found[k] for k in keys]

    def chat(self, conversations: list[list[Message]], gen: GenerationConfig) -> list[str]:
        """One reply per conversation; cached ones are not regenerated."""
        params = gen_params(gen)
        keys = [cache_key(self.fingerprint(), "chat", c, params) for c in conversations]
        return self._cached(keys, lambda idx: self.inner.chat([conversations[i] for i in idx], gen))

    def option_logprobs(
        self, conversations: list[list[Message]], options: list[str]
    ) -> list[dict[str, float]]:
        """Option log-probabilities per conversation, through the cache."""
        params = {"options": list(options)}
        keys = [cache_key(self.fingerprint(), "option_logprobs", c, params) for c in conversations]
        return self._cached(
            keys, lambda idx: self.inner.option_logprobs([conversations[i] for i in idx], options)
        )

    def __getattr__(self, attr: str) -> Any:
        # anything else (tokenizer, top_logprobs, ...) goes to the wrapped backend uncached
        if attr in ("inner", "_fingerprint"):
            raise AttributeError(attr)
        return getattr(self.inner, attr)
