"""What the server's worker computes for a batch, and the reward normalisation stored with a model.

A :class:`Sample` is one (prompt, response) with its request's scalarizer and penalty k. The
batch is scored once (per-objective rewards (N, K) and, with a posterior or ensemble, their
standard deviations); each sample is then scalarized by its scalarizer, normalised when the
server normalises that scalarizer, and penalised: reward − k·reward_std.

Normalisation (OpenRLHF ignores its own ``--normalize_reward`` with a remote RM): the mean and
standard deviation of the scalarized reward over a reference set, stored in the model's
``rewardlab.json`` under ``"normalization"`` = ``{"mean", "std", "n", "scalarizer", "source"}``,
applied as (r − mean) / std (and std / std) only to rewards of that scalarizer.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from rewardlab.data.schema import Prompt

if TYPE_CHECKING:
    from rewardlab.loading import LoadedRM, Scores

NORM_KEY = "normalization"


@dataclass
class Sample:
    """One response to score with its request's options."""

    prompt: Prompt
    response: str
    scalarizer: str | None = None  # None: the model's
    penalty_k: float = 0.0


@dataclass
class Scored:
    """The reward of one sample: scalarized (normalised, penalised), per objective, stds."""

    reward: float
    rewards: list[float]  # (K,)
    reward_std: float | None
    std: list[float] | None  # (K,)


def extra_logs(objectives: list[str], scored: list[Scored]) -> dict[str, list[float]]:
    """OpenRLHF ``extra_logs``: per-objective rewards (K > 1) and, with a posterior or ensemble,
    ``reward_std`` and ``std/<objective>`` (K > 1); one value per sample."""
    logs: dict[str, list[float]] = {}
    if len(objectives) > 1:
        for k, name in enumerate(objectives):
            logs[name] = [s.rewards[k] for s in scored]
    if scored and scored[0].reward_std is not None:
        logs["reward_std"] = [s.reward_std for s in scored]
        if len(objectives) > 1:
            for k, name in enumerate(objectives):
                logs[f"std/{name}"] = [s.std[k] for s in scored]
    return logs


def fit_normalization(loaded: LoadedRM, path: str | Path, batch_tokens: int = 8192) -> dict[str, Any]:
    """Mean/std of the model's scalarized reward over the responses of ``path`` (a responses or
    pairs file; pairs give chosen and rejected)."""
    from rewardlab.data.responses import load_responses

    items = load_responses(path)
    if len(items) < 2:
        raise ValueError(f"{path}: need at least 2 responses to fit a reward mean/std, got {len(items)}")
    s = loaded.score(
        [i.prompt for i in items], [i.response for i in items], uncertainty=False, batch_tokens=batch_tokens
    )
    std = float(s.reward.std())
    if not std > 0:
        raise ValueError(f"{path}: every reward is equal; cannot normalise by a zero std")
    return {
        "mean": float(s.reward.mean()),
        "std": std,
        "n": len(items),
        "scalarizer": loaded.rm.cfg.scalarizer,
        "source": str(path),
    }


def store_normalization(model_dir: Path, stats: dict[str, Any]) -> None:
    """Write ``stats`` into ``model_dir/rewardlab.json`` under ``"normalization"`` (atomically)."""
    from rewardlab.models.reward_model import META

    meta_path = Path(model_dir) / META
    meta = json.loads(meta_path.read_text())
    meta[NORM_KEY] = stats
    tmp = meta_path.with_name(meta_path.name + ".tmp")
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, meta_path)


@dataclass
class Prepared:
    """A sample as the worker tokenized it: its token ids on the MAP path of a neural RM."""

    sample: Sample
    seq: dict[str, list[int]] | None  # None: the RM scores from text (posterior, ensemble, knowledge)
    length: int  # tokens (a neural RM) or 0 (a knowledge RM: no padding to plan)


