"""A features-only corpus for the pipeline tests, shaped like HERO's TV release: the tiny synthetic corpus with its
videos/ removed, its .srt files as one TVR-form subtitles.jsonl, a TVR-form video2dur file, and random features
(one per 1.5 s clip) in a HERO video_db LMDB."""

import json
import math
import shutil
from pathlib import Path

import numpy as np


def build_features_corpus(base: Path, dim: int, *, tasks: tuple[str, ...] | None = None) -> tuple[Path, Path, Path]:
    """(corpus folder, video_db folder, video2dur file) under ``base``; ``tasks``: keep only these annotations."""
    import pysubs2

    from hero.features.lmdb_import import write_video_db
    from hero.synth import SynthConfig, generate_corpus

    root = base / "corpus"
    generate_corpus(root, SynthConfig(size="tiny", seed=0, workers=1))
    shutil.rmtree(root / "videos")
    lines = []
    for srt in sorted((root / "subtitles").glob("*.srt")):
        subs = [{"text": e.plaintext, "start": e.start / 1000, "end": e.end / 1000} for e in pysubs2.load(str(srt))]
        lines.append(json.dumps({"vid_name": srt.stem, "sub": subs}))
    shutil.rmtree(root / "subtitles")
    (root / "subtitles.jsonl").write_text("\n".join(lines) + "\n")
    if tasks is not None:
        for f in (root / "annotations").iterdir():
            if not f.name.startswith(tuple(f"{t}_" for t in tasks)):
                f.unlink()
    episodes = [json.loads(x) for x in (root / "meta" / "episodes.jsonl").read_text().splitlines()]
    video2dur: dict = {}
    for i, ep in enumerate(episodes):
        video2dur.setdefault(ep["split"], {})[ep["vid_name"]] = [ep["duration"], i]
    dur_file = base / "tvr_video2dur_idx.json"
    dur_file.write_text(json.dumps(video2dur))
    rng = np.random.default_rng(0)
    feats = {ep["vid_name"]: rng.normal(size=(math.ceil(ep["duration"] / 1.5), dim)).astype(np.float32)
             for ep in episodes}
    db = write_video_db(base / "video_db" / "tv", feats, name="resnet_slowfast_1.5")
    return root, db, dur_file
