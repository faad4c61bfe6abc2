"""Batches, masking and (with the data issue) corpora, features and datasets."""

from hero.data.batch import VideoBatch

__all__ = ["VideoBatch"]