class Scorer:
    """Scores batches of :class:`Sample` with a loaded model (runs on the batcher's worker).

    :meth:`prepare` tokenizes the samples the worker took (one call for all), giving the token
    lengths the batch plan is made from; :meth:`score` scores one planned pass. On the MAP path of
    a neural RM a pass is the offline scoring path (``RewardModel.score_encoded``, then the model's
    scalarizer), so rewards equal offline ones; a decoder RM packs the pass's samples that share a
    prompt (concurrent requests of one GRPO group) into one row each (exact to ~1e-5). With
    ``pack`` an encoder RM's pass is one packed forward (:mod:`rewardlab.models.encoder_pack`:
    samples end to end in rows of ``max_length``, each seeing only itself; exact to ~1e-6)."""

    def __init__(
        self,
        loaded: LoadedRM,
        normalization: dict[str, Any] | None = None,
        batch_tokens: int = 8192,
        max_rows: int = 64,
        pack: bool = False,
    ):
        from rewardlab.models.encoder_pack import supports_packing

        self.loaded, self.norm = loaded, normalization
        self.batch_tokens, self.max_rows = batch_tokens, max_rows
        self.map_path = not loaded.knowledge and loaded.uncertainty_source is None
        self.pack = pack and self.map_path and supports_packing(loaded.rm)

    def normalizes(self, scalarizer: str | None) -> bool:
        """Whether rewards of ``scalarizer`` (None: the model's) are normalised."""
        return (
            self.norm is not None and (scalarizer or self.loaded.rm.cfg.scalarizer) == self.norm["scalarizer"]
        )

    def prepare(self, samples: list[Sample]) -> list[Prepared]:
        """Tokenize ``samples`` (neural RMs); a knowledge RM's samples get length 0."""
        if self.loaded.knowledge:
            return [Prepared(x, None, 0) for x in samples]
        seqs = self.loaded.rm.encode([x.prompt for x in samples], [x.response for x in samples])
        keep = self.map_path
        return [
            Prepared(x, q if keep else None, len(q["input_ids"])) for x, q in zip(samples, seqs, strict=True)
        ]

    def padded_tokens(self, batch: list[Prepared]) -> int:
        """Tokens the pass computes: its packed rows × the longest row (what attention spans;
        the linears of a packed pass run on the real tokens only), or (not packed) the padded
        tokens of the passes ``score_encoded`` cuts it into (before any prompt sharing)."""
        lengths = [p.length for p in batch]
        if not lengths:
            return 0
        if not self.pack:
            from rewardlab.models.pass_plan import PlanConfig, plan_batches

            plan = plan_batches(lengths, PlanConfig(max_tokens=self.batch_tokens, max_rows=self.max_rows))
            return sum(len(r) * max(lengths[i] for i in r) for r in plan)
        from rewardlab.models.encoder_pack import pack_rows

        rows = pack_rows(lengths, self.loaded.rm.cfg.max_length)
        return len(rows) * max(sum(lengths[i] for i in r) for r in rows)

    def _scores(self, batch: list[Prepared]) -> Scores:
        if self.map_path:  # the offline path (the plan kept the pass within the limits)
            from rewardlab.loading import Scores
            from rewardlab.models.prompt_share import prompt_keys

            seqs = [p.seq for p in batch]
            if self.pack:
                from rewardlab.models.encoder_pack import score_packed

                mean = score_packed(self.loaded.rm, seqs)
                return Scores(mean, None, *self.loaded.scalarize(mean))
            groups = prompt_keys([p.sample.prompt for p in batch])  # decoders share a pass's prompts
            mean = self.loaded.rm.score_encoded(
                seqs, batch_tokens=self.batch_tokens, max_batch=self.max_rows, groups=groups
            )
            return Scores(mean, None, *self.loaded.scalarize(mean))
        samples = [p.sample for p in batch]
        return self.loaded.score(
            [x.prompt for x in samples], [x.response for x in samples], batch_tokens=self.batch_tokens
        )

    def __call__(self, samples: list[Sample]) -> list[Scored]:
        """Rewards of ``samples``, in order (tokenized and scored as one pass)."""
        return self.score(self.prepare(samples))

    def score(self, batch: list[Prepared]) -> list[Scored]:
        """Rewards of one pass of prepared samples, in order."""
        s = self._scores(batch)
        samples = [p.sample for p in batch]
        reward, reward_std = s.reward.clone(), None if s.reward_std is None else s.reward_std.clone()
        for name in {x.scalarizer for x in samples if x.scalarizer is not None}:
            idx = torch.tensor([i for i, x in enumerate(samples) if x.scalarizer == name])
            r, r_std = self.loaded.scalarize(s.rewards[idx], None if s.std is None else s.std[idx], name)
            reward[idx] = r
            if reward_std is not None and r_std is not None:
                reward_std[idx] = r_std
        out = []
        for i, x in enumerate(samples):
            r, sd = float(reward[i]), None if reward_std is None else float(reward_std[i])
            if self.normalizes(x.scalarizer):
                r = (r - self.norm["mean"]) / self.norm["std"]
                sd = None if sd is None else sd / self.norm["std"]
            if x.penalty_k:
                r -= x.penalty_k * (sd or 0.0)
            out.append(Scored(r, s.rewards[i].tolist(), sd, None if s.std is None else s.std[i].tolist()))
        return out
