"""The four commands as a user runs them: files, prompts, output and exit codes."""

from __future__ import annotations

import json
import stat
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from socle.cli import cli, main
from socle.commands import signing as commands
from socle.oci.reference import Reference
from socle.registry.client import RegistryClient
from socle.signing import attest, load_private_key, load_public_key, sign
from tests.unit.registry.registry_fakes import FakeRegistry
from tests.unit.signing.conftest import Keys
from tests.unit.signing.signing_helpers import PASSWORD, push_tiny_image
from tests.unit.signing.test_sign_verify import statement_for

Run = Callable[..., tuple[int, str, str]]
SECRET = "s3cret-that-must-not-leak"


@pytest.fixture
def run(
    monkeypatch: pytest.MonkeyPatch, fake: FakeRegistry, capsys: pytest.CaptureFixture[str]
) -> Run:
    """`socle ARGS...` through the real entry point, with the commands registered as the CLI will."""
    for command in commands.COMMANDS:
        cli.add_command(command)

    def fresh_client() -> RegistryClient:
        return RegistryClient(transport=httpx.MockTransport(fake), sleep=lambda _: None)

    monkeypatch.setattr(commands, "open_client", fresh_client)

    def invoke(*args: str) -> tuple[int, str, str]:
        with pytest.raises(SystemExit) as exited:
            main(list(args))
        out, err = capsys.readouterr()
        return int(exited.value.code or 0), out, err

    return invoke


@pytest.fixture
def key_files(tmp_path: Path, keys: Keys) -> tuple[Path, Path]:
    (tmp_path / "k.key").write_bytes(keys[0])
    (tmp_path / "k.pub").write_bytes(keys[1])
    return tmp_path / "k.key", tmp_path / "k.pub"


