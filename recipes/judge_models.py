"""Which embedded LLM, with which prompt, is a usable pairwise judge? Measured, beside pick-longer.

For each (model, prompt variant, set) the judge labels every pair in both orders (variants in
``rewardlab.feedback.judge_methods.JUDGE_VARIANTS``: ``ab`` = today's judge, ``ab-fewshot``,
``rationale``, ``score`` = each response rated alone). One JSONL row per (model, variant, set,
pair) goes to ``OUT/rows.jsonl`` (p, p_ab, p_ba, correct, picks-longer, seconds, prompt tokens);
rerunning skips rows already there, so kill and rerun at will. ``OUT/loads.jsonl`` records each
model's load time and memory. ``OUT/table.md`` is rewritten after every set: accuracy with a 95%
interval (ties wrong), position-bias rate, how often the judge picks the longer response, the
pick-longer baseline on the same pairs, seconds per pair, prompt tokens/s, load time and peak RSS.

Sets: ``llmbar-natural`` (the 100 LLMBar Natural pairs — score once, never tune on it) or any
bundled name (``pandalm-validation``, ``pandalm-test``, ``hh-test`` …) as ``NAME:N`` (a seeded
sample of N). HH sets are judged on harmlessness, the others on helpfulness.

    nice -n 10 python recipes/judge_models.py --models qwen2.5-1.5b \\
        --variants ab,ab-fewshot,score --sets pandalm-validation:40 --out runs/judge_models
    python recipes/judge_models.py --out runs/judge_models --table-only
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import resource
import time
from pathlib import Path

from rewardlab.data.bundled import ROOT, bundled_set
from rewardlab.data.load import load_pairs
from rewardlab.data.schema import PreferencePair
from rewardlab.evaluate.metrics import mean_ci95
from rewardlab.feedback.calibration import brier, calibrate, ece, fit_scale, nll, order_logodds
from rewardlab.feedback.common import item_key, render_prompt
from rewardlab.feedback.judge_methods import JUDGE_VARIANTS
from rewardlab.feedback.principles import PRINCIPLES
from rewardlab.llm import LocalBackend

log = logging.getLogger("judge_models")


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/judge_models")
    ap.add_argument("--models", default="qwen2.5-1.5b", help="comma-separated local aliases or paths")
    ap.add_argument("--variants", default="ab", help=f"comma-separated: {', '.join(JUDGE_VARIANTS)}")
    ap.add_argument("--sets", default="pandalm-validation:40", help="comma-separated NAME[:N]")
    ap.add_argument("--seed", type=int, default=0, help="sampling of NAME:N subsets")
    ap.add_argument("--batch-size", type=int, default=2, help="conversations per forward")
    ap.add_argument("--pairs-per-step", type=int, default=2, help="pairs judged (and appended) per step")
    ap.add_argument("--max-input-tokens", type=int, default=2048)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (1: best on a loaded 2-core CPU)")
    ap.add_argument("--dtype", default="auto", help="auto (fp32 on CPU), bfloat16 (AMX CPUs: ~4x faster)")
    ap.add_argument("--label", default="", help="name in rows/table (default: model[:dtype]); one model")
    ap.add_argument("--reverse", action="store_true", help="work from the last pair (a 2nd process)")
    ap.add_argument("--table-only", action="store_true", help="rewrite table.md from rows.jsonl")
    ap.add_argument(
        "--calibrate-on", default="", help="with --table-only: calibration.md, scales fitted on this set"
    )
    return ap.parse_args()


def load_set(spec: str, seed: int) -> tuple[str, list[PreferencePair]]:
    """``NAME[:N]`` → (NAME, pairs): all of NAME, or a sample of N drawn with ``Random(seed)``."""
    name, _, n = spec.partition(":")
    if name == "llmbar-natural":
        pairs = load_pairs(ROOT / "llmbar" / "LLMBar_Natural.json", "llmbar")
    else:
        pairs = bundled_set(name)
    if n and int(n) < len(pairs):
        pairs = random.Random(seed).sample(pairs, int(n))
    return name, pairs


def principle_for(set_name: str) -> str:
    """HH harmless sets are judged on harmlessness, the others on helpfulness."""
    return "harmlessness" if set_name.startswith("hh") else "helpfulness"


def read_rows(path: Path) -> list[dict]:
    """Rows already written (a torn last line from a kill is ignored)."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("%s: skipping a torn line", path)
    return rows


