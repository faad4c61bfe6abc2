"""Features-only corpora: subtitles + annotations + a HERO video_db (or a store of ours), no videos/ folder."""

import hashlib
import json

import numpy as np
import pytest

from hero.corpus import CorpusConfig, CorpusError
from hero.features.lmdb_import import encode_value, write_video_db
from hero.features.prebuilt import import_features, ingest_features_corpus
from hero.features.store import FeatureStore, imported_key

DIM = 8
CLIPS = {"friends_s01e01_seg01_clip_00": 40, "friends_s01e01_seg01_clip_01": 7, "s03e21_seg02_clip_08": 12}


def _videos(seed=0):
    rng = np.random.default_rng(seed)
    return {v: rng.normal(size=(n, DIM)).astype(np.float32) for v, n in CLIPS.items()}


def _corpus(tmp_path, *, annotated=tuple(CLIPS), name="resnet_slowfast_1.5", videos=None):
    """(corpus folder, video_db folder): TVR-form subtitles.jsonl, one .srt, tvr annotations naming ``annotated``."""
    root = tmp_path / "corpus"
    (root / "annotations").mkdir(parents=True)
    (root / "subtitles").mkdir()
    subs = [{"vid_name": "friends_s01e01_seg01_clip_00",
             "sub": [{"text": " ( Ross :  ) Hi.", "start": 0.5, "end": 2.0}, {"text": "Hey.", "start": 3.0, "end": 4.0}]}]
    (root / "subtitles.jsonl").write_text("".join(json.dumps(s) + "\n" for s in subs))
    (root / "subtitles" / "s03e21_seg02_clip_08.srt").write_text("1\n00:00:01,000 --> 00:00:03,000\nHello there.\n")
    lines = [{"vid_name": v, "duration": 10.0, "ts": [0.0, 3.0], "desc": f"query {i}", "type": "v", "desc_id": i}
             for i, v in enumerate(annotated)]
    (root / "annotations" / "tvr_val.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    db = write_video_db(tmp_path / "video_db" / "tv", videos if videos is not None else _videos(), name=name)
    return root, db


def _video2dur(tmp_path, durations):
    path = tmp_path / "tvr_video2dur_idx.json"
    path.write_text(json.dumps({"val": {v: [d, i] for i, (v, d) in enumerate(durations.items())}}))
    return path


def test_durations_from_video2dur_and_hashes_of_the_feature_bytes(tmp_path):
    root, db = _corpus(tmp_path)
    durations = {"friends_s01e01_seg01_clip_00": 59.52, "friends_s01e01_seg01_clip_01": 10.0, "s03e21_seg02_clip_08": 17.3}
    dur = _video2dur(tmp_path, durations)
    m = ingest_features_corpus(CorpusConfig(path=str(root)), db, video2dur=dur)
    assert not (root / "videos").exists() and set(m.videos) == set(CLIPS)
    for vid, n in CLIPS.items():
        e = m.videos[vid]
        assert (e.duration, e.num_clips, e.path) == (durations[vid], n, "")
        assert e.sha256 == hashlib.sha256(encode_value(_videos()[vid])).hexdigest()  # the LMDB value's bytes
    assert m.videos["friends_s01e01_seg01_clip_00"].sub_clips == [[0, 1], [2]]        # HERO alignment on the clips
    assert m.videos["s03e21_seg02_clip_08"].subs == [["Hello there.", 1.0, 3.0]]
    assert len(m.tasks["tvr"]["val"]) == 3
    assert m.features["kind"] == "video_db" and m.features["dim"] == DIM and m.features["video2dur"] == str(dur)
    assert "features.duration_from_clips" not in m.report["notes"]


def test_durations_from_clips_without_video2dur(tmp_path):
    root, db = _corpus(tmp_path)
    m = ingest_features_corpus(CorpusConfig(path=str(root)), db / "resnet_slowfast_1.5")  # the LMDB folder itself
    assert {v: e.duration for v, e in m.videos.items()} == {v: n * 1.5 for v, n in CLIPS.items()}
    # a video2dur file lacking a video: that one falls back to clips x clip_len, counted as a note
    dur = _video2dur(tmp_path, {"friends_s01e01_seg01_clip_00": 59.52})
    m = ingest_features_corpus(CorpusConfig(path=str(root)), db, video2dur=dur)
    assert m.videos["s03e21_seg02_clip_08"].duration == 18.0
    assert m.report["notes"]["features.duration_from_clips"] == 2


def test_clip_len_of_the_lmdb_folder_must_match_the_reader(tmp_path):
    root, db = _corpus(tmp_path, name="resnet_slowfast_2")
    with pytest.raises(CorpusError) as err:
        ingest_features_corpus(CorpusConfig(path=str(root), clip_len=1.5), db)
    assert err.value.rule == "features.clip_len_mismatch"
    text = str(err.value)
    assert "\n" not in text and "resnet_slowfast_2" in text and "2.0 s" in text and "clip_len is 1.5 s" in text
    assert len(ingest_features_corpus(CorpusConfig(path=str(root), clip_len=2.0), db).videos) == 3


def test_an_annotated_video_missing_from_the_features_is_a_missing_video(tmp_path):
    root, db = _corpus(tmp_path, annotated=("friends_s01e01_seg01_clip_00", "castle_s01e01_seg02_clip_20"))
    with pytest.raises(CorpusError) as err:
        ingest_features_corpus(CorpusConfig(path=str(root)), db)
    assert err.value.rule == "annotation.missing_video" and err.value.line == 2
    assert "tvr_val.jsonl" in err.value.file
    m = ingest_features_corpus(CorpusConfig(path=str(root), on_error="skip"), db)
    assert m.report["skipped"] == {"annotation.missing_video": 1}
    assert [e["vid_name"] for e in m.tasks["tvr"]["val"]] == ["friends_s01e01_seg01_clip_00"]


def test_bad_features_and_bad_durations_name_the_key(tmp_path):
    videos = _videos()
    videos["s03e21_seg02_clip_08"][3, 1] = np.nan
    root, db = _corpus(tmp_path, videos=videos)
    with pytest.raises(CorpusError) as err:
        ingest_features_corpus(CorpusConfig(path=str(root)), db)
    assert err.value.rule == "features.non_finite" and "'s03e21_seg02_clip_08'" in err.value.file
    m = ingest_features_corpus(CorpusConfig(path=str(root), on_error="skip"), db)
    assert "s03e21_seg02_clip_08" not in m.videos and m.report["skipped"]["features.non_finite"] == 1
    assert m.report["notes"]["annotation.of_skipped_video"] == 1
    # 40 clips of 1.5 s cannot come from a 20-s video
    dur = _video2dur(tmp_path, {"friends_s01e01_seg01_clip_00": 20.0})
    m = ingest_features_corpus(CorpusConfig(path=str(root), on_error="skip"), db, video2dur=dur)
    assert m.report["skipped"]["features.longer_than_video"] == 1
    assert "friends_s01e01_seg01_clip_00" not in m.videos and "friends_s01e01_seg01_clip_01" in m.videos
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"val": {"friends_s01e01_seg01_clip_00": ["soon", 0]}}))
    with pytest.raises(CorpusError) as err:
        ingest_features_corpus(CorpusConfig(path=str(root)), db, video2dur=bad)
    assert err.value.rule == "video2dur.bad_value" and "'val.friends_s01e01_seg01_clip_00'" in str(err.value)


