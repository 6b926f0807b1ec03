"""Helpers for LLM tests: tiny causal LMs built in code, real servers on loopback."""

from __future__ import annotations

import os
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import torch

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


def save_tiny_causal_lm(path: str | Path, seed: int = 0) -> str:
    """A 2-layer, hidden-16 random Llama causal LM with SmolLM2's tokenizer and chat template,
    initialised from ``seed`` and saved to ``path``."""
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    from rewardlab.assets import smollm2_path

    tok = AutoTokenizer.from_pretrained(str(smollm2_path()))
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=1,
        pad_token_id=tok.pad_token_id,
        eos_token_id=tok.eos_token_id,
    )
    LlamaForCausalLM(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return str(path)
