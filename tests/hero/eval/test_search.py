"""hero.eval.search on a tiny synthetic corpus (6 videos, random 24-d features) with a 1-step TVR run: ranked
moments inside their videos, the index round trip, the HTML report, clear errors; and (slow) the report as a
person sees it in headless Chromium."""

import dataclasses
import html
import json
import re
import shutil
import subprocess

import numpy as np
import pytest
import torch

import hero.eval.search as search_mod
from hero.metrics.moment_ranking import MomentRankConfig
from hero.eval.search import MomentSearcher, load_index, main, save_index
from hero.eval.search_report import HIGHLIGHT, png_bytes, write_search_report

DIM = 24
QUERY = 'Bob <b>jumps</b> & "flies" to Oslo'


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    """{"manifest", "manifest_path", "store", "run_dir", "tmp"}: the corpus, its features and a finished TVR run."""
    from hero.corpus import CorpusConfig, ingest_corpus
    from hero.features.store import FeatureStore, StoreWriter, consolidate
    from hero.synth import SynthConfig, generate_corpus
    from hero.train.config import load_run_config
    from hero.train.main import run

    tmp = tmp_path_factory.mktemp("search")
    root = tmp / "corpus"
    generate_corpus(root, SynthConfig(size="tiny", seed=3, num_videos=6, workers=1))
    manifest = ingest_corpus(CorpusConfig(path=str(root)))
    manifest.save(root / "manifest.json")
    rng = np.random.default_rng(0)
    w = StoreWriter(tmp / "store")
    for vid, entry in manifest.videos.items():
        w.add(vid, rng.normal(size=(entry.num_clips, DIM)).astype(np.float32), key=f"k-{vid}",
              clip_len=manifest.clip_len, extractor="random", dim=DIM)
    w.close()
    consolidate(tmp / "store")
    cfg = load_run_config(None, ["preset=hero-mini", "task=tvr", "text_init=false", "model.hidden_size=32",
                                 "model.num_heads=2", "model.intermediate_size=64", "model.cross_layers=1",
                                 "model.temporal_layers=1", f"model.feature_dim={DIM}", "data.source=corpus",
                                 f"data.path={root / 'manifest.json'}", f"data.features={tmp / 'store'}",
                                 "train.global_batch=4", "train.max_steps=1", f"train.run_dir={tmp / 'run'}"])
    run(cfg)
    return {"manifest": manifest, "manifest_path": root / "manifest.json", "store": FeatureStore(tmp / "store"),
            "run_dir": tmp / "run", "tmp": tmp}


@pytest.fixture(scope="module")
def searcher(setup):
    return MomentSearcher.from_run_dir(setup["run_dir"], setup["manifest"], setup["store"], batch_size=4)


def _assert_same(a, b):
    def key(ms):
        return [(m.video_id, m.start, m.end, m.subtitles) for m in ms]

    assert key(a) == key(b)
    assert [m.score for m in a] == pytest.approx([m.score for m in b], rel=1e-5)  # padding does not reach a score


