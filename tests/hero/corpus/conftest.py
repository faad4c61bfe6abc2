import shutil

import pytest


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory):
    """A tiny synthetic corpus (seed 0, 6 videos), generated once per session; copy it before modifying it."""
    from hero.synth import SynthConfig, generate_corpus

    root = tmp_path_factory.mktemp("corpus") / "tiny"
    generate_corpus(root, SynthConfig(size="tiny", seed=0, num_videos=6, workers=1))
    return root


@pytest.fixture
def corpus_copy(tiny_corpus, tmp_path):
    dst = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, dst)
    return dst
