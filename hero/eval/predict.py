"""Prediction over a corpus split, as the command line, the pipelines and the search app call it: the
implementation lives with the tasks it dispatches to (`hero.tasks.predict`), so training (model selection) can use
it without importing the apps of this package."""

from hero.tasks.predict import annotation_path, predict_options, predict_split, prediction_path, retrieval_examples

__all__ = ["annotation_path", "predict_options", "predict_split", "prediction_path", "retrieval_examples"]
