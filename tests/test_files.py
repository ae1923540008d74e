"""files.atomic_file: the one temp-file-then-replace of the package."""

import pytest

from tfalign.files import atomic_file


def test_a_finished_block_replaces_the_file_in_one_step(tmp_path):
    target = tmp_path / "table.csv"
    target.write_text("old")
    with atomic_file(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".table.csv.tmp-")
        tmp.write_text("new")
        assert target.read_text() == "old"  # readers see the old file until the block ends
    assert target.read_text() == "new" and sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]


def test_a_failed_block_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "picture.png"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_file(target, ".png") as tmp:
        assert tmp.suffix == ".png"
        tmp.write_bytes(b"half")
        raise RuntimeError("the writer failed")
    assert target.read_bytes() == b"old" and sorted(p.name for p in tmp_path.iterdir()) == ["picture.png"]


def test_a_block_that_writes_nothing_is_an_error_and_leaves_nothing(tmp_path):
    with pytest.raises(FileNotFoundError), atomic_file(tmp_path / "never.txt"):
        pass
    assert list(tmp_path.iterdir()) == []
