"""Knowledge-infused RMs with few labels: accuracy vs number of training pairs (issue 8 §2).

Three RMs on each set, trained on seeded subsets of its training split and scored on its test
split (SummEval-OP: held-out products; qa-feedback: held-out questions; HH harmless):

* ``neural`` — the embedded MiniLM, LoRA on the last layer (rewardlab's default RM);
* ``knowledge`` — :class:`rewardlab.knowledge.LinearBT` over the default feature sets (general,
  + opinion_summary on SummEval-OP), prior chosen by the Laplace evidence;
* ``fused`` — the same linear BT with the neural RM's reward as one more feature, fitted on the
  same training pairs (exactly ``rewardlab train --kind fused`` without ``--validation``).

Sizes ``--sizes`` (0 = all), ``--seeds`` seeds per point (the subset and the neural init), 95%
t-intervals over seeds; "longer wins" and "shorter wins" drawn on the same plot. On SummEval-OP
(longer wins ≈ 90% of test pairs) the table also gives accuracy on test pairs of similar length
(character lengths within ``--similar`` of each other) and the knowledge RM's weights on all pairs.
A neural RM gets at least ``--min-steps`` optimiser steps (tiny sets would otherwise get 1–2).

Resumable: each finished (set, size, seed, method) appends a row to OUT/results.jsonl and is
skipped on a rerun; ``--report-only`` just rewrites OUT/table.md and OUT/plot.png.

    python recipes/data_efficiency.py --out runs/data_efficiency [--methods knowledge,neural,fused]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import sys
from collections.abc import MutableMapping
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from multi_objective import FrozenTrunkScorer, ci  # noqa: E402  (the shared frozen-trunk scorer)

from rewardlab.data.bundled import bundled_set  # noqa: E402
from rewardlab.data.schema import PreferencePair, prompt_text  # noqa: E402
from rewardlab.evaluate.metrics import length_heuristics, pairwise_accuracy  # noqa: E402
from rewardlab.knowledge import LinearBT, extract, feature_names  # noqa: E402
from rewardlab.knowledge.rm import NEURAL_FEATURE, default_feature_sets  # noqa: E402
from rewardlab.models.config import ModelConfig  # noqa: E402
from rewardlab.models.fast_top import cls_top_rewards  # noqa: E402
from rewardlab.models.reward_model import RewardModel  # noqa: E402
from rewardlab.models.trunk_cache import padded_states  # noqa: E402
from rewardlab.objectives.labels import label_targets  # noqa: E402
from rewardlab.train.config import TrainConfig  # noqa: E402
from rewardlab.train.trainer import train  # noqa: E402

log = logging.getLogger("data_efficiency")
SETS = {"summeval": "summeval", "qafeedback": "qafeedback", "hh": "hh"}  # name → bundled prefix
METHODS = ("neural", "knowledge", "fused")


class SetData:
    """One set's train/test pairs, features (computed once), targets and test-side facts."""

    def __init__(self, name: str, similar: float) -> None:
        self.name = name
        self.train, self.test = bundled_set(f"{SETS[name]}-train"), bundled_set(f"{SETS[name]}-test")
        self.sets = default_feature_sets(self.train)
        self.names = feature_names(self.sets)
        self.phi = {k: self._phi(getattr(self, k)) for k in ("train", "test")}  # (P, D) chosen, rejected
        self.targets = label_targets(self.train, ["reward"]).targets[:, 0]  # the label rule, K = 1
        lc, lr = [len(p.chosen) for p in self.test], [len(p.rejected) for p in self.test]
        self.similar = torch.tensor([abs(a - b) <= similar * max(a, b) for a, b in zip(lc, lr, strict=True)])
        self.heuristics = length_heuristics([p.chosen for p in self.test], [p.rejected for p in self.test])
        self._scorer: FrozenTrunkScorer | None = None
        self.trunk_store: dict = {}  # full training set's frozen-trunk states, shared by every subset

    def _phi(self, pairs: list[PreferencePair]) -> tuple[torch.Tensor, torch.Tensor]:
        prompts = [prompt_text(p.prompt) for p in pairs]
        chosen = extract(self.sets, prompts, [p.chosen for p in pairs])
        return chosen, extract(self.sets, prompts, [p.rejected for p in pairs])

    def scorer(self, rm: RewardModel) -> FrozenTrunkScorer:
        """The test set's frozen-trunk states, computed once (every neural RM shares the trunk)."""
        if self._scorer is None:
            self._scorer = FrozenTrunkScorer(rm, self.test)
        return self._scorer

    def metrics(self, rc: torch.Tensor, rr: torch.Tensor) -> dict:
        """Accuracy on the test set and on its similar-length pairs."""
        s = self.similar
        return {"accuracy": pairwise_accuracy(rc, rr), "similar_accuracy": pairwise_accuracy(rc[s], rr[s])}