def test_keygen_from_the_environment(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOCLE_PASSWORD", SECRET)
    code, out, err = run("keygen", "--out", str(tmp_path / "team"))
    assert code == 0, err
    private, public = tmp_path / "team.key", tmp_path / "team.pub"
    assert out.splitlines() == [
        f"Private key written to {private}",
        f"Public key written to {public}",
    ]
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    key = load_private_key(private.read_bytes(), SECRET.encode())
    assert load_public_key(public.read_bytes()).der == key.public_key.der
    assert SECRET not in out + err + private.read_text() + public.read_text()


def test_keygen_prompts_twice_without_echo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOCLE_PASSWORD", raising=False)
    result = CliRunner().invoke(
        commands.keygen_cmd,
        ["--out", str(tmp_path / "k")],
        input=f"{SECRET}\nother\n{SECRET}\n{SECRET}\n",
    )
    assert result.exit_code == 0, result.output
    assert "Enter a passphrase for the private key" in result.output
    assert "Enter it again" in result.output
    assert "do not match" in result.output  # asked again after a mismatch
    assert SECRET not in result.output
    load_private_key((tmp_path / "k.key").read_bytes(), SECRET.encode())


def test_keygen_refuses_an_empty_passphrase_and_overwriting(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOCLE_PASSWORD", "")
    code, _, err = run("keygen", "--out", str(tmp_path / "k"))
    assert code == 2 and "refusing an empty passphrase" in err
    assert not (tmp_path / "k.key").exists()
    monkeypatch.setenv("SOCLE_PASSWORD", SECRET)
    assert run("keygen", "--out", str(tmp_path / "k"))[0] == 0
    code, _, err = run("keygen", "--out", str(tmp_path / "k"))
    assert code == 2 and "already exists" in err and "--force" in err
    assert run("keygen", "--out", str(tmp_path / "k"), "--force")[0] == 0


def test_sign_then_verify(
    run: Run,
    fake: FakeRegistry,
    key_files: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    image: Reference,
) -> None:
    monkeypatch.setenv("SOCLE_PASSWORD", PASSWORD)
    tagged = str(image.with_tag("1"))
    code, out, err = run("sign", "--key", str(key_files[0]), tagged)
    assert code == 0, err
    assert f"Signing {image}" in err
    assert [line.split(" to ")[0] for line in out.splitlines()] == ["Signature written"] * 2
    code, out, err = run("verify", "--key", str(key_files[1]), tagged)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"{tagged} -> {image.digest}"
    assert lines[1].startswith("  sigstore-bundle (") and lines[1].endswith(
        "valid (1 of 1 verified)"
    )
    assert lines[2].startswith("  cosign-legacy (") and ".sig): valid" in lines[2]
    assert lines[3] == f"{tagged} is verified (sigstore-bundle, cosign-legacy)"
    assert PASSWORD not in out + err


def test_verify_exits_1_when_missing_or_invalid(
    run: Run,
    client: RegistryClient,
    key_files: tuple[Path, Path],
    other_keys: Keys,
    image: Reference,
) -> None:
    code, out, err = run("verify", "--key", str(key_files[1]), str(image))
    assert code == 1
    assert "sigstore-bundle" in out and "absent" in out
    assert err.startswith(f"no signature for {image}: none found in either layout")
    sign(client, image, other_keys[2])
    code, _, err = run("verify", "--key", str(key_files[1]), str(image))
    assert code == 1 and "is NOT verified" in err and "names another key" in err


def test_sign_with_a_wrong_passphrase_or_a_bad_key(
    run: Run, key_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, image: Reference
) -> None:
    monkeypatch.setenv("SOCLE_PASSWORD", SECRET)
    code, out, err = run("sign", "--key", str(key_files[0]), str(image))
    assert code == 2
    assert err.startswith(f"{key_files[0]}: wrong passphrase")
    assert SECRET not in out + err
    code, _, err = run("sign", "--key", str(key_files[1]), str(image))
    assert code == 2 and "this is a public key" in err
    code, _, err = run("verify", "--key", str(key_files[0]), str(image))
    assert code == 2 and "expected a public key" in err


def test_verify_attestation_prints_the_statement(
    run: Run, client: RegistryClient, key_files: tuple[Path, Path], keys: Keys, image: Reference
) -> None:
    statement = statement_for(image)
    attest(client, image, keys[2], statement)
    code, out, err = run("verify-attestation", "--key", str(key_files[1]), str(image.with_tag("1")))
    assert code == 0, err
    assert json.loads(out) == statement
    code, _, err = run(
        "verify-attestation",
        "--key",
        str(key_files[1]),
        "--type",
        "https://example.test/x",
        str(image),
    )
    assert code == 1 and "no attestation of type https://example.test/x" in err


def test_a_tag_that_does_not_exist(
    run: Run, key_files: tuple[Path, Path], client: RegistryClient
) -> None:
    push_tiny_image(client, Reference.parse("127.0.0.1:5000/team/app:1"))
    code, _, err = run("verify", "--key", str(key_files[1]), "127.0.0.1:5000/team/app:nope")
    assert code == 1 and "manifest not found" in err


def test_keygen_into_a_missing_folder(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOCLE_PASSWORD", SECRET)
    code, _, err = run("keygen", "--out", str(tmp_path / "nowhere" / "k"))
    assert code == 2 and "cannot write the key pair" in err and "Traceback" not in err


def test_sign_prompts_for_the_passphrase_once(
    fake: FakeRegistry,
    key_files: tuple[Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    image: Reference,
) -> None:
    monkeypatch.delenv("SOCLE_PASSWORD", raising=False)
    monkeypatch.setattr(
        commands,
        "open_client",
        lambda: RegistryClient(transport=httpx.MockTransport(fake), sleep=lambda _: None),
    )
    result = CliRunner().invoke(
        commands.sign_cmd, ["--key", str(key_files[0]), str(image)], input=f"{PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    assert "Passphrase for the private key" in result.output
    assert PASSWORD not in result.output
    assert result.output.count("Signature written to") == 2


def test_verbose_errors_do_not_show_the_passphrase(
    run: Run, key_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, image: Reference
) -> None:
    monkeypatch.setenv("SOCLE_PASSWORD", SECRET)
    code, out, err = run("-v", "sign", "--key", str(key_files[0]), str(image))
    assert code == 2 and "Traceback" in err
    assert SECRET not in out + err
