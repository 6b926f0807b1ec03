"""Seed 000 in one command: the critiques recipe on all four training sets, then the pooled summary.

``python recipes/critiques_all.py --out ROOT`` runs ``recipes/critiques.py`` once per training
set with the settings of the committed runs (FeedbackQA at pool 800 with all five conditions; HH
harmless and qa-feedback at pool 800 and PandaLM at pool 200, whose 526-pair train split caps it,
with conditions b–e), each into ``ROOT/critiques-DATASET``, on the shipped critiques of
``data/generated/critiques/``, then ``recipes/critiques_summary.py`` into ``ROOT/summary``.
Every run is resumable (rerun the command after a kill). About an hour on 2 cores.

    python recipes/critiques_all.py --out runs/critiques-all [--datasets hh,pandalm] [-- EXTRA...]

Arguments after ``--`` go to every ``critiques.py`` call after the defaults (argparse keeps the
last value), e.g. ``-- --seeds 1 --sizes 50`` for a quick look.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from critiques_summary import load_run, write_summary

HERE = Path(__file__).resolve().parent
OOD = ["--eval-sets", "llmbar-natural,hhh", "--threads", "2"]
LLM_CONDITIONS = ["--conditions", "llm-1.5b,llm-135m,shuffled,none"]
SMALL_SPLITS = ["--validation-pairs", "40", "--test-pairs", "80"]
SIZES_800 = ["--pool", "800", "--sizes", "50,100,200,400,800"]
# The committed runs' settings (docs/results/critiques-*/config.json), one per training set.
RUNS: dict[str, list[str]] = {
    "feedbackqa": [*SIZES_800, "--validation-pairs", "50", "--test-pairs", "200"]
    + ["--conditions", "human,llm-1.5b,llm-135m,shuffled,none"],
    "hh": [*SIZES_800, *SMALL_SPLITS, *LLM_CONDITIONS],
    "pandalm": ["--pool", "200", "--sizes", "50,100,200", *SMALL_SPLITS, *LLM_CONDITIONS],
    "qafeedback": [*SIZES_800, *SMALL_SPLITS, *LLM_CONDITIONS],
}


def commands(root: Path, datasets: list[str], extra: list[str]) -> list[list[str]]:
    """The ``critiques.py`` command line of each training set, in order."""
    unknown = sorted(set(datasets) - set(RUNS))
    if unknown:
        raise SystemExit(f"--datasets: unknown {unknown}; choose from {sorted(RUNS)}")
    return [
        [sys.executable, str(HERE / "critiques.py"), "--dataset", d, "--out", str(root / f"critiques-{d}")]
        + RUNS[d]
        + OOD
        + extra
        for d in datasets
    ]


def main() -> None:
    """Run every training set's recipe (stopping at the first failure), then the summary."""
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/critiques-all"))
    ap.add_argument("--datasets", default=",".join(RUNS), help=f"comma-separated, of {list(RUNS)}")
    args = ap.parse_args(argv[: argv.index("--")] if "--" in argv else argv)
    datasets = [d for d in args.datasets.split(",") if d]
    for cmd in commands(args.out, datasets, extra):
        print("$", " ".join(cmd[1:]), flush=True)
        rc = subprocess.run(cmd).returncode
        if rc:
            raise SystemExit(f"{cmd[1]} --dataset {cmd[3]} failed (exit {rc}); rerun to resume")
    runs = dict(load_run(args.out / f"critiques-{d}") for d in datasets)
    write_summary(runs, args.out / "summary")
    print((args.out / "summary" / "table.md").read_text())


if __name__ == "__main__":
    main()
