"""The default feedback LLM and judge are the ones the measurement chose, and they run end to end.

Measured (docs/results/judges/table.md, docs/notes/judges.md): Qwen2.5-Coder-1.5B-Instruct
(``qwen2.5-1.5b``) in bfloat16 with the float32 head, judge variant ``ab-fewshot``, 71.0 ± 8.9 % on
all 100 LLMBar Natural pairs. The slow test runs ``rewardlab judge`` with no --model on the two
shortest bundled LLMBar pairs with the model the set-up installed (scripts/setup.sh).
"""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import pytest
import torch
from feedback_fakes import read_jsonl
from typer.testing import CliRunner

from rewardlab.cli.main import app
from rewardlab.data.bundled import bundled_set
from rewardlab.feedback import JudgeConfig, RLAIFConfig
from rewardlab.feedback.judge_methods import DEFAULT_JUDGE_VARIANT, JUDGE_VARIANTS
from rewardlab.llm import DEFAULT_LOCAL_MODEL, BackendConfig, LocalBackend
from rewardlab.llm.chunked import CHUNKED_MODELS, PROVENANCE, copy_dir
from rewardlab.llm.local import cpu_has_bf16, resolve_dtype

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def measured_rows() -> list[dict]:
    """The rows of the committed judge table (model, variant, set, n, accuracy, pick-longer)."""
    rows = []
    for line in (ROOT / "docs/results/judges/table.md").read_text().splitlines()[2:]:
        if not line.startswith("|"):
            break  # the first table ends at its first non-row line
        cells = [c.strip() for c in line.strip("|").split("|")]
        model, variant, name, n, acc, longer = cells[:6]
        rows.append(
            {
                "model": model,
                "variant": variant,
                "set": name,
                "n": int(n),
                "accuracy": float(acc.split()[0]),
                "pick_longer": float(longer.split()[0]),
            }
        )
    return rows


def test_defaults_are_the_measured_judge() -> None:
    assert DEFAULT_LOCAL_MODEL == "qwen2.5-1.5b" and DEFAULT_JUDGE_VARIANT == "ab-fewshot"
    assert BackendConfig().model == DEFAULT_LOCAL_MODEL
    assert inspect.signature(LocalBackend).parameters["model"].default == DEFAULT_LOCAL_MODEL
    assert JudgeConfig().method == RLAIFConfig().method == DEFAULT_JUDGE_VARIANT
    assert JUDGE_VARIANTS[DEFAULT_JUDGE_VARIANT].template == "judge_fewshot"
    spec = CHUNKED_MODELS.get(DEFAULT_LOCAL_MODEL)
    assert spec.cpu_dtype == "bfloat16"
    # the committed measurement: this model, in its CPU dtype, with this variant, on >= 100 pairs
    label = f"{DEFAULT_LOCAL_MODEL}:{spec.cpu_dtype}"
    full = [
        r
        for r in measured_rows()
        if (r["model"], r["variant"], r["set"]) == (label, DEFAULT_JUDGE_VARIANT, "llmbar-natural")
        and r["n"] >= 100
    ]
    assert full and full[0]["accuracy"] >= 60.0 > full[0]["pick_longer"]


def test_auto_dtype_is_the_measured_one() -> None:
    cpu = torch.device("cpu")
    want = torch.bfloat16 if cpu_has_bf16() else torch.float32
    assert resolve_dtype("auto", cpu, DEFAULT_LOCAL_MODEL) == want
    assert resolve_dtype("auto", cpu, "smollm2") == torch.float32  # the fast model is unchanged
    assert resolve_dtype("auto", cpu, "qwen2.5-0.5b") == torch.float32  # not measured in bf16
    assert resolve_dtype("auto", torch.device("cuda")) == torch.bfloat16
    assert resolve_dtype("float32", cpu, DEFAULT_LOCAL_MODEL) == torch.float32


def test_cli_help_shows_the_defaults() -> None:
    res = runner.invoke(app, ["judge", "--help"], env={"COLUMNS": "400"})
    assert res.exit_code == 0
    text = re.sub(r"\s+", " ", res.output)
    assert "--method" in text and "(default: ab-fewshot)" in text
    assert all(v in text for v in JUDGE_VARIANTS)
    for cmd in (["critique"], ["judge"], ["generate", "rmboost"], ["generate", "rlaif"]):
        res = runner.invoke(app, [*cmd, "--help"], env={"COLUMNS": "400"})
        assert f"empty: {DEFAULT_LOCAL_MODEL} for local" in re.sub(r"\s+", " ", res.output), cmd
    res = runner.invoke(app, ["generate", "rlaif", "--help"], env={"COLUMNS": "400"})
    assert "(default: ab-fewshot)" in re.sub(r"\s+", " ", res.output)


def test_unknown_method_is_refused_naming_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="method: unknown 'best'.*ab-fewshot"):
        JudgeConfig(method="best")
    with pytest.raises(ValueError, match="both_orders"):
        JudgeConfig(method="score", both_orders=False)
    assert JudgeConfig(method="ab", both_orders=False).variant().options == {"both_orders": False}
    res = runner.invoke(app, ["judge", "--data", "llmbar", "--out", str(tmp_path / "o"), "--method", "x"])
    assert res.exit_code == 2 and "ab-fewshot" in res.output


@pytest.mark.slow
def test_judge_cli_with_the_default_model_writes_p_ab_p_ba(tmp_path: Path) -> None:
    """``rewardlab judge`` with no --model/--method: the set-up's verified copy of the default
    model, the ab-fewshot prompt, two short LLMBar pairs, both orders kept per principle."""
    pairs = sorted(bundled_set("llmbar"), key=lambda p: len(str(p.prompt)) + len(p.chosen) + len(p.rejected))
    data, out = tmp_path / "pairs.jsonl", tmp_path / "judged.jsonl"
    data.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in pairs[:2]))
    args = ["judge", "--data", data, "--out", out, "--principles", "helpfulness"]
    res = runner.invoke(app, [str(a) for a in [*args, "--cache-path", tmp_path / "c.sqlite"]])
    assert res.exit_code == 0, res.output + repr(res.exception)
    rows = read_jsonl(out)
    assert len(rows) == 2
    for r in rows:
        rec = r["metadata"]["judge"]["helpfulness"]
        assert 0.0 < rec["p_ab"] < 1.0 and 0.0 < rec["p_ba"] < 1.0
        assert r["labels"]["helpfulness"] == pytest.approx((rec["p_ab"] + 1.0 - rec["p_ba"]) / 2)
        assert r["metadata"]["judge_by"] == f"local:{DEFAULT_LOCAL_MODEL}"
        assert r["metadata"]["judge_method"] == DEFAULT_JUDGE_VARIANT
    assert len({r["metadata"]["judge"]["helpfulness"]["p_ab"] for r in rows}) == 2  # no tied grid
    meta = json.loads(out.with_name(out.name + ".meta.json").read_text())
    assert DEFAULT_LOCAL_MODEL in json.dumps(meta) and "judge_fewshot" in json.dumps(meta)
    # it ran from the verified copy in the measured dtype, with every chunk's provenance
    spec = CHUNKED_MODELS.get(DEFAULT_LOCAL_MODEL)
    dtype = str(resolve_dtype("auto", torch.device("cpu"), DEFAULT_LOCAL_MODEL)).removeprefix("torch.")
    prov = json.loads((copy_dir(DEFAULT_LOCAL_MODEL, dtype) / PROVENANCE).read_text())
    assert prov["sha256"] == spec.sha256 and prov["dtype"] == dtype
    assert len(prov["chunks"]) == len(spec.packages)
