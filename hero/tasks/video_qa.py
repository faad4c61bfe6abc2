"""Video question answering: TVQA / How2QA (docs/hero-fidelity.md c.3).

Each (question, answer_i) pair is its own copy of the video: ``[SEP] q [SEP] a_i`` is appended to every
subtitle at the cross-modal level and its embeddings follow the frames at the temporal level
(``Hero.forward(extra_text=...)``). Over the frame states of the A copies:

- answer: ``qa_pool`` attention over frames -> MLP(D -> 2D -> 1) -> A-way cross-entropy;
- span: ``st_ed_pool`` softmax over the A answers per frame -> MLP(D -> 2D -> 2) -> start / end cross-entropy;
- loss = qa + ``lw_temporal`` * (st + ed) / 2; accuracy = argmax over the A answers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from hero.config import ConfigError
from hero.data.batch import VideoBatch
from hero.data.task_collate import collate_videos, pad_token_lists, select_videos, span_labels, unique_videos
from hero.metrics import scoring
from hero.metrics.formats import QaAnswer, write_qa_answers
from hero.model.config import ModelConfig
from hero.model.linear import Linear
from hero.tasks.base import TaskOutput
from hero.tasks.downstream import (DownstreamTask, Mlp, SubtitleTextMatch, SubtitleTextReader, attention_pool,
                                   masked_ce)
from hero.tasks.prediction import PredictContext, PredictOptions, Written
from hero.tasks.registry import register_task
from hero.tasks.vsm import MASK_LOGIT
from hero.text.tokenizer import SpecialTokens


@dataclass(frozen=True, kw_only=True)
class VideoQaConfig:
    """Defaults: HERO's TVQA config."""

    num_answers: int = 5
    """Candidate answers per question (TVQA: 5, How2QA: 4); every example must have this many."""
    lw_temporal: float = 0.4
    """Weight of the start/end (temporal localisation) loss."""
    max_txt_len: int = 120
    """Longest `[SEP] q [SEP] a` sequence (tokens beyond are cut)."""
    window: float | None = None
    """Seconds of context around the question's ``ts``: the model sees only that clip (TVQA's "w/ ts" setting,
    `hero.data.window`); None = the whole video (HERO)."""
    read_text: bool = False
    """Also score each answer where it met the subtitles: the `[SEP] q [SEP] a` tokens' cross-modal states,
    pooled per subtitle, the best subtitle's score added to the answer logit (`SubtitleTextReader`). False =
    HERO's head, which reads the frame states only."""
    text_match: bool = False
    """Also score each `q a` by its cosine similarity to the best-matching subtitle of the video (window), both
    encoded alone by the encoder's text side (`SubtitleTextMatch`), added to the answer logit. False = HERO."""

    def __post_init__(self) -> None:
        if self.window is not None and self.window < 0:
            raise ConfigError(f"window: must be >= 0 seconds or null, got {self.window}")
        if self.num_answers < 2:
            raise ConfigError(f"num_answers: must be >= 2, got {self.num_answers}")
        if self.lw_temporal < 0:
            raise ConfigError(f"lw_temporal: must be >= 0, got {self.lw_temporal}")
        if self.max_txt_len < 3:
            raise ConfigError(f"max_txt_len: must be >= 3, got {self.max_txt_len}")


@dataclass(frozen=True)
class VideoQaInputs:
    """batch: V distinct videos; per question (N rows):
    qa_ids, qa_mask: [N, A, Lx] `[SEP] q [SEP] a_i`; question_video: [N] in 0..V-1;
    answer: [N] correct index (-1 unknown); start, end: [N] GT span frames (inclusive, -1 = none)."""

    batch: VideoBatch
    qa_ids: Tensor
    qa_mask: Tensor
    question_video: Tensor
    answer: Tensor
    start: Tensor
    end: Tensor


