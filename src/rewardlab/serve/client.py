"""A small keep-alive HTTP client for the reward server (stdlib only; one connection per client,
so use one client per thread)."""

from __future__ import annotations

import http.client
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


@dataclass
class Reply:
    """Status, headers (lower-cased names) and the decoded JSON body (``None`` if not JSON)."""

    status: int
    headers: dict[str, str]
    body: Any


class RewardClient:
    """``RewardClient("http://127.0.0.1:8000", token=None).post("/get_reward", {...})``."""

    def __init__(self, base_url: str, token: str | None = None, timeout: float = 180.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {base_url!r}")
        self.https, self.host, self.port = parts.scheme == "https", parts.hostname, parts.port
        self.prefix = parts.path.rstrip("/")
        self.token, self.timeout = token, timeout
        self._conn: http.client.HTTPConnection | None = None

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self.https else http.client.HTTPConnection
            self._conn = cls(self.host, self.port, timeout=self.timeout)
        return self._conn

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> Reply:
        """One request (raw body); reconnects once if the kept-alive connection was closed."""
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        if self.token:
            hdrs.setdefault("Authorization", f"Bearer {self.token}")
        for attempt in (0, 1):
            conn = self._connection()
            try:
                conn.request(method, self.prefix + path, body=body, headers=hdrs)
                resp = conn.getresponse()
                data = resp.read()
                break
            except (ConnectionError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise
        try:
            parsed = json.loads(data) if data else None
        except json.JSONDecodeError:
            parsed = None
        if resp.getheader("connection", "").lower() == "close":
            self.close()
        return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, parsed)

    def post(self, path: str, obj: Any) -> Reply:
        """POST ``obj`` as JSON."""
        return self.request("POST", path, json.dumps(obj).encode())

    def get(self, path: str) -> Reply:
        """GET ``path``."""
        return self.request("GET", path)

    def close(self) -> None:
        """Close the connection (the next request opens a new one)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None
