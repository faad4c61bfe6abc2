"""hero.storage.atomic, the one atomic writer: a target appears whole or not at all, files and folders alike."""

import json
import os

import pytest

from hero.storage.atomic import atomic_path, atomic_writer, write_bytes_atomic, write_json_atomic, write_text_atomic


def test_writes_replace_whole_and_leave_no_temporary(tmp_path):
    path = tmp_path / "a" / "b.json"  # missing parents are created
    write_json_atomic(path, {"x": 1}, indent=1)
    assert json.loads(path.read_text()) == {"x": 1} and path.read_text().endswith("\n")
    write_text_atomic(path, "two\n")
    assert path.read_text() == "two\n"
    write_bytes_atomic(path, b"\x00\x01")
    assert path.read_bytes() == b"\x00\x01"
    assert os.listdir(path.parent) == ["b.json"]


def test_a_failed_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_writer(path) as f:
            f.write("half")
            raise RuntimeError("crash mid-write")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


def test_temporary_is_a_hidden_sibling_named_by_the_pid(tmp_path):
    with atomic_path(tmp_path / "x.bin") as tmp:
        assert tmp.parent == tmp_path and not tmp.exists()
        assert tmp.name.startswith(f".x.bin.{os.getpid()}.") and tmp.name.endswith(".tmp")
        tmp.write_bytes(b"1")
    assert (tmp_path / "x.bin").read_bytes() == b"1"


def test_a_folder_is_replaced_wholesale(tmp_path):
    target = tmp_path / "step"
    target.mkdir()
    (target / "stale").write_text("old")
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "new").write_text("new")
    assert sorted(os.listdir(target)) == ["new"]
    assert os.listdir(tmp_path) == ["step"]  # neither the temporary nor the old folder is left


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_first_writer_wins_without_replace(tmp_path, kind):
    target = tmp_path / "cached"

    def write(content: str) -> None:
        with atomic_path(target, replace=False) as tmp:
            if kind == "folder":
                tmp.mkdir()
                (tmp / "f").write_text(content)
            else:
                tmp.write_text(content)

    write("first")
    write("second")  # another process got there first: its copy is kept, this one discarded
    assert (target / "f" if kind == "folder" else target).read_text() == "first"
    assert os.listdir(tmp_path) == ["cached"]


def test_atomic_writer_modes(tmp_path):
    with atomic_writer(tmp_path / "t", "w") as f:
        f.write("a\nb\n")
    assert (tmp_path / "t").read_bytes() == b"a\nb\n"
    with pytest.raises(ValueError, match="mode must be"):
        with atomic_writer(tmp_path / "t", "a"):
            pass
