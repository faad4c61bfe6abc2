"""Converters between this project and the original HERO release's checkpoint layout.

``original``: state dicts of the released ``HeroForPretraining`` to and from a `hero.tasks.PretrainModel`
(`import_original`, `export_original`, `load_original_checkpoint`). It sits above ``hero.tasks`` (it builds
the pretraining model), so ``hero.model`` never needs to know about it.
"""
