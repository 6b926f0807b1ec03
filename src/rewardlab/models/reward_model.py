"""The reward model: an HF sequence-classification model (+ LoRA) with K reward heads.

Rewards are read by the HF model itself (BERT: pooled [CLS]; decoders: the rightmost non-pad
token), with ``position_ids`` derived from the attention mask so left or right padding give the
same reward. Saved as a standard HF model (merged) plus the peft adapter and ``rewardlab.json``.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Hashable
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from rewardlab.data.schema import Prompt
from rewardlab.models.backbone import build_backbone, load_tokenizer, trained_layer_ids
from rewardlab.models.config import ModelConfig
from rewardlab.models.modes import eval_mode, frozen_trunk
from rewardlab.models.pass_plan import PlanConfig, plan_batches
from rewardlab.models.tokenize import PairEncoder, rm_chat_template

META = "rewardlab.json"
ENCODING = 2  # 1: BERT pairs as two segments (types 0/1); 2: one chat-template segment
CRITIQUE_SEP = "\n\n### Critique\n"
log = logging.getLogger(__name__)


def model_dir(path: str | Path) -> Path:
    """The directory holding ``rewardlab.json``: ``path`` itself, or a run directory's ``model/``
    (e.g. from ``rewardlab demo``). The one place a saved model's directory is resolved."""
    path = Path(path)
    if not (path / META).exists() and (path / "model" / META).exists():
        return path / "model"
    return path


def read_meta(path: str | Path) -> dict:
    """``rewardlab.json`` of a model directory (resolved by :func:`model_dir`)."""
    path = model_dir(path)
    if not (path / META).exists():
        raise FileNotFoundError(f"{path}: not a rewardlab model (no {META}); train one first")
    meta = json.loads((path / META).read_text())
    if meta.get("encoding", 1) != ENCODING:
        log.warning(
            "%s was saved by an older rewardlab that encoded pairs differently (encoding %s, now %s);"
            " its scores are off until it is retrained",
            path,
            meta.get("encoding", 1),
            ENCODING,
        )
    return meta


def pad_batch(seqs: list[dict[str, list[int]]], pad_id: int, side: str = "right") -> dict[str, torch.Tensor]:
    """Pad token-id dicts into tensors: ``input_ids``, ``attention_mask`` (+ ``token_type_ids``), (N, T)."""
    length = max(len(s["input_ids"]) for s in seqs)
    out: dict[str, list[list[int]]] = {"input_ids": [], "attention_mask": []}
    has_tt = "token_type_ids" in seqs[0]
    if has_tt:
        out["token_type_ids"] = []
    for s in seqs:
        n = len(s["input_ids"])
        pad = [0] * (length - n)

        def put(x: list[int], fill: list[int]) -> list[int]:
            return x + fill if side == "right" else fill + x

        out["input_ids"].append(put(s["input_ids"], [pad_id] * (length - n)))
        out["attention_mask"].append(put([1] * n, pad))
        if has_tt:
            out["token_type_ids"].append(put(s["token_type_ids"], pad))
    return {k: torch.tensor(v, dtype=torch.long) for k, v in out.items()}


