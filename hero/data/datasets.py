"""Datasets over a corpus manifest + feature store + tokenizer. Rank-agnostic: they never shard themselves (a
sampler takes rank / world_size, e.g. torch's DistributedSampler).

- `VideoFeatures`: a video id -> its video example (features, tokenized subtitles, HERO d.3 alignment truncated
  to max_frames). See `hero.data.collate` for the example's layout.
- `PretrainDataset`: map-style over videos; ``collate`` makes a plain `VideoBatch` (the objectives mask it).
- `TaskDataset`: a task split's normalized examples with their video, in the shape the downstream collates
  (`hero.tasks.<task>.collate_*`) take.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from hero.corpus.annotations import form_of
from hero.corpus.errors import CorpusError
from hero.corpus.manifest import Manifest
from hero.data.channels import apply_channels, check_channels, empty_subtitles
from hero.data.collate import collate_videos
from hero.data.window import crop_example
from hero.features.store import FeatureStore
from hero.text.tokenizer import TextTokenizer


def normalize_text(text: str) -> str:
    """HERO's subtitle/query normalization: unescape HTML, lower-case an ALL-CAPS line."""
    text = html.unescape(text)
    return text.lower() if text.isupper() else text


def truncate_alignment(sub_frames: Sequence[Sequence[int]], max_frames: int) -> list[int]:
    """Indices of the subtitles kept when the video is cut at ``max_frames`` (HERO d.3, `SubTokLmdb`): frames >=
    max_frames are dropped, a subtitle left with none of its frames is dropped, and iteration stops after the
    first subtitle that lost a frame. Subtitles that never had frames are kept until then."""
    keep = []
    for i, frames in enumerate(sub_frames):
        in_range = [f for f in frames if f < max_frames]
        if in_range or not frames:
            keep.append(i)
        if len(in_range) < len(frames):
            break
    return keep


class VideoFeatures:
    """Video examples for the manifest's videos, built from the store and the tokenizer (subtitles tokenized once).

    Args:
        max_frames: the model's max_frames; longer videos are cut (HERO d.3).
        max_sub_tokens: subtitle tokens kept (HERO max_txt_len: 60), before the leading separator.
        sub_ctx_len: HERO's subtitle context: each subtitle's text is preceded by the k previous subtitles' tokens
            (HERO: 0 for pretraining/TVR/TVQA, 1 for TVC, 2 for VIOLIN).
        check: verify every video has features with the manifest's clip count (``features.missing/wrong_dim``).
        channels: ``both``, ``video`` (no subtitles) or ``subtitles`` (zero frame features); `hero.data.channels`.
        regions: also read each clip's region features and boxes (``model.regions``): a store without them is a
            ``features.no_regions`` error naming it.
    """

    def __init__(self, manifest: Manifest, store: FeatureStore, tokenizer: TextTokenizer, *, max_frames: int = 100,
                 max_sub_tokens: int = 60, sub_ctx_len: int = 0, video_ids: Sequence[str] | None = None,
                 check: bool = True, channels: str = "both", regions: bool = False) -> None:
        if sub_ctx_len < 0:
            raise ValueError(f"sub_ctx_len must be >= 0, got {sub_ctx_len}")
        self.channels = check_channels(channels)
        self.manifest, self.store, self.tokenizer = manifest, store, tokenizer
        self.max_frames, self.max_sub_tokens, self.sub_ctx_len = max_frames, max_sub_tokens, sub_ctx_len
        self.video_ids = list(video_ids if video_ids is not None else manifest.videos)
        self.sep = tokenizer.special.sep
        dims = {store.entry(v)["dim"] for v in self.video_ids if v in store}
        if check:
            store.check({v: manifest.videos[v].num_clips for v in self.video_ids}, dims.pop() if len(dims) == 1 else -1)
        elif len(dims) > 1:
            raise CorpusError(str(store.root), "features.wrong_dim", f"videos have several feature dims {sorted(dims)}")
        self.feature_dim = store.entry(self.video_ids[0])["dim"] if self.video_ids else 0
        self.regions = regions
        self.num_regions, self.region_dim = store.check_regions(self.video_ids) if regions else (0, 0)
        for v in self.video_ids:  # one fact, two records: the manifest's clip length is what spans are labeled in
            stored = store.entry(v).get("clip_len") if v in store else None
            if stored is not None and abs(float(stored) - manifest.clip_len) > 1e-9:
                raise CorpusError(str(store.root), "features.clip_len_mismatch",
                                  f"{v!r} was extracted at {stored} s per clip; the manifest of {manifest.root} "
                                  f"says {manifest.clip_len} s (re-extract, or ingest at {stored})")
        texts = [normalize_text(s[0]) for v in self.video_ids for s in manifest.videos[v].subs]
        ids = tokenizer.encode_batch(texts) if texts else []
        self._sub_ids: dict[str, list[list[int]]] = {}
        k = 0
        for v in self.video_ids:
            n = len(manifest.videos[v].subs)
            toks = [t[:max_sub_tokens] for t in ids[k:k + n]]
            self._sub_ids[v] = [[self.sep] + [x for j in range(max(0, i - sub_ctx_len), i + 1) for x in toks[j]]
                                for i in range(n)]
            k += n

    def __len__(self) -> int:
        return len(self.video_ids)

    def example(self, vid: str) -> dict[str, Any]:
        """The video example of ``vid``: frame_feats [T, Df] float32 (T <= max_frames), sub_ids, sub_frames, as
        ``channels`` shows it."""
        entry = self.manifest.videos[vid]
        feats = torch.from_numpy(np.asarray(self.store[vid][: self.max_frames], dtype=np.float32))
        T = feats.shape[0]
        if entry.subs:
            keep = truncate_alignment(entry.sub_clips, self.max_frames)
            sub_ids = [self._sub_ids[vid][i] for i in keep]
            sub_frames = [[f for f in entry.sub_clips[i] if f < T] for i in keep]
        else:  # HERO's video-only data: empty subtitles over groups of 5 frames
            sub_ids, sub_frames = empty_subtitles(T, self.sep)
        example = {"video_id": vid, "frame_feats": feats, "sub_ids": sub_ids, "sub_frames": sub_frames}
        if self.regions:
            reg, box = self.store.regions(vid)
            example["region_feats"] = torch.from_numpy(np.asarray(reg[:T], dtype=np.float32))
            example["region_boxes"] = torch.from_numpy(np.array(box[:T], dtype=np.float32))  # a copy: float32 memmap
        return apply_channels(example, self.channels, self.sep)

    @functools.cached_property
    def index(self) -> dict[str, int]:
        return {v: i for i, v in enumerate(self.video_ids)}


