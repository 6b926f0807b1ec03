"""Do human critiques help a reward model, most of all with little data? (issue 11 §2, Ye et al. 2024)

Critique-conditioned MiniLM RMs (``ModelConfig(critiques=True)``: the RM reads
``response + "### Critique" + critique``) on FeedbackQA (``feedbackqa-train``, leak-free pairs: each
answer's critique comes from one rater, the pair's label from the other raters; see
``rewardlab.data.loaders.feedbackqa``), evaluated in-domain on ``feedbackqa-test``.

Conditions are a registry (:data:`CONDITIONS`), applied to train, validation and test alike:

* ``human`` (a) — each response's human critique;
* ``shuffled`` (d) — the same critiques permuted across the split's distinct responses (a random
  cyclic permutation: no response keeps its own), i.e. fluent critiques about another answer;
* ``none`` (e) — no critique (a plain RM on the same pairs).

* ``llm-1.5b`` (b) / ``llm-135m`` (c) — a critique by the default LLM (Qwen2.5-Coder-1.5B) / by
  SmolLM2-135M, both with the bundled ``critique_brief`` prompt, greedy, ≤ 64 new tokens, bfloat16:
  read from the shipped ``data/generated/critiques/feedbackqa-MODEL.jsonl`` (``rewardlab critique`` output;
  its ``.meta.json`` is the configuration fingerprint). ``--generate MODEL`` writes (resumes) that
  file for the validation pairs, the test pairs and the training pool, shortest pairs first.

Every (condition, size, seed) trains on the same seeded subset of a fixed pool of ``--pool`` (800)
training pairs (paired across conditions; at 800 every seed has the whole pool and differs in
initialisation and order). MiniLM, LoRA r16 on the last layer, ``max_length`` 256 (the library's
default; 36% of the critique inputs and 28% of the plain ones are longer and lose the question down
to its last 8 tokens, then the start of the passage — the critique at the end is always kept),
soft labels ``labels["helpfulness"]``, epochs chosen so every size gets about ``--steps`` (60)
optimiser steps of 16 pairs (2 to ``--max-epochs`` 12 epochs), the best epoch on the first
``--validation-pairs`` (100) validation pairs kept. Test: a fixed random sample of ``--test-pairs``
(300) of the 749 ``feedbackqa-test`` pairs (0 = all), the same for every run. The frozen lower
layers are the same for every model: their outputs are computed once per condition and sequence
(:class:`SharedTrunk`) and handed to ``train()`` as its trunk store, re-indexed to each subset, and
the test pairs are scored from the same states with the exact [CLS]-only top (equal to
``RewardModel.score`` within 5e-8). One torch thread (``--threads``) on the shared CPU.

Resumable: every finished run appends a row to OUT/results.jsonl and is skipped on a rerun.
Writes OUT/table.md and OUT/plot.png (accuracy, mean ± 95% t-interval over seeds, beside both
length heuristics on the same test pairs).

    python recipes/critiques.py --out docs/results/critiques [--sizes 50,100,200,400,800] [--seeds 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import math
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from rewardlab.data.bundled import bundled_set
from rewardlab.data.schema import PreferencePair
from rewardlab.evaluate.metrics import length_heuristics, mean_ci95, pair_metrics
from rewardlab.models.config import ModelConfig
from rewardlab.models.fast_top import below_top, cls_top_rewards
from rewardlab.models.reward_model import RewardModel
from rewardlab.registry import Registry
from rewardlab.train.config import TrainConfig
from rewardlab.train.trainer import train

log = logging.getLogger("critiques")
SPLITS = ("train", "validation", "test")
SIDES = ("chosen", "rejected")


def _keep(pairs: list[PreferencePair], seed: int) -> list[PreferencePair]:
    return pairs


def _response_key(p: PreferencePair, side: str) -> tuple[str, str]:
    return p.metadata["question"], p.metadata[f"{side}_passage_id"]


def shuffle_critiques(pairs: list[PreferencePair], seed: int) -> list[PreferencePair]:
    """Each distinct response (question, passage) gets the critique of another response of the
    split: a random cyclic permutation (Sattolo), so no response keeps its own critique."""
    own: dict[tuple, str] = {}
    for p in pairs:
        for side in SIDES:
            own.setdefault(_response_key(p, side), p.critiques[side])
    keys = list(own)
    src = list(range(len(keys)))
    rng = random.Random(seed)
    for i in range(len(src) - 1, 0, -1):
        j = rng.randrange(i)
        src[i], src[j] = src[j], src[i]
    new = {k: own[keys[src[i]]] for i, k in enumerate(keys)}
    return [dataclasses.replace(p, critiques={s: new[_response_key(p, s)] for s in SIDES}) for p in pairs]


@dataclass(frozen=True)
class Condition:
    """What the RM reads beside each response: ``critiques`` on or off, and ``transform(pairs,
    seed)`` turning the split's human-critique pairs into this condition's pairs."""

    description: str
    critiques: bool = True
    transform: Callable[[list[PreferencePair], int], list[PreferencePair]] = _keep


CONDITIONS: Registry[Condition] = Registry("critique condition")
CONDITIONS.add("human", Condition("(a) each response's human critique (one rater; label from the others)"))
CONDITIONS.add(
    "shuffled", Condition("(d) the same critiques permuted across responses", True, shuffle_critiques)
)
CONDITIONS.add("none", Condition("(e) no critique", critiques=False))

GENERATED = Path(__file__).resolve().parents[1] / "data" / "generated" / "critiques"
CRITICS = {  # condition -> (local LLM alias, description)
    "llm-1.5b": ("qwen2.5-1.5b", "(b) Qwen2.5-Coder-1.5B critic"),
    "llm-135m": ("smollm2", "(c) SmolLM2-135M critic"),
}


def critic_file(model: str) -> Path:
    """Where the shipped critiques of ``model`` live."""
    return GENERATED / f"feedbackqa-{model}.jsonl"


def read_critic(path: Path) -> dict[tuple[str, str], str]:
    """(question, passage id) → critique, from a ``rewardlab critique`` output file."""
    table: dict[tuple[str, str], str] = {}
    for n, line in enumerate(path.open(), 1):
        try:
            row = json.loads(line)
            meta = row["metadata"]
            table.update({(meta["question"], meta[f"{s}_passage_id"]): row["critiques"][s] for s in SIDES})
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise SystemExit(f"{path}:{n}: not a critiqued FeedbackQA pair ({e})") from e
    return table


def llm_critiques(model: str) -> Callable[[list[PreferencePair], int], list[PreferencePair]]:
    """A condition transform: every response's critique by ``model``, from :func:`critic_file`.
    Refuses (naming the file and a missing response) when the file lacks any response."""

    def transform(pairs: list[PreferencePair], seed: int) -> list[PreferencePair]:
        path = critic_file(model)
        table = read_critic(path) if path.exists() else {}
        missing = [_response_key(p, s) for p in pairs for s in SIDES if _response_key(p, s) not in table]
        if missing:
            raise SystemExit(
                f"{path}: no {model} critique for {len(missing)} response(s), e.g. question "
                f"{missing[0][0]!r} passage {missing[0][1]!r}; run: python recipes/critiques.py "
                f"--generate {model} (with the same --pool/--test-pairs/--validation-pairs)"
            )
        return [
            dataclasses.replace(p, critiques={s: table[_response_key(p, s)] for s in SIDES}) for p in pairs
        ]

    return transform


for _name, (_model, _desc) in CRITICS.items():
    CONDITIONS.add(_name, Condition(_desc, True, llm_critiques(_model)))


def generate_critiques(model: str, pairs: list[PreferencePair], threads: int, batch: int = 32) -> dict:
    """Write (resume) ``critic_file(model)``: ``model``'s critique of both responses of every pair,
    prompt ``critique_brief``, greedy, ≤ 64 new tokens, bfloat16 weights. Returns the job's QC summary."""
    from rewardlab.feedback.critique import CritiqueConfig, critique_pairs
    from rewardlab.llm import GenerationConfig, LocalBackend

    GENERATED.mkdir(parents=True, exist_ok=True)
    # bf16 (AMX) for every critic on a bf16 CPU: the 135M in fp32 is as slow as the 1.5B in bf16.
    # Wide batches (decoding reads all weights per step) of length-sorted pairs (one 1,500-token
    # answer would pad a whole batch).
    backend = LocalBackend(model, threads=threads, batch_size=batch, dtype="bfloat16")
    cfg, gen = CritiqueConfig(template="critique_brief"), GenerationConfig(max_new_tokens=64, temperature=0.0)
    return critique_pairs(
        pairs, backend, critic_file(model), cfg, gen, batch_size=max(1, batch // 2)
    ).summary()


def model_config(cond: Condition, args) -> ModelConfig:
    """The RM of a condition: MiniLM, LoRA on the last layer, soft labels from ``helpfulness``."""
    return ModelConfig(critiques=cond.critiques, max_length=args.max_length, label_key="helpfulness")


class SharedTrunk:
    """Frozen-trunk outputs (the states entering the last layer) of a split's sequences, computed
    once each, on first use: ``states[2i]`` / ``states[2i + 1]`` are pair i's chosen / rejected,
    (T_i, H). The trunk is the pretrained MiniLM below the trained layer, the same for every RM."""

    def __init__(self, rm: RewardModel, pairs: list[PreferencePair], batch: int = 32) -> None:
        crit = [p.critiques[s] for p in pairs for s in SIDES] if rm.cfg.critiques else None
        self.seqs = rm.encode(
            [p.prompt for p in pairs for _ in SIDES], [getattr(p, s) for p in pairs for s in SIDES], crit
        )
        self.rm, self.batch = rm, batch
        self.states: dict[int, torch.Tensor] = {}

    @torch.inference_mode()
    def ensure(self, pair_ids: list[int]) -> None:
        """Compute the states of the pairs ``pair_ids`` not computed yet (length-sorted batches)."""
        todo = sorted(
            (i for p in pair_ids for i in (2 * p, 2 * p + 1) if i not in self.states),
            key=lambda i: len(self.seqs[i]["input_ids"]),
        )
        self.rm.eval()
        for s in range(0, len(todo), self.batch):
            idx = todo[s : s + self.batch]
            h = below_top(self.rm, self.rm.collate([self.seqs[i] for i in idx]))  # (n, T, H)
            for row, i in enumerate(idx):
                self.states[i] = h[row, : len(self.seqs[i]["input_ids"])].clone()

    def store(self, pair_ids: list[int], offset: int = 0) -> dict[int, torch.Tensor]:
        """A trunk store for ``train()`` over the pairs ``pair_ids`` in that order, numbered as the
        trainer numbers sequences: chosen ``offset + 2k``, rejected ``offset + 2k + 1``."""
        self.ensure(pair_ids)
        out = {}
        for k, i in enumerate(pair_ids):
            out[offset + 2 * k], out[offset + 2 * k + 1] = self.states[2 * i], self.states[2 * i + 1]
        return out

    @torch.inference_mode()
    def rewards(self, rm: RewardModel, batch: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
        """(r_chosen, r_rejected), each (P,), of a last-layer RM over all of the split's pairs."""
        n = len(self.seqs)
        self.ensure(list(range(n // 2)))
        rm.eval()
        order = sorted(range(n), key=lambda i: self.states[i].shape[0])
        out = torch.empty(n)
        for s in range(0, n, batch):
            idx = order[s : s + batch]
            t = max(self.states[i].shape[0] for i in idx)
            h = torch.zeros(len(idx), t, self.states[idx[0]].shape[1])  # (n, T, H)
            mask = torch.zeros(len(idx), t, dtype=torch.long)  # (n, T)
            for row, i in enumerate(idx):
                h[row, : self.states[i].shape[0]] = self.states[i]
                mask[row, : self.states[i].shape[0]] = 1
            out[idx] = cls_top_rewards(rm, h, mask)[:, 0].float()
        return out[0::2], out[1::2]


def epochs_for(size: int, args) -> int:
    """About ``args.steps`` optimiser steps for every size, clamped to [2, ``args.max_epochs``]."""
    batches = math.ceil(size / args.batch_size)
    return max(2, min(args.max_epochs, math.ceil(args.steps / batches)))


def pool(n_train: int, size: int) -> list[int]:
    """The fixed training pool: ``size`` pairs of a ``random.Random(0)`` permutation."""
    return random.Random(0).sample(range(n_train), min(size, n_train))


def subset(pool_ids: list[int], size: int, seed: int) -> list[int]:
    """The training pairs of (size, seed), drawn from the pool: the same for every condition."""
    return random.Random(1000 * size + seed).sample(pool_ids, min(size, len(pool_ids)))


def run_one(cond_name: str, ids: list[int], seed: int, data: dict, trunks: dict, args) -> dict:
    """Train one RM on the training pairs ``ids`` (trunk states from ``trunks``), score the test
    pairs; select-best on the validation pairs."""
    cond = CONDITIONS.get(cond_name)
    tr, va = [data["train"][i] for i in ids], data["validation"]
    store = trunks["train"].store(ids)
    store.update(trunks["validation"].store(list(range(len(va))), offset=2 * len(tr)))
    epochs = epochs_for(len(tr), args)
    cfg = TrainConfig(
        epochs=epochs, seed=seed, batch_size=args.batch_size, save_steps=0, progress=False, select_best=True
    )
    torch.manual_seed(seed)
    res = train(tr, model_config(cond, args), cfg, out=None, validation=va, trunk_store=store)
    rc, rr = trunks["test"].rewards(res.model)
    best = max(res.history, key=lambda h: h.get("val_accuracy", -1.0))
    return {
        "condition": cond_name,
        "size": len(tr),
        "seed": seed,
        "epochs": epochs,
        "best_epoch": best["epoch"],
        "val_accuracy": best.get("val_accuracy"),
        "seconds": round(res.seconds, 1),
        "test": pair_metrics(rc, rr),
    }


def condition_data(name: str, splits: dict) -> dict:
    """The condition's train / validation / test pairs (its transform seeded per split)."""
    cond = CONDITIONS.get(name)
    return {s: cond.transform(splits[s], k) for k, s in enumerate(SPLITS)}


HEURISTICS = {
    "longer_accuracy": "longer wins",
    "shorter_accuracy": "shorter wins",
    "critique_lexicon": "critique lexicon",
}


def _fmt(xs: list[float]) -> str:
    m, h = mean_ci95(xs)
    return f"{100 * m:.1f} ± {100 * h:.1f}"


def collect(rows: list[dict]) -> dict:
    """{(condition, size): {seed: test accuracy}}."""
    out: dict = {}
    for r in rows:
        out.setdefault((r["condition"], r["size"]), {})[r["seed"]] = r["test"]["accuracy"]
    return out


def paired_gap(acc: dict, a: str, b: str, size: int) -> list[float]:
    """Per-seed accuracy differences a − b at ``size`` (same training pairs, same seed)."""
    xa, xb = acc.get((a, size), {}), acc.get((b, size), {})
    return [xa[s] - xb[s] for s in sorted(set(xa) & set(xb))]


def write_report(results: Path, out: Path, heuristics: dict) -> None:
    """OUT/table.md and OUT/plot.png from the result rows."""
    rows = [json.loads(line) for line in results.open()] if results.exists() else []
    if not rows:
        return
    acc = collect(rows)
    conds = sorted({k[0] for k in acc}, key=lambda c: (c != "human", c == "none", c))  # human … none
    sizes = sorted({k[1] for k in acc})
    gaps = [(c, "none") for c in conds if c != "none" and "none" in conds]
    base = [HEURISTICS[k] for k in HEURISTICS if k in heuristics]
    head = ["train pairs", "seeds"] + conds + [f"{a} − {b}" for a, b in gaps] + base
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for z in sizes:
        n = max(len(acc.get((c, z), {})) for c in conds)
        cells = [_fmt(list(acc[(c, z)].values())) if (c, z) in acc else "" for c in conds]
        cells += [_fmt(g) if (g := paired_gap(acc, a, b, z)) else "" for a, b in gaps]
        lh = [f"{100 * heuristics[k]:.1f}" for k in HEURISTICS if k in heuristics]
        lines.append("| " + " | ".join([str(z), str(n), *cells, *lh]) + " |")
    lines += [
        "",
        "Test accuracy (%) on feedbackqa-test, mean ± 95% t-interval over seeds; the gap columns are",
        "paired per seed (same training pairs); `seeds` is the most seeds any condition has there.",
        "Baselines on the same test pairs: longer / shorter response wins; the critique lexicon reads",
        "only the two human critiques (positive minus negative cue words; ties count wrong). Conditions:",
        *[f"- `{c}`: {CONDITIONS.get(c).description}" for c in conds],
    ]
    (out / "table.md").write_text("\n".join(lines) + "\n")
    plot(acc, conds, sizes, heuristics, out / "plot.png")


def plot(acc: dict, conds: list[str], sizes: list[int], heuristics: dict, path: Path) -> None:
    """Accuracy vs training pairs per condition (95% CI band); length heuristics as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for c in conds:
        zs = [z for z in sizes if (c, z) in acc]
        ms = [mean_ci95(list(acc[(c, z)].values())) for z in zs]
        m = [100 * a for a, _ in ms]
        h = [100 * b for _, b in ms]
        ax.plot(zs, m, marker="o", label=c)
        ax.fill_between(
            zs,
            [a - b for a, b in zip(m, h, strict=True)],
            [a + b for a, b in zip(m, h, strict=True)],
            alpha=0.2,
        )
    for k, style in (("longer_accuracy", "--"), ("shorter_accuracy", ":"), ("critique_lexicon", "-.")):
        if k in heuristics:
            ax.axhline(100 * heuristics[k], color="k", ls=style, lw=1, label=HEURISTICS[k])
    ax.axhline(50, color="grey", lw=0.5)
    ax.set_xscale("log")
    ax.set_xticks(sizes, [str(z) for z in sizes])
    ax.minorticks_off()
    ax.set_xlabel("training pairs (FeedbackQA)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Critique-conditioned MiniLM RMs, feedbackqa-test (mean ± 95% CI)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def sample(pairs: list[PreferencePair], n: int) -> list[PreferencePair]:
    """A fixed ``random.Random(0)`` sample of ``n`` pairs in file order (0 or n ≥ len: all)."""
    if not n or n >= len(pairs):
        return pairs
    return [pairs[i] for i in sorted(random.Random(0).sample(range(len(pairs)), n))]


def plan(args, n_train: int, done: set) -> list[tuple[str, int, int]]:
    """(condition, size, seed) still to run, smallest sizes first (each size for every condition
    and seed before the next size)."""
    sizes = sorted({min(z, n_train, args.pool) for z in args.sizes})
    return [
        (c, z, s) for z in sizes for s in range(args.seeds) for c in args.conditions if (c, z, s) not in done
    ]


CONFIG_KEYS = ("pool", "steps", "max_epochs", "batch_size", "max_length", "validation_pairs", "test_pairs")


def check_config(args) -> None:
    """OUT/config.json holds the settings the results were measured with; resuming with other
    settings is refused (the rows would not be comparable)."""
    path = args.out / "config.json"
    cfg = {k: getattr(args, k) for k in CONFIG_KEYS} | {"limit": args.limit}
    if path.exists() and (old := json.loads(path.read_text())) != cfg:
        diff = {k: (old.get(k), v) for k, v in cfg.items() if old.get(k) != v}
        raise SystemExit(f"{path}: results were measured with other settings {diff}; use another --out")
    path.write_text(json.dumps(cfg, indent=2) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/critiques"))
    ap.add_argument("--conditions", type=lambda s: s.split(","), default=["human", "shuffled", "none"])
    ap.add_argument(
        "--sizes", type=lambda s: [int(x) for x in s.split(",")], default=[50, 100, 200, 400, 800]
    )
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--pool", type=int, default=800, help="training pool the subsets are drawn from")
    ap.add_argument("--steps", type=int, default=60, help="about this many optimiser steps per run")
    ap.add_argument("--max-epochs", type=int, default=12)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--validation-pairs", type=int, default=100, help="select-best on this many")
    ap.add_argument("--test-pairs", type=int, default=300, help="a fixed random sample (0 = all 749)")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (shared CPU: 1)")
    ap.add_argument("--limit", type=int, default=0, help="at most N pairs per split (smoke runs)")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--generate", default="", help="write the critiques of this LLM (qwen2.5-1.5b, smollm2)")
    ap.add_argument("--gen-batch", type=int, default=32, help="--generate: conversations per forward")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    check_config(args)
    results = args.out / "results.jsonl"
    rows = [json.loads(line) for line in results.open()] if results.exists() else []
    done = {(r["condition"], r["size"], r["seed"]) for r in rows}
    splits = {s: bundled_set(f"feedbackqa-{s}")[: args.limit or None] for s in SPLITS}
    splits["validation"] = splits["validation"][: args.validation_pairs]
    splits["test"] = sample(splits["test"], args.test_pairs)
    n_train = len(splits["train"])
    pool_ids = pool(n_train, args.pool)
    if args.generate:
        needed = splits["validation"] + splits["test"] + [splits["train"][i] for i in pool_ids]
        needed.sort(key=lambda p: len(p.chosen) + len(p.rejected))  # similar lengths batch together
        log.info("%s", generate_critiques(args.generate, needed, args.threads, args.gen_batch))
        return
    todo = [] if args.report_only else plan(args, n_train, done)
    data, trunks = {}, {}
    for name, size, seed in todo:
        if name not in trunks:
            data[name] = condition_data(name, splits)
            base = RewardModel.build(model_config(CONDITIONS.get(name), args))
            trunks[name] = {s: SharedTrunk(base, data[name][s]) for s in SPLITS}
        row = run_one(name, subset(pool_ids, size, seed), seed, data[name], trunks[name], args)
        with results.open("a") as f:
            f.write(json.dumps(row) + "\n")
        log.info("%s", {k: row[k] for k in ("condition", "size", "seed", "epochs", "seconds")} | row["test"])
        write_report(results, args.out, heuristics(splits["test"]))
    write_report(results, args.out, heuristics(splits["test"]))


POSITIVE = re.compile(
    r"\b(excellent|great|good|perfect|clear|detailed|answers the question|directly|helpful|acceptable|"
    r"informative)\b"
)
NEGATIVE = re.compile(
    r"\b(not|doesn't|does not|no|bad|irrelevant|nothing|isn't|unrelated|fails|vague|could be improved|"
    r"lacks)\b"
)


def critique_lexicon(test: list[PreferencePair]) -> float:
    """A crude reading of the human critiques alone: positive minus negative cue words; the pair
    is right when the chosen answer's critique scores higher (ties count wrong)."""

    def score(text: str) -> int:
        text = text.lower()
        return len(POSITIVE.findall(text)) - len(NEGATIVE.findall(text))

    return sum(score(p.critiques["chosen"]) > score(p.critiques["rejected"]) for p in test) / len(test)


def heuristics(test: list[PreferencePair]) -> dict:
    """Both length heuristics and the critique lexicon on the test pairs."""
    out = length_heuristics([p.chosen for p in test], [p.rejected for p in test])
    return out | {"critique_lexicon": critique_lexicon(test)}


if __name__ == "__main__":
    main()
