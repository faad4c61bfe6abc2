"""A generated section inside a hand-written markdown file (`pipelines.datasets.GeneratedSectionDataset`)."""

from pipelines.datasets import GeneratedSectionDataset


def test_saving_replaces_only_the_section_and_keeps_the_hand_written_text(tmp_path):
    doc = tmp_path / "results.md"
    ds = GeneratedSectionDataset(str(doc), section="ablations")
    ds.save("# Ablations\n\n| a |\n")
    assert ds.load() == "# Ablations\n\n| a |"
    doc.write_text(doc.read_text() + "\n## Validation\n\nwritten by hand\n")
    ds.save("# Ablations\n\n| b |\n")
    text = doc.read_text()
    assert "| b |" in text and "| a |" not in text
    assert text.endswith("\n## Validation\n\nwritten by hand\n")
    assert text.count("<!-- generated: ablations -->") == 1 and text.count("<!-- end generated: ablations -->") == 1


def test_a_file_without_markers_keeps_its_text_after_the_section(tmp_path):
    doc = tmp_path / "results.md"
    doc.write_text("notes\n")
    GeneratedSectionDataset(str(doc), section="ablations").save("table")
    assert doc.read_text() == "<!-- generated: ablations -->\ntable\n<!-- end generated: ablations -->\nnotes\n"
    assert [p.name for p in tmp_path.iterdir()] == ["results.md"]          # no temporary file left behind