def peak_rss_gb() -> float:
    """Peak resident memory of this process so far (GB; includes the mmapped weight file)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def record_memory(model: str, out: Path) -> None:
    """Append the model's peak RSS so far to ``loads.jsonl`` (the table shows the largest)."""
    with open(out / "loads.jsonl", "a") as f:
        f.write(json.dumps({"model": model, "peak_rss_gb": round(peak_rss_gb(), 2)}) + "\n")


LABEL = ""  # --label: the name rows carry, e.g. a local bf16 copy of an alias under the alias's name


def label(model: str, dtype: str) -> str:
    """How a model is named in the rows and the table: ``--label``, else ``name`` or ``name:dtype``."""
    if LABEL:
        return LABEL
    return model if dtype == "auto" else f"{model}:{dtype}"


def load_model(name: str, args: argparse.Namespace, out: Path) -> LocalBackend:
    """Load a local judge model and record its load time and memory in ``loads.jsonl``."""
    t0 = time.perf_counter()
    backend = LocalBackend(
        name,
        dtype=args.dtype,
        batch_size=args.batch_size,
        max_input_tokens=args.max_input_tokens,
        threads=args.threads,
    )
    rec = {
        "model": label(name, args.dtype),
        "dtype": str(backend.lm.dtype).removeprefix("torch."),
        "load_s": round(time.perf_counter() - t0, 1),
        "peak_rss_gb": round(peak_rss_gb(), 2),
    }
    rec["params_m"] = round(sum(p.numel() for p in backend.lm.parameters()) / 1e6, 1)
    with open(out / "loads.jsonl", "a") as f:
        f.write(json.dumps(rec) + "\n")
    log.info("loaded %s: %s", name, rec)
    return backend


def judge_rows(
    backend: LocalBackend, model: str, variant: str, set_name: str, batch: list[tuple[int, PreferencePair]]
) -> list[dict]:
    """Judge a few pairs with one variant; one output row per pair."""
    pr = PRINCIPLES.get(principle_for(set_name))
    triples = [(render_prompt(p.prompt), p.chosen, p.rejected) for _, p in batch]
    t0 = time.perf_counter()
    results = JUDGE_VARIANTS[variant].run(backend, triples, [pr])
    seconds = (time.perf_counter() - t0) / len(batch)
    tokens = backend.count_tokens([t for tr in triples for t in tr])
    rows = []
    for j, ((i, pair), res) in enumerate(zip(batch, results, strict=True)):
        r = res[pr.name]
        lc, lr = len(pair.chosen), len(pair.rejected)
        rows.append(
            {
                "model": model,
                "variant": variant,
                "set": set_name,
                "index": i,
                "key": item_key(i, pair.prompt, pair.chosen, pair.rejected),
                "principle": pr.name,
                **{k: v for k, v in r.items()},
                "correct": r["p"] > 0.5,
                "picks_longer": (r["p"] > 0.5) == (lc > lr) if lc != lr else None,
                "longer_correct": lc > lr,
                "seconds": round(seconds, 2),
                "input_tokens": sum(tokens[3 * j : 3 * j + 3]),
            }
        )
    return rows


def content_id(key: str) -> str:
    """The content-hash part of an ``item_key``: one pair drawn at another index in a larger
    sample (``hh-test:100`` after ``hh-test:48``) is the same pair, judged and counted once."""
    return key.rpartition(":")[2]


def done_keys(path: Path) -> set[tuple[str, str, str, str]]:
    """(model, variant, set, content id) of every row written so far (by this or another process)."""
    return {(r["model"], r["variant"], r["set"], content_id(r["key"])) for r in read_rows(path)}