def collate_video_qa(examples: Sequence[Mapping], tokens: SpecialTokens, cfg: VideoQaConfig, *, clip_len: float,
                     max_frames: int | None = None) -> VideoQaInputs:
    """Examples ``{"video": video example, "q_ids": [...], "answer_ids": A lists, "answer_idx": int | None,
    "ts": (t0, t1) | None}`` (ids without special tokens) -> inputs; ``clip_len``: the corpus's seconds per
    frame feature (the span labels' unit)."""
    videos, qv = unique_videos([e["video"] for e in examples])
    batch = collate_videos(videos, tokens, max_frames)
    seqs = []
    for e in examples:
        if len(e["answer_ids"]) != cfg.num_answers:
            raise ValueError(f"video_qa: expected {cfg.num_answers} answers, got {len(e['answer_ids'])}")
        seqs += [[tokens.sep, *e["q_ids"], tokens.sep, *a] for a in e["answer_ids"]]
    ids, mask = pad_token_lists(seqs, tokens.pad, cfg.max_txt_len)
    n = batch.frame_mask.sum(1).tolist()
    spans = [span_labels(e.get("ts"), int(n[int(v)]), clip_len) for e, v in zip(examples, qv)]
    answer = [e.get("answer_idx") for e in examples]
    return VideoQaInputs(batch=batch, qa_ids=ids.view(len(examples), cfg.num_answers, -1),
                         qa_mask=mask.view(len(examples), cfg.num_answers, -1), question_video=qv,
                         answer=torch.tensor([-1 if a is None else int(a) for a in answer]),
                         start=torch.tensor([s for s, _ in spans]), end=torch.tensor([e for _, e in spans]))


