import pytest


@pytest.fixture(scope="session")
def small_corpus(tmp_path_factory):
    """(root, manifest) of a 4-video synthetic corpus (12-18 s videos), ingested."""
    from hero.corpus import CorpusConfig, ingest_corpus
    from hero.synth import SynthConfig, generate_corpus

    root = tmp_path_factory.mktemp("fcorpus") / "c"
    generate_corpus(root, SynthConfig(size="tiny", seed=5, num_videos=4, workers=1))
    return root, ingest_corpus(CorpusConfig(path=str(root)))


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One torch thread: on a shared 2-core machine OpenMP threads spin-wait on each other (several times slower)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
