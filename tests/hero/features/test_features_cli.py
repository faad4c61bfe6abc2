import json

from hero.corpus.__main__ import main as corpus_main
from hero.features.__main__ import main as features_main
from hero.features.store import FeatureStore


def test_ingest_then_extract_from_the_command_line(small_corpus, tmp_path, capsys):
    root, _ = small_corpus
    manifest = tmp_path / "manifest.json"
    assert corpus_main(["--corpus", str(root), "--out", str(manifest)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["videos"] == 4 and summary["examples"]["tvr_train"] > 0
    args = ["--manifest", str(manifest), "--store", str(tmp_path / "store"), "--config", '{"image_size": 64}']
    assert features_main(args) == 0
    assert json.loads(capsys.readouterr().out)["extracted"] == 4
    assert features_main(args) == 0
    assert json.loads(capsys.readouterr().out)["cached"] == 4
    assert len(FeatureStore(tmp_path / "store")) == 4


def test_bad_corpus_is_a_clean_error(tmp_path, capsys):
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "broken.mp4").write_bytes(b"junk")
    assert corpus_main(["--corpus", str(tmp_path), "--out", str(tmp_path / "m.json")]) == 2
    err = capsys.readouterr().err
    assert "[video.undecodable]" in err and "broken.mp4" in err and not (tmp_path / "m.json").exists()
