"""The export writer: it rewrites its own files and never overwrites anyone else's."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from socle.cli import cli
from socle.errors import InputError
from socle.export.output import RECORD, write_tree


def test_a_new_export_writes_its_files_and_a_record(tmp_path: Path) -> None:
    out = tmp_path / "out"
    written = write_tree(
        out, {"a/Jenkinsfile": "one\n", "jobs.yaml": "two\n"}, engine="x", force=False
    )
    assert sorted(p.relative_to(out).as_posix() for p in written) == ["a/Jenkinsfile", "jobs.yaml"]
    assert (out / "a" / "Jenkinsfile").read_text() == "one\n"
    assert (out / RECORD).exists()


def test_a_second_export_rewrites_its_own_files_and_removes_the_ones_it_dropped(
    tmp_path: Path,
) -> None:
    write_tree(tmp_path, {"a.yml": "1\n", "gone.yml": "2\n"}, engine="x", force=False)
    write_tree(tmp_path, {"a.yml": "3\n"}, engine="x", force=False)
    assert (tmp_path / "a.yml").read_text() == "3\n"
    assert not (tmp_path / "gone.yml").exists()


def test_a_file_socle_did_not_write_is_never_overwritten_without_force(tmp_path: Path) -> None:
    (tmp_path / "a.yml").write_text("mine\n")
    with pytest.raises(InputError) as refused:
        write_tree(tmp_path, {"a.yml": "socle's\n"}, engine="x", force=False)
    assert f"{tmp_path} holds files socle did not write, or edited since: a.yml" in (
        refused.value.message
    )
    assert "--force" in (refused.value.hint or "")
    assert (tmp_path / "a.yml").read_text() == "mine\n"
    write_tree(tmp_path, {"a.yml": "socle's\n"}, engine="x", force=True)
    assert (tmp_path / "a.yml").read_text() == "socle's\n"


def test_an_edited_file_is_refused_and_other_files_are_left_alone(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a.yml": "1\n", "b.yml": "2\n"}, engine="x", force=False)
    (tmp_path / "README.md").write_text("the repository's own file\n")
    (tmp_path / "b.yml").write_text("edited by hand\n")
    with pytest.raises(InputError, match="b.yml"):
        write_tree(tmp_path, {"a.yml": "1\n"}, engine="x", force=False)  # would remove b.yml
    assert (tmp_path / "b.yml").read_text() == "edited by hand\n"
    (tmp_path / "b.yml").write_text("2\n")
    write_tree(tmp_path, {"a.yml": "1\n", "b.yml": "2\n"}, engine="x", force=False)
    assert (tmp_path / "README.md").read_text() == "the repository's own file\n"


def test_an_unreadable_record_is_one_clear_error(tmp_path: Path) -> None:
    (tmp_path / RECORD).write_text("[1, 2")
    with pytest.raises(InputError, match="not an export record socle can read"):
        write_tree(tmp_path, {"a.yml": "1\n"}, engine="x", force=False)


def test_an_unknown_engine_exits_2_and_lists_the_known_ones(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["export", "jenkinz", "-o", str(tmp_path)])
    assert result.exit_code == 2
    for engine in ("argo", "github", "gitlab", "jenkins"):
        assert engine in result.output
