"""Shared fixtures: the embedded local backend and a real OpenAI-compatible server on loopback."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest
from llm_helpers import THREADS, free_port, start_server

from rewardlab.llm import LocalBackend, OpenAIBackend


@pytest.fixture(scope="session")
def local_backend() -> LocalBackend:
    """The embedded SmolLM2 on CPU, batch 4, one thread (see ``THREADS``)."""
    return LocalBackend("smollm2", device="cpu", batch_size=4, threads=THREADS)


@pytest.fixture(scope="session")
def llm_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m rewardlab.llm.server`` over the embedded model on a free loopback port."""
    cmd = [
        sys.executable,
        "-m",
        "rewardlab.llm.server",
        "--model",
        "smollm2",
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
