import pytest


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory):
    """(root, manifest) of a 4-video synthetic corpus (12-18 s videos), ingested."""
    from hero.corpus import CorpusConfig, ingest_corpus
    from hero.synth import SynthConfig, generate_corpus

    root = tmp_path_factory.mktemp("fcorpus") / "c"
    generate_corpus(root, SynthConfig(size="tiny", seed=5, num_videos=4, workers=1))
    return root, ingest_corpus(CorpusConfig(path=str(root)))


