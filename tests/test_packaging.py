"""Packaging: optional dependencies are declared as extras that match what scripts/setup.sh installs,
and the parts that do not need laplace-torch (ensembles) work without it."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import textwrap
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

tomllib = pytest.importorskip("tomllib", reason="reads pyproject.toml with Python 3.11's tomllib")
ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
EXTRAS = PYPROJECT["optional-dependencies"]


def setup_installs() -> dict[str, str]:
    """Package name → requirement string for every package scripts/setup.sh installs by name."""
    found: dict[str, str] = {}
    for line in (ROOT / "scripts" / "setup.sh").read_text().splitlines():
        if not line.startswith('"${pip[@]}"'):
            continue
        for tok in shlex.split(line)[1:]:
            if tok.startswith("-") or tok.startswith(".") or tok == "constraints.txt":
                continue
            req = Requirement(tok)
            found[canonicalize_name(req.name)] = tok
    return found


def test_bayes_extra_matches_setup_script() -> None:
    installed_by_setup = setup_installs()
    bayes = {canonicalize_name(Requirement(r).name): r for r in EXTRAS["bayes"]}
    for name in ("laplace-torch", "backpack-for-pytorch", "curvlinops-for-pytorch", "asdfghjkl"):
        assert bayes[name] == installed_by_setup[name], f"{name}: pyproject and setup.sh pins differ"
    missing = set(bayes) - set(installed_by_setup) - {"scipy"}  # scipy comes with core deps
    assert not missing, f"[bayes] packages that scripts/setup.sh does not install: {missing}"


def test_constraints_pin_the_core_torch() -> None:
    core = next(r for r in PYPROJECT["dependencies"] if Requirement(r).name == "torch")
    pins = [ln.strip() for ln in (ROOT / "constraints.txt").read_text().splitlines()]
    assert core in pins


@pytest.mark.parametrize("extra", ["llm", "serve", "bayes"])
def test_extras_are_installed_here(extra: str) -> None:
    """What the tests need: every requirement of these extras, at a matching version."""
    for spec in EXTRAS[extra]:
        req = Requirement(spec)
        try:
            have = version(req.name)
        except PackageNotFoundError:
            pytest.fail(f"[{extra}] requirement {spec} is not installed (run scripts/setup.sh)")
        assert req.specifier.contains(have, prereleases=True), f"{spec}: installed {have}"


NO_LAPLACE = textwrap.dedent(
    """
    import builtins, json, sys, tempfile
    real_import = builtins.__import__

    def guarded(name, globals=None, locals=None, fromlist=(), level=0):
        if level == 0 and (name == "laplace" or name.startswith("laplace.")):
            raise ImportError(f"No module named {name!r} (blocked: laplace-torch not installed)")
        return real_import(name, globals, locals, fromlist, level)

    builtins.__import__ = guarded

    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    import rewardlab.bayes
    from rewardlab.assets import minilm_path
    from rewardlab.bayes import EnsembleConfig, train_ensemble
    from rewardlab.data.schema import PreferencePair
    from rewardlab.models.config import ModelConfig
    from rewardlab.models.reward_model import RewardModel

    path = tempfile.mkdtemp()
    tok = AutoTokenizer.from_pretrained(str(minilm_path()))
    cfg = BertConfig(vocab_size=tok.vocab_size, hidden_size=16, num_hidden_layers=2,
                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=128,
                     num_labels=1)
    torch.manual_seed(0)
    BertForSequenceClassification(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    rm = RewardModel.build(ModelConfig(backbone=path, train_layers=1, lora_r=2, lora_alpha=4,
                                       max_length=32, dtype="float64"))
    pairs = [PreferencePair(f"q {i}", "safe kind help " * (1 + i % 3), "bad steal " * (1 + i % 2))
             for i in range(12)]
    ens = train_ensemble(pairs, EnsembleConfig(members=2, epochs=1, batch_size=4, progress=False), rm=rm)
    r = ens.member_rewards(ens.rm.encode([p.prompt for p in pairs[:3]], [p.chosen for p in pairs[:3]]))
    try:
        rewardlab.bayes.fit_laplace
        laplace_error = None
    except ImportError as e:
        laplace_error = str(e)
    print(json.dumps({"shape": list(r.shape), "spread": float(r.std(0).max()),
                      "laplace_loaded": any(m.split(".")[0] == "laplace" for m in sys.modules),
                      "laplace_error": laplace_error}))
    """
)


def test_ensembles_train_without_laplace_torch() -> None:
    """With `import laplace` failing, rewardlab.bayes imports and a LoRA ensemble trains."""
    r = subprocess.run([sys.executable, "-c", NO_LAPLACE], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["shape"][:2] == [2, 3] and out["spread"] > 0  # two distinct members
    assert not out["laplace_loaded"]
    assert out["laplace_error"] is None or re.search("laplace", out["laplace_error"])
