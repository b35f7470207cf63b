"""Bad inputs end to end through `socle.cli.main`: exit code 2, one error line, no traceback.

A socle error prints its message, then its hint on a `hint:` line when it has one.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from socle.cli import main

UPSTREAM = 'registry: {registry}\nimages:\n  debian: {{upstream: debian, versions: {versions}}}\n'


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    code = exited.value.code
    assert isinstance(code, int)
    return code, capsys.readouterr().err.splitlines()


def error_line(lines: list[str]) -> str:
    """The one error line (a hint may follow it); never a traceback."""
    assert lines and all("Traceback" not in line for line in lines), lines
    assert len(lines) == 1 or (len(lines) == 2 and lines[1].startswith("hint: ")), lines
    return lines[0]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"registry: r.test\nimages: {d: \xff}\n", "2:13: error: not UTF-8 text: byte 0xff"),
        (UPSTREAM.format(registry="http://127.0.0.1:5000", versions='["12"]').encode(), "is a URL"),
        (UPSTREAM.format(registry="r.test", versions="[]").encode(), "an empty `versions`"),
        (b"registry: r.test\nimages: \x1b\n", "U+001B is not allowed"),
    ],
)
def test_a_bad_catalog_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, message: str
) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_bytes(content)
    code, lines = run(["validate", "-c", str(path)], capsys)
    assert code == 2
    line = error_line(lines)
    assert line.startswith(f"{path}:") and message in line


def test_a_registry_option_written_as_a_url_is_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "catalog.yaml"
    path.write_text(UPSTREAM.format(registry="r.test", versions='["12"]'))
    code, lines = run(["tags", "-c", str(path), "--registry", "https://127.0.0.1:5000/"], capsys)
    assert code == 2
    assert "write 127.0.0.1:5000, without the scheme" in error_line(lines)


def test_a_damaged_public_key_is_exit_2_before_any_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "ops.pub"
    key.write_bytes(b"-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")
    code, lines = run(["verify", "--key", str(key), "127.0.0.1:1/my/java:17"], capsys)
    assert code == 2
    assert "public key is damaged" in error_line(lines)


def test_a_malformed_docker_config_is_exit_2_before_any_request(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "config.json").write_text('{"auths": ["not", "an", "object"]}')
    catalog = tmp_path / "catalog.yaml"
    catalog.write_text(UPSTREAM.format(registry="127.0.0.1:1", versions='["12"]'))
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DOCKER_CONFIG", str(tmp_path))
        code, lines = run(["plan", "-c", str(catalog)], capsys)
    assert code == 2
    assert error_line(lines).startswith(
        f"the docker config {tmp_path / 'config.json'} is malformed: `auths` is not a JSON object"
    )