class VideoQaHead(nn.Module):
    """qa_pool + qa_pred (answer scores), st_ed_pool + st_ed_pred (span); ``text`` (with ``read_text``) scores
    the QA text's cross-modal states."""

    def __init__(self, cfg: ModelConfig, read_text: bool = False, text_match: bool = False) -> None:
        super().__init__()
        self.qa_pool = Linear(cfg.hidden_size, 1)
        self.qa_pred = Mlp(cfg, 1)
        self.st_ed_pool = Linear(cfg.hidden_size, 1)
        self.st_ed_pred = Mlp(cfg, 2)
        self.text = SubtitleTextReader(cfg) if read_text else None
        self.match = SubtitleTextMatch() if text_match else None

    def forward(self, frames: Tensor, frame_mask: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """frames: [N, A, T, D] (copy per answer); frame_mask: [N, T] ->
        answer logits [N, A], start logits [N, T], end logits [N, T] (padding masked)."""
        N, A, T, D = frames.shape
        pooled = attention_pool(frames.flatten(0, 1), frame_mask.repeat_interleave(A, 0), self.qa_pool)  # [N*A, D]
        answer_logits = self.qa_pred(pooled).view(N, A)
        w = self.st_ed_pool(frames).softmax(dim=1)                                 # [N, A, T, 1] over answers
        st_ed = self.st_ed_pred((w * frames).sum(1))                               # [N, T, 2]
        m = frame_mask.to(st_ed.dtype)
        st, ed = (x * m + (1 - m) * MASK_LOGIT for x in st_ed.unbind(-1))
        return answer_logits, st, ed


def video_qa_loss(answer_logits: Tensor, st: Tensor, ed: Tensor, answer: Tensor, start: Tensor, end: Tensor,
                  lw_temporal: float) -> tuple[Tensor, Tensor, Tensor]:
    """(total, qa, temporal): qa = CE over answers; temporal = (CE(st) + CE(ed)) / 2 on rows with a span.
    Rows with answer / start = -1 are left out of their term."""
    qa = masked_ce(answer_logits, answer)
    temporal = (masked_ce(st, start) + masked_ce(ed, end)) / 2
    return qa + lw_temporal * temporal, qa, temporal


@dataclass(frozen=True, eq=False)
class VideoQaPredictions:
    """answer: [N] argmax; answer_logits: [N, A]; start, end: [N] argmax frames of the span heads."""

    answer: Tensor
    answer_logits: Tensor
    start: Tensor
    end: Tensor


@register_task
class VideoQaTask(DownstreamTask):
    name = "video_qa"
    config_cls = VideoQaConfig
    collate = staticmethod(collate_video_qa)
    datasets = {"tvqa": "tvqa", "how2qa": "tvqa"}
    headlines = ("acc",)

    def __init__(self, model_cfg: ModelConfig, cfg: VideoQaConfig, tokens: SpecialTokens) -> None:
        super().__init__(model_cfg, cfg, tokens)
        self.head = VideoQaHead(model_cfg, read_text=cfg.read_text, text_match=cfg.text_match)
        self._init_head()

    def logits(self, inputs: VideoQaInputs) -> tuple[Tensor, Tensor, Tensor]:
        """Encode the N x A video copies with their QA text; returns the head's outputs."""
        N, A, L = inputs.qa_ids.shape
        copies = select_videos(inputs.batch, inputs.question_video.repeat_interleave(A))
        qa_mask = inputs.qa_mask.reshape(N * A, L)
        out = self.encoder(copies, extra_text=(inputs.qa_ids.reshape(N * A, L), qa_mask),
                           extra_text_states=self.head.text is not None)
        frames = out.frame_states.view(N, A, *out.frame_states.shape[1:])
        answer_logits, st, ed = self.head(frames, inputs.batch.frame_mask[inputs.question_video])
        if self.head.text is not None:
            read = self.head.text(out.extra_cross_states, qa_mask[copies.sub_video], copies.sub_video, N * A)
            answer_logits = answer_logits + read.view(N, A).to(answer_logits.dtype)
        if self.head.match is not None:
            match = self.head.match.score(self.encoder, inputs.batch, inputs.qa_ids.reshape(N * A, L), qa_mask,
                                          inputs.question_video.repeat_interleave(A), self.tokens.cls)
            answer_logits = answer_logits + match.view(N, A).to(answer_logits.dtype)
        return answer_logits, st, ed

    def forward(self, inputs: VideoQaInputs) -> TaskOutput:
        answer_logits, st, ed = self.logits(inputs)
        loss, qa, temporal = video_qa_loss(answer_logits, st, ed, inputs.answer, inputs.start, inputs.end,
                                           self.cfg.lw_temporal)
        known = inputs.answer >= 0
        acc = (answer_logits.argmax(1) == inputs.answer)[known].float().mean() if known.any() else loss.new_zeros(())
        metrics = {"video_qa/loss": loss.detach(), "video_qa/loss_qa": qa.detach(),
                   "video_qa/loss_temporal": temporal.detach(), "video_qa/acc": acc.detach()}
        return TaskOutput(loss=loss, metrics=metrics, count=int(inputs.answer.shape[0]))

    @torch.no_grad()
    def predict(self, inputs: VideoQaInputs) -> VideoQaPredictions:
        """The chosen answer per question (write ``{"qid", "answer_idx"}`` lines from it)."""
        answer_logits, st, ed = self.logits(inputs)
        return VideoQaPredictions(answer=answer_logits.argmax(1), answer_logits=answer_logits,
                                  start=st.argmax(1), end=ed.argmax(1))

    def write_predictions(self, ctx: PredictContext) -> Written:
        """Answer argmax per question [N] + the span heads' argmax frames -> seconds."""
        clip = ctx.clip_len

        def fn(items, inputs):
            p = self.predict(inputs)
            return [QaAnswer(qid=it["id"], answer_idx=int(a), ts=(min(s, e) * clip, (max(s, e) + 1) * clip))
                    for it, a, s, e in zip(items, p.answer.tolist(), p.start.tolist(), p.end.tolist())]

        answers = ctx.run(fn)
        write_qa_answers(ctx.out_path, answers)
        return Written(len(answers))

    @classmethod
    def score(cls, predictions: Path, annotations: Path, options: PredictOptions, written: Written) -> dict:
        return scoring.score_video_qa(predictions, annotations)

    @classmethod
    def per_example(cls, predictions: Path, annotations: Path, options: PredictOptions,
                    written: Written | None = None) -> dict[str, dict[str, float]]:
        """``acc`` per question (100 right / 0 wrong)."""
        return scoring.per_example_video_qa(predictions, annotations)
