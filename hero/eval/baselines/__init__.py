"""Reference baselines that need no training: chance / prior and text-only (subtitles, no video).

``run_baselines(manifest, out_dir)`` writes each baseline's predictions in the public formats and scores them with
the evaluate step's scorers, so a baseline's ``tvr/val/svmr_r1_iou0.5`` is the same quantity as a model's:

- `chance`: predictions from no input (train majority answer / label / caption, random rankings);
- `text_only`: the query, answer, statement or moment matched against the subtitles with the MiniLM sentence
  encoder (`encoder`);
- `run`: the datasets and splits of a corpus, the prediction files, the scores.
"""

from hero.eval.baselines.run import BASELINES, BaselineConfig, ScorerConfigs, run_baselines

__all__ = ["BASELINES", "BaselineConfig", "ScorerConfigs", "run_baselines"]
