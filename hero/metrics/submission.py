"""Turn ranked tensors into the public prediction records (TVR submission, retrieval rankings)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from hero.metrics.formats.tvr import QueryPredictions, TvrSubmission
from hero.metrics.moment_ranking import MomentRanking, RankedVideos


def tvr_submission(video_names: Sequence[str], desc_ids: Sequence[int | str], *,
                   vcmr: MomentRanking | None = None, svmr: MomentRanking | None = None,
                   vr: RankedVideos | None = None, video2idx: Mapping[str, int] | None = None,
                   descs: Sequence[str] | None = None) -> TvrSubmission:
    """A TVR submission from the rankings of ``rank_vcmr`` / ``rank_svmr`` / ``rank_videos``.

    video_names: [Nv] corpus order (the positions the rankings refer to); desc_ids: [Nq] query order.
    video2idx: the submission's index (default: position in ``video_names``). VR rows are ``[idx, 0, 0, score]``.
    """
    v2i = dict(video2idx) if video2idx is not None else {v: i for i, v in enumerate(video_names)}
    index_of = [v2i[v] for v in video_names]
    texts = list(descs) if descs is not None else [""] * len(desc_ids)
    tasks: dict[str, list[QueryPredictions]] = {}
    for name, ranking in (("VCMR", vcmr), ("SVMR", svmr)):
        if ranking is not None:
            if ranking.video.shape[0] != len(desc_ids):
                raise ValueError(f"{name}: {ranking.video.shape[0]} ranked queries for {len(desc_ids)} desc_ids")
            tasks[name] = [QueryPredictions(desc_id=q, desc=d, predictions=ranking.rows(i, index_of))
                           for i, (q, d) in enumerate(zip(desc_ids, texts))]
    if vr is not None:
        if vr.video.shape[0] != len(desc_ids):
            raise ValueError(f"VR: {vr.video.shape[0]} ranked queries for {len(desc_ids)} desc_ids")
        rows = []
        for i in range(len(desc_ids)):
            vid = np.asarray([index_of[v] for v in vr.video[i].tolist()], dtype=np.float64)
            z = np.zeros_like(vid)
            rows.append(np.stack([vid, z, z, vr.score[i].double().cpu().numpy()], axis=1).reshape(-1, 4))
        tasks["VR"] = [QueryPredictions(desc_id=q, desc=d, predictions=r) for q, d, r in zip(desc_ids, texts, rows)]
    return TvrSubmission(video2idx=v2i, tasks=tasks)
