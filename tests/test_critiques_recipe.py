"""recipes/critiques.py: the critique conditions (shuffled, LLM critics from a shipped file), the
datasets and eval sets, and one real (tiny) run with its report."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from rewardlab.data.bundled import bundled_set

RECIPES = Path(__file__).resolve().parents[1] / "recipes"
RECIPE = RECIPES / "critiques.py"


@pytest.fixture(scope="module")
def recipe():
    """The recipe's sources module (datasets, eval sets, conditions, critic files)."""
    sys.path.insert(0, str(RECIPES))
    try:
        spec = importlib.util.spec_from_file_location("critique_sources", RECIPES / "critique_sources.py")
        mod = importlib.util.module_from_spec(spec)
        sys.modules["critique_sources"] = mod
        spec.loader.exec_module(mod)
        yield mod
    finally:
        sys.path.remove(str(RECIPES))


def test_shuffled_critiques_are_a_derangement_over_responses(recipe) -> None:
    pairs = bundled_set("feedbackqa-validation")[:40]
    out = recipe.shuffle_critiques(pairs, seed=3)
    own = {recipe.response_key(p, s): p.critiques[s] for p in pairs for s in recipe.SIDES}
    moved = {recipe.response_key(p, s): p.critiques[s] for p in out for s in recipe.SIDES}
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
    summary = recipe.generate_critiques("smollm2", "feedbackqa", pairs, threads=1, batch=4)
    assert summary["pairs"] == 2 and summary["qc"]["critiques"] == 4
    rows = [json.loads(line) for line in recipe.critic_file("feedbackqa", "smollm2").open()]
    out = recipe.CONDITIONS.get("llm-135m").transform(pairs, 0, "feedbackqa")
    by_text = {(r["chosen"], r["rejected"]): r for r in rows}
    rows = [by_text[(p.chosen, p.rejected)] for p in pairs]  # the job writes the shortest pairs first
    for pair, new, row in zip(pairs, out, rows, strict=True):
        assert (new.prompt, new.chosen, new.rejected) == (pair.prompt, pair.chosen, pair.rejected)
        assert new.critiques == row["critiques"] and new.critiques != pair.critiques
        assert row["metadata"]["critique"]["template"] == "critique_brief.txt"
    with pytest.raises(SystemExit, match=r"feedbackqa-smollm2.jsonl: no smollm2 critique for 4 response"):
        recipe.CONDITIONS.get("llm-135m").transform(
            bundled_set("feedbackqa-validation")[2:4], 0, "feedbackqa"
        )
    # an eval set without FeedbackQA's ids: keyed by (prompt, response text), in its own file
    bar = recipe.EVAL_SETS.get("llmbar-natural")()[:1]
    recipe.generate_critiques("smollm2", "llmbar-natural", bar, threads=1, batch=4)
    (new,) = recipe.CONDITIONS.get("llm-135m").transform(bar, 0, "llmbar-natural")
    row = json.loads(recipe.critic_file("llmbar-natural", "smollm2").read_text())
    assert new.critiques == row["critiques"] and set(new.critiques) == {"chosen", "rejected"}


