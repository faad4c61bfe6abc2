"""The job test_multinode.py launches on each "node": `hero.train`'s main (the real Trainer), then one file per
rank, ``run_dir/rank-<RANK>.json``, saying who the rank was and which weights it ended with.

DDP keeps the ranks' weights equal only if every gradient all-reduce crossed the nodes; a digest per rank,
taken in each rank's own process, shows that they did.
"""

import hashlib
import logging
import os
import sys
from pathlib import Path

import torch

from hero.storage.atomic import write_json_atomic
from hero.train.config import load_run_config
from hero.train.distributed import init_distributed
from hero.train.main import parse_args
from hero.train.trainer import Trainer


def state_digest(model: torch.nn.Module) -> str:
    """sha256 over every (name, tensor bytes) of the state dict, in name order."""
    h = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def main(argv=None) -> None:
    args = parse_args(argv)
    cfg = load_run_config(args.config, args.overrides)
    dist = init_distributed(cfg.train.device)
    logging.basicConfig(level="INFO" if dist.is_main else "WARNING", stream=sys.stderr,
                        format=f"%(asctime)s [rank {dist.rank}] %(name)s: %(message)s")
    try:
        trainer = Trainer(cfg, dist)
        trainer.fit()
        write_json_atomic(Path(cfg.train.run_dir) / f"rank-{dist.rank}.json", {
            "rank": dist.rank, "local_rank": dist.local_rank, "world_size": dist.world_size,
            "group_rank": int(os.environ["GROUP_RANK"]), "mlflow_run_id": os.environ.get("MLFLOW_RUN_ID"),
            "sha256": state_digest(trainer.model)})
    finally:
        dist.shutdown()


if __name__ == "__main__":
    main()