def test_search_returns_top_k_moments_sorted_by_score_inside_their_videos(searcher, setup):
    manifest = setup["manifest"]
    assert searcher.corpus.video_ids == tuple(manifest.videos)
    moments = searcher.search(QUERY, top_k=5)
    assert [m.rank for m in moments] == [1, 2, 3, 4, 5]
    scores = [m.score for m in moments]
    assert scores == sorted(scores, reverse=True)
    for m in moments:
        entry = manifest.videos[m.video_id]
        assert m.duration == entry.duration and 0.0 <= m.start < m.end <= entry.duration
        want = [(t, s, e) for t, s, e in entry.subs if s < m.end and e > m.start]
        assert list(m.subtitles) == want and json.dumps(m.to_dict())
    assert len(searcher.search("walks", top_k=1)) == 1
    assert len(searcher.search("walks", top_k=30)) == 30
    # without NMS every allowed span (2 <= end - start frame < 16) of every video is ranked, past the default 100
    spans = sum(max(0, e.num_clips - 2) * max(0, e.num_clips - 1) // 2 for e in manifest.videos.values())
    plain = MomentSearcher(searcher.model, manifest, searcher.tokenizer, searcher.corpus,
                           rank_cfg=MomentRankConfig(clip_len=manifest.clip_len))
    assert spans > 100 and len(plain.search("walks", top_k=spans + 5)) == spans
    same = MomentSearcher.from_model(searcher.model, manifest, setup["store"], searcher.tokenizer, batch_size=5)
    _assert_same(same.search(QUERY, 5), moments)  # other batches: other padding, the same moments


def test_the_index_round_trips_and_a_second_call_does_not_encode(searcher, setup, tmp_path, monkeypatch):
    corpus = searcher.corpus
    save_index(tmp_path / "raw", corpus, {"x": 1})
    back, fp = load_index(tmp_path / "raw")
    assert fp == {"x": 1} and back.video_ids == corpus.video_ids
    for k in ("frames", "frame_mask", "frame_norms"):
        assert torch.equal(getattr(back, k), getattr(corpus, k)), k
    args = (setup["run_dir"], setup["manifest"], setup["store"])
    first = MomentSearcher.from_run_dir(*args, index=tmp_path / "idx")
    assert (tmp_path / "idx" / "index.json").is_file() and not list((tmp_path / "idx").glob(".*"))

    def no_encoding(*a, **k):
        raise AssertionError("re-encoded although the index matches")

    monkeypatch.setattr(search_mod, "encode_videos", no_encoding)
    second = MomentSearcher.from_run_dir(*args, index=tmp_path / "idx")
    assert second.search(QUERY, 5) == first.search(QUERY, 5)
    _assert_same(first.search(QUERY, 5), searcher.search(QUERY, 5))
    with pytest.raises(AssertionError, match="re-encoded"):  # another video list: the index is stale
        MomentSearcher.from_run_dir(*args, videos=list(setup["manifest"].videos)[:3], index=tmp_path / "idx")
    monkeypatch.undo()
    (tmp_path / "idx" / "corpus.safetensors").write_bytes(b"garbage")  # a broken index is rebuilt
    third = MomentSearcher.from_run_dir(*args, index=tmp_path / "idx")
    assert third.search(QUERY, 5) == first.search(QUERY, 5) and load_index(tmp_path / "idx")[1] == first.fingerprint


def test_the_html_report_is_self_contained_with_query_moments_and_highlighted_spans(searcher, setup, tmp_path):
    moments = searcher.search(QUERY, top_k=4)
    path = write_search_report(tmp_path / "r" / "report.html", QUERY, moments, setup["manifest"], setup["store"])
    page = path.read_text(encoding="utf-8")
    assert [p.name for p in path.parent.iterdir()] == ["report.html"]  # no temp file left behind
    assert html.escape(QUERY) in page and "<b>jumps</b>" not in page
    assert page.count('class="moment"') == 4 and page.count('class="hl"') == 4
    for m in moments:
        assert f'data-rank="{m.rank}"' in page and html.escape(m.video_id) in page
        assert f'data-start="{m.start:.3f}" data-end="{m.end:.3f}"' in page
        for text, _, _ in m.subtitles:
            assert html.escape(text) in page
    assert page.count("data:image/png;base64,") == 12 and 'class="strip"' not in page  # 3 thumbnails per moment
    assert not re.search(r"""(src|href)=["']?(https?:|//)|@import|url\(""", page)


def test_a_missing_video_file_falls_back_to_the_feature_timeline(searcher, setup, tmp_path):
    manifest = setup["manifest"]
    moments = searcher.search("walks", top_k=2)
    gone = dataclasses.replace(manifest, videos={v: dataclasses.replace(e, path="videos/missing.mp4")
                                                 for v, e in manifest.videos.items()})
    page = write_search_report(tmp_path / "r.html", "walks", moments, gone, setup["store"]).read_text()
    assert page.count('class="strip"') == 2 and "data:image" not in page
    n_on = sum(1 for c in range(manifest.videos[moments[0].video_id].num_clips)
               if c * manifest.clip_len < moments[0].end and (c + 1) * manifest.clip_len > moments[0].start)
    first = page.split('class="strip"')[1].split("</div>")[0]
    assert first.count("<i class=on") == n_on
    assert "no preview" in write_search_report(tmp_path / "n.html", "walks", moments, gone, None).read_text()


def test_png_bytes_is_a_valid_png():
    image = pytest.importorskip("PIL.Image")
    import io

    rgb = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)
    assert np.array_equal(np.asarray(image.open(io.BytesIO(png_bytes(rgb))).convert("RGB")), rgb)


def test_bad_inputs_give_clear_errors(searcher, setup, tmp_path):
    args = (setup["manifest"], setup["store"])
    with pytest.raises(FileNotFoundError, match="does not exist"):
        MomentSearcher.from_run_dir(tmp_path / "nope", *args)
    with pytest.raises(FileNotFoundError, match="no valid checkpoint"):
        MomentSearcher.from_run_dir(tmp_path, *args)
    with pytest.raises(ValueError, match="not in the manifest"):
        MomentSearcher.from_run_dir(setup["run_dir"], *args, videos=["ghost"])
    for q in ("", "   ", None):
        with pytest.raises(ValueError, match="empty query"):
            searcher.search(q)
    with pytest.raises(ValueError, match="top_k"):
        searcher.search("walks", top_k=0)
    from hero.presets import MINILM_TOKENS, get_preset
    from hero.tasks import TASKS

    p = get_preset("hero-tiny", vocab_size=30522, feature_dim=DIM)
    violin = TASKS["violin"](p.model, TASKS["violin"].config_cls(), MINILM_TOKENS)
    with pytest.raises(ValueError, match="moment_retrieval"):
        MomentSearcher(violin, setup["manifest"], searcher.tokenizer, searcher.corpus)


