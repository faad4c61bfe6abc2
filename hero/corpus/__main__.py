"""`python -m hero.corpus --corpus DIR|s3://bucket/prefix --out manifest.json [--clip-len 1.5] [--on-error skip]
[--encoding auto]`: ingest a corpus. Bad input, a missing corpus or a storage failure prints one line naming the file
or URI and exits with status 2."""

from __future__ import annotations

import argparse
import json
import logging
import sys

from hero.config import ConfigError
from hero.corpus.errors import CorpusError
from hero.corpus.ingest import CorpusConfig, ingest_corpus, write_manifest
from hero.storage import Storage, StorageError, open_storage


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m hero.corpus", description=__doc__)
    ap.add_argument("--corpus", required=True,
                    help="corpus folder or s3://bucket/prefix (layout: docs/formats.md; AWS credentials from the "
                         "environment)")
    ap.add_argument("--out", required=True, help="manifest JSON to write")
    ap.add_argument("--clip-len", type=float, default=1.5)
    ap.add_argument("--on-error", choices=("raise", "skip"), default="raise")
    ap.add_argument("--encoding", default="auto",
                    help="annotation/subtitle encoding: auto (UTF-8, else cp1252 for a file clean in it) or a codec")
    ap.add_argument("--videos-dir", default="videos")
    ap.add_argument("--subtitles-dir", default="subtitles")
    ap.add_argument("--annotations-dir", default="annotations")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)  # not "Found credentials in environment variables"
    try:
        cfg = CorpusConfig(path=args.corpus, clip_len=args.clip_len, on_error=args.on_error, encoding=args.encoding,
                           videos_dir=args.videos_dir, subtitles_dir=args.subtitles_dir,
                           annotations_dir=args.annotations_dir)
        manifest = ingest_corpus(cfg, _open(args.corpus))
        write_manifest(manifest, args.out)
    except (CorpusError, ConfigError, FileNotFoundError, PermissionError, StorageError, NotImplementedError) as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)  # one line, whatever the server said
        return 2
    summary = {"videos": len(manifest.videos), "clips": sum(v.num_clips for v in manifest.videos.values()),
               "examples": {f"{t}_{s}": len(x) for t, d in manifest.tasks.items() for s, x in d.items()},
               "skipped": manifest.report.get("skipped", {}), "notes": manifest.report.get("notes", {})}
    print(json.dumps(summary, indent=1))
    return 0


def _open(location: str) -> Storage:
    """The corpus storage. A location it cannot name (an unknown scheme, credentials in an s3:// URI) is a
    `ConfigError` on ``--corpus``."""
    try:
        return open_storage(location)
    except ValueError as err:
        raise ConfigError(f"--corpus: {err}") from None


if __name__ == "__main__":
    sys.exit(main())
