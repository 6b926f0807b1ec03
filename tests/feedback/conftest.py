"""Fixtures for feedback tests: a fake LLM backend (orchestration only) and small data files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from feedback_fakes import FakeBackend, make_pairs

from rewardlab.data.schema import PreferencePair


@pytest.fixture
def fake() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def pairs() -> list[PreferencePair]:
    return make_pairs(5)


@pytest.fixture
def pairs_file(tmp_path: Path, pairs: list[PreferencePair]) -> Path:
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in pairs))
    return path


@pytest.fixture
def prompts_file(tmp_path: Path) -> Path:
    path = tmp_path / "prompts.jsonl"
    rows = [{"prompt": f"Tell me about topic {i}."} for i in range(4)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
