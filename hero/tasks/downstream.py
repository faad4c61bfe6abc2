"""What every downstream task shares: the `DownstreamTask` base (encoder + head + loss, built from a
pretraining checkpoint's weights), HERO's two-layer MLP head and attention pooling over frames."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hero.config import ConfigError
from hero.model.config import ModelConfig
from hero.model.hero import Hero, init_weights
from hero.model.linear import Linear
from hero.text.tokenizer import SpecialTokens

if TYPE_CHECKING:
    from hero.data.batch import VideoBatch
    from hero.tasks.prediction import PredictContext, PredictOptions, Written

log = logging.getLogger(__name__)


class Mlp(nn.Module):
    """HERO's MLPLayer: Linear(D, 2D) -> GELU -> LayerNorm -> Linear(2D, out)."""

    def __init__(self, cfg: ModelConfig, out_dim: int) -> None:
        super().__init__()
        self.fc1 = Linear(cfg.hidden_size, 2 * cfg.hidden_size)
        self.norm = nn.LayerNorm(2 * cfg.hidden_size, eps=cfg.embedding_norm_eps)
        self.fc2 = Linear(2 * cfg.hidden_size, out_dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.norm(F.gelu(self.fc1(x))))


def attention_pool(states: Tensor, mask: Tensor, scorer: nn.Linear) -> Tensor:
    """Masked softmax attention pooling. states: [N, T, D]; mask: [N, T] bool; scorer: Linear(D, 1) -> [N, D]."""
    logits = scorer(states).squeeze(-1).float().masked_fill(~mask, float("-inf"))
    return (logits.softmax(-1).to(states.dtype).unsqueeze(-1) * states).sum(1)


