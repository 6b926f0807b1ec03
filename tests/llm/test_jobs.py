"""Resumable jobs: skip done rows, repair torn lines, survive a real SIGKILL."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from rewardlab.data.schema import DataError
from rewardlab.llm.jobs import (
    ConfigMismatch,
    _job_lock,
    discard_output,
    meta_path,
    repair_tail,
    resumable_map,
)

ITEMS = [{"id": f"q{i}", "prompt": f"prompt {i}"} for i in range(7)]


def upper(batch: list[dict]) -> list[dict]:
    return [{"prompt": it["prompt"], "answer": it["prompt"].upper()} for it in batch]


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_map_writes_keys_and_returns_in_order(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    rows = resumable_map(ITEMS, upper, out, key=lambda it: it["id"], batch_size=3, progress=False)
    assert [r["_key"] for r in rows] == [it["id"] for it in ITEMS]
    assert [r["_key"] for r in lines(out)] == [it["id"] for it in ITEMS]


def test_rerun_skips_done_items(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    resumable_map(ITEMS[:4], upper, out, key=lambda it: it["id"], progress=False)
    seen: list[str] = []

    def spy(batch: list[dict]) -> list[dict]:
        seen.extend(it["id"] for it in batch)
        return upper(batch)

    rows = resumable_map(ITEMS, spy, out, key=lambda it: it["id"], batch_size=2, progress=False)
    assert seen == ["q4", "q5", "q6"]
    assert len(rows) == 7 and len(lines(out)) == 7


def test_torn_last_line_is_truncated(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    resumable_map(ITEMS[:3], upper, out, key=lambda it: it["id"], progress=False)
    with open(out, "a") as f:
        f.write('{"prompt": "prompt 3", "ans')  # a crash in the middle of a write
    rows = resumable_map(ITEMS, upper, out, key=lambda it: it["id"], progress=False)
    assert [r["_key"] for r in lines(out)] == [it["id"] for it in ITEMS]
    assert len(rows) == 7


def test_repair_tail_cases(tmp_path: Path) -> None:
    p = tmp_path / "x.jsonl"
    assert repair_tail(p) == 0
    p.write_text("")
    assert repair_tail(p) == 0
    p.write_text('{"a": 1')
    assert repair_tail(p) == 7 and p.read_text() == ""
    p.write_text('{"a": 1}\n{"b"')
    assert repair_tail(p) == 4 and p.read_text() == '{"a": 1}\n'


def test_none_rows_are_retried_next_run(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    flaky = lambda b: [None if it["id"] == "q2" else upper([it])[0] for it in b]  # noqa: E731
    rows = resumable_map(ITEMS, flaky, out, key=lambda it: it["id"], progress=False)
    assert len(rows) == 6
    rows = resumable_map(ITEMS, upper, out, key=lambda it: it["id"], progress=False)
    assert len(rows) == 7 and len({r["_key"] for r in lines(out)}) == 7


def test_errors(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with pytest.raises(ValueError, match="unique"):
        resumable_map(ITEMS + ITEMS[:1], upper, out, key=lambda it: it["id"], progress=False)
    with pytest.raises(ValueError, match="rows for a batch"):
        resumable_map(ITEMS, lambda b: [], out, key=lambda it: it["id"], progress=False)
    out.write_text('{"no_key": 1}\n')
    with pytest.raises(DataError, match="_key"):
        resumable_map(ITEMS, upper, out, key=lambda it: it["id"], progress=False)
    out.write_text("not json\n")
    with pytest.raises(DataError, match="out.jsonl:1"):
        resumable_map(ITEMS, upper, out, key=lambda it: it["id"], progress=False)


def test_config_is_recorded_and_a_mismatch_refused(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    cfg = {"model": "m1", "gen": {"temperature": 0.7, "seed": 0}, "path": Path("t.txt")}
    resumable_map(ITEMS[:3], upper, out, key=lambda it: it["id"], progress=False, config=cfg)
    assert json.loads(meta_path(out).read_text())["config"]["path"] == "t.txt"
    seen: list[str] = []

    def spy(batch: list[dict]) -> list[dict]:
        seen.extend(it["id"] for it in batch)
        return upper(batch)

    other = {**cfg, "gen": {"temperature": 0.0, "seed": 0}}
    with pytest.raises(ConfigMismatch, match=r"out\.jsonl: its 3 row\(s\).*gen\.temperature: 0\.7 → 0\.0"):
        resumable_map(ITEMS, spy, out, key=lambda it: it["id"], progress=False, config=other)
    assert seen == [] and len(lines(out)) == 3
    rows = resumable_map(ITEMS, spy, out, key=lambda it: it["id"], progress=False, config=cfg)
    assert seen == ["q3", "q4", "q5", "q6"] and len(rows) == 7  # the same config resumes
    assert discard_output(out) and not out.exists() and not meta_path(out).exists()
    rows = resumable_map(ITEMS, upper, out, key=lambda it: it["id"], progress=False, config=other)
    assert len(rows) == 7 and json.loads(meta_path(out).read_text())["config"]["gen"]["temperature"] == 0


def test_rows_without_a_record_are_refused_but_an_empty_file_is_not(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    resumable_map(ITEMS[:2], upper, out, key=lambda it: it["id"], progress=False)  # no config
    with pytest.raises(ConfigMismatch, match="no record"):
        resumable_map(ITEMS, upper, out, key=lambda it: it["id"], progress=False, config={"a": 1})
    out.write_text("")
    rows = resumable_map(ITEMS, upper, out, key=lambda it: it["id"], progress=False, config={"a": 1})
    assert len(rows) == 7 and meta_path(out).exists()


def test_second_writer_is_refused(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    with _job_lock(out):
        code = (
            "import sys; from rewardlab.llm.jobs import resumable_map as m\n"
            f"m([{{'id': 'a'}}], lambda b: b, {str(out)!r}, key=lambda i: i['id'])"
        )
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode != 0 and "another process" in r.stderr


JOB = textwrap.dedent(
    """
    import sys
    from rewardlab.data.bundled import hh_splits
    from rewardlab.llm import BackendConfig, GenerationConfig, build_backend, resumable_map
    from rewardlab.data.schema import prompt_text

    out, cache, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    items = [{"id": str(i), "prompt": prompt_text(p.prompt)[-400:]}
             for i, p in enumerate(hh_splits()["test"][:n])]
    llm = build_backend(
        BackendConfig(model="smollm2", device="cpu", batch_size=1, threads=1, cache_path=cache)
    )
    gen = GenerationConfig(max_new_tokens=8, temperature=0.7, seed=0)

    def fn(batch):
        replies = llm.chat([[{"role": "user", "content": it["prompt"]}] for it in batch], gen)
        return [{"prompt": it["prompt"], "reply": r} for it, r in zip(batch, replies)]

    config = {"llm": llm.fingerprint(), "gen": gen.__dict__}
    resumable_map(items, fn, out, key=lambda it: it["id"], batch_size=1, desc="gen", config=config)
    """
)


@pytest.mark.slow
def test_kill_and_resume_real_generation_job(tmp_path: Path) -> None:
    n = 6
    script, out, cache = tmp_path / "job.py", tmp_path / "gen.jsonl", tmp_path / "cache.sqlite"
    script.write_text(JOB)
    cmd = [sys.executable, str(script), str(out), str(cache), str(n)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.read_text().count("\n") >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    written = out.read_text().count("\n")
    assert proc.returncode == -signal.SIGKILL, "the job finished before it could be killed"
    assert 2 <= written < n
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = lines(out)
    keys = [r["_key"] for r in rows]
    assert len(rows) == n and sorted(keys) == sorted(str(i) for i in range(n))
    assert all(r["reply"] for r in rows)
    assert keys[:written] == [str(i) for i in range(written)]  # rows from the killed run kept
    assert json.loads(meta_path(out).read_text())["config"]["gen"]["max_new_tokens"] == 8


def test_local_identity_carries_the_dtype_and_a_dtype_change_is_refused(
    local_backend, tmp_path: Path
) -> None:
    """The config-side identity (read without loading) equals the loaded backend's, dtype included,
    so a job resumed with another dtype is refused like one with another model."""
    from rewardlab.feedback.jobs import job_config
    from rewardlab.llm import BackendConfig

    cfg = BackendConfig(model="smollm2", device="cpu", dtype="auto")
    assert (
        cfg.identity()
        == local_backend.identity()
        == {"backend": "local", "model": "smollm2", "dtype": "float32"}
    )
    assert BackendConfig(model="smollm2", device="cpu", dtype="bfloat16").identity()["dtype"] == "bfloat16"
    out = tmp_path / "out.jsonl"
    resumable_map(ITEMS[:2], upper, out, key=lambda it: it["id"], progress=False, config=job_config("j", cfg))
    bf16 = BackendConfig(model="smollm2", device="cpu", dtype="bfloat16")
    with pytest.raises(ConfigMismatch, match=r"llm\.dtype: 'float32' → 'bfloat16'"):
        resumable_map(
            ITEMS, upper, out, key=lambda it: it["id"], progress=False, config=job_config("j", bf16)
        )
