"""How much of its sentence encoder a model's text side keeps: the text-only baselines, recomputed with the text
side of a training run's encoder instead of MiniLM-L6.

The text-only baselines match queries, answers and statements against subtitles with mean-pooled sentence
embeddings (`hero.eval.baselines.encoder`). Here the embeddings come from a run's encoder (`Hero.encode_text`: its
text embeddings and cross-modal layers, which hero-mini takes from MiniLM): its latest checkpoint, or with
``--at-init`` the same architecture as a job of that config starts (the text side from ``text_init``, nothing
trained). Comparing the three (MiniLM, at init, trained) measures what training did to the text side, e.g. whether
pretraining erased what the sentence encoder knew::

    python -m hero.eval.baselines.probe data/02_intermediate/manifest-<key>.json --run data/06_models/pretrain/<key>
    python -m hero.eval.baselines.probe data/02_intermediate/manifest-<key>.json --run data/06_models/pretrain/<key> --at-init
    python -m hero.eval.baselines.probe data/02_intermediate/manifest-<key>.json            # MiniLM-L6 itself

prints one line of JSON: the text-only metrics per dataset of the split (and writes the prediction files under
``--out``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import torch

from hero.eval.baselines.encoder import MiniLMEncoder
from hero.eval.baselines.run import BaselineConfig, run_baselines

DATASETS = ("tvr", "tvqa", "violin", "retrieval")
"""The datasets whose text-only baseline is a matching of texts (TVC's is a caption lookup)."""


def run_text_side(run_dir: str | Path, at_init: bool = False) -> MiniLMEncoder:
    """A sentence encoder (`MiniLMEncoder`'s pooling) over the text side of ``run_dir``'s encoder: its latest
    checkpoint, or (``at_init``) the encoder a job of that config starts from."""
    from hero.model import Hero
    from hero.model.pretrained import init_text_side
    from hero.presets import preset_tokenizer
    from hero.train.checkpoint import find_latest
    from hero.train.config import RunConfig

    ck = find_latest(run_dir)
    if ck is None:
        raise FileNotFoundError(f"{run_dir}: no checkpoint")
    cfg = RunConfig.from_dict(ck.meta["config"])
    preset = cfg.build_preset()
    with torch.random.fork_rng(devices=[]):
        encoder = Hero(preset.model)
    if at_init:
        init_text_side(encoder, preset.text_init if cfg.text_init else None)
    else:
        from safetensors.torch import load_file

        weights = load_file(str(ck.path / "model.safetensors"))
        prefix = next(k[: -len("text_embed.word.weight")] for k in weights if k.endswith("text_embed.word.weight"))
        encoder.load_state_dict({k[len(prefix):]: v for k, v in weights.items() if k.startswith(prefix)})
    return MiniLMEncoder(model=encoder.eval(), tokenizer=preset_tokenizer(preset, cfg.data.tokenizer),
                         tokens=preset.tokens)


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hero.eval.baselines.probe", description=__doc__.split("\n\n")[0])
    ap.add_argument("manifest", type=Path, help="the corpus manifest (data/02_intermediate/manifest-<key>.json)")
    ap.add_argument("--run", type=Path, default=None, help="a training run folder (default: MiniLM-L6 itself)")
    ap.add_argument("--at-init", action="store_true", help="the run's encoder as a job starts, not its checkpoint")
    ap.add_argument("--split", default="val")
    ap.add_argument("--datasets", default=",".join(DATASETS))
    ap.add_argument("--out", type=Path, default=Path("data/08_reporting/text_side_probe"))
    args = ap.parse_args(argv)
    if args.at_init and args.run is None:
        ap.error("--at-init needs --run")
    from hero.corpus.manifest import Manifest

    manifest = Manifest.load(args.manifest)
    encoder = run_text_side(args.run, args.at_init) if args.run else MiniLMEncoder()
    name = "minilm" if args.run is None else f"{args.run.name}{'-init' if args.at_init else ''}"
    results = run_baselines(manifest, args.out / name, BaselineConfig(splits=(args.split,), draws=1),
                            encoder=encoder, datasets=[d for d in args.datasets.split(",") if d])["text-only"]
    print(json.dumps({"text_side": name, **{k: round(v, 2) for k, v in sorted(results.items())}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
