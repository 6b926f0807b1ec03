"""Every feedback job records its configuration beside --out and refuses to resume under another
(fake backend: this tests the orchestration, not the LLM)."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from feedback_fakes import FakeBackend, make_pairs, read_jsonl
from typer.testing import CliRunner

from rewardlab.cli.main import app
from rewardlab.feedback import (
    CritiqueConfig,
    JudgeConfig,
    RLAIFConfig,
    RMBoostConfig,
    WestOfNConfig,
    critique_pairs,
    generate_rlaif,
    generate_rmboost,
    generate_west_of_n,
    judge_pairs,
)
from rewardlab.feedback.common import PromptItem
from rewardlab.llm import BACKENDS
from rewardlab.llm.base import GenerationConfig
from rewardlab.llm.jobs import ConfigMismatch, discard_output, meta_path

PAIRS = make_pairs(4)
ITEMS = [PromptItem(f"Explain idea {i}.", f"p.jsonl:{i + 1}") for i in range(3)]
GEN = GenerationConfig(max_new_tokens=16)


def by_text_order(conv: list[dict]) -> tuple[float, float]:
    """A judge that prefers the alphabetically first response (no ties, in both orders)."""
    a, b = conv[0]["content"].split("### Response A")[1].split("### Response B")
    return (math.log(0.7), math.log(0.3)) if a < b else (math.log(0.3), math.log(0.7))


def fake(model: str = "fake-1") -> FakeBackend:
    # replies differ in length with the seed, so a length-scoring RM never ties
    reply = lambda conv, gen: FakeBackend._hash_reply(conv, gen) + "!" * gen.seed  # noqa: E731
    llm = FakeBackend(reply=reply, judge=by_text_order)
    llm.model = model
    return llm


class LengthRM:
    """A fake RM that scores by length (orchestration only)."""

    cfg = type("Cfg", (), {"objectives": ["reward"]})()

    def score(self, prompts: list, responses: list[str]) -> torch.Tensor:
        return torch.tensor([[float(len(r))] for r in responses])  # (N, 1)


def run_critique(backend, out, cfg=None, gen=GEN):
    return critique_pairs(PAIRS, backend, out, cfg or CritiqueConfig(), gen).pairs


def run_judge(backend, out, cfg=None, gen=GEN):
    return judge_pairs(PAIRS, backend, out, cfg or JudgeConfig(principles=["helpfulness"]))[0]


def run_rmboost(backend, out, cfg=None, gen=GEN):
    return generate_rmboost(ITEMS, backend, out, cfg or RMBoostConfig(), gen)[0]


def run_rlaif(backend, out, cfg=None, gen=GEN):
    return generate_rlaif(ITEMS, backend, out, cfg or RLAIFConfig(), gen)[0]


def run_west_of_n(backend, out, cfg=None, gen=GEN):
    cfg = cfg or WestOfNConfig(model="rm-dir", n=3)
    return generate_west_of_n(ITEMS, backend, out, cfg, gen, rm=LengthRM())[0]


# each job, and one change of each kind that alters its rows: (job, (what changed, rerun))
CHANGES: dict[str, list[tuple[str, Callable]]] = {
    "critique": [
        ("cfg.degrade", lambda b, o: run_critique(b, o, CritiqueConfig(degrade="shuffle"))),
        ("template", lambda b, o: run_critique(b, o, CritiqueConfig(degrade="weak-prompt"))),
        ("gen.temperature", lambda b, o: run_critique(b, o, gen=replace(GEN, temperature=0.0))),
    ],
    "judge": [
        ("cfg.principles", lambda b, o: run_judge(b, o, JudgeConfig(principles=["toxicity"]))),
        ("cfg.both_orders", lambda b, o: run_judge(b, o, JudgeConfig(["helpfulness"], both_orders=False))),
    ],
    "rmboost": [
        ("cfg.aspect_set", lambda b, o: run_rmboost(b, o, RMBoostConfig(aspect_set="summary"))),
        ("gen.seed", lambda b, o: run_rmboost(b, o, gen=replace(GEN, seed=5))),
    ],
    "rlaif": [("cfg.principles", lambda b, o: run_rlaif(b, o, RLAIFConfig(principles=["factuality"])))],
    "west-of-n": [
        ("cfg.n", lambda b, o: run_west_of_n(b, o, WestOfNConfig(model="rm-dir", n=4))),
        ("cfg.model", lambda b, o: run_west_of_n(b, o, WestOfNConfig(model="other-rm", n=3))),
    ],
}
RUNS = {
    "critique": run_critique,
    "judge": run_judge,
    "rmboost": run_rmboost,
    "rlaif": run_rlaif,
    "west-of-n": run_west_of_n,
}
CASES = [(job, what, rerun) for job, changes in CHANGES.items() for what, rerun in changes]


@pytest.mark.parametrize(("job", "what", "rerun"), CASES, ids=[f"{j}-{w}" for j, w, _ in CASES])
def test_rerun_with_another_config_is_refused(job: str, what: str, rerun: Callable, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    llm = fake()
    rows = RUNS[job](llm, out)
    assert rows and meta_path(out).exists()
    before, record = out.read_text(), meta_path(out).read_text()
    with pytest.raises(ConfigMismatch, match=what.replace(".", r"\.")) as err:
        rerun(llm, out)
    assert str(out) in str(err.value) and "--overwrite" in str(err.value)
    assert out.read_text() == before  # nothing written under the wrong configuration
    assert RUNS[job](llm, out) == rows  # the same configuration still resumes
    assert discard_output(out) and not out.exists()
    assert rerun(llm, out) and meta_path(out).read_text() != record  # afresh, under the new record


@pytest.mark.parametrize("job", list(RUNS))
def test_another_model_is_refused(job: str, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    assert RUNS[job](fake(), out)
    other = fake("fake-2")
    with pytest.raises(ConfigMismatch, match=r"llm\.model: 'fake-1' → 'fake-2'"):
        RUNS[job](other, out)
    assert other.chat_calls == [] and other.judge_calls == []


def test_output_without_record_is_refused(tmp_path: Path) -> None:
    """Rows from before the record existed cannot be checked: refuse rather than guess."""
    out = tmp_path / "out.jsonl"
    run_critique(fake(), out)
    meta_path(out).unlink()
    with pytest.raises(ConfigMismatch, match="no record"):
        run_critique(fake(), out)


def test_template_content_is_part_of_the_record(tmp_path: Path) -> None:
    """A user template edited in place (same file name) changes the record."""
    tpl = tmp_path / "mine.txt"
    tpl.write_text("Critique this: {response}")
    out = tmp_path / "out.jsonl"
    run_critique(fake(), out, CritiqueConfig(template=str(tpl)))
    tpl.write_text("Critique this very harshly: {response}")
    with pytest.raises(ConfigMismatch, match=r"template\.sha256"):
        run_critique(fake(), out, CritiqueConfig(template=str(tpl)))


# ------------------------------------------------------------------ CLI: --overwrite


class CLIFake(FakeBackend):
    """The fake backend behind ``--backend cli-fake``; counts how often it is built."""

    built = 0

    @classmethod
    def from_config(cls, cfg) -> CLIFake:
        cls.built += 1
        llm = cls()
        llm.model = cfg.model
        return llm


if "cli-fake" not in BACKENDS:
    BACKENDS.add("cli-fake", CLIFake)


def cli(*args: object) -> tuple[int, str]:
    res = CliRunner().invoke(app, [str(a) for a in args])
    return res.exit_code, res.output


def test_cli_degrade_into_same_out_needs_overwrite(tmp_path: Path) -> None:
    """`critique --degrade shuffle` into the --out of a normal run used to return the normal rows."""
    data, out = tmp_path / "pairs.jsonl", tmp_path / "c.jsonl"
    data.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in PAIRS))
    base = ["critique", "--data", data, "--out", out, "--backend", "cli-fake", "--model", "m1", "--no-cache"]
    assert cli(*base)[0] == 0
    normal = read_jsonl(out)
    built = CLIFake.built
    assert cli(*base)[0] == 0 and CLIFake.built == built  # a finished job never builds the LLM
    code, text = cli(*base, "--degrade", "shuffle")
    assert code == 2 and "cfg.degrade" in text and "--overwrite" in text
    assert read_jsonl(out) == normal
    code, text = cli(*base, "--model", "m2")
    assert code == 2 and "llm.model" in text
    assert cli(*base, "--degrade", "shuffle", "--overwrite")[0] == 0
    shuffled = read_jsonl(out)
    assert [r["metadata"]["critique"]["degrade"] for r in shuffled] == ["shuffle"] * len(PAIRS)
    assert json.loads(meta_path(out).read_text())["config"]["cfg"]["degrade"] == "shuffle"
