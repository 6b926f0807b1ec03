"""recipes/critiques.py: the critique conditions (shuffled, LLM critics from a shipped file)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from rewardlab.data.bundled import bundled_set

RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "critiques.py"


@pytest.fixture(scope="module")
def recipe():
    spec = importlib.util.spec_from_file_location("critiques_recipe", RECIPE)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["critiques_recipe"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_shuffled_critiques_are_a_derangement_over_responses(recipe) -> None:
    pairs = bundled_set("feedbackqa-validation")[:40]
    out = recipe.shuffle_critiques(pairs, seed=3)
    own = {recipe._response_key(p, s): p.critiques[s] for p in pairs for s in recipe.SIDES}
    moved = {recipe._response_key(p, s): p.critiques[s] for p in out for s in recipe.SIDES}
    assert set(moved) == set(own)
    assert sorted(moved.values()) == sorted(own.values())  # the same critiques, permuted
    assert all(moved[k] != own[k] for k in own if list(own.values()).count(own[k]) == 1)
    assert out == recipe.shuffle_critiques(pairs, seed=3)


@pytest.mark.slow
def test_llm_critic_condition_reads_the_generated_file(recipe, tmp_path: Path, monkeypatch) -> None:
    """--generate with the real SmolLM2 writes critiques for every response; the condition's
    transform puts each response's own LLM critique in place of the human one."""
    monkeypatch.setattr(recipe, "GENERATED", tmp_path)
    pairs = bundled_set("feedbackqa-validation")[:2]
    summary = recipe.generate_critiques("smollm2", pairs, threads=1, batch=4)
    assert summary["pairs"] == 2 and summary["qc"]["critiques"] == 4
    rows = [json.loads(line) for line in recipe.critic_file("smollm2").open()]
    out = recipe.CONDITIONS.get("llm-135m").transform(pairs, 0)
    for pair, new, row in zip(pairs, out, rows, strict=True):
        assert (new.prompt, new.chosen, new.rejected) == (pair.prompt, pair.chosen, pair.rejected)
        assert new.critiques == row["critiques"] and new.critiques != pair.critiques
        assert row["metadata"]["critique"]["template"] == "critique_brief.txt"
    with pytest.raises(SystemExit, match=r"feedbackqa-smollm2.jsonl: no smollm2 critique for 4 response"):
        recipe.CONDITIONS.get("llm-135m").transform(bundled_set("feedbackqa-validation")[2:4], 0)


def test_missing_or_broken_critic_file_is_refused(recipe, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(recipe, "GENERATED", tmp_path)
    pairs = bundled_set("feedbackqa-validation")[:1]
    with pytest.raises(SystemExit, match="run: python recipes/critiques.py --generate qwen2.5-1.5b"):
        recipe.CONDITIONS.get("llm-1.5b").transform(pairs, 0)
    recipe.critic_file("qwen2.5-1.5b").write_text('{"critiques": {}}\n')
    with pytest.raises(SystemExit, match=r"feedbackqa-qwen2.5-1.5b.jsonl:1: not a critiqued FeedbackQA pair"):
        recipe.CONDITIONS.get("llm-1.5b").transform(pairs, 0)