class SubsetStore(MutableMapping):
    """The frozen-trunk store of the training subset ``idx`` as a view of the set's full store:
    the trainer's sequence ``2j + s`` (pair j of the subset; s = 0 chosen, 1 rejected) is the
    full set's sequence ``2·idx[j] + s``. Every subset of a set shares one trunk pass per pair."""

    def __init__(self, full: dict, idx: list[int]) -> None:
        self.full, self.idx = full, idx

    def _key(self, k: int) -> int:
        return 2 * self.idx[k // 2] + k % 2

    def __getitem__(self, k: int) -> torch.Tensor:
        return self.full[self._key(k)]

    def __setitem__(self, k: int, v: torch.Tensor) -> None:
        self.full[self._key(k)] = v

    def __delitem__(self, k: int) -> None:
        del self.full[self._key(k)]

    def __contains__(self, k: object) -> bool:
        return isinstance(k, int) and 0 <= k < 2 * len(self.idx) and self._key(k) in self.full

    def __iter__(self):  # noqa: ANN204
        return (k for k in range(2 * len(self.idx)) if k in self)

    def __len__(self) -> int:
        return sum(1 for _ in self)


@torch.inference_mode()
def store_rewards(rm: RewardModel, store: SubsetStore, n_pairs: int, batch: int = 64) -> tuple:
    """(r_chosen, r_rejected) of the subset's pairs from the trunk states the training stored:
    only the last layer and head run (:func:`cls_top_rewards`)."""
    rm.eval()
    ids = sorted(range(2 * n_pairs), key=lambda k: store[k].shape[0])
    out = torch.empty(2 * n_pairs, rm.cfg.num_objectives)
    for s in range(0, len(ids), batch):
        b = ids[s : s + batch]
        lengths = torch.tensor([store[k].shape[0] for k in b])
        mask = (torch.arange(int(lengths.max()))[None, :] < lengths[:, None]).long()  # (B, T)
        out[b] = cls_top_rewards(rm, padded_states(store, b, mask.shape[1]), mask).float()
    return out[0::2], out[1::2]


def fit_eval(d: SetData, idx: list[int], extra: tuple | None = None) -> tuple[dict, LinearBT]:
    """Fit the linear BT on training pairs ``idx`` (+ the neural reward columns), score the test set."""
    (tc, tr), (sc, sr), names = d.phi["train"], d.phi["test"], d.names
    tc, tr = tc[idx], tr[idx]
    if extra is not None:  # (train chosen, train rejected, test chosen, test rejected) neural rewards
        tc, tr, sc, sr = (
            torch.cat([a, b.double()[:, None]], 1) for a, b in zip((tc, tr, sc, sr), extra, strict=True)
        )
        names = [*names, NEURAL_FEATURE]
    bt = LinearBT.fit(names, tc, tr, d.targets[idx])
    return d.metrics(bt.reward(sc)[0], bt.reward(sr)[0]), bt


def run_neural(d: SetData, idx: list[int], seed: int, args) -> tuple[dict, dict]:  # noqa: ANN001
    """Train the neural RM on ``idx``; return its metrics and the fused model's."""
    sub = [d.train[i] for i in idx]
    steps_per_epoch = math.ceil(len(sub) / args.batch_size)
    epochs = max(args.epochs, math.ceil(args.min_steps / steps_per_epoch))
    t = TrainConfig(
        epochs=epochs, batch_size=args.batch_size, seed=seed, save_steps=0, progress=False, select_best=False
    )
    torch.manual_seed(seed)
    store = SubsetStore(d.trunk_store, idx)
    rm = train(sub, ModelConfig(), t, out=None, trunk_store=store).model
    r_test = d.scorer(rm).rewards(rm)
    r_train = store_rewards(rm, store, len(sub))
    neural = d.metrics(r_test[0][:, 0], r_test[1][:, 0])
    fused, _ = fit_eval(d, idx, (r_train[0][:, 0], r_train[1][:, 0], r_test[0][:, 0], r_test[1][:, 0]))
    return {**neural, "epochs": epochs}, fused


def done_keys(path: Path) -> set[tuple]:
    """Keys of the rows already in results.jsonl."""
    if not path.exists():
        return set()
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    return {(r["set"], r["size"], r["seed"], r["method"]) for r in rows}


def run(args) -> None:  # noqa: ANN001
    """Every (set, size, seed, method) not yet in OUT/results.jsonl."""
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res_path = out / "results.jsonl"
    done = done_keys(res_path)
    for name in args.sets:
        d = SetData(name, args.similar)
        (out / f"heuristics-{name}.json").write_text(json.dumps({**d.heuristics, "n_train": len(d.train)}))
        for size in args.sizes:
            n = size or len(d.train)
            if n > len(d.train):
                continue
            for seed in range(args.seeds):
                idx = sorted(random.Random(seed).sample(range(len(d.train)), n))
                rows = {}
                if "knowledge" in args.methods and (name, size, seed, "knowledge") not in done:
                    rows["knowledge"] = fit_eval(d, idx)[0]
                want = [
                    m for m in ("neural", "fused") if m in args.methods and (name, size, seed, m) not in done
                ]
                if want:
                    rows["neural"], rows["fused"] = run_neural(d, idx, seed, args)
                with open(res_path, "a") as f:
                    for method, m in rows.items():
                        f.write(
                            json.dumps(
                                {"set": name, "size": size, "n": n, "seed": seed, "method": method, **m}
                            )
                            + "\n"
                        )
                        done.add((name, size, seed, method))
                if rows:
                    log.info(
                        "%s n=%d seed=%d %s",
                        name,
                        n,
                        seed,
                        {k: round(v["accuracy"], 3) for k, v in rows.items()},
                    )
        if name == "summeval":
            _, bt = fit_eval(d, list(range(len(d.train))))
            (out / "weights-summeval.json").write_text(json.dumps(bt.weight_table(), indent=1))


# ---- report -----------------------------------------------------------------------------------
def summarise(rows: list[dict]) -> dict:
    """{(set, method, n): {metric: (mean, 95% half-width), "seeds": k}}."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["set"], r["method"], r["n"]), []).append(r)
    return {
        k: {m: ci([g[m] for g in grp]) for m in ("accuracy", "similar_accuracy")} | {"seeds": len(grp)}
        for k, grp in groups.items()
    }


def fewer_labels(summary: dict, name: str) -> list[str]:
    """Where the knowledge/fused RM first reaches the neural RM's full-data mean accuracy."""
    ns = sorted({n for s, _, n in summary if s == name})
    full = summary.get((name, "neural", ns[-1])) if ns else None
    if full is None:
        return []
    target, lines = full["accuracy"][0], []
    for method in ("knowledge", "fused"):
        hit = next(
            (
                n
                for n in ns
                if (name, method, n) in summary and summary[(name, method, n)]["accuracy"][0] >= target
            ),
            None,
        )
        lines.append(
            f"- {method}: "
            + (f"reaches it with {hit} pairs ({ns[-1] / hit:.1f}× fewer)" if hit else "never reaches it")
            + f" (neural with all {ns[-1]} pairs: {100 * target:.1f}%)"
        )
    return lines


def report(out: Path) -> None:
    """OUT/table.md and OUT/plot.png from OUT/results.jsonl."""
    rows = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines() if x.strip()]
    summary = summarise(rows)
    names = sorted({r["set"] for r in rows}, key=list(SETS).index)
    lines = ["# Accuracy vs training pairs (mean ± 95% t-interval over seeds; ties wrong)", ""]
    for name in names:
        heur = json.loads((out / f"heuristics-{name}.json").read_text())
        ns = sorted({n for s, _, n in summary if s == name})
        methods = [m for m in METHODS if any((name, m, n) in summary for n in ns)]
        lines += [f"## {name}  (longer wins {100 * heur['longer_accuracy']:.1f}%, shorter wins "
                  f"{100 * heur['shorter_accuracy']:.1f}%)", ""]  # fmt: skip
        cols = [f"{m}" for m in methods] + (
            [f"{m} (similar length)" for m in methods] if name == "summeval" else []
        )
        lines += ["| pairs | " + " | ".join(cols) + " | seeds |", "|---" * (len(cols) + 2) + "|"]
        for n in ns:
            cells = []
            for metric in ["accuracy"] + (["similar_accuracy"] if name == "summeval" else []):
                for m in methods:
                    v = summary.get((name, m, n))
                    cells.append(f"{100 * v[metric][0]:.1f} ± {100 * v[metric][1]:.1f}" if v else "")
            seeds = max(summary[(name, m, n)]["seeds"] for m in methods if (name, m, n) in summary)
            lines.append(f"| {n} | " + " | ".join(cells) + f" | {seeds} |")
        lines += ["", *fewer_labels(summary, name), ""]
    if (out / "weights-summeval.json").exists():
        lines += [
            "## Knowledge RM weights on all SummEval-OP training pairs (per feature std; 95% interval)",
            "",
        ]
        lines += ["| feature | weight | 95% interval |", "|---|---|---|"]
        for w in sorted(
            json.loads((out / "weights-summeval.json").read_text()), key=lambda w: -abs(w["weight"])
        ):
            lines.append(f"| {w['feature']} | {w['weight']:+.2f} | [{w['low']:+.2f}, {w['high']:+.2f}] |")
    (out / "table.md").write_text("\n".join(lines) + "\n")
    plot(out, summary, names)