def run_set(backend: LocalBackend, model: str, variants: list[str], spec: str, args, out: Path) -> None:
    """Judge every not-yet-judged pair of one set with each variant, a few pairs at a time and the
    variants interleaved (a stopped run leaves every variant with about as many pairs). Rows
    already written are re-read before each step, so a second process started with
    ``--reverse`` on the same set works from the other end and the two meet without overlap."""
    set_name, pairs = load_set(spec, args.seed)
    path = out / "rows.jsonl"
    keyed = [(i, p, content_id(item_key(i, p.prompt, p.chosen, p.rejected))) for i, p in enumerate(pairs)]
    steps = list(range(0, len(keyed), args.pairs_per_step))
    log.info("%s / %s: %d pairs, variants %s", model, set_name, len(pairs), variants)
    for s in reversed(steps) if args.reverse else steps:
        for variant in variants:
            done = done_keys(path)
            chunk = keyed[s : s + args.pairs_per_step]
            todo = [(i, p) for i, p, k in chunk if (model, variant, set_name, k) not in done]
            if not todo:
                continue
            rows = judge_rows(backend, model, variant, set_name, todo)
            with open(path, "a") as f:
                f.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
            log.info(
                "  %s %s: pairs %d-%d, %.1f s/pair", variant, set_name, s, s + len(chunk), rows[0]["seconds"]
            )
        write_table(out)
    record_memory(model, out)
    write_table(out)


def pct(xs: list[float]) -> str:
    """``mean ± 95% half-width`` in percent."""
    m, h = mean_ci95([float(x) for x in xs])
    return f"{100 * m:.1f} ± {100 * h:.1f}"


def cell_stats(rows: list[dict]) -> dict[str, str]:
    """One table row's numbers from the rows of one (model, variant, set)."""
    single = [p for r in rows for p in (r["p_ab"], r["p_ba"]) if p is not None]
    longer = [r["picks_longer"] for r in rows if r["picks_longer"] is not None]
    secs = sum(r["seconds"] for r in rows)
    return {
        "n": str(len(rows)),
        "accuracy": pct([r["correct"] for r in rows]),
        "pick-longer": pct([r["longer_correct"] for r in rows]),
        "A-rate": f"{100 * sum(p > 0.5 for p in single) / len(single):.0f}",
        "consistent": f"{100 * sum((r['p_ab'] > 0.5) == (r['p_ba'] < 0.5) for r in rows) / len(rows):.0f}",
        "picks longer": f"{100 * sum(longer) / len(longer):.0f}" if longer else "–",
        "s/pair": f"{secs / len(rows):.1f}",
        "pairs/s": f"{len(rows) / secs:.3f}",
        "tok/s": f"{sum(r['input_tokens'] for r in rows) / secs:.0f}",
    }


def write_table(out: Path) -> None:
    """``OUT/table.md`` from every row so far, plus each model's load time and memory."""
    rows = read_rows(out / "rows.jsonl")
    cells: dict[tuple[str, str, str], list[dict]] = {}
    seen = set()
    for r in rows:  # the first row per pair counts (two processes may overlap by one step)
        k = (r["model"], r["variant"], r["set"], content_id(r["key"]))
        if k not in seen:
            seen.add(k)
            cells.setdefault(k[:3], []).append(r)
    cols = [
        "n",
        "accuracy",
        "pick-longer",
        "A-rate",
        "consistent",
        "picks longer",
        "s/pair",
        "pairs/s",
        "tok/s",
    ]
    lines = [
        "| model | variant | set | " + " | ".join(cols) + " |",
        "|" + "---|" * (3 + len(cols)),
    ]
    for (m, v, s), rs in sorted(cells.items()):
        st = cell_stats(rs)
        lines.append(f"| {m} | {v} | {s} | " + " | ".join(st[c] for c in cols) + " |")
    loads: dict[str, dict] = {}
    for r in read_rows(out / "loads.jsonl"):  # load records and later peak-memory records
        rec = loads.setdefault(r["model"], {"params_m": "–", "load_s": "–", "peak_rss_gb": 0.0})
        rec.update({k: r[k] for k in ("params_m", "load_s") if k in r})
        rec["peak_rss_gb"] = max(rec["peak_rss_gb"], r["peak_rss_gb"])
    lines += ["", "| model | params (M) | load s | peak RSS GB |", "|---|---|---|---|"]
    lines += [
        f"| {m} | {r['params_m']} | {r['load_s']} | {r['peak_rss_gb']} |" for m, r in sorted(loads.items())
    ]
    lines += [
        "",
        "accuracy and pick-longer in % with a 95% t-interval over pairs, ties wrong, on the same pairs;",
        "A-rate: % of single-order judgements won by position A (50 = no position bias; always 50 for",
        "`score`); consistent: % of pairs both orders agree on; picks longer: % of pairs (unequal lengths)",
        "where the judge prefers the longer response; tok/s: prompt+response tokens judged per second.",
    ]
    (out / "table.md").write_text("\n".join(lines) + "\n")