class PretrainDataset(Dataset):
    """One item per video: its video example. ``collate(items) -> VideoBatch``."""

    def __init__(self, videos: VideoFeatures) -> None:
        self.videos = videos
        self.collate = functools.partial(collate_videos, pad_id=videos.tokenizer.special.pad)

    @classmethod
    def from_split(cls, manifest: Manifest, store: FeatureStore, tokenizer: TextTokenizer, split: str = "train",
                   **kwargs) -> "PretrainDataset":
        """Videos that ``split``'s annotations name (all videos when no annotation names a video)."""
        vids = manifest.split_videos(split) or list(manifest.videos)
        return cls(VideoFeatures(manifest, store, tokenizer, video_ids=vids, **kwargs))

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.videos.example(self.videos.video_ids[i])


def _pair_key(ex_id: Any) -> str:
    text = str(ex_id)
    return text.rsplit("-", 1)[0] if text.endswith(("-0", "-1")) else text


class TaskDataset(Dataset):
    """A task split's examples (hero.corpus.annotations normalized form) joined with their video example and
    tokenized into the fields of the task's collate. Examples naming no video (unlabeled test) are left out.

    Item fields by task: all: id, vid_name, video, ts. tvr/retrieval: query_ids ([CLS] + tokens).
    tvqa: q_ids, answer_ids (5), answer_idx. violin: statement_ids, label, paired_ids (the opposite-label
    statement, when ids pair up as "N-1" / "N-0", HERO's training pairs). tvc: caption_ids (one item per
    reference caption when ``per_caption``, else the references as text in ``references``).

    ``pairs=False`` leaves ``paired_ids`` out: prediction scores each statement once, as its own row (the VIOLIN
    collate adds a paired statement as an extra row).

    ``window`` (seconds; None = the whole video, HERO): an example with a ``ts`` sees only its clip, the frames
    within ``window`` s of ``ts`` (`hero.data.window`), and its ``ts`` is relative to that clip.
    """

    def __init__(self, manifest: Manifest, task: str, split: str, videos: VideoFeatures, *, per_caption: bool = True,
                 window: float | None = None, pairs: bool = True) -> None:
        self.task, self.split, self.videos = task, split, videos
        self.window, self.clip_len, self.pairs = window, manifest.clip_len, pairs
        tok = videos.tokenizer
        enc = lambda text: tok.encode(normalize_text(text))  # noqa: E731
        cls = tok.special.cls
        raw = [e for e in manifest.tasks.get(task, {}).get(split, []) if e.get("vid_name") in videos.index]
        items: list[dict[str, Any]] = []
        groups: dict[str, list[int]] = {}
        try:
            form = form_of(task)  # How2R queries take the TVR form, How2QA items the TVQA form, ...
        except ValueError as err:
            raise ValueError(f"unknown task {task!r}: {err}") from None
        for e in raw:
            base = {"id": e["id"], "vid_name": e["vid_name"], "ts": e.get("ts")}
            if form in ("tvr", "retrieval"):
                items.append({**base, "query_ids": [cls] + enc(e["desc"])})
            elif form == "tvqa":
                items.append({**base, "q_ids": enc(e["q"]), "answer_ids": [enc(a) for a in e["answers"]],
                              "answer_idx": e["answer_idx"]})
            elif form == "violin":
                items.append({**base, "statement_ids": enc(e["desc"]), "label": e["label"]})
                groups.setdefault(_pair_key(e["id"]), []).append(len(items) - 1)
            elif form == "tvc":
                if per_caption and e["descs"]:
                    items += [{**base, "caption_ids": enc(d["desc"])} for d in e["descs"]]
                else:
                    items.append({**base, "references": [d["desc"] for d in e["descs"]]})
            else:
                raise ValueError(f"unknown task {task!r}")
        for group in groups.values() if pairs else ():  # VIOLIN: "N-1" / "N-0", a statement and its opposite
            if len(group) == 2 and {items[i]["label"] for i in group} == {0, 1}:
                a, b = group
                items[a]["paired_ids"], items[b]["paired_ids"] = items[b]["statement_ids"], items[a]["statement_ids"]
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict[str, Any]:
        item = self.items[i]
        video = self.videos.example(item["vid_name"])
        if self.window is not None and item["ts"] is not None:
            video, ts = crop_example(video, item["ts"], self.clip_len, self.window, self.videos.sep)
            return {**item, "video": video, "ts": ts}
        return {**item, "video": video}