def plot(out: Path, summary: dict, names: list[str]) -> None:
    """One panel per set: accuracy vs pairs (log x) per method with 95% bars; heuristics dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4), squeeze=False)
    for ax, name in zip(axes[0], names, strict=True):
        heur = json.loads((out / f"heuristics-{name}.json").read_text())
        for m in METHODS:
            pts = sorted((n, v["accuracy"]) for (s, mm, n), v in summary.items() if s == name and mm == m)
            if pts:
                ax.errorbar(
                    [p[0] for p in pts],
                    [p[1][0] for p in pts],
                    [p[1][1] for p in pts],
                    marker="o",
                    capsize=3,
                    label=m,
                )
        ax.axhline(heur["longer_accuracy"], ls="--", c="grey", label="longer wins")
        ax.axhline(heur["shorter_accuracy"], ls=":", c="grey", label="shorter wins")
        ax.set(xscale="log", xlabel="training pairs", ylabel="test accuracy", title=name, ylim=(0, 1))
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "plot.png", dpi=120)


def main() -> None:
    """Parse flags, run what is missing, write the report."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="runs/data_efficiency")
    ap.add_argument("--sets", default="summeval,qafeedback,hh", type=lambda s: s.split(","))
    ap.add_argument("--methods", default="neural,knowledge,fused", type=lambda s: s.split(","))
    ap.add_argument(
        "--sizes", default="10,25,50,100,200,400,0", type=lambda s: [int(x) for x in s.split(",")]
    )
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--min-steps", type=int, default=30)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--similar", type=float, default=0.2, help="similar length: |Δ chars| ≤ this × longer")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for s in args.sets:
        if s not in SETS:
            ap.error(f"--sets: unknown {s!r}; choose from {list(SETS)}")
    for m in args.methods:
        if m not in METHODS:
            ap.error(f"--methods: unknown {m!r}; choose from {list(METHODS)}")
    if not args.report_only:
        run(args)
    report(Path(args.out))


if __name__ == "__main__":
    main()
