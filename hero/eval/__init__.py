"""Evaluation of trained models, on top of `hero.metrics`.

- ``predict``: batched inference of a finetuned task model over a corpus split -> prediction file -> metrics.
- ``cli`` (``python -m hero.eval FAMILY PREDICTIONS ANNOTATIONS``): score a prediction file from the shell.
- ``search`` (``python -m hero.eval.search``) and ``search_report``: moment search over an encoded corpus.
- ``bench`` / ``tvr_bench``: VCMR ranking throughput and memory; a TVR-val-sized corpus end to end.
"""
