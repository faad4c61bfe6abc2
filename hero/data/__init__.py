"""Batches, masking, per-video examples and task items over a corpus's manifest and feature store."""

from hero.data.batch import VideoBatch

__all__ = ["VideoBatch"]