class SubtitleTextReader(nn.Module):
    """Scores an appended text (a QA pair, a statement) by what it read at the cross-modal level.

    At that level the text continues every subtitle's sequence of its video copy, so its token states have
    attended to that subtitle's tokens and frames. Per subtitle row: attention pooling over the appended
    tokens -> MLP(D -> 2D -> 1); per video copy: the best subtitle's score (the max over its rows, 0 for a copy
    without subtitles). The frame-state heads see the text only through the frames it changed; this reads it
    where it met the subtitles.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.pool = Linear(cfg.hidden_size, 1)
        self.pred = Mlp(cfg, 1)

    def forward(self, states: Tensor, mask: Tensor, owner: Tensor, num_copies: int) -> Tensor:
        """states: [S, Lx, D] cross-modal states of the appended text; mask: [S, Lx] bool; owner: [S] copy of
        each row -> [num_copies] scores."""
        if states.shape[0] == 0:
            return states.new_zeros(num_copies)
        per_row = self.pred(attention_pool(states, mask, self.pool)).squeeze(-1)       # [S]
        best = per_row.new_full((num_copies,), float("-inf")).scatter_reduce(0, owner, per_row, "amax")
        return torch.where(torch.isinf(best), torch.zeros_like(best), best)


class SubtitleTextMatch(nn.Module):
    """Scores an appended text by its best-matching subtitle, with the encoder's own text side.

    The text (a QA pair, a statement) and each subtitle of its video are encoded alone by the cross-modal layers
    (`Hero.encode_text`: a sentence encoder when they come from MiniLM), mean-pooled and compared by cosine
    similarity, ``scale * (best - shift)`` (0 for a video without subtitles). The encoder is trained through it;
    ``scale`` (``init_scale`` at the start) and ``shift`` are learned. ``shift`` starts at the mean best similarity
    of the first training batch (data-dependent initialisation): a binary decision (VIOLIN) is then not pushed to
    one side by the similarities' offset; a choice among answers (video QA) does not depend on it.
    """

    def __init__(self, init_scale: float = 10.0) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(init_scale)))
        self.shift = nn.Parameter(torch.tensor(0.0))
        self.register_buffer("shift_initialised", torch.tensor(False))

    @staticmethod
    def embed(encoder: Hero, ids: Tensor, mask: Tensor, cls: int) -> Tensor:
        """[N, L] ids whose first token is a separator -> [N, D] unit-length mean-pooled states (the first token
        read as the sentence encoder's [CLS])."""
        ids = torch.cat([ids.new_full((ids.shape[0], 1), cls), ids[:, 1:]], dim=1)
        return unit_mean_pool(encoder.encode_text(ids, mask), mask)

    def score(self, encoder: Hero, batch: VideoBatch, ids: Tensor, mask: Tensor, text_video: Tensor,
              cls: int) -> Tensor:
        """[N] scores of the texts ``ids``/``mask`` [N, L] (first token a separator), each against the subtitles
        of its video ``text_video`` [N] in ``batch``."""
        subtitles = self.embed(encoder, batch.sub_ids, batch.sub_mask, cls)
        return self(self.embed(encoder, ids, mask, cls), subtitles, batch.sub_video, text_video)

    def forward(self, text: Tensor, subtitles: Tensor, sub_video: Tensor, text_video: Tensor) -> Tensor:
        """text: [N, D] unit rows, of videos ``text_video`` [N]; subtitles: [S, D] unit rows of videos ``sub_video``
        [S] -> [N] scores."""
        if subtitles.shape[0] == 0:
            return text.new_zeros(text.shape[0])
        sim = (text @ subtitles.T).float()                                         # [N, S]
        sim = sim.masked_fill(text_video[:, None] != sub_video[None, :], float("-inf"))
        best = sim.max(1).values
        found = ~torch.isinf(best)
        if self.training and not bool(self.shift_initialised) and found.any():
            with torch.no_grad():
                self.shift.fill_(float(best[found].mean()))
                if torch.distributed.is_available() and torch.distributed.is_initialized():
                    torch.distributed.all_reduce(self.shift)             # every rank starts from one value
                    self.shift.div_(torch.distributed.get_world_size())
                self.shift_initialised.fill_(True)
        return torch.where(found, self.scale * (best - self.shift), torch.zeros_like(best))


def unit_mean_pool(states: Tensor, mask: Tensor) -> Tensor:
    """[N, L, D] token states, [N, L] bool mask -> [N, D] unit-length means over the real tokens."""
    m = mask.unsqueeze(-1).to(states.dtype)
    return F.normalize((states * m).sum(1) / m.sum(1).clamp(min=1), dim=-1)


def frame_subtitles(batch: VideoBatch) -> Tensor:
    """[B, T] row of ``batch.sub_ids`` each frame is aligned to, -1 for a frame of no subtitle with text (a
    separator-only subtitle, which a video without subtitles gets, counts as none)."""
    B, T = batch.frame_mask.shape
    out = torch.full((B, T), -1, dtype=torch.long, device=batch.sub_frames.device)
    S, width = batch.sub_frames.shape
    valid = (batch.sub_frames >= 0) & (batch.sub_mask.sum(1) > 1)[:, None]
    if S and bool(valid.any()):
        rows = batch.sub_video[:, None].expand(S, width)[valid]
        subs = torch.arange(S, device=out.device)[:, None].expand(S, width)[valid]
        out[rows, batch.sub_frames[valid]] = subs
    return out


class QuerySubtitleMatch(nn.Module):
    """A retrieval query's similarity to each subtitle, by the encoder's own text side, added to the video and
    moment scores (beyond HERO: moment and video retrieval's ``text_match``).

    Query and subtitles are encoded alone by the cross-modal layers and mean-pooled (as `SubtitleTextMatch`);
    each frame aligned to a subtitle takes that subtitle's cosine ``m[t]`` with the query.

    Video score: ``(1 - w) * visual + w * max_t m[t]`` (``max_t m[t]`` = 0 for a video with no subtitle), with
    ``w = sigmoid(video_weight)``, so it stays a cosine-like score (the VCMR ranking exponentiates it). Start / end
    logits: each
    subtitle frame's match relative to the video's best, ``r[t] = exp(sharpness * (m[t] - max m))`` (1 on the
    best subtitle's frames, 0 on frames of no subtitle), enters as an edge, ``+ start_scale * (r[t] - r[t-1])``
    and ``+ end_scale * (r[t] - r[t+1])`` (r = 0 outside the video): the best subtitle's first and last frames
    stand out, so its span is the text side's moment (the text-only baseline's), and the visual scores move it.
    The scales and the sharpness are learned; the encoder is trained through the cosines.

    At inference the frames' start / end terms are weighted by ``visual_span_weight`` (a buffer, 1 = as trained),
    which model selection may set from the task's ``visual_span_weights`` on val (`MomentRetrievalTask`); the
    checkpoint carries it. Training always uses the terms as they are.
    """

    def __init__(self, video_weight: float = 0.5, edge_scale: float = 10.0, sharpness: float = 10.0) -> None:
        super().__init__()
        self.video_weight = nn.Parameter(torch.logit(torch.tensor(float(video_weight))))
        self.start_scale = nn.Parameter(torch.tensor(float(edge_scale)))
        self.end_scale = nn.Parameter(torch.tensor(float(edge_scale)))
        self.sharpness = nn.Parameter(torch.tensor(float(sharpness)))
        self.register_buffer("visual_span_weight", torch.tensor(1.0))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # checkpoints written before the weight existed were scored with the frames' terms as trained
        state_dict.setdefault(prefix + "visual_span_weight", torch.tensor(1.0))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @staticmethod
    def subtitle_embeddings(encoder: Hero, batch: VideoBatch, cls: int) -> Tensor:
        """[S, D] unit rows: every subtitle of ``batch`` encoded alone (`SubtitleTextMatch.embed`)."""
        return SubtitleTextMatch.embed(encoder, batch.sub_ids, batch.sub_mask, cls)

    @staticmethod
    def frame_match(query: Tensor, subtitles: Tensor, frame_sub: Tensor) -> Tensor:
        """query: [Q, D] and subtitles: [S, D] unit rows; frame_sub: [B, T] subtitle row of each frame (-1 none)
        -> [Q, B, T] cosine of each frame's subtitle with each query (0 at frames of no subtitle)."""
        sim = F.pad((query @ subtitles.T.to(query.dtype)).float(), (0, 1))               # [Q, S + 1]
        return sim[:, torch.where(frame_sub >= 0, frame_sub, subtitles.shape[0])]

    def video_scores(self, visual: Tensor, match: Tensor, has: Tensor) -> Tensor:
        """visual: [...] the frames' video scores (max cosine); match: [..., T] (`frame_match`); has: [..., T]
        broadcastable, True at frames of a subtitle -> [...] the fused video scores."""
        has = has.expand_as(match)
        best = match.masked_fill(~has, float("-inf")).amax(-1)
        best = torch.where(has.any(-1), best, torch.zeros_like(best))
        w = torch.sigmoid(self.video_weight)
        return (1 - w) * visual.float() + w * best

    def span_logits(self, st: Tensor, ed: Tensor, match: Tensor, has: Tensor) -> tuple[Tensor, Tensor]:
        """st, ed: [..., T] start / end logits before masking; match, has: [..., T] (as `video_scores`) -> the
        logits with the edge terms."""
        has = has.expand_as(match)
        best = match.masked_fill(~has, float("-inf")).amax(-1, keepdim=True)
        best = torch.where(torch.isinf(best), torch.zeros_like(best), best)         # a video with no subtitle
        rel = torch.where(has, torch.exp(self.sharpness * (match - best).clamp(max=0.0)), torch.zeros_like(match))
        prev, nxt = F.pad(rel[..., :-1], (1, 0)), F.pad(rel[..., 1:], (0, 1))
        if not self.training:   # x * 1.0 == x exactly: a weight of 1 scores as trained
            st, ed = st * self.visual_span_weight.to(st.dtype), ed * self.visual_span_weight.to(ed.dtype)
        return (st + (self.start_scale * (rel - prev)).to(st.dtype),
                ed + (self.end_scale * (rel - nxt)).to(ed.dtype))


class PretrainedKeyError(RuntimeError):
    """Loading pretrained weights left a key missing that the task does not allow to be missing."""


class DownstreamTask(nn.Module):
    """A downstream task family: a Hero encoder, its head (``self.head``) and loss (``forward(inputs) ->
    TaskOutput``), and everything else the platform needs to know about it, declared here and nowhere else.

    Subclasses set:
      ``name``: the family (``moment_retrieval``); ``config_cls``: its typed config (``finetune:`` in a run config);
      ``datasets``: annotation prefix -> annotation form it reads (``{"tvr": "tvr", "how2r": "tvr"}``);
      ``headlines``: the metrics it is judged by, headline first (names as ``score`` returns them);
      ``prediction_suffix``: the prediction file's suffix (``.json`` or ``.jsonl``);
      ``collate``: per-example dicts -> the task's inputs, ``collate(examples, tokens, cfg, *, clip_len,
      max_frames=None)`` with ``clip_len`` the corpus's seconds per clip;
      ``PRETRAINED`` (source key prefix -> own key prefix) and ``ALLOWED_MISSING`` (own key prefixes that may
      stay randomly initialised when finetuning starts);
    and implement ``write_predictions``, ``score`` and ``per_example``. ``@hero.tasks.registry.register_task`` makes it known.
    The head's parameters (``task.head``) are the ones HERO trains with ``lr_mul``.
    """

    name: ClassVar[str] = ""
    config_cls: ClassVar[type] = object
    collate: ClassVar[Any] = None
    datasets: ClassVar[Mapping[str, str]] = {}
    headlines: ClassVar[tuple[str, ...]] = ()
    prediction_suffix: ClassVar[str] = ".jsonl"
    PRETRAINED: ClassVar[dict[str, str]] = {"encoder.": "encoder."}
    ALLOWED_MISSING: ClassVar[tuple[str, ...]] = ("head.",)

    def __init__(self, model_cfg: ModelConfig, cfg: Any, tokens: SpecialTokens) -> None:
        super().__init__()
        self.model_cfg, self.cfg, self.tokens = model_cfg, cfg, tokens
        self.encoder = Hero(model_cfg)
        self.pretrained_missing_keys: list[str] = []
        self.all_gather: Callable[[Tensor], Tensor] | None = None
        """Differentiable all-gather over ranks (own rows first), set by the trainer under torchrun; tasks whose
        config asks for it (moment retrieval's ``gather_across_ranks``) enlarge their negative pool with it."""

    def prepare(self, inputs: Any, generator: Any, step: int) -> Any:
        """Per-step changes to the inputs (e.g. moment retrieval's loss dropping, hard negatives); default: none."""
        return inputs

    def write_predictions(self, ctx: "PredictContext") -> "Written":
        """Predict every example of ``ctx.raw`` (the model is in eval mode, under no_grad) and write the public
        prediction file at ``ctx.out_path`` atomically."""
        raise NotImplementedError(f"{type(self).__name__}.write_predictions")

    @classmethod
    def score(cls, predictions: Path, annotations: Path, options: "PredictOptions", written: "Written") -> dict[str, Any]:
        """Metrics of a prediction file against its ground-truth annotation file (nested dicts of numbers)."""
        raise NotImplementedError(f"{cls.__name__}.score")

    @classmethod
    def per_example(cls, predictions: Path, annotations: Path, options: "PredictOptions",
                    written: "Written | None" = None) -> dict[str, dict[str, float]]:
        """Example-level values of the metrics ``score`` reports as means over examples (every headline among
        them): ``metric -> {str(example id): value}``, ids and order the annotation file's, values from the
        scorer's own rules, so each inner dict's mean is ``score``'s number. Confidence intervals resample these.
        ``written`` is ``write_predictions``' return where the scorer needs it (a retrieval corpus size)."""
        raise NotImplementedError(f"{cls.__name__}.per_example")

    def lr_mults(self) -> dict[str, float]:
        """Learning-rate multipliers the task's config asks for, by parameter-name prefix within the task (e.g.
        ``head.match``); a run's ``optim.lr_mult`` wins over them. None by default."""
        return {}

    def inference_variants(self) -> tuple[dict[str, float], ...]:
        """Settings of inference that model selection tries at each evaluation, keeping the best one with the
        checkpoint (`set_inference_variant`); the first one wins ties. None by default."""
        return ()

    def set_inference_variant(self, variant: Mapping[str, float]) -> None:
        """Apply one of `inference_variants` to this model (its state dict then carries it)."""
        raise ConfigError(f"{self.name}: no inference variants")

    def inference_variant(self) -> dict[str, float]:
        """The variant this model scores with (what model selection kept); empty without `inference_variants`."""
        return {}

    @classmethod
    def scoring_options(cls, metrics: set[str]) -> dict[str, Any]:
        """Prediction options (`PredictOptions` fields) that spare ``score`` work on metrics outside ``metrics``, for
        a caller that reads only those (model selection); none by default."""
        return {}

    def _init_head(self) -> None:
        self.head.apply(lambda m: init_weights(m, self.model_cfg.init_std))

    @classmethod
    def from_pretrained(cls, source: nn.Module | Mapping[str, Tensor], cfg: Any = None, *,
                        model_cfg: ModelConfig | None = None, tokens: SpecialTokens | None = None) -> "DownstreamTask":
        """The task with its encoder (and, where it has them, head parts) taken from pretraining weights.

        Args:
            source: a `PretrainModel`, or a state dict with its key layout (``encoder.*``, ``heads.vsm.*``,
                ``heads.mlm.*``); a bare `Hero` state dict (no ``encoder.`` prefix) is accepted as the encoder.
            cfg: the task config (default: the config class's defaults, i.e. HERO's).
            model_cfg, tokens: required when ``source`` is a state dict; taken from a `PretrainModel` otherwise.
        Raises:
            PretrainedKeyError: a key outside ``ALLOWED_MISSING`` stays missing. The missing keys are kept in
                ``task.pretrained_missing_keys`` and logged.
        """
        if isinstance(source, nn.Module):
            model_cfg = model_cfg or source.model_cfg
            tokens = tokens or source.tokens
            state = source.state_dict()
        else:
            state = dict(source)
            if not any(k.startswith("encoder.") for k in state):
                state = {f"encoder.{k}": v for k, v in state.items()}
        if model_cfg is None or tokens is None:
            raise ValueError("from_pretrained(state_dict) needs model_cfg= and tokens=")
        task = cls(model_cfg, cfg if cfg is not None else cls.config_cls(), tokens)
        task.pretrained_missing_keys = task.load_pretrained_state(state)
        return task

    def pretrained_mapping(self, state: Mapping[str, Tensor]) -> dict[str, str]:
        """Source key prefix -> own key prefix for this checkpoint (default: ``PRETRAINED``); a task whose head
        may or may not have been pretrained (captioning's decoder) picks by the keys ``state`` holds."""
        return self.PRETRAINED

    def load_pretrained_state(self, state: Mapping[str, Tensor], fresh: Sequence[str] = ()) -> list[str]:
        """Copy the ``PRETRAINED`` parts of ``state`` (`pretrained_mapping`) into this task, except the own keys
        under a ``fresh`` prefix (they keep their initialisation); returns the keys left missing."""
        mapped = {}
        mapping = self.pretrained_mapping(state)
        for key, value in state.items():
            for src, dst in mapping.items():
                if key.startswith(src):
                    mapped[dst + key[len(src):]] = value
                    break
        under = tuple(p + "." for p in fresh)
        mapped = {k: v for k, v in mapped.items() if k not in fresh and not k.startswith(under)}
        result = self.load_state_dict(mapped, strict=False)
        if result.unexpected_keys:
            raise PretrainedKeyError(f"{self.name}: pretrained keys with no place in the task: {result.unexpected_keys[:8]}")
        bad = [k for k in result.missing_keys
               if not k.startswith(self.ALLOWED_MISSING) and k not in fresh and not k.startswith(under)]
        if bad:
            raise PretrainedKeyError(f"{self.name}: missing pretrained keys {bad[:8]} "
                                     f"(allowed missing: {self.ALLOWED_MISSING})")
        if result.missing_keys:
            log.info("%s: %d keys start from scratch: %s", self.name, len(result.missing_keys),
                     sorted({k.split(".")[0] + "." + k.split(".")[1] for k in result.missing_keys}))
        return list(result.missing_keys)


def masked_ce(logits: Tensor, target: Tensor) -> Tensor:
    """Cross-entropy over the rows with target >= 0; 0 (with a graph) when there are none. logits: [N, C]."""
    valid = target >= 0
    if not valid.any():
        return logits.sum() * 0.0
    return F.cross_entropy(logits[valid].float(), target[valid])
