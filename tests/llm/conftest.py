"""Shared fixtures: the embedded local backend and a real OpenAI-compatible server on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from rewardlab.llm import LocalBackend, OpenAIBackend

# One torch thread: on a 2-core machine shared with other work, two OpenMP threads per process
# oversubscribe the cores and a forward pass runs ~7x slower (measured 0.49 s vs 0.068 s).
THREADS = 1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Poll ``url`` until it answers 200, the process dies, or ``timeout`` passes."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with code {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{url} did not come up in {timeout}s")


@pytest.fixture(scope="session")
def local_backend() -> LocalBackend:
    """The embedded SmolLM2 on CPU, batch 4, one thread (see ``THREADS``)."""
    return LocalBackend("smollm2", device="cpu", batch_size=4, threads=THREADS)


def start_server(cmd: list[str], log: Path) -> Iterator[str]:
    """Run ``cmd`` (a server on ``port``), yield its base URL once it answers, stop it after."""
    port = cmd[cmd.index("--port") + 1]
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=dict(os.environ))
    try:
        wait_http(f"http://127.0.0.1:{port}/v1/models", proc)
        yield f"http://127.0.0.1:{port}/v1"
    except Exception:
        print(log.read_text())
        raise
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m rewardlab.llm.server`` over the embedded model on a free loopback port."""
    cmd = [
        sys.executable,
        "-m",
        "rewardlab.llm.server",
        "--port",
        str(free_port()),
        "--device",
        "cpu",
        "--batch-size",
        "4",
        "--threads",
        str(THREADS),
        "--no-cache",
    ]
    yield from start_server(cmd, tmp_path_factory.mktemp("server") / "server.log")


@pytest.fixture(scope="session")
def llamacpp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m llama_cpp.server`` over the embedded GGUF (skipped without llama-cpp-python)."""
    pytest.importorskip("llama_cpp.server.app", reason="needs llama-cpp-python[server]")
    from rewardlab.assets import smollm2_gguf

    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(smollm2_gguf()),
        "--model_alias",
        "smollm2",
        "--host",
        "127.0.0.1",
        "--port",
        str(free_port()),
        "--n_ctx",
        "2048",
        "--n_threads",
        str(THREADS),
        "--logits_all",
        "true",
    ]
    yield from start_server(cmd, tmp_path_factory.mktemp("llamacpp") / "server.log")


@pytest.fixture(params=["local", "openai", "openai-llamacpp"])
def backend(request: pytest.FixtureRequest):
    """Each backend over the same embedded model: in process, through the rewardlab server, and
    through llama.cpp's server when llama-cpp-python is installed."""
    if request.param == "local":
        return request.getfixturevalue("local_backend")
    server = "llm_server" if request.param == "openai" else "llamacpp_server"
    url = request.getfixturevalue(server)
    return OpenAIBackend(base_url=url, api_key="none", concurrency=4, timeout=120)