def _z(r: dict) -> float:
    return order_logodds(r["p_ab"], r["p_ba"])


def calibration_rows(fit: list[dict], test: list[dict]) -> dict[str, str]:
    """Raw vs calibrated NLL / Brier / ECE on ``test`` with the scale fitted on ``fit`` (rows of
    one model and variant, chosen first, so the target is 1), and the paired per-pair ΔNLL, ΔBrier."""
    a = fit_scale([_z(r) for r in fit], [1.0] * len(fit))
    raw, cal, y = [r["p"] for r in test], calibrate([_z(r) for r in test], a), [1.0] * len(test)
    d_nll = [nll([c], [1.0]) - nll([p], [1.0]) for p, c in zip(raw, cal, strict=True)]
    d_brier = [brier([c], [1.0]) - brier([p], [1.0]) for p, c in zip(raw, cal, strict=True)]
    m, h = mean_ci95(d_nll)
    mb, hb = mean_ci95(d_brier)
    return {
        "scale": f"{a:.3g}",
        "NLL": f"{nll(raw, y):.3f} → {nll(cal, y):.3f}",
        "ΔNLL": f"{m:+.3f} ± {h:.3f}",
        "Brier": f"{brier(raw, y):.3f} → {brier(cal, y):.3f}",
        "ΔBrier": f"{mb:+.3f} ± {hb:.3f}",
        "ECE": f"{ece(raw, y):.3f} → {ece(cal, y):.3f}",
    }


def write_calibration(out: Path, fit_set: str) -> None:
    """``OUT/calibration.md``: per (model, variant), the scale fitted on ``fit_set`` applied to every
    other set (transfer), and each set calibrated on itself by 2-fold cross-fitting (halves by
    position in the file; each half scored with the other's scale)."""
    cells: dict[tuple[str, str, str], dict[str, dict]] = {}
    for r in read_rows(out / "rows.jsonl"):
        if r.get("p_ba") is not None:
            cells.setdefault((r["model"], r["variant"], r["set"]), {}).setdefault(content_id(r["key"]), r)
    cols = ["scale", "NLL", "ΔNLL", "Brier", "ΔBrier", "ECE"]
    lines = [
        "| model | variant | fitted on | scored on | n | " + " | ".join(cols) + " |",
        "|" + "---|" * (5 + len(cols)),
    ]
    for (m, v, s), rows in sorted(cells.items()):
        test = list(rows.values())
        fit = list(cells.get((m, v, fit_set), {}).values())
        if s != fit_set and len(fit) >= 10:
            st = calibration_rows(fit, test)
            lines.append(
                f"| {m} | {v} | {fit_set} ({len(fit)}) | {s} | {len(test)} | "
                + " | ".join(st[c] for c in cols)
                + " |"
            )
        if len(test) >= 20:
            half = len(test) // 2
            a_rows, b_rows = (
                calibration_rows(test[half:], test[:half]),
                calibration_rows(test[:half], test[half:]),
            )
            st = {c: f"{a_rows[c]} / {b_rows[c]}" for c in cols}
            lines.append(
                f"| {m} | {v} | {s}, other half | {s} | {half} / {len(test) - half} | "
                + " | ".join(st[c] for c in cols)
                + " |"
            )
    lines += [
        "",
        "Calibration (`rewardlab judge --calibrate-on`): labels σ(a·z), z = ½(logit p_ab − logit p_ba), one",
        "scale a fitted by maximum likelihood; raw = the both-order mean p. Decisions (accuracy) are",
        "unchanged. Δ = calibrated − raw per pair, mean ± 95% t-interval (negative = better). ECE:",
        "top-label, 10 bins. Cross-fitted rows show half A / half B.",
    ]
    (out / "calibration.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    global LABEL
    args = parse_args()
    LABEL = args.label
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.table_only:
        write_table(out)
        print((out / "table.md").read_text())
        if args.calibrate_on:
            write_calibration(out, args.calibrate_on)
            print((out / "calibration.md").read_text())
        return
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in JUDGE_VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant(s) {unknown}; choose from {list(JUDGE_VARIANTS)}")
    for model in args.models.split(","):
        backend = load_model(model, args, out)
        for spec in args.sets.split(","):
            run_set(backend, label(model, args.dtype), variants, spec, args, out)
        del backend
    print((out / "table.md").read_text())


if __name__ == "__main__":
    main()