def right_align(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Move left padding to the right (per row, a roll by its count of leading pads) so readouts
    at the first token ([CLS]) never see a pad. Right-padded batches come back unchanged."""
    mask = batch["attention_mask"]
    lead = (mask.cumsum(-1) == 0).sum(-1)  # (N,) leading pads
    if not bool(lead.any()):
        return batch
    t = mask.shape[1]
    idx = (torch.arange(t, device=mask.device)[None, :] + lead[:, None]) % t  # (N, T)
    return {k: v.gather(1, idx) if v.dim() == 2 else v for k, v in batch.items()}


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counted over real tokens only, so padding side cannot shift them: (N, T)."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


class RewardModel(nn.Module):
    """K-objective reward model r(x, y) ∈ R^K over an HF backbone."""

    def __init__(self, model: nn.Module, tokenizer, cfg: ModelConfig, base_path: str) -> None:
        super().__init__()
        self.model = model
        self.tokenizer = tokenizer
        self.cfg = cfg
        self.base_path = base_path
        tokenizer.chat_template = rm_chat_template(tokenizer, cfg.chat_template)  # saved with the RM
        self.encoder = PairEncoder(tokenizer, cfg.max_length)
        self.fast_inference = True  # [CLS]-only last layer when scoring BERT-family models

    @classmethod
    def build(cls, cfg: ModelConfig) -> RewardModel:
        """A fresh reward model: backbone, K heads, LoRA / frozen layers per ``cfg``."""
        model, tok, path = build_backbone(cfg)
        return cls(model, tok, cfg, path)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def trunk_split(self) -> int:
        """Number of frozen lower layers (0 when every layer trains)."""
        return trained_layer_ids(self.hf_model, self.cfg)[0]

    @property
    def hf_model(self) -> nn.Module:
        """The underlying ``*ForSequenceClassification`` (inside the peft wrapper if any)."""
        m = self.model
        return m.get_base_model() if hasattr(m, "get_base_model") else m

    def train(self, mode: bool = True) -> RewardModel:
        """Train mode for the trained part only (trained layers with their LoRA dropout, head); the
        frozen trunk stays in eval mode, see :mod:`rewardlab.models.modes`."""
        super().train(mode)
        if mode:
            for module in frozen_trunk(self.hf_model, self.trunk_split):
                module.eval()
        return self

    def encode(
        self, prompts: list[Prompt], responses: list[str], critiques: list[str | None] | None = None
    ) -> list[dict[str, list[int]]]:
        """Token ids per (prompt, response); see :class:`PairEncoder`. A critique-conditioned RM
        (``cfg.critiques``) reads ``response + CRITIQUE_SEP + critique`` and needs every critique."""
        if self.cfg.critiques:
            if critiques is None or any(c is None for c in critiques):
                missing = "all" if critiques is None else sum(c is None for c in critiques)
                raise ValueError(
                    f"this reward model reads critiques, but {missing} response(s) have none: "
                    "run `rewardlab critique` on the data first"
                )
            responses = [r + CRITIQUE_SEP + c for r, c in zip(responses, critiques, strict=True)]
        return self.encoder.encode_many(prompts, responses)

    def collate(self, seqs: list[dict[str, list[int]]], side: str = "right") -> dict[str, torch.Tensor]:
        """Pad encoded sequences into a batch on the model's device."""
        batch = pad_batch(seqs, self.tokenizer.pad_token_id, side)
        return {k: v.to(self.device) for k, v in batch.items()}

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kw) -> torch.Tensor:
        """Rewards (N, K) for a padded batch (N, T); any padding side (left padding is realigned)."""
        b = right_align({"input_ids": input_ids, "attention_mask": attention_mask, **kw})
        out = self.model(**b, position_ids=position_ids(b["attention_mask"]))
        return out.logits

    @torch.inference_mode()
    def score_encoded(
        self,
        seqs: list[dict[str, list[int]]],
        batch_tokens: int = 8192,
        max_batch: int = 64,
        side: str = "right",
        groups: list[Hashable] | None = None,
    ) -> torch.Tensor:
        """Rewards (N, K) for encoded sequences, in the passes of least padded work under a token
        budget and a row limit (:func:`rewardlab.models.pass_plan.plan_batches`).
        ``groups`` (one key per sequence, e.g. its prompt): decoder RMs compute the shared token
        prefix of each group once (exact, see :mod:`rewardlab.models.prompt_share`)."""
        out = torch.empty(len(seqs), self.cfg.num_objectives)
        rest = set(range(len(seqs)))
        with eval_mode(self):  # afterwards every module is back in its own former mode
            if groups is not None and self.fast_inference and len(groups) == len(seqs):
                from rewardlab.models import prompt_share as ps

                if ps.supports_prompt_sharing(self):
                    pad, rows = self.hf_model.config.pad_token_id, []
                    for p, idx in ps.prefix_groups(seqs, groups):
                        idx = ps.shareable(seqs, p, pad, idx)
                        if len(idx) > 1:
                            rows += ps.pack_group(seqs, idx, p, pad)
                    if rows:
                        members, rewards = ps.score_packed(self, rows, batch_tokens, max_batch)
                        out[members] = rewards
                        rest.difference_update(members)
            order = sorted(rest)
            plan = plan_batches(
                [len(seqs[i]["input_ids"]) for i in order],
                PlanConfig(max_tokens=batch_tokens, max_rows=max_batch),
            )
            for run in reversed(plan):  # longest first: the peak memory comes at once
                idx = [order[k] for k in run]
                batch = self.collate([seqs[j] for j in idx], side)
                out[idx] = self._infer(batch).float().cpu()
        return out

    def _infer(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Rewards (N, K) for one batch; BERT-family models skip the non-[CLS] work of the last
        layer (exact, see :mod:`rewardlab.models.fast_top`)."""
        from rewardlab.models.fast_top import below_top, cls_top_rewards, supports_cls_top

        if self.fast_inference and supports_cls_top(self, training=False):
            batch = right_align(batch)
            return cls_top_rewards(self, below_top(self, batch), batch["attention_mask"])
        return self(**batch)

    def score(
        self, prompts: list[Prompt], responses: list[str], critiques: list[str | None] | None = None, **kw
    ) -> torch.Tensor:
        """Rewards (N, K) for aligned prompts and responses (and critiques, for a critique RM)."""
        return self.score_encoded(self.encode(prompts, responses, critiques), **kw)

    # ---- persistence -------------------------------------------------------------------------
    def save(self, out: str | Path) -> Path:
        """Write a standard HF model (LoRA merged) + tokenizer to ``out``, the peft adapter (with
        the head) to ``out/adapter``, and rewardlab's extras to ``out/rewardlab.json``."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        model = self.model
        if hasattr(model, "peft_config"):
            model.save_pretrained(out / "adapter")
            model = copy.deepcopy(model).merge_and_unload()
        model.save_pretrained(out)
        self.tokenizer.save_pretrained(out)
        meta = {
            "model": asdict(self.cfg),
            "base_path": self.base_path,
            "adapter": (out / "adapter").exists(),
            "encoding": ENCODING,
        }
        (out / META).write_text(json.dumps(meta, indent=2))
        return out

    @classmethod
    def load(cls, path: str | Path, adapter: bool = False) -> RewardModel:
        """Load a saved RM (a model directory or a run directory holding ``model/``).
        ``adapter=True`` rebuilds base + LoRA (trainable structure, e.g. for Laplace); otherwise
        the merged HF model is loaded (fastest to score). :func:`rewardlab.load` also loads what
        is saved beside the model (posterior, ensemble)."""
        from transformers import AutoModelForSequenceClassification

        path = model_dir(path)
        meta = read_meta(path)
        cfg = ModelConfig(**meta["model"])
        tok = load_tokenizer(str(path))
        if adapter and meta.get("adapter"):
            from peft import PeftModel

            from rewardlab.assets import resolve_model
            from rewardlab.models.backbone import load_classifier

            base_path = (
                resolve_model(cfg.backbone) if cfg.backbone in ("minilm", "smollm2") else meta["base_path"]
            )
            base = load_classifier(base_path, cfg, tok)
            model = PeftModel.from_pretrained(base, path / "adapter", is_trainable=True)
        else:
            from rewardlab.models.backbone import DTYPES

            model = AutoModelForSequenceClassification.from_pretrained(path, dtype=DTYPES[cfg.dtype])
        return cls(model, tok, cfg, meta["base_path"])
