"""A pipeline job's options given wrong: exit 2, one line, before any registry is asked."""

from __future__ import annotations

from pathlib import Path

from tests.unit.commands.test_cli import SEED_CATALOG, socle

# Nothing listens here: an option error must come before the first request.
NOWHERE = {"SOCLE_REGISTRY": "127.0.0.1:9"}


def error_lines(*args: str) -> list[str]:
    result = socle("build", "-c", SEED_CATALOG, *args, env=NOWHERE)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    return [line for line in result.stderr.splitlines() if not line.startswith("socle: images")]


def test_a_bad_expect_parent_digest_is_a_usage_error() -> None:
    [*_, last] = error_lines("--only", "java:8-debian9", "--expect-parent", "sha256:12")
    assert last.startswith("Error: Invalid value for '--expect-parent': ")
    assert "sha256:12" in last


def test_expect_parent_needs_only() -> None:
    assert error_lines("--expect-parent", "sha256:" + "a" * 64) == [
        "--expect-parent needs --only naming the variant to build",
        "hint: e.g. --only java:17-debian12 --no-cascade --expect-parent sha256:...",
    ]


def test_digest_file_needs_exactly_one_variant(tmp_path: Path) -> None:
    out = str(tmp_path / "digest.txt")
    expected = [
        "--digest-file needs --only naming exactly one variant",
        "hint: e.g. --only java:17-debian12 --no-cascade",
    ]
    assert error_lines("--digest-file", out) == expected
    assert error_lines("--digest-file", out, "--only", "java", "--no-cascade") == expected
    # debian:9.5 alone, but with the cascade its child java:8-debian9.5 is selected too.
    assert error_lines("--digest-file", out, "--only", "debian") == expected
    assert not (tmp_path / "digest.txt").exists()
