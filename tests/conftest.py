import os

import pytest
import torch

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DVC_NO_ANALYTICS", "1")


def pytest_report_header(config):
    """Which CPU kernels the numerical tests ran on (`make test` runs them on several families)."""
    try:
        flags = next(ln for ln in open("/proc/cpuinfo") if ln.startswith("flags")).split()
    except (OSError, StopIteration):
        flags = []
    simd = sorted(f for f in flags if f.startswith("avx512") or f in ("avx2", "amx_bf16"))
    chosen = {k: os.environ[k] for k in ("ATEN_CPU_CAPABILITY", "MKL_ENABLE_INSTRUCTIONS", "ONEDNN_MAX_CPU_ISA")
              if k in os.environ}
    return [f"cpu: {' '.join(simd) or 'no avx2'}; torch kernels: {torch.backends.cpu.get_cpu_capability()}"
            + (f" ({', '.join(f'{k}={v}' for k, v in chosen.items())})" if chosen else " (the CPU's best)")]


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One intra-op thread: the models under test are tiny, and on a shared 2-core machine OpenMP's spinning
    threads make runs several times slower. Subprocesses (torchrun jobs) set their own."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    yield


@pytest.fixture
def tiny():
    """The hero-tiny preset (d=32, 1 + 1 layers, 16-d features, vocab 128)."""
    from hero.presets import get_preset

    return get_preset("hero-tiny")


@pytest.fixture
def gen():
    return torch.Generator().manual_seed(1234)


def write_byte_level_bpe(folder, *, mask_id: int = 50264, size: int | None = None):
    """A RoBERTa-shaped byte-level BPE vocabulary written by hand into ``folder`` (vocab.json + merges.txt):
    ``<s> <pad> </s> <unk>`` at ids 0-3 (RoBERTa's), the 256 byte symbols, a few merges (enough to spell
    "hello world" in few tokens), filler tokens, and ``<mask>`` at ``mask_id``; ``size`` tokens in all (default
    mask_id + 1). With the defaults its size and special ids are those of hero-base (`ROBERTA_TOKENS`)."""
    import json
    from pathlib import Path

    from tokenizers.pre_tokenizers import ByteLevel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    size = mask_id + 1 if size is None else size
    vocab = {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}
    for sym in sorted(ByteLevel.alphabet()):
        vocab[sym] = len(vocab)
    merges = [("h", "e"), ("l", "l"), ("he", "ll"), ("hell", "o"), ("\u0120", "w"), ("o", "r"), ("\u0120w", "or"),
              ("l", "d"), ("\u0120wor", "ld")]
    for a, b in merges:
        vocab[a + b] = len(vocab)
    filler = 0
    while len(vocab) < size:
        if len(vocab) == mask_id:
            vocab["<mask>"] = mask_id
            continue
        vocab[f"madeupword{filler:05d}"] = len(vocab)
        filler += 1
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{a} {b}\n" for a, b in merges), encoding="utf-8")
    return folder


@pytest.fixture
def roberta_like_vocab(tmp_path):
    """A folder with a hand-built byte-level BPE vocab.json + merges.txt whose size and special ids are hero-base's."""
    return write_byte_level_bpe(tmp_path / "roberta-like")


@pytest.fixture
def bpe_vocab_writer():
    """`write_byte_level_bpe` itself, for tests that need another size or other special ids (a test module
    cannot import a conftest: several share the name)."""
    return write_byte_level_bpe