def test_cli_prints_the_table_writes_the_report_and_fails_clearly(setup, tmp_path, capsys):
    base = ["--run-dir", str(setup["run_dir"]), "--manifest", str(setup["manifest_path"]),
            "--features", str(setup["store"].root)]
    out_html = tmp_path / "out.html"
    assert main(base + ["--index", str(tmp_path / "idx"), "--query", QUERY, "--top-k", "3",
                        "--html", str(out_html)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"query: {QUERY}\n#  video") and len(out.strip().splitlines()) == 2 + 3 + 1
    assert out_html.is_file() and (tmp_path / "idx" / "index.json").is_file()
    assert main(base + ["--query", "  "]) == 2
    assert "error: empty query" in capsys.readouterr().err
    base[1] = str(tmp_path / "no-run")
    assert main(base + ["--query", "walks"]) == 2
    assert f"error: {tmp_path / 'no-run'}: run directory does not exist" in capsys.readouterr().err


def test_python_dash_m_runs_the_cli(setup, tmp_path):
    import sys

    cmd = [sys.executable, "-m", "hero.eval.search", "--run-dir", str(setup["run_dir"]), "--manifest",
           str(setup["manifest_path"]), "--features", str(setup["store"].root), "--index", str(tmp_path / "idx"),
           "--query", "walks", "--top-k", "2", "--html", str(tmp_path / "r.html")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "query: walks" and lines[2].startswith("1  synth_")
    assert lines[4] == f"report: {tmp_path / 'r.html'}" and (tmp_path / "idx" / "index.json").is_file()


# ---------------------------------------------------------------------------------------------- what a person sees
CHROMIUM = shutil.which("chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--force-color-profile=srgb", "--hide-scrollbars"]


def _bands(rgb: np.ndarray, colour, min_run: int = 30) -> list[tuple[int, int, int]]:
    """Horizontal bands of rows holding a run of >= min_run pixels of ``colour``: (first row, last row, run length
    in the band's middle row), top to bottom."""
    hit = (np.abs(rgb.astype(int) - np.array(colour)).max(-1) <= 6)
    runs = []
    for row in hit:
        best = cur = 0
        for v in row:
            cur = cur + 1 if v else 0
            best = max(best, cur)
        runs.append(best)
    rows = [y for y, r in enumerate(runs) if r >= min_run]
    bands, start = [], None
    for i, y in enumerate(rows):
        start = y if start is None else start
        if i + 1 == len(rows) or rows[i + 1] != y + 1:
            bands.append((start, y, runs[(start + y) // 2]))
            start = None
    return bands


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's `chromium` on PATH (apt-get install chromium)")
def test_the_report_shows_the_query_the_ranked_moments_and_the_highlighted_spans(searcher, setup, tmp_path):
    image = pytest.importorskip("PIL.Image", reason="reading the screenshot needs Pillow")
    moments = searcher.search(QUERY, top_k=4)
    page = write_search_report(tmp_path / "report.html", QUERY, moments, setup["manifest"], setup["store"])
    common = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run(common + ["--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert f'<q id="query">{html.escape(QUERY, quote=False)}</q>' in dom.stdout
    ranks = re.findall(r'<section class="moment" id="m(\d+)"', dom.stdout)
    assert ranks == ["1", "2", "3", "4"] and dom.stdout.count('class="hl"') == 4
    for m in moments:
        assert f"#{m.rank}</span> <span class=\"video\">{m.video_id}</span>" in dom.stdout
    shot = tmp_path / "shot.png"
    res = subprocess.run(common + [f"--screenshot={shot}", "--window-size=1200,1600", page.as_uri()],
                         capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    rgb = np.asarray(image.open(shot).convert("RGB"))
    assert rgb.shape == (1600, 1200, 3)
    assert (rgb < 250).any(-1).mean() > 0.05 and len(np.unique(rgb.reshape(-1, 3), axis=0)) > 50  # not blank
    bands = _bands(rgb, HIGHLIGHT)
    assert len(bands) == 4, bands  # one highlighted span per moment, in rank order down the page
    track = _bands(rgb, (0xE3, 0xE6, 0xEA), min_run=1)
    for (y0, y1, run), m in zip(bands, moments):
        assert 8 <= y1 - y0 + 1 <= 20  # the 14 px timeline
        row = rgb[(y0 + y1) // 2]
        on_track = (np.abs(row.astype(int) - np.array([0xE3, 0xE6, 0xEA])).max(-1) <= 6).sum() + run
        assert abs(run / on_track - (m.end - m.start) / m.duration) < 0.03, (run, on_track, m)
    assert track  # the grey timeline tracks are drawn
