"""The instructional (how-to) domain of the synthetic corpus: world, script, renderer and annotations."""