def test_import_is_content_addressed_and_checks_the_source(tmp_path):
    root, db = _corpus(tmp_path)
    m = ingest_features_corpus(CorpusConfig(path=str(root)), db)
    stats = import_features(m, tmp_path / "store")
    assert (stats["imported"], stats["cached"], stats["clips"]) == (3, 0, sum(CLIPS.values()))
    store = FeatureStore(tmp_path / "store")
    for vid, feats in _videos().items():
        np.testing.assert_allclose(store[vid], feats, atol=2e-3, rtol=1e-3)
        assert store.entry(vid)["key"] == imported_key(m.videos[vid].sha256, CLIPS[vid], 1.5)
    assert import_features(m, tmp_path / "store")["cached"] == 3     # a re-run reads nothing
    # the same bytes elsewhere: the same keys (content only, not the path)
    db2 = write_video_db(tmp_path / "elsewhere" / "tv", _videos())
    m2 = ingest_features_corpus(CorpusConfig(path=str(root)), db2)
    assert {v: e.sha256 for v, e in m2.videos.items()} == {v: e.sha256 for v, e in m.videos.items()}
    assert import_features(m2, tmp_path / "store")["cached"] == 3
    # the source rewritten after ingestion: the import refuses, naming the key
    write_video_db(db, _videos(seed=1))
    with pytest.raises(CorpusError) as err:
        import_features(m, tmp_path / "fresh")
    assert err.value.rule == "features.changed" and "key 'friends_s01e01_seg01_clip_00'" in err.value.file


def test_a_store_of_ours_is_a_features_source(tmp_path):
    root, db = _corpus(tmp_path)
    m = ingest_features_corpus(CorpusConfig(path=str(root)), db)
    import_features(m, tmp_path / "store")
    m2 = ingest_features_corpus(CorpusConfig(path=str(root)), tmp_path / "store")
    assert m2.features["kind"] == "store" and {v: e.num_clips for v, e in m2.videos.items()} == CLIPS
    rows = np.ascontiguousarray(FeatureStore(tmp_path / "store")["s03e21_seg02_clip_08"])
    assert m2.videos["s03e21_seg02_clip_08"].sha256 == hashlib.sha256(rows.tobytes()).hexdigest()
    assert import_features(m2, tmp_path / "store2")["imported"] == 3
    with pytest.raises(CorpusError) as err:
        ingest_features_corpus(CorpusConfig(path=str(root), clip_len=2.0), tmp_path / "store")
    assert err.value.rule == "features.clip_len_mismatch"
