"""The report in a real browser (Debian's headless Chromium, installed by scripts/setup.sh; never
skipped): every image decoded, no console message, a screenshot that is not blank — for a
demo-like run (the real ``run_demo`` on a tiny backbone), for recipe outputs (the committed
multi-objective results, a real knowledge RM with ``rewardlab explain`` output, data-efficiency
rows) and for a run with every evaluation, best-of-n and GRPO section."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
from report_browser import check_page, nonblank
from report_runs import data_efficiency_files, evaluated_run, grpo_log, overoptimization_files

from rewardlab.demo import DemoConfig, run_demo
from rewardlab.models.config import ModelConfig
from rewardlab.report import write_report
from rewardlab.train.config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]


def assert_loads_cleanly(page: Path, work: Path, min_images: int) -> list[str]:
    """Every <img> of ``page`` decoded with a real size, no console line, a non-blank screenshot;
    returns the section titles."""
    text = page.read_text()
    check = check_page(page, work)
    assert len(check.images) == text.count("<img ") >= min_images
    broken = [i for i in check.images if not (i["complete"] and i["width"] > 0 and i["height"] > 0)]
    assert broken == []
    assert check.console == []
    assert nonblank(check.screenshot) > 0.05
    return re.findall(r"<h2>(.*?)</h2>", text)


def test_the_check_catches_broken_images_and_console_errors(tmp_path):
    """The harness fails a page with a broken image, an outside image and a script error."""
    page = tmp_path / "bad.html"
    page.write_text(
        '<!DOCTYPE html><html><head><meta http-equiv="Content-Security-Policy" content="default-src '
        "'none'; img-src data:; script-src 'unsafe-inline'\"></head><body>"
        '<img src="data:image/png;base64,AAAA" alt="broken"><img src="http://example.invalid/x.png">'
        "<script>console.error('boom')</script></body></html>"
    )
    check = check_page(page, tmp_path / "w")
    assert [i["width"] for i in check.images] == [0, 0]
    assert any("boom" in c for c in check.console) and any("example.invalid" in c for c in check.console)


def test_full_run_report_in_chromium(tiny_bert, tmp_path):
    run = evaluated_run(tmp_path / "run", tiny_bert)
    overoptimization_files(run)
    grpo_log(run)
    titles = assert_loads_cleanly(write_report(run), tmp_path / "w", 6)
    assert "Calibration: reliability diagrams" in titles and "GRPO: reward during RL" in titles


def test_demo_writes_a_report_that_loads(tiny_bert, tmp_path):
    """``run_demo`` (the real main job, tiny backbone, a few pairs) writes pair rewards and report.html."""
    demo = DemoConfig(train_limit=12, eval_limit=10, eval_sets=["hh-test", "llmbar"])
    model = ModelConfig(backbone=tiny_bert, max_length=64, lora_r=2)
    out = tmp_path / "demo"
    metrics = run_demo(demo, model, TrainConfig(epochs=1, batch_size=4, progress=False, save_steps=0), out)
    rows = [json.loads(x) for x in (out / "pair_rewards.jsonl").read_text().splitlines()]
    assert [r["set"] for r in rows] == ["hh-test"] * 10 + ["llmbar"] * 10
    hh = [r for r in rows if r["set"] == "hh-test"]
    assert sum(r["chosen"] > r["rejected"] for r in hh) / 10 == pytest.approx(
        metrics["sets"]["hh-test"]["accuracy"]
    )
    titles = assert_loads_cleanly(out / "report.html", tmp_path / "w", 4)
    assert titles[:4] == [
        "Evaluation: RM vs length heuristics",
        "Per source, subset and objective",
        "Calibration: reliability diagrams",
        "Chosen vs rejected rewards",
    ]


def test_recipe_outputs_report_in_chromium(tmp_path):
    """The committed multi-objective results; a knowledge RM (real, 40 SummEval-OP pairs) with a
    saved ``rewardlab explain --json``; data-efficiency rows in the recipe's format."""
    from rewardlab.data.bundled import bundled_set
    from rewardlab.knowledge import explain_pair, train_knowledge

    mo = tmp_path / "multi_objective"
    mo.mkdir()
    shutil.copy(ROOT / "docs/results/multi_objective/results.jsonl", mo)
    pairs = bundled_set("summeval-train")[:40]
    rm = train_knowledge(pairs, out=mo / "model")
    p = bundled_set("summeval-test")[0]
    (mo / "explain.json").write_text(json.dumps(explain_pair(rm, p.prompt, p.chosen, p.rejected)))
    page = write_report(mo)
    titles = assert_loads_cleanly(page, tmp_path / "w1", 4)  # 2 result panels, weights, contributions
    assert {
        "Recipe results",
        "Model",
        "Feature contributions to one comparison",
    } <= set(titles)
    text = page.read_text()
    assert "62.9 ± 1.6" in text  # mix / harmless on hh-test, as in docs/results/multi_objective/table.md
    assert "longer wins" in text and "Features (general, opinion_summary" in text

    de = tmp_path / "data_efficiency"
    de.mkdir()
    data_efficiency_files(de)
    titles = assert_loads_cleanly(write_report(de), tmp_path / "w2", 2)
    assert titles == ["Recipe results"]
