"""End-to-end CLI runs on the REAL embedded SmolLM2-135M with a few bundled prompts.

Each command runs with only --data/--out/--limit, ``--model smollm2`` (the fast model; the default,
qwen2.5-1.5b, is checked end to end in tests/feedback/test_default_llm.py) plus a tiny
--max-new-tokens (and a private cache), writes pairs that ``load_pairs`` (hence ``rewardlab
train``) accepts, and resumes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from feedback_fakes import read_jsonl
from typer.testing import CliRunner

from rewardlab.cli.main import app
from rewardlab.data.bundled import hh_splits
from rewardlab.data.load import load_pairs

runner = CliRunner()
FAST = ["--model", "smollm2"]


def rewardlab(*args: str) -> str:
    res = runner.invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res.output


@pytest.fixture(scope="module")
def short(tmp_path_factory) -> dict[str, Path]:
    """The 3 shortest bundled HH-train pairs (CPU time), as a pair file and a prompt file."""
    pairs = sorted(hh_splits()["train"], key=lambda p: len(str(p.prompt)) + len(p.chosen))[:3]
    folder = tmp_path_factory.mktemp("short")
    files = {"pairs": folder / "pairs.jsonl", "prompts": folder / "prompts.jsonl"}
    files["pairs"].write_text("".join(json.dumps(p.to_dict()) + "\n" for p in pairs))
    files["prompts"].write_text("".join(json.dumps({"prompt": p.prompt}) + "\n" for p in pairs))
    return files


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """One generation cache for the module: later commands reuse earlier samples (as in use)."""
    return tmp_path_factory.mktemp("llm-cache") / "cache.sqlite"


def run_twice(cache: Path, args: list, out: Path, gen: bool = True) -> list[dict]:
    """Run, check valid pairs, rerun with the same --out: same rows, none duplicated."""
    common = ["--out", out, "--cache-path", cache]
    common += ["--max-new-tokens", "8"] if gen else []
    rewardlab(*args, *common)
    first = read_jsonl(out)
    if first:
        assert len(load_pairs(out)) == len(first)
    rewardlab(*args, *common)
    again = read_jsonl(out)
    assert again == first
    assert len({r["_key"] for r in again}) == len(again)
    return first


@pytest.mark.slow
def test_critique_cli(tmp_path: Path, cache: Path, short: dict) -> None:
    args = ["critique", "--data", short["pairs"], "--limit", "2", *FAST]
    rows = run_twice(cache, args, tmp_path / "c.jsonl")
    assert len(rows) == 2
    assert all(set(r["critiques"]) == {"chosen", "rejected"} for r in rows)
    assert all(r["metadata"]["critique"]["qc"] is not None for r in rows)


@pytest.mark.slow
def test_critique_cli_degraded(tmp_path: Path, cache: Path, short: dict) -> None:
    out = tmp_path / "s.jsonl"
    args = ["critique", "--data", short["pairs"], "--limit", "2", "--degrade", "shuffle", *FAST]
    rows = run_twice(cache, args, out)
    assert [r["metadata"]["critique"]["degrade"] for r in rows] == ["shuffle"] * 2


@pytest.mark.slow
def test_judge_cli(tmp_path: Path, cache: Path, short: dict) -> None:
    args = [
        "judge",
        "--data",
        short["pairs"],
        "--limit",
        "2",
        "--principles",
        "helpfulness,toxicity",
        *FAST,
    ]
    rows = run_twice(cache, args, tmp_path / "j.jsonl", gen=False)
    assert len(rows) == 2
    for r in rows:
        assert set(r["labels"]) == {"helpfulness", "toxicity"}
        assert all(0.0 <= v <= 1.0 for v in r["labels"].values())


@pytest.mark.slow
def test_judge_cli_calibrated(tmp_path: Path, cache: Path, short: dict) -> None:
    """--calibrate-on with the real model: the labelled pairs are judged into OUT.calibration.jsonl,
    one scale per principle is fitted, and every label is σ(a·z) of its own p_ab / p_ba."""
    from rewardlab.feedback.calibration import calibrate, fit_scale, order_logodds

    out = tmp_path / "j.jsonl"
    args = ["judge", "--data", short["pairs"], "--limit", "2", "--principles", "helpfulness", *FAST]
    rows = run_twice(cache, [*args, "--calibrate-on", short["pairs"]], out, gen=False)
    lab = read_jsonl(Path(f"{out}.calibration.jsonl"))
    assert len(lab) == 3
    z_lab = [
        order_logodds(
            r["metadata"]["judge"]["helpfulness"]["p_ab"], r["metadata"]["judge"]["helpfulness"]["p_ba"]
        )
        for r in lab
    ]
    scale = fit_scale(z_lab, [1.0] * 3)
    for r in rows:
        assert r["metadata"]["judge_calibration"]["helpfulness"] == {"scale": scale, "pairs": 3}
        rec = r["metadata"]["judge"]["helpfulness"]
        want = calibrate([order_logodds(rec["p_ab"], rec["p_ba"])], scale)[0]
        assert r["labels"]["helpfulness"] == pytest.approx(want)


@pytest.mark.slow
@pytest.mark.parametrize("method", ["rmboost", "rlaif"])
def test_generate_cli(tmp_path: Path, cache: Path, short: dict, method: str) -> None:
    out = tmp_path / f"{method}.jsonl"
    args = ["generate", method, "--data", short["prompts"], *FAST]
    rewardlab(*args, "--limit", "1", "--out", out, "--cache-path", cache, "--max-new-tokens", "8")
    partial = read_jsonl(out)
    rows = run_twice(cache, [*args, "--limit", "2"], out)  # resumes: the first row is kept
    assert rows[: len(partial)] == partial and len(rows) <= 2
    assert all(r["source"] == method for r in rows)


@pytest.fixture(scope="module")
def rm_dir(tmp_path_factory) -> Path:
    """An (untrained) MiniLM reward model saved the standard way."""
    from rewardlab.models.config import ModelConfig
    from rewardlab.models.reward_model import RewardModel

    path = tmp_path_factory.mktemp("rm")
    RewardModel.build(ModelConfig()).save(path)
    return path


@pytest.mark.slow
def test_west_of_n_cli(tmp_path: Path, cache: Path, short: dict, rm_dir: Path) -> None:
    args = ["generate", "west-of-n", "--data", short["prompts"], "--limit", "2", "--model", rm_dir]
    args += ["--n", "2", "--llm-model", "smollm2"]
    rows = run_twice(cache, args, tmp_path / "w.jsonl")
    for r in rows:
        assert r["source"] == "west-of-n" and len(r["metadata"]["west_of_n"]["rewards"]) == 2


def test_bad_input_names_file_line_field(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "ok"}) + "\n" + json.dumps({"question": "x"}) + "\n")
    res = runner.invoke(app, ["generate", "rmboost", "--data", str(bad), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert f"{bad}:2" in res.output and "'prompt'" in res.output
    res = runner.invoke(app, ["judge", "--data", str(bad), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "chosen" in res.output


def test_missing_required_flags() -> None:
    res = runner.invoke(app, ["critique"])
    assert res.exit_code != 0 and "data" in res.output


@pytest.mark.slow
def test_kill_and_resume_real_job(tmp_path: Path, cache: Path, short: dict) -> None:
    """SIGKILL `generate rmboost` after its first row; the rerun completes, nothing lost or doubled."""
    out = tmp_path / "k.jsonl"
    cmd = [sys.executable, "-m", "rewardlab.cli", "generate", "rmboost", "--data", str(short["prompts"])]
    cmd += FAST
    cmd += [
        "--out",
        str(out),
        "--chunk",
        "1",
        "--max-new-tokens",
        "8",
        "--cache-path",
        str(tmp_path / "k.db"),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if out.exists() and out.read_text().count("\n") >= 1:
            break
        time.sleep(0.2)
    proc.kill()
    proc.wait()
    before = read_jsonl(out) if out.exists() else []
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=400)
    after = read_jsonl(out)
    assert after[: len(before)] == before
    keys = [r["_key"] for r in after]
    assert len(keys) == len(set(keys)) and len(after) <= 3
    assert {k.split(":")[0] for k in keys} <= {"0", "1", "2"}
