"""The GRPO recipe end to end, in miniature: the real embedded SmolLM2 policy, two GRPO steps on
bundled prompts against a saved multi-head RM (scalarized) with a saved gold RM beside it."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch

RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "grpo.py"


def _recipe():
    spec = importlib.util.spec_from_file_location("grpo_recipe", RECIPE)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.slow
def test_grpo_recipe_two_steps(multi_dir, scalar_dir, tmp_path):
    recipe = _recipe()
    out = tmp_path / "grpo"
    argv = ["--out", str(out), "--rm", multi_dir, "--gold", scalar_dir, "--steps", "2", "--prompts", "4"]
    argv += ["--prompts-per-step", "1", "--num-generations", "2", "--max-completion-length", "8"]
    argv += ["--lr", "1e-4", "--save-steps", "0", "--scalarizer", "worst_case", "--eval-pairs", "3"]
    argv += ["--compare-prompts", "2", "--compare-samples", "2"]
    trainer = recipe.main(argv)

    rows = [json.loads(ln) for ln in (out / "grpo_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    for r in rows:
        assert set(r) == {"step", "reward", "gold_reward", "reward_std"}
        assert all(
            isinstance(r[k], float) and math.isfinite(r[k]) for k in ("reward", "gold_reward", "reward_std")
        )
    assert (out / "grpo_curve.png").stat().st_size > 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["reward"]["steps"] == 2 and summary["gold_reward"]["steps"] == 2
    assert set(summary["rm_eval"]) == {"hh-test", "pandalm-test", "qafeedback-test"}
    assert all(0 <= m["accuracy"] <= 1 for s in summary["rm_eval"].values() for m in s.values())
    ba = summary["before_after"]
    assert ba["prompts"] == 2 and all(
        math.isfinite(ba[f]["delta"]) for f in ("proxy", "gold", "length_chars")
    )

    before, _ = recipe.load_policy()
    after = dict(trainer.model.named_parameters())
    changed = [n for n, p in before.named_parameters() if not torch.equal(p, after[n].detach())]
    assert len(changed) > len(after) // 2  # the policy was trained (AdamW moves every weight with a gradient)