def test_missing_or_broken_critic_file_is_refused(recipe, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(recipe, "GENERATED", tmp_path)
    pairs = bundled_set("feedbackqa-validation")[:1]
    with pytest.raises(SystemExit, match="run: python recipes/critiques.py --generate qwen2.5-1.5b"):
        recipe.CONDITIONS.get("llm-1.5b").transform(pairs, 0, "feedbackqa")
    recipe.critic_file("feedbackqa", "qwen2.5-1.5b").write_text('{"critiques": {}}\n')
    with pytest.raises(SystemExit, match=r"feedbackqa-qwen2.5-1.5b.jsonl:1: not a critiqued pair \(KeyError"):
        recipe.CONDITIONS.get("llm-1.5b").transform(pairs, 0, "feedbackqa")


def test_human_needs_feedbackqa_and_shuffled_elsewhere_permutes_the_llm_critiques(
    recipe, tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setattr(recipe, "GENERATED", tmp_path)
    hh = bundled_set("hh-validation")[:6]
    with pytest.raises(SystemExit, match="only feedbackqa has them, not 'hh'"):
        recipe.CONDITIONS.get("human").transform(hh, 0, "hh")
    with pytest.raises(SystemExit, match=r"hh-qwen2.5-1.5b.jsonl: no qwen2.5-1.5b critique for 12 response"):
        recipe.CONDITIONS.get("shuffled").transform(hh, 0, "hh")
    critiqued = [
        p.to_dict() | {"critiques": {"chosen": f"c{i}", "rejected": f"r{i}"}} for i, p in enumerate(hh)
    ]
    recipe.critic_file("hh", "qwen2.5-1.5b").write_text("".join(json.dumps(r) + "\n" for r in critiqued))
    own = recipe.CONDITIONS.get("llm-1.5b").transform(hh, 0, "hh")
    assert [p.critiques for p in own] == [r["critiques"] for r in critiqued]
    moved = recipe.CONDITIONS.get("shuffled").transform(hh, 0, "hh")
    assert sorted(c for p in moved for c in p.critiques.values()) == sorted(
        c for r in critiqued for c in r["critiques"].values()
    )
    assert all(
        m.critiques[s] != o.critiques[s]
        for m, o in zip(moved, own, strict=True)
        for s in ("chosen", "rejected")
    )


@pytest.mark.slow
def test_recipe_trains_reports_and_refuses_a_changed_config(tmp_path: Path) -> None:
    """A tiny real run (MiniLM, FeedbackQA, human + none, HHH out of domain): rows, both tables,
    the plot; the human condition is in-domain only; a rerun with other settings is refused."""
    out = tmp_path / "run"
    cmd = [sys.executable, str(RECIPE), "--out", str(out), "--limit", "24", "--sizes", "16", "--seeds", "1"]
    cmd += [
        "--conditions",
        "human,none",
        "--eval-sets",
        "hhh",
        "--validation-pairs",
        "8",
        "--test-pairs",
        "0",
    ]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    rows = [json.loads(line) for line in (out / "results.jsonl").open()]
    assert [(r["condition"], r["size"]) for r in rows] == [("human", 16), ("none", 16)]
    assert "eval" not in rows[0] and 0 <= rows[1]["eval"]["hhh"]["accuracy"] <= 1
    table = (out / "table.md").read_text()
    assert (
        "### In domain: feedbackqa-test" in table
        and "### Out of domain: hhh (trained on feedbackqa)" in table
    )
    assert "lexicon read of each condition's test critiques" in table and "`human` " in table
    assert (out / "plot.png").read_bytes()[:4] == b"\x89PNG"
    res = subprocess.run([*cmd[:-2], "--test-pairs", "5"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 1 and "results were measured with other settings" in res.stderr


@pytest.mark.slow
def test_generate_then_train_an_llm_condition_on_a_pool(recipe, tmp_path: Path, monkeypatch) -> None:
    """``--generate`` critiques only the pool (not the whole train split), the validation and the
    test pairs; the LLM-critic condition then trains on them (real SmolLM2, real MiniLM)."""
    monkeypatch.setattr(recipe, "GENERATED", tmp_path / "generated")
    spec = importlib.util.spec_from_file_location("critiques_main", RECIPE)
    main = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(main)
    args = ["critiques.py", "--out", str(tmp_path / "run"), "--pool", "4", "--validation-pairs", "3"]
    args += ["--test-pairs", "5", "--sizes", "4", "--seeds", "1", "--conditions", "llm-135m,none"]
    monkeypatch.setattr(sys, "argv", [*args, "--generate", "smollm2", "--gen-batch", "8"])
    main.main()
    assert len(recipe.critic_file("feedbackqa", "smollm2").read_text().splitlines()) == 4 + 3 + 5
    monkeypatch.setattr(sys, "argv", args)
    main.main()
    rows = [json.loads(line) for line in (tmp_path / "run" / "results.jsonl").open()]
    assert [(r["condition"], r["size"]) for r in rows] == [("llm-135m", 4), ("none", 4)]
    assert "llm-135m" in (tmp_path / "run" / "table.md").read_text()


def _write_run(d: Path, dataset: str, accs: dict) -> Path:
    """A run directory of recipes/critiques.py: config.json + results.jsonl from
    {(condition, size, seed): (test accuracy, hhh accuracy)}."""
    d.mkdir(parents=True)
    (d / "config.json").write_text(json.dumps({"dataset": dataset}))
    rows = [
        {"condition": c, "size": z, "seed": s, "test": {"accuracy": t}, "eval": {"hhh": {"accuracy": h}}}
        for (c, z, s), (t, h) in accs.items()
    ]
    (d / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return d


def test_summary_pools_paired_gaps_over_training_sets(recipe, tmp_path: Path) -> None:
    """critiques_summary pairs each condition with `none` per (set, size, seed), pools the gaps
    over sets, keeps each set's largest size, and writes the table and plot."""
    import critiques_summary as cs

    a = _write_run(tmp_path / "a", "hh", {
        ("none", 50, 0): (0.50, 0.60), ("shuffled", 50, 0): (0.55, 0.50),
        ("none", 50, 1): (0.52, 0.60), ("shuffled", 50, 1): (0.56, 0.70),
        ("none", 100, 0): (0.60, 0.60), ("shuffled", 100, 0): (0.50, 0.60),
    })  # fmt: skip
    b = _write_run(tmp_path / "b", "pandalm", {
        ("none", 50, 0): (0.40, 0.50), ("shuffled", 50, 0): (0.46, 0.50),
        ("shuffled", 50, 1): (0.99, 0.99),  # no `none` for seed 1: not paired, not pooled
    })  # fmt: skip
    runs = dict(cs.load_run(d) for d in (a, b))
    pooled = cs.pooled_gaps(runs, "test")
    assert pooled[("shuffled", 50)]["gaps"] == pytest.approx([0.05, 0.04, 0.06])
    assert pooled[("shuffled", cs.LARGEST)]["gaps"] == pytest.approx([-0.10, 0.06])
    assert pooled[("shuffled", cs.LARGEST)]["sets"] == ["hh@100", "pandalm@50"]
    assert cs.pooled_gaps(runs, "hhh")[("shuffled", 50)]["gaps"] == pytest.approx([-0.10, 0.10, 0.0])
    cs.write_summary(runs, tmp_path / "out")
    text = (tmp_path / "out" / "table.md").read_text()
    assert "| 50 | **+5.0 ± 2.5** (3) | hh, pandalm |" in text  # t(0.975, 2) · 0.01 / √3
    assert "### Out of domain: hhh" in text
    assert (tmp_path / "out" / "plot.png").stat().st_size > 1000
    (tmp_path / "c").mkdir()
    with pytest.raises(SystemExit, match="config.json missing"):
        cs.load_run(tmp_path / "c")
    (b / "results.jsonl").write_text('{"condition": "none"}\nnot json\n')
    with pytest.raises(SystemExit, match=r"results.jsonl:2: not JSON"):
        cs.load_run(b)


@pytest.mark.slow
def test_all_runs_each_training_set_with_its_settings_then_the_summary(tmp_path: Path) -> None:
    """recipes/critiques_all.py: one critiques.py run per training set with the committed runs'
    settings (extra arguments after ``--`` win), each into its own directory, then the summary;
    an unknown training set is refused before anything runs."""
    script = RECIPES / "critiques_all.py"
    tiny = ["--limit", "24", "--sizes", "16", "--seeds", "1", "--conditions", "none"]
    tiny += ["--validation-pairs", "8", "--test-pairs", "0"]
    cmd = [sys.executable, str(script), "--out", str(tmp_path), "--datasets", "feedbackqa,pandalm"]
    res = subprocess.run([*cmd, "--", *tiny], capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr[-2000:]
    for dataset, pool in (("feedbackqa", 800), ("pandalm", 200)):
        run = tmp_path / f"critiques-{dataset}"
        cfg = json.loads((run / "config.json").read_text())
        assert (cfg["dataset"], cfg["pool"], cfg["eval_sets"]) == (dataset, pool, ["llmbar-natural", "hhh"])
        assert (cfg["validation_pairs"], cfg["limit"]) == (8, 24)
        rows = [json.loads(line) for line in (run / "results.jsonl").open()]
        assert [(r["condition"], r["size"], sorted(r["eval"])) for r in rows] == [
            ("none", 16, ["hhh", "llmbar-natural"])
        ]
    table = (tmp_path / "summary" / "table.md").read_text()
    assert "own test split): feedbackqa, pandalm" in table and "### Out of domain: hhh" in table
    assert (tmp_path / "summary" / "plot.png").read_bytes()[:4] == b"\x89PNG"
    bad = subprocess.run([*cmd[:-1], "hh,wiki"], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1 and "unknown ['wiki']" in bad.stderr
    assert not (tmp_path / "critiques-hh").exists()
