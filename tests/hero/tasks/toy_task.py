"""A toy downstream task, written the way docs/adding-a-task.md says: this one module and its registration are
all it takes for the trainer (``task: toyvi``), prediction, scoring, the evaluate pipeline's headlines and corpus
ingestion to know it.

The task: does a statement hold for its video? It reads VIOLIN-form annotations under its own dataset name
(``toyvi_<split>.jsonl``), scores each statement from the mean of the video's contextualised frames and the
statement's encoded [CLS], and writes its own prediction file (``{"id", "p"}`` lines) that its
own scorer reads (accuracy at p > 0.5, and the log-loss).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hero.config import ConfigError
from hero.data.batch import VideoBatch
from hero.data.task_collate import collate_videos, pad_token_lists, unique_videos
from hero.storage.atomic import write_text_atomic
from hero.tasks.base import TaskOutput
from hero.tasks.downstream import DownstreamTask
from hero.tasks.prediction import PredictContext, PredictOptions, Written
from hero.tasks.registry import register_task


@dataclass(frozen=True, kw_only=True)
class ToyConfig:
    max_txt_len: int = 32

    def __post_init__(self) -> None:
        if self.max_txt_len < 2:
            raise ConfigError(f"max_txt_len: must be >= 2, got {self.max_txt_len}")


@dataclass(frozen=True)
class ToyInputs:
    batch: VideoBatch
    statement_ids: Tensor
    statement_mask: Tensor
    statement_video: Tensor
    label: Tensor


def collate_toy(examples: Sequence[Mapping], tokens, cfg: ToyConfig, *, clip_len: float | None = None,
                max_frames: int | None = None) -> ToyInputs:
    videos, owner = unique_videos([e["video"] for e in examples])
    ids, mask = pad_token_lists([[tokens.cls, *e["statement_ids"]] for e in examples], tokens.pad, cfg.max_txt_len)
    labels = [-1.0 if e.get("label") is None else float(e["label"]) for e in examples]
    return ToyInputs(collate_videos(videos, tokens, max_frames), ids, mask, owner, torch.tensor(labels))


@register_task
class ToyTask(DownstreamTask):
    name = "toy_match"
    config_cls = ToyConfig
    collate = staticmethod(collate_toy)
    datasets = {"toyvi": "violin"}
    headlines = ("acc",)

    def __init__(self, model_cfg, cfg: ToyConfig, tokens) -> None:
        super().__init__(model_cfg, cfg, tokens)
        self.head = nn.Bilinear(model_cfg.hidden_size, model_cfg.hidden_size, 1)
        self._init_head()

    def logits(self, inputs: ToyInputs) -> Tensor:
        out = self.encoder(inputs.batch)
        m = out.frame_mask.unsqueeze(-1).to(out.frame_states.dtype)
        video = (out.frame_states * m).sum(1) / m.sum(1).clamp(min=1)           # [B, D]
        text = self.encoder.encode_text(inputs.statement_ids, inputs.statement_mask)[:, 0]   # [N, D] at [CLS]
        return self.head(video[inputs.statement_video], text).squeeze(-1)

    def forward(self, inputs: ToyInputs) -> TaskOutput:
        logits = self.logits(inputs)
        known = inputs.label >= 0
        loss = F.binary_cross_entropy_with_logits(logits[known], inputs.label[known]) if known.any() else logits.sum() * 0
        return TaskOutput(loss=loss, metrics={"toy_match/loss": loss.detach()}, count=int(known.sum()))

    def write_predictions(self, ctx: PredictContext) -> Written:
        rows = ctx.run(lambda items, inputs: [{"id": it["id"], "p": float(p)}
                                              for it, p in zip(items, torch.sigmoid(self.logits(inputs)).tolist())])
        write_text_atomic(ctx.out_path, "".join(json.dumps(r) + "\n" for r in rows))
        return Written(len(rows))

    @classmethod
    def score(cls, predictions: Path, annotations: Path, options: PredictOptions, written: Written) -> dict:
        p = {str(r["id"]): r["p"] for r in map(json.loads, Path(predictions).read_text().splitlines())}
        gold = [json.loads(line) for line in Path(annotations).read_text().splitlines() if line.strip()]
        gold = [(str(g["desc_id"]), g["label"]) for g in gold]
        acc = sum((p[i] > 0.5) == bool(y) for i, y in gold) / len(gold)
        nll = -sum(math.log(max(p[i] if y else 1 - p[i], 1e-12)) for i, y in gold) / len(gold)
        return {"acc": 100.0 * acc, "log_loss": nll}

    @classmethod
    def per_example(cls, predictions: Path, annotations: Path, options: PredictOptions,
                    written: Written | None = None) -> dict:
        p = {str(r["id"]): r["p"] for r in map(json.loads, Path(predictions).read_text().splitlines())}
        gold = [json.loads(line) for line in Path(annotations).read_text().splitlines() if line.strip()]
        return {"acc": {str(g["desc_id"]): 100.0 * ((p[str(g["desc_id"])] > 0.5) == bool(g["label"])) for g in gold}}
