"""``--on-invalid drop`` on every command that reads pairs (evaluate, laplace, bon): one bad row in a
real set is dropped and logged with file:line:field instead of stopping the run."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from rewardlab.cli.main import app
from rewardlab.models.config import ModelConfig
from rewardlab.models.reward_model import RewardModel

GOOD = [
    {"prompt": "how do I fix my bike?", "chosen": "check the chain, please", "rejected": "no idea"},
    {"prompt": "is it safe?", "chosen": "yes, it is safe", "rejected": "go away"},
    {"prompt": "help me cook", "chosen": "boil the water first", "rejected": "burn it"},
]
BAD = {"prompt": "same?", "chosen": "identical", "rejected": "identical"}


@pytest.fixture(scope="module")
def saved_rm(tiny_bert, tmp_path_factory):
    """A tiny LoRA RM (2-layer BERT, hidden 16) saved the way ``rewardlab train`` saves it."""
    torch.manual_seed(0)
    rm = RewardModel.build(ModelConfig(backbone=tiny_bert, train_layers=1, lora_r=2, max_length=48))
    out = tmp_path_factory.mktemp("rm") / "m"
    rm.save(out)
    return out


@pytest.fixture
def pairs_file(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [GOOD[0], BAD, *GOOD[1:]]))
    return path


def _run(args):
    """Invoke the CLI; its log lines (the CLI configures logging to stderr) land in ``output``."""
    return CliRunner().invoke(app, args)


def test_evaluate_drops_the_identical_pair(saved_rm, pairs_file):
    model = str(saved_rm)
    res = _run(["evaluate", "--model", model, "--data", str(pairs_file), "--json"])
    assert res.exit_code == 2 and f"{pairs_file}:2: field 'rejected'" in res.output.replace("\n", "")
    res = _run(["evaluate", "--model", model, "--data", str(pairs_file), "--json", "--on-invalid", "drop"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.strip().splitlines()[-1])["n"] == 3
    assert f"dropped {pairs_file}:2: field 'rejected'" in res.output.replace("\n", "")


def test_laplace_drops_the_identical_pair(saved_rm, pairs_file):
    args = ["laplace", "--model", str(saved_rm), "--data", str(pairs_file), "--no-progress"]
    assert _run(args).exit_code == 2
    res = _run([*args, "--on-invalid", "drop"])
    assert res.exit_code == 0, res.output
    assert f"dropped {pairs_file}:2: field 'rejected'" in res.output.replace("\n", "")


def test_bon_drops_a_bad_row(saved_rm, tmp_path):
    data = tmp_path / "cands.jsonl"
    rows = [
        {"prompt": "p", "responses": ["a", "b"]},
        {"prompt": "q", "responses": []},
        {"prompt": "r", "responses": ["c"]},
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    args = [
        "bon",
        "--model",
        str(saved_rm),
        "--data",
        str(data),
        "--out",
        str(tmp_path / "o.jsonl"),
        "--k",
        "0",
    ]
    assert _run(args).exit_code == 2
    res = _run([*args, "--on-invalid", "drop"])
    assert res.exit_code == 0, res.output
    assert len((tmp_path / "o.jsonl").read_text().splitlines()) == 2
    assert f"dropped {data}:2: field 'responses'" in res.output.replace("\n", "")


def test_score_drops_the_identical_pair(saved_rm, pairs_file, tmp_path):
    out = tmp_path / "scores.jsonl"
    args = ["score", "--model", str(saved_rm), "--data", str(pairs_file), "--out", str(out)]
    assert _run(args).exit_code == 2
    res = _run([*args, "--on-invalid", "drop"])
    assert res.exit_code == 0, res.output
    assert len(out.read_text().splitlines()) == 6  # 3 valid pairs → chosen and rejected each
    assert f"{pairs_file}:2" in res.output.replace("\n", "")


def test_feedback_input_drops_the_identical_pair(pairs_file, caplog):
    """critique / judge read pairs through ``load_pair_input`` with the job's ``--on-invalid``."""
    from rewardlab.data.schema import DataError
    from rewardlab.feedback.common import JobIO, load_pair_input

    with pytest.raises(DataError, match=":2: field 'rejected'"):
        load_pair_input(pairs_file)
    with caplog.at_level("WARNING"):
        pairs = load_pair_input(pairs_file, on_invalid="drop")
    assert len(pairs) == 3 and f"{pairs_file}:2" in caplog.text
    with pytest.raises(ValueError, match="on_invalid"):
        JobIO(data=pairs_file, out=pairs_file.with_suffix(".out.jsonl"), on_invalid="skip")
    res = _run(["critique", "--help"])
    assert "--on-invalid" in res.output
