from __future__ import annotations

from pathlib import Path

import pytest

from socle import atomic


def test_a_write_replaces_the_file_and_leaves_nothing_beside_it(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "pins.yaml"
    atomic.write_text(target, "old\n")
    atomic.write_text(target, "new\n", mode=0o600)
    assert target.read_text() == "new\n"
    assert target.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in target.parent.iterdir()] == ["pins.yaml"]


def test_a_failed_move_keeps_the_old_content_and_removes_the_temporary(tmp_path: Path) -> None:
    target = tmp_path / "cache.json"
    target.write_text("old")
    tmp = tmp_path / ".partial"
    tmp.write_text("new")
    with pytest.raises(OSError):
        atomic.move_into_place(tmp, tmp_path / "missing-folder" / "cache.json")
    assert target.read_text() == "old"
    assert not tmp.exists()
